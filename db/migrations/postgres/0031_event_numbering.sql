-- Events are numbered as they are written, by any transaction, and no
-- longer under one lock that every commit waited for. Every writer of
-- events takes this schema's event-writers lock in shared mode before it
-- draws a number and keeps it until it ends; nobody ever takes it
-- exclusively, so no writer waits for another. A reader that has read the
-- sequence's last value then waits only for the writers holding the lock
-- at that moment: after that, every number up to that value is either
-- committed and visible or never will be, so the reader may pass it
-- without leaving a hole behind (see events.Bus.settled). The lock's key
-- is the schema's, so that schemas sharing a database do not wait for
-- each other's writers.
CREATE FUNCTION klaxon_next_event_seq() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
	PERFORM pg_advisory_xact_lock_shared(727266043, hashtext(current_schema()));
	RETURN nextval('events_seq_seq');
END
$$;

ALTER TABLE events ALTER COLUMN seq SET DEFAULT klaxon_next_event_seq();

-- Transactions no longer write the outbox; what an earlier version left in
-- it is numbered now, in the order it was recorded.
INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
SELECT kind, type, alert_id, integration_id, inbound_message_id, at FROM event_outbox ORDER BY id;
DELETE FROM event_outbox;
