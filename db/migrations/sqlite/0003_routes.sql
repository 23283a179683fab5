-- A rule may route the alerts it opens to another policy or recipients.
ALTER TABLE rules ADD COLUMN route TEXT NOT NULL DEFAULT '{}';

-- An alert's own recipients, when a rule routed it; otherwise the
-- integration's recipients apply.
CREATE TABLE alert_recipients (
	alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	kind TEXT NOT NULL,
	target_id INTEGER NOT NULL,
	PRIMARY KEY (alert_id, kind, target_id)
);
