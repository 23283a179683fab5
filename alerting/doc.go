// Package alerting is Klaxon's alert domain at run time: taking in webhook
// messages, the alert lifecycle, and the escalation engine that pages
// people about open alerts.
//
//   - Ingest (ingest*.go, groupcommit.go, routes.go, dryrun.go, inbound.go):
//     log each message (table inbound_messages), decide by the integration's
//     rules, and apply the decision to alerts in one transaction, batched
//     by group commit. Routes (an integration with its compiled ruleset
//     and its maintenance windows) are cached by token; RoutesChanged drops them, and the stores of the
//     configuration they are built from call it after each change.
//   - Lifecycle (alerts.go, handson.go, actionlinks.go, actors.go,
//     replies.go): acknowledge, assign, close, snooze, escalate at once,
//     notes, and alerts opened by hand (which have no integration), with
//     the timeline (tables alerts, alert_log, alert_recipients,
//     action_links).
//   - Maintenance (maintenance.go): an alert opened while a maintenance
//     window covers its integration is not paged until the window ends.
//   - Engine (escalation.go, notify.go, jobs.go, flap.go): walk each alert's
//     escalation policy, notify the people it names by their notification
//     rules, retry and rate-limit (tables alert_jobs, notifications);
//     hold a new alert's first step for the paging delay, close quiet
//     alerts, and time out acknowledgements.
//   - Heartbeats (heartbeat.go): each heartbeat monitor's deadline is one
//     job with no alert; when due it asks the monitors (the Heartbeats
//     interface) and either moves itself to the new deadline or opens the
//     monitor's alert, at most one unclosed per monitor. The monitors
//     close it through CloseHeartbeatAlert on the next pulse.
//   - Scan heartbeats (scanheartbeat.go): a message a PULSE rule matches
//     is counted for its key (the mapped sourceName) in table
//     scan_heartbeats; with the integration's scanHeartbeatHours set, each
//     key's deadline is one job which opens the key's one alert (source id
//     "scan-heartbeat:<key>") when no pulse came in time; the key's next
//     pulse, an ingest outcome, closes it.
//   - Findings (regression.go, remediation.go, findingstats.go): an alert
//     that brings back a finding closed within the integration's window
//     links to it; remediation deadlines give alerts a due time, pulled in
//     by a raised severity, and an overdue job marks them overdue and
//     pages the overdue policy; findingStats reports per severity.
//   - Dry runs (simulate.go, dryrun.go, replay.go): testIntegration (one
//     message) and replayRuleset (a range of the stored inbound log under
//     a proposed ruleset, against the current one) judge messages with
//     ingest's own decision and plan, and settle the plan against a
//     simulated alert per source instead of the alerts table. They write
//     nothing; a replay streams the log a page at a time.
//   - Retention (retention.go): empty the bodies of old messages and
//     remove closed alerts past their age with their timelines, in small
//     batches, for package retention, which also takes its pruning turn
//     here (a lease on one alert_jobs row the engine never runs).
//
// Deduplication is the database's job: a unique index allows one unclosed
// alert per (integration, source id), and opening is an INSERT … ON
// CONFLICT DO NOTHING followed by an append, so concurrent identical
// messages can never open two alerts. An alert opened by hand has no
// integration and a source id of its own; nor has an alert a heartbeat
// monitor opened, which is deduplicated per monitor instead.
//
// The configuration the engine follows is kept by other packages
// (integrations, schedules, policies, contacts, heartbeats, maintenance,
// and auth for group membership); alerting reads it only through the small interfaces it
// declares in config.go, filled in by the wiring, and never imports those
// packages. It pages through notifiers.Channels, the value contact
// verification sends through too. It may import db, events, notifiers,
// audit, egress, rules and oncall.
package alerting
