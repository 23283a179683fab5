// Package audit keeps the record of who changed Klaxon's configuration
// (integrations, rulesets, escalation policies, schedules, users, groups
// and API keys), when, and what changed, and reads it back for admins.
//
// An entry is written by Record inside the transaction that makes the
// change, so a change is never committed without its entry, nor an entry
// without its change. The actor comes from the context (WithActor, set
// where a request is authenticated); without one the change is the
// system's own.
//
// Entries keep the fields that changed, each as {"from": …, "to": …}: a
// created entity has only "to" values, a deleted one only "from" values.
// Secrets are never stored: a secret-looking field (a token, a signing
// secret, a password or key hash) shows as "[redacted]" when set and, in
// an update that replaced it, "to" is "[changed]".
package audit
