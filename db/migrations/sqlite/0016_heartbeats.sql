-- Heartbeat monitors: a job that reports in (a pulse to its URL) every
-- interval_minutes; when none arrives for interval plus grace, one alert
-- opens and pages through the monitor's policy and recipients. Pulses are
-- counted on the row, not stored one each.
CREATE TABLE heartbeat_monitors (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	name TEXT NOT NULL UNIQUE,
	token TEXT NOT NULL UNIQUE,
	status TEXT NOT NULL,
	interval_minutes INTEGER NOT NULL,
	grace_minutes INTEGER NOT NULL,
	severity TEXT NOT NULL,
	escalation_policy_id INTEGER REFERENCES escalation_policies (id) ON DELETE SET NULL,
	pulse_count INTEGER NOT NULL DEFAULT 0,
	last_pulse_at TIMESTAMP,
	created_at TIMESTAMP NOT NULL,
	updated_at TIMESTAMP NOT NULL
);

CREATE TABLE heartbeat_recipients (
	monitor_id INTEGER NOT NULL REFERENCES heartbeat_monitors (id) ON DELETE CASCADE,
	kind TEXT NOT NULL,
	target_id INTEGER NOT NULL,
	PRIMARY KEY (monitor_id, kind, target_id)
);

-- The monitor whose missed deadline opened the alert; at most one open
-- alert per monitor, so an outage pages once.
ALTER TABLE alerts ADD COLUMN heartbeat_monitor_id INTEGER REFERENCES heartbeat_monitors (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX alerts_open_heartbeat ON alerts (heartbeat_monitor_id) WHERE heartbeat_monitor_id IS NOT NULL AND status <> 'CLOSED';

-- A monitor's deadline is a job of its own, with no alert yet. SQLite
-- cannot drop NOT NULL from a column, so alert_jobs is rebuilt keeping its
-- rows, ids and sequence (see 0014 for the procedure).
CREATE TABLE klaxon_new_alert_jobs (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	alert_id INTEGER REFERENCES alerts (id) ON DELETE CASCADE,
	run_at TIMESTAMP NOT NULL,
	args TEXT NOT NULL,
	dedup_key TEXT NOT NULL UNIQUE,
	attempts INTEGER NOT NULL DEFAULT 0,
	locked_by TEXT NOT NULL DEFAULT '',
	locked_until TIMESTAMP,
	last_error TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMP NOT NULL,
	contact_method_id INTEGER,
	heartbeat_monitor_id INTEGER REFERENCES heartbeat_monitors (id) ON DELETE CASCADE
);
INSERT INTO klaxon_new_alert_jobs (id, kind, alert_id, run_at, args, dedup_key, attempts, locked_by, locked_until, last_error, created_at, contact_method_id)
	SELECT id, kind, alert_id, run_at, args, dedup_key, attempts, locked_by, locked_until, last_error, created_at, contact_method_id FROM alert_jobs;
UPDATE sqlite_sequence
	SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'alert_jobs'))
	WHERE name = 'klaxon_new_alert_jobs' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'alert_jobs');
INSERT INTO sqlite_sequence (name, seq)
	SELECT 'klaxon_new_alert_jobs', seq FROM sqlite_sequence
	WHERE name = 'alert_jobs' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'klaxon_new_alert_jobs');
DROP TABLE alert_jobs;
ALTER TABLE klaxon_new_alert_jobs RENAME TO alert_jobs;
CREATE INDEX alert_jobs_due ON alert_jobs (run_at);
CREATE INDEX alert_jobs_alert ON alert_jobs (alert_id);
CREATE INDEX alert_jobs_contact_method ON alert_jobs (contact_method_id, run_at) WHERE contact_method_id IS NOT NULL;
CREATE INDEX alert_jobs_heartbeat ON alert_jobs (heartbeat_monitor_id) WHERE heartbeat_monitor_id IS NOT NULL;
