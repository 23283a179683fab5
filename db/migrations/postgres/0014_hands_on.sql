-- Alerts opened by hand. A manual alert comes from a person, not an
-- integration: integration_id may be NULL, and created_by names who opened
-- it. A snoozed alert is acknowledged until snoozed_until, when it opens
-- again and pages from the first step.
ALTER TABLE alerts ALTER COLUMN integration_id DROP NOT NULL;
ALTER TABLE alerts ADD COLUMN created_by BIGINT REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE alerts ADD COLUMN snoozed_until TIMESTAMPTZ;
-- Manual alerts have no integration to deduplicate within; their source
-- ids are unique on their own.
CREATE UNIQUE INDEX alerts_manual_source ON alerts (source_id) WHERE integration_id IS NULL;
