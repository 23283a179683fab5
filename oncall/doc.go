// Package oncall answers two questions about an on-call schedule: who is on
// call at an instant, and what the final, merged shift timeline between two
// instants looks like.
//
// It is pure: no database, network, clock or logging. Callers pass every
// instant in, so the same Schedule and times always give the same answer.
//
// # Model
//
// A Schedule has a time zone, an ordered list of Layers and a list of
// Overrides. Each Layer is a rotation: ParticipantIDs take turns in shifts
// of ShiftLength hours, days or weeks, anchored on HandoffAt (participant 0
// starts there, participant 1 one shift later, and so on, in both
// directions of time). Restrictions optionally limit a layer to weekly
// windows such as weekdays 09:00-17:00; outside them the layer has nobody.
//
// At an instant, the highest layer (largest index) that has someone on call
// wins. Overrides are applied on top: one with ReplaceUserID 0 replaces
// everyone, the others swap a single user when that user is on call, and
// last an Alongside override adds its user to whoever is on call.
//
// # Time
//
// DAYS and WEEKS shifts and all restrictions are wall-clock rules in the
// schedule's zone, so a daily 09:00 hand-off stays at 09:00 local across DST
// transitions (that day's shift is 23 or 25 hours long). HOURS shifts are
// fixed durations in absolute time. The zone database is embedded
// (time/tzdata), so results do not depend on the host.
//
// HandoffAt is an instant, and it is always exactly a hand-off, even when
// its local reading occurs twice that night. Every other hand-off, and
// every restriction edge, is a local wall-clock time, placed at the first
// instant at which the zone's clock reads that time or later. So a time
// that a fall-back repeats is its first occurrence, and a time that a
// spring-forward skips is the instant the clock jumps past it (a daily
// 02:30 hand-off in Berlin happens at 03:00 on the last Sunday of March).
// The rule is the same in every zone, and a later wall-clock time never
// maps to an earlier instant, so hand-offs keep their order and a window
// never ends before it starts; a window the clock skips entirely is empty.
//
// # Evaluation
//
// Shifts never steps through time minute by minute: it collects every
// instant at which the answer may change (hand-offs, restriction edges,
// override edges), evaluates once per segment between them and merges
// neighbouring segments with the same on-call set. NextChange exposes the
// same boundaries to the escalation engine.
//
// Validation failures are *invalid.Field values naming the offending input,
// such as "layers[1].shiftLength" or "overrides[0].end".
//
// # Testing
//
// TestMatchesModel compares OnCall, Shifts and NextChange with a second,
// deliberately simple model of the rules (model_test.go) on random
// schedules around DST transitions in many zones. go test checks 100 of
// them from a fixed seed; a longer run, from another seed:
//
//	KLAXON_ONCALL_MODEL_RUNS=20000 KLAXON_ONCALL_MODEL_SEED=7 go test -run=TestMatchesModel ./oncall/
//
// A failure names the seed and run, and the same two settings repeat it.
package oncall
