package alerting

import (
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/notifiers"
)

// Service is the alert domain over one database.
type Service struct {
	db        *db.DB
	now       func() time.Time
	log       *slog.Logger
	publicURL string
	// senders are the channels notifications go out on, shared with
	// contact verification.
	senders *notifiers.Channels
	bus     *events.Bus
	// rateLimits is the least time between two messages to one contact
	// method, by channel; a channel without one is not limited.
	rateLimits map[db.ContactType]time.Duration
	// workerID names this instance on the job leases it takes.
	workerID string
	// jobLease is how long a job taken by this instance is reserved to
	// it: after a crash, its jobs wait this long before anyone runs them.
	jobLease time.Duration
	routes   routeCache
	commits  *groupCommit
	sqlite   sqliteIngest
	// webhookLimits holds each rate-limited integration's allowance.
	webhookLimits webhookLimiter
	// config reads the configuration other packages keep.
	config Config
	// stranded are jobs this worker holds and could not run or hand
	// back, and sends it made and could not record, while the database
	// was unavailable (see strand).
	stranded struct {
		sync.Mutex
		jobs       []*db.AlertJob
		deliveries []*unrecorded
	}
}

// NewService builds the domain service. publicURL is the base of the
// integration URLs shown to users; now is the clock; config reads the
// schedules and other configuration the engine follows.
func NewService(d *db.DB, publicURL string, now func() time.Time, log *slog.Logger, config Config) *Service {
	return &Service{
		db: d, now: now, log: log, publicURL: strings.TrimRight(publicURL, "/"), config: config,
		rateLimits: DefaultRateLimits(), workerID: newWorkerID(), jobLease: DefaultJobLease, commits: &groupCommit{},
		senders: notifiers.NewChannels(nil, nil),
	}
}

// DefaultRateLimits allows one SMS and one call a minute per number:
// a phone that buzzes on every alert of a burst gets silenced by its
// owner, and carriers filter numbers that text too fast.
func DefaultRateLimits() map[db.ContactType]time.Duration {
	return map[db.ContactType]time.Duration{db.ContactSMS: time.Minute, db.ContactVoice: time.Minute}
}

// SetRateLimits replaces the per-contact-method rate limits; a channel
// that is missing or has 0 is not limited. Notifications held back by a
// limit go out together, as one message, when it allows the next.
func (s *Service) SetRateLimits(limits map[db.ContactType]time.Duration) {
	s.rateLimits = maps.Clone(limits)
}

// SetJobLease sets how long a job taken by this instance is reserved to
// it (DefaultJobLease unless set). A shorter lease lets the jobs of a
// crashed instance run again sooner; it must still outlast the longest
// job, or instances sharing the database may run one job twice.
func (s *Service) SetJobLease(d time.Duration) {
	s.jobLease = d
}

// SetEvents lets the service wake the event bus after each commit that
// recorded events; without it events still flow on the bus's poll.
func (s *Service) SetEvents(bus *events.Bus) {
	s.bus = bus
}

// SetChannels gives the engine its notification channels, the value
// contact verification sends through too; call it before RunEngine.
// Without it, every notification fails as "channel not configured", which
// the delivery log shows.
func (s *Service) SetChannels(channels *notifiers.Channels) {
	s.senders = channels
}

// clock returns the current time as both engines store it: UTC, whole
// microseconds, so a value read back equals the value written.
func (s *Service) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}
