package db

// Lists read a page at a time (alerts, inbound messages, the audit log)
// are DefaultPageSize long unless the caller asks otherwise, and never
// longer than MaxPageSize. The GraphQL complexity limit counts a page by
// the same numbers.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)
