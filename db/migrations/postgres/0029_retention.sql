-- Retention. A message whose body was pruned keeps its row; body becomes
-- empty and body_pruned_at says when, so the log never shows an empty
-- string as if it had been received.
ALTER TABLE inbound_messages ADD COLUMN body_pruned_at TIMESTAMPTZ;

-- The pruner's batches each read their next rows from an index, oldest
-- first, and what they have done drops out of it.
CREATE INDEX inbound_messages_body_kept ON inbound_messages (received_at, id) WHERE body_pruned_at IS NULL;
CREATE INDEX alerts_closed ON alerts (closed_at, id) WHERE status = 'CLOSED';
CREATE INDEX audit_log_at ON audit_log (at, id);

-- Deleting an alert looks for what points at it: these references had
-- no index, so each deleted alert would scan the whole table.
CREATE INDEX action_links_alert ON action_links (alert_id);
CREATE INDEX alerts_previous ON alerts (previous_alert_id) WHERE previous_alert_id IS NOT NULL;
CREATE INDEX scan_heartbeats_alert ON scan_heartbeats (alert_id) WHERE alert_id IS NOT NULL;
