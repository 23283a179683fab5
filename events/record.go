package events

import (
	"strings"
)

// Statements that write their own events (the ingest path's prepared
// statements on SQLite, its one statement per message on PostgreSQL) get
// the events table's SQL here, so that one message's events still go in
// the statement or transaction that stores it. Each event is numbered as
// it is written, by the table's default (see settled.go).

const insertSQL = "INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at) "

// InsertValuesSQL writes n numbered events from bound arguments (?), six
// per event as Values gives them, numbered in the order given.
func InsertValuesSQL(n int) string {
	rows := make([]string, n)
	for i := range rows {
		rows[i] = "(?, ?, ?, ?, ?, ?)"
	}
	return insertSQL + "VALUES " + strings.Join(rows, ", ")
}

// Values is one event's arguments for InsertValuesSQL; at is the time as
// the statement's database takes it.
func Values(kind Kind, typ string, alertID *int, integrationID int, inboundMessageID *int, at any) []any {
	return []any{string(kind), typ, alertID, integrationID, inboundMessageID, at}
}

// InsertSelectSQL writes numbered events from the rows of selects, in
// their order; each select gives kind, type, alert_id, integration_id,
// inbound_message_id and at. It fits a data-modifying CTE.
func InsertSelectSQL(selects ...string) string {
	return insertSQL + strings.Join(selects, "\n\tUNION ALL\n\t")
}
