-- Scan heartbeats: messages a PULSE rule matches (a completed Detectify
-- scan) are pulses of their integration, keyed by the mapped sourceName
-- (the scan profile). With scan_heartbeat_hours set, a key that has
-- pulsed once must pulse again within that many hours, or one alert opens
-- until its next pulse. NULL watches nothing.
ALTER TABLE integrations ADD COLUMN scan_heartbeat_hours INTEGER;

-- One row per (integration, key): pulses are counted here, not stored one
-- each (the inbound log keeps the messages). alert_id is the alert the
-- key's missed pulse opened, cleared by its next pulse.
CREATE TABLE scan_heartbeats (
	id BIGSERIAL PRIMARY KEY,
	integration_id BIGINT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
	pulse_key TEXT NOT NULL,
	status TEXT NOT NULL,
	pulse_count BIGINT NOT NULL,
	last_pulse_at TIMESTAMPTZ NOT NULL,
	alert_id BIGINT REFERENCES alerts (id) ON DELETE SET NULL,
	UNIQUE (integration_id, pulse_key)
);

-- A key's deadline is a job of its own, which goes with the key (and so
-- with its integration).
ALTER TABLE alert_jobs ADD COLUMN scan_heartbeat_id BIGINT REFERENCES scan_heartbeats (id) ON DELETE CASCADE;
CREATE INDEX alert_jobs_scan_heartbeat ON alert_jobs (scan_heartbeat_id) WHERE scan_heartbeat_id IS NOT NULL;
