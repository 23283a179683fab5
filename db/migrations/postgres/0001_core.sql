CREATE TABLE secrets (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
	id BIGSERIAL PRIMARY KEY,
	email TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL DEFAULT '',
	role TEXT NOT NULL,
	password_hash TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE user_groups (
	id BIGSERIAL PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE group_members (
	group_id BIGINT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user ON group_members (user_id);

CREATE TABLE rulesets (
	id BIGSERIAL PRIMARY KEY,
	name TEXT NOT NULL,
	description TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE rules (
	id BIGSERIAL PRIMARY KEY,
	ruleset_id BIGINT NOT NULL REFERENCES rulesets (id) ON DELETE CASCADE,
	position INTEGER NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	match_mode TEXT NOT NULL,
	conditions TEXT NOT NULL,
	action TEXT NOT NULL,
	UNIQUE (ruleset_id, position)
);

CREATE TABLE integrations (
	id BIGSERIAL PRIMARY KEY,
	name TEXT NOT NULL,
	type TEXT NOT NULL,
	token TEXT NOT NULL UNIQUE,
	enabled BOOLEAN NOT NULL,
	ruleset_id BIGINT REFERENCES rulesets (id) ON DELETE RESTRICT,
	mapping TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX integrations_ruleset ON integrations (ruleset_id);

CREATE TABLE alerts (
	id BIGSERIAL PRIMARY KEY,
	integration_id BIGINT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
	source_id TEXT NOT NULL,
	source_name TEXT NOT NULL DEFAULT '',
	subject TEXT NOT NULL DEFAULT '',
	severity TEXT NOT NULL DEFAULT '',
	url TEXT NOT NULL DEFAULT '',
	details TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	append_count INTEGER NOT NULL DEFAULT 0,
	opened_at TIMESTAMPTZ NOT NULL,
	last_seen_at TIMESTAMPTZ NOT NULL,
	acknowledged_at TIMESTAMPTZ,
	acknowledged_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
	assigned_to BIGINT REFERENCES users (id) ON DELETE SET NULL,
	closed_at TIMESTAMPTZ,
	closed_by BIGINT REFERENCES users (id) ON DELETE SET NULL
);
-- Dedup lives here: at most one alert that is not closed per finding.
CREATE UNIQUE INDEX alerts_open_source ON alerts (integration_id, source_id) WHERE status <> 'CLOSED';
CREATE INDEX alerts_status ON alerts (status, id);
CREATE INDEX alerts_integration ON alerts (integration_id, id);

CREATE TABLE alert_log (
	id BIGSERIAL PRIMARY KEY,
	alert_id BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	at TIMESTAMPTZ NOT NULL,
	type TEXT NOT NULL,
	message TEXT NOT NULL DEFAULT '',
	user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
	inbound_message_id BIGINT
);
CREATE INDEX alert_log_alert ON alert_log (alert_id, id);

CREATE TABLE inbound_messages (
	id BIGSERIAL PRIMARY KEY,
	integration_id BIGINT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
	received_at TIMESTAMPTZ NOT NULL,
	remote_addr TEXT NOT NULL DEFAULT '',
	headers TEXT NOT NULL,
	body BYTEA NOT NULL,
	status TEXT NOT NULL,
	detail TEXT NOT NULL DEFAULT '',
	source_id TEXT NOT NULL DEFAULT '',
	alert_id BIGINT REFERENCES alerts (id) ON DELETE SET NULL
);
CREATE INDEX inbound_messages_integration ON inbound_messages (integration_id, id);
CREATE INDEX inbound_messages_status ON inbound_messages (status, id);
CREATE INDEX inbound_messages_alert ON inbound_messages (alert_id);
