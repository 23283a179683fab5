-- The code last sent to verify a contact method. Only its hash is kept;
-- attempts bound guessing.
CREATE TABLE contact_verifications (
	contact_method_id INTEGER PRIMARY KEY REFERENCES contact_methods (id) ON DELETE CASCADE,
	code_hash TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0,
	sent_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL
);

-- Chat, push and webhook methods reach whoever configured them; only
-- addresses and numbers need a code.
UPDATE contact_methods SET verified = TRUE WHERE type NOT IN ('EMAIL', 'SMS', 'VOICE');

-- Twilio's callbacks (delivery status, key presses) name a message or
-- call by its SID alone.
CREATE INDEX notifications_provider ON notifications (provider_id) WHERE provider_id <> '';
