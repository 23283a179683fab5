// Package schedules keeps who is on call: schedules, their rotation layers
// and overrides (tables schedules, schedule_layers, schedule_overrides),
// their validation and audit records, and the answers "who is on call at
// T" and "the shifts between two instants", computed by the pure package
// oncall from the stored rows.
//
// It may import db, audit and oncall; it never imports alerting, which
// asks it for on-call users through an interface of its own. Deleting a
// schedule asks a TargetGuard (the escalation policies) first.
package schedules
