// Package workflows keeps the lifecycle workflows: HTTP requests sent when
// an alert opens, is acknowledged, escalates, closes or gets a note, on
// one integration's alerts or on every alert (table workflows), with
// their validation and audit records. A workflow's conditions are
// rules.Condition over the alert's fields; its body and header values are
// text/template templates over notifiers.WorkflowData, refused when saved
// if they fail to parse or to render against a sample alert.
//
// It is configuration only: queueing a request in the transaction of an
// alert's change, sending it and retrying it are alerting's, which reads
// the workflows through an interface of its own. A change here calls the
// hook the store was built with, so alerting drops what it keeps of them.
// It may import db, audit, invalid, rules, notifiers and egress; never
// alerting.
package workflows
