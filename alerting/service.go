package alerting

import (
	"log/slog"
	"strings"
	"time"

	"github.com/klaxonhq/klaxon/db"
)

// Service is the alert domain over one database.
type Service struct {
	db        *db.DB
	now       func() time.Time
	log       *slog.Logger
	publicURL string
}

// NewService builds the domain service. publicURL is the base of the
// integration URLs shown to users; now is the clock.
func NewService(d *db.DB, publicURL string, now func() time.Time, log *slog.Logger) *Service {
	return &Service{db: d, now: now, log: log, publicURL: strings.TrimRight(publicURL, "/")}
}

// clock returns the current time as both engines store it: UTC, whole
// microseconds, so a value read back equals the value written.
func (s *Service) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}
