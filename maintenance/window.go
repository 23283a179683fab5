package maintenance

import "github.com/uptrace/bun"

// windowIntegration links a window to an integration it covers.
type windowIntegration struct {
	bun.BaseModel `bun:"table:maintenance_window_integrations"`

	WindowID      int `bun:"window_id,pk"`
	IntegrationID int `bun:"integration_id,pk"`
}

const maxDurationMinutes = 7 * 24 * 60
