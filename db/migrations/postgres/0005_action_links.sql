-- One-click acknowledge and close links carried by notifications. Only a
-- hash of each token is kept, so the table leaks no usable link.
CREATE TABLE action_links (
	token_hash TEXT PRIMARY KEY,
	alert_id BIGINT NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
	user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	action TEXT NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL,
	used_at TIMESTAMPTZ,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX action_links_expires ON action_links (expires_at);
