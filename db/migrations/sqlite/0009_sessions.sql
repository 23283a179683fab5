-- A session token carries its user's token_version; signing out bumps it,
-- which ends every token issued before.
ALTER TABLE users ADD COLUMN token_version INTEGER NOT NULL DEFAULT 0;

-- API keys for machine clients: only a hash of the key is kept.
CREATE TABLE api_keys (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role TEXT NOT NULL,
	key_hash TEXT NOT NULL UNIQUE,
	prefix TEXT NOT NULL,
	created_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL,
	last_used_at TIMESTAMP
);
CREATE INDEX api_keys_user ON api_keys (user_id);
