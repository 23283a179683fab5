-- Workflows: an HTTP request sent when an alert changes (opens, is
-- acknowledged, escalates, closes, gets a note), on one integration's
-- alerts or, with no integration, on every alert. Each request is a job
-- in alert_jobs, queued in the transaction of the change.
CREATE TABLE workflows (
	id BIGSERIAL PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	-- NULL: every alert's changes.
	integration_id BIGINT REFERENCES integrations (id) ON DELETE CASCADE,
	-- The changes it follows, comma-separated (OPENED,CLOSED, ...).
	on_events TEXT NOT NULL,
	-- rules.Condition list as JSON, all of which must hold.
	conditions TEXT NOT NULL DEFAULT '[]',
	method TEXT NOT NULL,
	url TEXT NOT NULL,
	-- [{"name","value"}] as JSON; the values are templates like body.
	headers TEXT NOT NULL DEFAULT '[]',
	body TEXT NOT NULL DEFAULT '',
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX workflows_integration ON workflows (integration_id);
