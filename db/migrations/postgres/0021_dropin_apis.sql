-- routing_key is the integration's second secret: the key that senders
-- speaking PagerDuty's Events API (routing_key) or Opsgenie's Alert API
-- (GenieKey) present instead of a URL. It has PagerDuty's shape, 32
-- lowercase hex characters, since some senders check it. Every existing
-- integration gets one now; rotating the token replaces it too. The empty
-- key is no key (a row written without one), so only real keys are unique.
ALTER TABLE integrations ADD COLUMN routing_key TEXT NOT NULL DEFAULT '';
UPDATE integrations SET routing_key = replace(gen_random_uuid()::text, '-', '');
CREATE UNIQUE INDEX integrations_routing_key ON integrations (routing_key) WHERE routing_key <> '';
