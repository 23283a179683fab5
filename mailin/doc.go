// Package mailin receives alert mail over SMTP: a listener that takes
// mail only for the addresses of EMAIL integrations (their routing key at
// the inbound domain), reads each message into rules.EmailMessage and
// hands it to alerting's Ingest like a webhook body. It answers 250 only
// once the message is committed to the inbound log, and a temporary 4xx
// when it could not be stored, so that the sending server retries.
//
// It is a transport, beside the HTTP server: it calls alerting and is
// never called by it. It relays nothing: mail for any other domain or
// address is refused at RCPT.
package mailin
