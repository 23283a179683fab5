// Package policies keeps the escalation policies: who is notified about an
// alert and after how long (tables escalation_policies, escalation_steps,
// whose targets name users, groups, schedules or an integration's
// recipients), their validation and audit records, and the refusal to
// delete what a step still targets.
//
// It is configuration only: the escalation engine that walks the steps
// stays in alerting, which reads the steps through an interface of its
// own. It may import db and audit; it never imports alerting.
package policies
