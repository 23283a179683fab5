// Package alerting is Klaxon's alert domain: integrations and their
// rulesets, taking in a webhook message (log it, decide by rules, apply the
// decision to alerts in one transaction), and the alert lifecycle
// (acknowledge, assign, close) with its timeline.
//
// Deduplication is the database's job: a unique index allows one unclosed
// alert per (integration, source id), and opening is an INSERT … ON
// CONFLICT DO NOTHING followed by an append, so concurrent identical
// messages can never open two alerts.
package alerting
