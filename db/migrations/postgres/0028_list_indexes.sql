-- The alert lists read a page newest first and count up to 10,000
-- matches; each filter they offer walks an index in id order, so neither
-- reads more than that however many alerts a year leaves behind.
--
-- The unclosed alerts (the list's usual view) stay few. Read from these
-- partial indexes, a page of OPEN and ACKNOWLEDGED alerts comes in id
-- order instead of sorted, and one integration's unclosed alerts without
-- a walk through its closed ones. PostgreSQL sees that a status list
-- without CLOSED implies their condition; on SQLite the list's filter
-- says it in the indexes' words (alerting/alerts.go).
-- The first carries status, so a count of them all reads the index alone.
CREATE INDEX alerts_unclosed ON alerts (id, status) WHERE status <> 'CLOSED';
CREATE INDEX alerts_unclosed_integration ON alerts (integration_id, id) WHERE status <> 'CLOSED';
CREATE INDEX alerts_severity ON alerts (severity, id);
-- Overdue alerts stay few too; the overdue filter keeps closed ones.
CREATE INDEX alerts_overdue_list ON alerts (id) WHERE overdue_at IS NOT NULL;
