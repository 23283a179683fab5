// Package events publishes Klaxon's domain events (an alert opened,
// appended, acknowledged, …; an inbound message stored) to live
// subscribers, on one instance or across several.
//
// A domain transaction records its events (AlertChanged, MessageStored,
// or the ingest statements' own SQL) in the events table, so an event
// exists exactly when its change commits. Each event takes a sequence
// number as it is written, and no transaction waits for another's commit
// to do so. That number is the subscribers' cursor: resuming after it
// replays exactly what was missed. Numbers are drawn in one order and
// committed in another, so each Bus reads only up to a settled number, at
// or below which nothing can still appear (see settled.go): on SQLite the
// single writer makes every visible number settled; on PostgreSQL the bus
// waits for the writers under way when it looked. An instance that
// committed events signals the others (LISTEN/NOTIFY on PostgreSQL,
// outside the committing transactions; in-process on SQLite), and every
// Bus reads the new events once into a bounded window of recent events
// that all its subscribers read from, each at its own place. Nobody waits
// for a subscriber: one that falls out of the window catches up from the
// database on its own time, one that lags by more than maxLag events gets
// ErrTooSlow, and neither slows ingest or anyone else.
//
// Statements that store a change and its events at once take the events
// table's SQL from here (InsertValuesSQL, InsertSelectSQL): no other
// package writes that table.
package events
