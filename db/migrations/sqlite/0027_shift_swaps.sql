-- Self-service on call: an override may put its user on call alongside
-- whoever is, and a participant may hand a shift to another, who answers
-- through the API or a link sent to them. Only the hash of a swap's link
-- token is kept, as for the action links.
ALTER TABLE schedule_overrides ADD COLUMN alongside BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE shift_swaps (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
	from_user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	to_user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	start_at TIMESTAMP NOT NULL,
	end_at TIMESTAMP NOT NULL,
	expires_at TIMESTAMP NOT NULL,
	status TEXT NOT NULL,
	link_token_hash TEXT NOT NULL UNIQUE,
	override_id INTEGER REFERENCES schedule_overrides (id) ON DELETE SET NULL,
	created_at TIMESTAMP NOT NULL,
	answered_at TIMESTAMP
);
CREATE INDEX shift_swaps_schedule ON shift_swaps (schedule_id, start_at);
CREATE INDEX shift_swaps_from_user ON shift_swaps (from_user_id, status);
CREATE INDEX shift_swaps_to_user ON shift_swaps (to_user_id, status);
