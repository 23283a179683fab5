// Package db holds Klaxon's storage: the bun models, opening SQLite or
// PostgreSQL from one URL, the embedded migrations for each, and the
// queries that more than one domain package needs.
//
// Both databases run the same queries. Where their SQL differs (column
// types, sequences) the difference lives in the per-dialect migration files
// only, so the Go code never branches on the dialect for correctness.
package db
