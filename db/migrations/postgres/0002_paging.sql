CREATE TABLE contact_methods (
	id BIGSERIAL PRIMARY KEY,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	name TEXT NOT NULL DEFAULT '',
	type TEXT NOT NULL,
	value TEXT NOT NULL,
	verified BOOLEAN NOT NULL DEFAULT FALSE,
	disabled BOOLEAN NOT NULL DEFAULT FALSE,
	created_at TIMESTAMPTZ NOT NULL,
	UNIQUE (user_id, type, value)
);

CREATE TABLE notification_rules (
	id BIGSERIAL PRIMARY KEY,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	contact_method_id BIGINT NOT NULL REFERENCES contact_methods (id) ON DELETE CASCADE,
	delay_minutes INTEGER NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	UNIQUE (contact_method_id, delay_minutes)
);
CREATE INDEX notification_rules_user ON notification_rules (user_id);

CREATE TABLE schedules (
	id BIGSERIAL PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	time_zone TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE schedule_layers (
	id BIGSERIAL PRIMARY KEY,
	schedule_id BIGINT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
	position INTEGER NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	shift_length INTEGER NOT NULL,
	shift_unit TEXT NOT NULL,
	handoff_at TIMESTAMPTZ NOT NULL,
	participant_ids TEXT NOT NULL,
	restrictions TEXT NOT NULL,
	UNIQUE (schedule_id, position)
);

CREATE TABLE schedule_overrides (
	id BIGSERIAL PRIMARY KEY,
	schedule_id BIGINT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	replace_user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
	start_at TIMESTAMPTZ NOT NULL,
	end_at TIMESTAMPTZ NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX schedule_overrides_schedule ON schedule_overrides (schedule_id, end_at);

CREATE TABLE escalation_policies (
	id BIGSERIAL PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	description TEXT NOT NULL DEFAULT '',
	repeat INTEGER NOT NULL DEFAULT 0,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE escalation_steps (
	id BIGSERIAL PRIMARY KEY,
	policy_id BIGINT NOT NULL REFERENCES escalation_policies (id) ON DELETE CASCADE,
	position INTEGER NOT NULL,
	delay_minutes INTEGER NOT NULL,
	targets TEXT NOT NULL,
	UNIQUE (policy_id, position)
);

ALTER TABLE integrations ADD COLUMN escalation_policy_id BIGINT REFERENCES escalation_policies (id) ON DELETE SET NULL;

-- Who an integration's alerts are for: users and groups, by kind.
CREATE TABLE integration_recipients (
	integration_id BIGINT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
	kind TEXT NOT NULL,
	target_id BIGINT NOT NULL,
	PRIMARY KEY (integration_id, kind, target_id)
);

ALTER TABLE alerts ADD COLUMN escalation_policy_id BIGINT REFERENCES escalation_policies (id) ON DELETE SET NULL;

-- Durable timers of the escalation engine: a row is due at run_at, taken
-- by one worker at a time through a lease, and deleted in the transaction
-- that carries out its effect.
CREATE TABLE alert_jobs (
	id BIGSERIAL PRIMARY KEY,
	kind TEXT NOT NULL,
	alert_id BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	run_at TIMESTAMPTZ NOT NULL,
	args TEXT NOT NULL,
	dedup_key TEXT NOT NULL UNIQUE,
	attempts INTEGER NOT NULL DEFAULT 0,
	locked_by TEXT NOT NULL DEFAULT '',
	locked_until TIMESTAMPTZ,
	last_error TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX alert_jobs_due ON alert_jobs (run_at);
CREATE INDEX alert_jobs_alert ON alert_jobs (alert_id);

CREATE TABLE notifications (
	id BIGSERIAL PRIMARY KEY,
	alert_id BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	user_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
	contact_method_id BIGINT REFERENCES contact_methods (id) ON DELETE SET NULL,
	channel TEXT NOT NULL,
	destination TEXT NOT NULL,
	status TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	provider_id TEXT NOT NULL DEFAULT '',
	step INTEGER NOT NULL,
	round INTEGER NOT NULL,
	dedup_key TEXT NOT NULL UNIQUE,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX notifications_alert ON notifications (alert_id, id);
