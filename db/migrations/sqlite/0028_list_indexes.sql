-- The alert lists read a page newest first and count up to 10,000
-- matches; each filter they offer walks an index in id order, so neither
-- reads more than that however many alerts a year leaves behind.
--
-- The unclosed alerts (the list's usual view) stay few; the list's filter
-- names them as this index does (status <> 'CLOSED') so that a page of
-- OPEN and ACKNOWLEDGED alerts is read in order instead of sorted, and
-- one integration's unclosed alerts without walking its closed ones.
CREATE INDEX alerts_unclosed ON alerts (id) WHERE status <> 'CLOSED';
CREATE INDEX alerts_unclosed_integration ON alerts (integration_id, id) WHERE status <> 'CLOSED';
CREATE INDEX alerts_severity ON alerts (severity, id);
-- Overdue alerts stay few too; the overdue filter keeps closed ones.
CREATE INDEX alerts_overdue_list ON alerts (id) WHERE overdue_at IS NOT NULL;
