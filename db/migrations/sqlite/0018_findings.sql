-- Findings: a source's alert that opens again soon after its last one
-- closed is a regression of it. regression_window_days bounds how far back
-- ingest looks; 0 never links.
ALTER TABLE integrations ADD COLUMN regression_window_days INTEGER NOT NULL DEFAULT 90;

-- previous_alert_id is the source's alert the regression brings back.
ALTER TABLE alerts ADD COLUMN previous_alert_id INTEGER REFERENCES alerts (id) ON DELETE SET NULL;

-- Finds a source's latest closed alert when another opens. Partial, so the
-- insert of an open alert does not write it: only closing one does.
CREATE INDEX alerts_source_closed ON alerts (integration_id, source_id, closed_at) WHERE closed_at IS NOT NULL;
