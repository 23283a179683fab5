-- Domain transactions write their events here; the bus relays them into
-- events in one serialized pass, which gives every event a sequence number
-- in the order it became visible, so a subscriber can resume after any
-- sequence number with no holes and no repeats.
CREATE TABLE event_outbox (
	id BIGSERIAL PRIMARY KEY,
	kind TEXT NOT NULL,
	type TEXT NOT NULL,
	alert_id BIGINT,
	integration_id BIGINT NOT NULL,
	inbound_message_id BIGINT,
	at TIMESTAMPTZ NOT NULL
);

CREATE TABLE events (
	seq BIGSERIAL PRIMARY KEY,
	kind TEXT NOT NULL,
	type TEXT NOT NULL,
	alert_id BIGINT,
	integration_id BIGINT NOT NULL,
	inbound_message_id BIGINT,
	at TIMESTAMPTZ NOT NULL
);
