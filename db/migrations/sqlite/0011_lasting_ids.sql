-- Ids are never handed out twice. Without AUTOINCREMENT SQLite gives a
-- new row the highest id in use plus one, so deleting the newest user and
-- creating another gave the new one the old id, and with it the old
-- user's sessions, schedule shifts, policy targets and audit history.
-- SQLite cannot add AUTOINCREMENT to a table, so each table whose ids are
-- handed out is rebuilt, keeping its rows and their ids; copying them in
-- sets the table's sqlite_sequence to its highest id, so from now on no
-- id is used again (ids deleted before this upgrade cannot be known).
-- The migration runs with foreign key enforcement off, as SQLite's
-- procedure for rebuilding a table requires (db/migrate.go), and is
-- checked with foreign_key_check before it commits.
--
-- A user also gets a random session nonce, which every session token
-- carries and must match, so a token can only ever name the user it was
-- issued to.

CREATE TABLE klaxon_new_users (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	email TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL,
	password_hash TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL,
	token_version INTEGER NOT NULL DEFAULT 0,
	session_nonce TEXT NOT NULL DEFAULT (lower(hex(randomblob(16))))
);
INSERT INTO klaxon_new_users (id, email, name, role, password_hash, created_at, updated_at, token_version)
	SELECT id, email, name, role, password_hash, created_at, updated_at, token_version FROM users;
DROP TABLE users;
ALTER TABLE klaxon_new_users RENAME TO users;

CREATE TABLE klaxon_new_user_groups (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL
);
INSERT INTO klaxon_new_user_groups (id, name, description, created_at)
	SELECT id, name, description, created_at FROM user_groups;
DROP TABLE user_groups;
ALTER TABLE klaxon_new_user_groups RENAME TO user_groups;

CREATE TABLE klaxon_new_rulesets (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);
INSERT INTO klaxon_new_rulesets (id, name, description, created_at, updated_at)
	SELECT id, name, description, created_at, updated_at FROM rulesets;
DROP TABLE rulesets;
ALTER TABLE klaxon_new_rulesets RENAME TO rulesets;

CREATE TABLE klaxon_new_rules (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	ruleset_id INTEGER NOT NULL REFERENCES rulesets (id) ON DELETE CASCADE,
	position INTEGER NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	match_mode TEXT NOT NULL,
	conditions TEXT NOT NULL,
	action TEXT NOT NULL,
	route TEXT NOT NULL DEFAULT '{}',
	UNIQUE (ruleset_id, position)
);
INSERT INTO klaxon_new_rules (id, ruleset_id, position, name, match_mode, conditions, action, route)
	SELECT id, ruleset_id, position, name, match_mode, conditions, action, route FROM rules;
DROP TABLE rules;
ALTER TABLE klaxon_new_rules RENAME TO rules;

CREATE TABLE klaxon_new_integrations (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL,
	type TEXT NOT NULL,
	token TEXT NOT NULL UNIQUE,
	enabled BOOLEAN NOT NULL,
	ruleset_id INTEGER REFERENCES rulesets (id) ON DELETE RESTRICT,
	mapping TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL,
	escalation_policy_id INTEGER REFERENCES escalation_policies (id) ON DELETE SET NULL,
	signature_secret TEXT NOT NULL DEFAULT '',
	rate_limit_per_minute INTEGER
);
INSERT INTO klaxon_new_integrations (id, name, type, token, enabled, ruleset_id, mapping, created_at, updated_at, escalation_policy_id, signature_secret, rate_limit_per_minute)
	SELECT id, name, type, token, enabled, ruleset_id, mapping, created_at, updated_at, escalation_policy_id, signature_secret, rate_limit_per_minute FROM integrations;
DROP TABLE integrations;
ALTER TABLE klaxon_new_integrations RENAME TO integrations;
CREATE INDEX integrations_ruleset ON integrations (ruleset_id);

CREATE TABLE klaxon_new_alerts (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
	source_id TEXT NOT NULL,
	source_name TEXT NOT NULL DEFAULT '',
	subject TEXT NOT NULL DEFAULT '',
	severity TEXT NOT NULL DEFAULT '',
	url TEXT NOT NULL DEFAULT '',
	details TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	append_count INTEGER NOT NULL DEFAULT 0,
	opened_at TIMESTAMP NOT NULL,
	last_seen_at TIMESTAMP NOT NULL,
	acknowledged_at TIMESTAMP,
	acknowledged_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
	assigned_to INTEGER REFERENCES users (id) ON DELETE SET NULL,
	closed_at TIMESTAMP,
	closed_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
	escalation_policy_id INTEGER REFERENCES escalation_policies (id) ON DELETE SET NULL
);
INSERT INTO klaxon_new_alerts (id, integration_id, source_id, source_name, subject, severity, url, details, status, append_count, opened_at, last_seen_at, acknowledged_at, acknowledged_by, assigned_to, closed_at, closed_by, escalation_policy_id)
	SELECT id, integration_id, source_id, source_name, subject, severity, url, details, status, append_count, opened_at, last_seen_at, acknowledged_at, acknowledged_by, assigned_to, closed_at, closed_by, escalation_policy_id FROM alerts;
DROP TABLE alerts;
ALTER TABLE klaxon_new_alerts RENAME TO alerts;
CREATE UNIQUE INDEX alerts_open_source ON alerts (integration_id, source_id) WHERE status <> 'CLOSED';
CREATE INDEX alerts_status ON alerts (status, id);
CREATE INDEX alerts_integration ON alerts (integration_id, id);

CREATE TABLE klaxon_new_alert_log (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	at TIMESTAMP NOT NULL,
	type TEXT NOT NULL,
	message TEXT NOT NULL DEFAULT '',
	user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
	inbound_message_id INTEGER
);
INSERT INTO klaxon_new_alert_log (id, alert_id, at, type, message, user_id, inbound_message_id)
	SELECT id, alert_id, at, type, message, user_id, inbound_message_id FROM alert_log;
DROP TABLE alert_log;
ALTER TABLE klaxon_new_alert_log RENAME TO alert_log;
CREATE INDEX alert_log_alert ON alert_log (alert_id, id);

CREATE TABLE klaxon_new_inbound_messages (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
	received_at TIMESTAMP NOT NULL,
	remote_addr TEXT NOT NULL DEFAULT '',
	headers TEXT NOT NULL,
	body BLOB NOT NULL,
	status TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT '',
	source_id TEXT NOT NULL DEFAULT '',
	alert_id INTEGER REFERENCES alerts (id) ON DELETE SET NULL
);
INSERT INTO klaxon_new_inbound_messages (id, integration_id, received_at, remote_addr, headers, body, status, detail, source_id, alert_id)
	SELECT id, integration_id, received_at, remote_addr, headers, body, status, detail, source_id, alert_id FROM inbound_messages;
DROP TABLE inbound_messages;
ALTER TABLE klaxon_new_inbound_messages RENAME TO inbound_messages;
CREATE INDEX inbound_messages_integration ON inbound_messages (integration_id, id);
CREATE INDEX inbound_messages_status ON inbound_messages (status, id);
CREATE INDEX inbound_messages_alert ON inbound_messages (alert_id);

CREATE TABLE klaxon_new_contact_methods (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name TEXT NOT NULL DEFAULT '',
	type TEXT NOT NULL,
	value TEXT NOT NULL,
	verified BOOLEAN NOT NULL DEFAULT FALSE,
	disabled BOOLEAN NOT NULL DEFAULT FALSE,
	created_at TIMESTAMP NOT NULL,
	UNIQUE (user_id, type, value)
);
INSERT INTO klaxon_new_contact_methods (id, user_id, name, type, value, verified, disabled, created_at)
	SELECT id, user_id, name, type, value, verified, disabled, created_at FROM contact_methods;
DROP TABLE contact_methods;
ALTER TABLE klaxon_new_contact_methods RENAME TO contact_methods;

CREATE TABLE klaxon_new_notification_rules (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	contact_method_id INTEGER NOT NULL REFERENCES contact_methods (id) ON DELETE CASCADE,
	delay_minutes INTEGER NOT NULL,
	created_at TIMESTAMP NOT NULL,
	UNIQUE (contact_method_id, delay_minutes)
);
INSERT INTO klaxon_new_notification_rules (id, user_id, contact_method_id, delay_minutes, created_at)
	SELECT id, user_id, contact_method_id, delay_minutes, created_at FROM notification_rules;
DROP TABLE notification_rules;
ALTER TABLE klaxon_new_notification_rules RENAME TO notification_rules;
CREATE INDEX notification_rules_user ON notification_rules (user_id);

CREATE TABLE klaxon_new_schedules (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	time_zone TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);
INSERT INTO klaxon_new_schedules (id, name, description, time_zone, created_at, updated_at)
	SELECT id, name, description, time_zone, created_at, updated_at FROM schedules;
DROP TABLE schedules;
ALTER TABLE klaxon_new_schedules RENAME TO schedules;

CREATE TABLE klaxon_new_schedule_layers (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
	position INTEGER NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	shift_length INTEGER NOT NULL,
	shift_unit TEXT NOT NULL,
	handoff_at TIMESTAMP NOT NULL,
	participant_ids TEXT NOT NULL,
	restrictions TEXT NOT NULL,
	UNIQUE (schedule_id, position)
);
INSERT INTO klaxon_new_schedule_layers (id, schedule_id, position, name, shift_length, shift_unit, handoff_at, participant_ids, restrictions)
	SELECT id, schedule_id, position, name, shift_length, shift_unit, handoff_at, participant_ids, restrictions FROM schedule_layers;
DROP TABLE schedule_layers;
ALTER TABLE klaxon_new_schedule_layers RENAME TO schedule_layers;

CREATE TABLE klaxon_new_schedule_overrides (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	replace_user_id INTEGER REFERENCES users (id) ON DELETE CASCADE,
	start_at TIMESTAMP NOT NULL,
	end_at TIMESTAMP NOT NULL,
	created_at TIMESTAMP NOT NULL
);
INSERT INTO klaxon_new_schedule_overrides (id, schedule_id, user_id, replace_user_id, start_at, end_at, created_at)
	SELECT id, schedule_id, user_id, replace_user_id, start_at, end_at, created_at FROM schedule_overrides;
DROP TABLE schedule_overrides;
ALTER TABLE klaxon_new_schedule_overrides RENAME TO schedule_overrides;
CREATE INDEX schedule_overrides_schedule ON schedule_overrides (schedule_id, end_at);

CREATE TABLE klaxon_new_escalation_policies (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	repeat INTEGER NOT NULL DEFAULT 0,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);
INSERT INTO klaxon_new_escalation_policies (id, name, description, repeat, created_at, updated_at)
	SELECT id, name, description, repeat, created_at, updated_at FROM escalation_policies;
DROP TABLE escalation_policies;
ALTER TABLE klaxon_new_escalation_policies RENAME TO escalation_policies;

CREATE TABLE klaxon_new_escalation_steps (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	policy_id INTEGER NOT NULL REFERENCES escalation_policies (id) ON DELETE CASCADE,
	position INTEGER NOT NULL,
	delay_minutes INTEGER NOT NULL,
	targets TEXT NOT NULL,
	UNIQUE (policy_id, position)
);
INSERT INTO klaxon_new_escalation_steps (id, policy_id, position, delay_minutes, targets)
	SELECT id, policy_id, position, delay_minutes, targets FROM escalation_steps;
DROP TABLE escalation_steps;
ALTER TABLE klaxon_new_escalation_steps RENAME TO escalation_steps;

CREATE TABLE klaxon_new_alert_jobs (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	run_at TIMESTAMP NOT NULL,
	args TEXT NOT NULL,
	dedup_key TEXT NOT NULL UNIQUE,
	attempts INTEGER NOT NULL DEFAULT 0,
	locked_by TEXT NOT NULL DEFAULT '',
	locked_until TIMESTAMP,
	last_error TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	contact_method_id INTEGER
);
INSERT INTO klaxon_new_alert_jobs (id, kind, alert_id, run_at, args, dedup_key, attempts, locked_by, locked_until, last_error, created_at, contact_method_id)
	SELECT id, kind, alert_id, run_at, args, dedup_key, attempts, locked_by, locked_until, last_error, created_at, contact_method_id FROM alert_jobs;
DROP TABLE alert_jobs;
ALTER TABLE klaxon_new_alert_jobs RENAME TO alert_jobs;
CREATE INDEX alert_jobs_due ON alert_jobs (run_at);
CREATE INDEX alert_jobs_alert ON alert_jobs (alert_id);
CREATE INDEX alert_jobs_contact_method ON alert_jobs (contact_method_id, run_at) WHERE contact_method_id IS NOT NULL;

CREATE TABLE klaxon_new_notifications (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
	contact_method_id INTEGER REFERENCES contact_methods (id) ON DELETE SET NULL,
	channel TEXT NOT NULL,
	destination TEXT NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	provider_id TEXT NOT NULL DEFAULT '',
	step INTEGER NOT NULL,
	round INTEGER NOT NULL,
	dedup_key TEXT NOT NULL UNIQUE,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);
INSERT INTO klaxon_new_notifications (id, alert_id, user_id, contact_method_id, channel, destination, status, attempts, error, provider_id, step, round, dedup_key, created_at, updated_at)
	SELECT id, alert_id, user_id, contact_method_id, channel, destination, status, attempts, error, provider_id, step, round, dedup_key, created_at, updated_at FROM notifications;
DROP TABLE notifications;
ALTER TABLE klaxon_new_notifications RENAME TO notifications;
CREATE INDEX notifications_alert ON notifications (alert_id, id);
CREATE INDEX notifications_provider ON notifications (provider_id) WHERE provider_id <> '';
CREATE INDEX notifications_contact_method ON notifications (contact_method_id, updated_at);

CREATE TABLE klaxon_new_event_outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	type TEXT NOT NULL,
	alert_id INTEGER,
	integration_id INTEGER NOT NULL,
	inbound_message_id INTEGER,
	at TIMESTAMP NOT NULL
);
INSERT INTO klaxon_new_event_outbox (id, kind, type, alert_id, integration_id, inbound_message_id, at)
	SELECT id, kind, type, alert_id, integration_id, inbound_message_id, at FROM event_outbox;
DROP TABLE event_outbox;
ALTER TABLE klaxon_new_event_outbox RENAME TO event_outbox;

CREATE TABLE klaxon_new_api_keys (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role TEXT NOT NULL,
	key_hash TEXT NOT NULL UNIQUE,
	prefix TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL,
	last_used_at TIMESTAMP
);
INSERT INTO klaxon_new_api_keys (id, name, user_id, role, key_hash, prefix, created_at, expires_at, last_used_at)
	SELECT id, name, user_id, role, key_hash, prefix, created_at, expires_at, last_used_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE klaxon_new_api_keys RENAME TO api_keys;
CREATE INDEX api_keys_user ON api_keys (user_id);

CREATE TABLE klaxon_new_audit_log (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	at TIMESTAMP NOT NULL,
	actor_user_id INTEGER,
	actor TEXT NOT NULL,
	entity_type TEXT NOT NULL,
	entity_id INTEGER NOT NULL,
	action TEXT NOT NULL,
	changes TEXT NOT NULL
);
INSERT INTO klaxon_new_audit_log (id, at, actor_user_id, actor, entity_type, entity_id, action, changes)
	SELECT id, at, actor_user_id, actor, entity_type, entity_id, action, changes FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE klaxon_new_audit_log RENAME TO audit_log;
CREATE INDEX audit_log_type ON audit_log (entity_type, id);
CREATE INDEX audit_log_entity ON audit_log (entity_type, entity_id, id);

