-- A notify job names its contact method in a column so the engine can
-- find every job waiting on one number and send them as one message; the
-- jobs queued before this column existed get it from their arguments.
ALTER TABLE alert_jobs ADD COLUMN contact_method_id INTEGER;
UPDATE alert_jobs SET contact_method_id = json_extract(args, '$.contactMethodId') WHERE kind = 'notify';
CREATE INDEX alert_jobs_contact_method ON alert_jobs (contact_method_id, run_at) WHERE contact_method_id IS NOT NULL;

-- The per-contact-method rate limit asks when a method was last sent to.
CREATE INDEX notifications_contact_method ON notifications (contact_method_id, updated_at);
