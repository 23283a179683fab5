// Package heartbeats keeps the heartbeat monitors (table
// heartbeat_monitors, with who their alerts are for in
// heartbeat_recipients): a job that is expected to report in (a pulse to
// the monitor's URL) every interval. It is the only writer of those
// tables. It validates monitors, makes and rotates their tokens, builds
// the URL a job pulses, counts pulses on the monitor's row (no row per
// pulse), and writes the audit records.
//
// A monitor is PENDING until its first pulse, UP while pulses come in
// time, and DOWN once none came for its interval plus grace (counted from
// its last pulse, or from its creation while PENDING). The deadline is a
// durable job of alerting's (alerting/heartbeat.go), one per monitor: it
// asks CheckDeadline when due, which either names the new deadline or
// marks the monitor DOWN and hands back the alert to open. The pulse that
// follows closes that alert through alerting and queues the job again.
// Opening and closing alerts, and the job table, stay alerting's: this
// package reaches them through the Paging interface (which
// *alerting.Service implements) and never writes them itself; the alert
// it hands back is a db.MissedHeartbeat, as neither package imports the
// other. It may import db, audit and invalid; it never imports alerting.
package heartbeats
