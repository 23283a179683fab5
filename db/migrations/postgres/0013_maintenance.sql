-- Maintenance windows: while one covers an integration its alerts open as
-- usual but nobody is paged. A window is one span [starts_at, ends_at),
-- or, with a recurrence, the weekly occurrences that fall within it
-- (ends_at may then be open).
CREATE TABLE maintenance_windows (
	id BIGSERIAL PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	starts_at TIMESTAMPTZ NOT NULL,
	ends_at TIMESTAMPTZ,
	-- The weekly recurrence, all NULL for a one-off window: weekdays as
	-- a comma-separated list of 0 (Sunday) to 6, local start time HH:MM,
	-- duration in minutes and IANA zone.
	recurrence_weekdays TEXT,
	recurrence_start_time TEXT,
	recurrence_duration_minutes INTEGER,
	recurrence_time_zone TEXT,
	page_open_alerts_after BOOLEAN NOT NULL DEFAULT TRUE,
	created_at TIMESTAMPTZ NOT NULL,
	updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE maintenance_window_integrations (
	window_id BIGINT NOT NULL REFERENCES maintenance_windows (id) ON DELETE CASCADE,
	integration_id BIGINT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
	PRIMARY KEY (window_id, integration_id)
);
CREATE INDEX maintenance_window_integrations_integration ON maintenance_window_integrations (integration_id);

-- The window an alert opened in and was not paged for.
ALTER TABLE alerts ADD COLUMN suppressed_by BIGINT REFERENCES maintenance_windows (id) ON DELETE SET NULL;
CREATE INDEX alerts_suppressed_by ON alerts (suppressed_by) WHERE suppressed_by IS NOT NULL;
