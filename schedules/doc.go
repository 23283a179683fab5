// Package schedules keeps who is on call: schedules, their rotation layers
// and overrides (tables schedules, schedule_layers, schedule_overrides),
// their validation and audit records, and the answers "who is on call at
// T" and "the shifts between two instants", computed by the pure package
// oncall from the stored rows.
//
// Participants hand spans of their shifts to each other through shift
// swaps (table shift_swaps, swaps.go): a request, an answer by the
// addressee (over the API or a single-use link sent to them), and on
// acceptance an override, all audited on the schedule. What a swap has
// to tell someone is queued, in the swap's transaction, through the
// Notices interface, which alerting implements with retried jobs.
//
// It may import db, audit, oncall and notifiers (for the notice's
// type); it never imports alerting, which asks it for on-call users
// through an interface of its own. Deleting a schedule asks a
// TargetGuard (the escalation policies) first.
package schedules
