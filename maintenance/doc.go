// Package maintenance keeps the maintenance windows: spans of time, one-off
// or weekly, during which an integration's alerts open as usual but nobody
// is paged (tables maintenance_windows and maintenance_window_integrations),
// their validation and audit records. The row is db.MaintenanceWindow,
// whose ActiveAt answers "does the window cover T, and until when" by
// oncall's wall-clock rule (oncall.Weekly), so weekly windows keep their
// local start time across DST changes.
//
// It is configuration only: holding back and later starting the paging is
// alerting's, which reads the windows through an interface of its own and
// is told of each change (Paging) inside the change's transaction. It may
// import db, audit and oncall; it never imports alerting.
package maintenance
