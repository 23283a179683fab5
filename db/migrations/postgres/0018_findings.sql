-- Findings: a source's alert that opens again soon after its last one
-- closed is a regression of it. regression_window_days bounds how far back
-- ingest looks; 0 never links.
ALTER TABLE integrations ADD COLUMN regression_window_days INTEGER NOT NULL DEFAULT 90;

-- previous_alert_id is the source's alert the regression brings back.
ALTER TABLE alerts ADD COLUMN previous_alert_id BIGINT REFERENCES alerts (id) ON DELETE SET NULL;

-- Finds a source's latest closed alert when another opens. Partial, so the
-- insert of an open alert does not write it: only closing one does.
CREATE INDEX alerts_source_closed ON alerts (integration_id, source_id, closed_at) WHERE closed_at IS NOT NULL;

-- Remediation deadlines: remediation is the integration's JSON
-- [{"severity": "high", "days": 7}, ...]; NULL sets none. An alert opened
-- with a severity that has one is due its days after it opened, and is
-- marked overdue (overdue_at) if still unclosed then, paging
-- overdue_policy_id when the integration has one.
ALTER TABLE integrations ADD COLUMN remediation TEXT;
ALTER TABLE integrations ADD COLUMN overdue_policy_id BIGINT REFERENCES escalation_policies (id) ON DELETE SET NULL;
ALTER TABLE alerts ADD COLUMN due_at TIMESTAMPTZ;
ALTER TABLE alerts ADD COLUMN overdue_at TIMESTAMPTZ;

-- The dashboard's count of unclosed overdue alerts per integration.
CREATE INDEX alerts_overdue ON alerts (integration_id) WHERE overdue_at IS NOT NULL AND status <> 'CLOSED';
