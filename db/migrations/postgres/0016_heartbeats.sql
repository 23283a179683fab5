-- Heartbeat monitors: a job that reports in (a pulse to its URL) every
-- interval_minutes; when none arrives for interval plus grace, one alert
-- opens and pages through the monitor's policy and recipients. Pulses are
-- counted on the row, not stored one each.
CREATE TABLE heartbeat_monitors (
	id BIGSERIAL PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	token TEXT NOT NULL UNIQUE,
	status TEXT NOT NULL,
	interval_minutes INTEGER NOT NULL,
	grace_minutes INTEGER NOT NULL,
	severity TEXT NOT NULL,
	escalation_policy_id BIGINT REFERENCES escalation_policies (id) ON DELETE SET NULL,
	pulse_count BIGINT NOT NULL DEFAULT 0,
	last_pulse_at TIMESTAMPTZ,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE heartbeat_recipients (
	monitor_id BIGINT NOT NULL REFERENCES heartbeat_monitors (id) ON DELETE CASCADE,
	kind TEXT NOT NULL,
	target_id BIGINT NOT NULL,
	PRIMARY KEY (monitor_id, kind, target_id)
);

-- The monitor whose missed deadline opened the alert; at most one open
-- alert per monitor, so an outage pages once.
ALTER TABLE alerts ADD COLUMN heartbeat_monitor_id BIGINT REFERENCES heartbeat_monitors (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX alerts_open_heartbeat ON alerts (heartbeat_monitor_id) WHERE heartbeat_monitor_id IS NOT NULL AND status <> 'CLOSED';

-- A monitor's deadline is a job of its own, with no alert yet.
ALTER TABLE alert_jobs ALTER COLUMN alert_id DROP NOT NULL;
ALTER TABLE alert_jobs ADD COLUMN heartbeat_monitor_id BIGINT REFERENCES heartbeat_monitors (id) ON DELETE CASCADE;
CREATE INDEX alert_jobs_heartbeat ON alert_jobs (heartbeat_monitor_id) WHERE heartbeat_monitor_id IS NOT NULL;
