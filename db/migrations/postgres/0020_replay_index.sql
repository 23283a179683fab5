-- Rule replay walks one integration's inbound log over a time range in
-- (received_at, id) order, a page at a time, and counts the range first:
-- this index serves both without sorting or scanning the rest of the log.
CREATE INDEX inbound_messages_received ON inbound_messages (integration_id, received_at, id);
