-- An integration may require each webhook to carry an HMAC-SHA256
-- signature made with this secret (empty: no signature required), and may
-- cap how many webhooks a minute it takes (NULL: no cap).
ALTER TABLE integrations ADD COLUMN signature_secret TEXT NOT NULL DEFAULT '';
ALTER TABLE integrations ADD COLUMN rate_limit_per_minute INTEGER;
