-- Grouping: an integration may gather the alerts it opens within a window
-- under the first of them, which alone pages. grouping is the
-- integration's JSON {"by": [...], "windowMinutes": n}; NULL groups nothing.
ALTER TABLE integrations ADD COLUMN grouping TEXT;

-- group_id is the group's first alert: the alert's own id when it leads a
-- group, NULL when its integration does not group.
ALTER TABLE alerts ADD COLUMN group_id INTEGER REFERENCES alerts (id) ON DELETE SET NULL;
CREATE INDEX alerts_group ON alerts (group_id) WHERE group_id IS NOT NULL;

-- One row per (integration, key) names the current group's first alert and
-- when its window ends. The unique key makes "who leads" the database's
-- decision: two alerts opening at once for one key cannot both lead.
CREATE TABLE alert_groups (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	integration_id INTEGER NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
	group_key TEXT NOT NULL,
	leader_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	window_ends_at TIMESTAMP NOT NULL,
	UNIQUE (integration_id, group_key)
);
CREATE INDEX alert_groups_leader ON alert_groups (leader_id);
