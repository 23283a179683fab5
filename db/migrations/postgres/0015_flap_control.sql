-- Flap control: an integration can hold back the first page of a new
-- alert (page_delay_minutes) and close an alert that has gone quiet
-- (auto_close_after_minutes, NULL for never); an escalation policy can
-- return an acknowledged alert to paging (ack_timeout_minutes, NULL for
-- never).
ALTER TABLE integrations ADD COLUMN page_delay_minutes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE integrations ADD COLUMN auto_close_after_minutes INTEGER;
ALTER TABLE escalation_policies ADD COLUMN ack_timeout_minutes INTEGER;
