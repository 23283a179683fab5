// Package events publishes Klaxon's domain events (an alert opened,
// appended, acknowledged, …; an inbound message stored) to live
// subscribers, on one instance or across several.
//
// A domain transaction records its events in an outbox table (AlertChanged,
// MessageStored), so an event exists exactly when its change commits. Each instance's Bus
// relays outbox rows into the events table in one serialized pass — a
// transaction-scoped advisory lock on PostgreSQL, the single writer on
// SQLite — which numbers events in the order they became visible. Ingest
// batches on PostgreSQL skip the outbox: they take the same lock first,
// hold it until they commit, and write their events numbered
// (BeginNumbering). SQLite's single writer numbers events as they are
// written. That number is the subscribers' cursor: resuming after it replays exactly
// what was missed. The relaying instance then signals the others (LISTEN/
// NOTIFY on PostgreSQL; in-process on SQLite) and every Bus reads the new
// events once into a bounded window of recent events that all its
// subscribers read from, each at its own place. Nobody waits for a
// subscriber: one that falls out of the window catches up from the
// database on its own time, one that lags by more than maxLag events gets
// ErrTooSlow, and neither slows ingest or anyone else.
//
// Statements that store a change and its events at once take the events
// table's SQL from here (InsertValuesSQL, InsertSelectSQL): no other
// package writes that table.
package events
