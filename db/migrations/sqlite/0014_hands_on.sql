-- Alerts opened by hand. A manual alert comes from a person, not an
-- integration: integration_id may be NULL, and created_by names who opened
-- it. A snoozed alert is acknowledged until snoozed_until, when it opens
-- again and pages from the first step.
--
-- SQLite cannot drop NOT NULL from a column, so alerts is rebuilt keeping
-- its rows and ids, AUTOINCREMENT and its sqlite_sequence value (which is
-- above the highest id when the newest alerts were deleted), and every
-- index. Foreign keys are off while the table is swapped and checked
-- before the migration commits (db/migrate.go).

CREATE TABLE klaxon_new_alerts (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	integration_id INTEGER REFERENCES integrations (id) ON DELETE CASCADE,
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
	escalation_policy_id INTEGER REFERENCES escalation_policies (id) ON DELETE SET NULL,
	created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
	snoozed_until TIMESTAMP,
	-- Added by 0013; the rebuild keeps it.
	suppressed_by INTEGER REFERENCES maintenance_windows (id) ON DELETE SET NULL
);
INSERT INTO klaxon_new_alerts (id, integration_id, source_id, source_name, subject, severity, url, details, status, append_count, opened_at, last_seen_at, acknowledged_at, acknowledged_by, assigned_to, closed_at, closed_by, escalation_policy_id, suppressed_by)
	SELECT id, integration_id, source_id, source_name, subject, severity, url, details, status, append_count, opened_at, last_seen_at, acknowledged_at, acknowledged_by, assigned_to, closed_at, closed_by, escalation_policy_id, suppressed_by FROM alerts;
UPDATE sqlite_sequence
	SET seq = max(seq, (SELECT seq FROM sqlite_sequence WHERE name = 'alerts'))
	WHERE name = 'klaxon_new_alerts' AND EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'alerts');
INSERT INTO sqlite_sequence (name, seq)
	SELECT 'klaxon_new_alerts', seq FROM sqlite_sequence
	WHERE name = 'alerts' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'klaxon_new_alerts');
DROP TABLE alerts;
ALTER TABLE klaxon_new_alerts RENAME TO alerts;
CREATE UNIQUE INDEX alerts_open_source ON alerts (integration_id, source_id) WHERE status <> 'CLOSED';
CREATE INDEX alerts_status ON alerts (status, id);
CREATE INDEX alerts_integration ON alerts (integration_id, id);
-- Manual alerts have no integration to deduplicate within; their source
-- ids are unique on their own.
CREATE UNIQUE INDEX alerts_manual_source ON alerts (source_id) WHERE integration_id IS NULL;
CREATE INDEX alerts_suppressed_by ON alerts (suppressed_by) WHERE suppressed_by IS NOT NULL;
