-- Single sign-on. A sign-in begun at the identity provider is remembered
-- here until its callback, by a hash of its state, so that whichever
-- instance the callback reaches finds it, and only once.
CREATE TABLE sso_logins (
	state_hash TEXT PRIMARY KEY,
	nonce TEXT NOT NULL,
	code_verifier TEXT NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sso_logins_expires ON sso_logins (expires_at);

-- The short-lived code the app exchanges for a session after a single
-- sign-on: only its hash is kept, and exchanging it deletes it.
CREATE TABLE login_codes (
	code_hash TEXT PRIMARY KEY,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at TIMESTAMPTZ NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX login_codes_expires ON login_codes (expires_at);
CREATE INDEX login_codes_user ON login_codes (user_id);
