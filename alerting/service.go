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
	// lanes commit ingest batches (see groupCommit).
	lanes []*groupCommit
	// records gathers the outcomes of sends to record together.
	records *recordGroup
	sqlite  sqliteIngest
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
	// replayMax is how many stored messages one replay may read.
	replayMax int
	// workflows keeps the workflows between changes to them.
	workflows workflowCache
}

// Options is what a Service is built from. Every field but DB may be left
// at its zero value, which means the default given with it; a Service is
// complete when NewService returns it.
type Options struct {
	// DB is the database the service works on. Required.
	DB *db.DB
	// PublicURL is the base of the links in notifications (acknowledge
	// and close actions); default none, so the links are relative.
	PublicURL string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Log receives the service's logs; default nowhere.
	Log *slog.Logger
	// Config reads the configuration other packages keep: schedules,
	// policies, integrations, contact methods and groups.
	Config Config
	// Channels are the senders notifications go out on, the value contact
	// verification sends through too; default none configured, so every
	// notification fails as "channel not configured", which the delivery
	// log shows.
	Channels *notifiers.Channels
	// RateLimits is the least time between two messages to one contact
	// method, by channel; a channel that is missing or has 0 is not
	// limited. Notifications held back by a limit go out together, as one
	// message, when it allows the next. Default (nil) DefaultRateLimits;
	// an empty map limits nothing.
	RateLimits map[db.ContactType]time.Duration
	// JobLease is how long a job taken by this instance is reserved to
	// it; default DefaultJobLease. A shorter lease lets the jobs of a
	// crashed instance run again sooner; it must still outlast the longest
	// job, or instances sharing the database may run one job twice.
	JobLease time.Duration
	// Events is the bus the service wakes after each commit that recorded
	// events; default none, and events still flow on the bus's own poll.
	Events *events.Bus
	// ReplayMaxMessages is how many stored messages one replay of a
	// ruleset may read; default DefaultReplayMaxMessages. A longer range
	// is refused before anything is read.
	ReplayMaxMessages int
	// IngestLanes is how many ingest batches commit side by side on
	// PostgreSQL (see groupCommit); default DefaultIngestLanes. SQLite
	// has one writer and always one lane.
	IngestLanes int
}

// NewService builds the domain service from o, filling in the defaults
// o leaves out.
func NewService(o Options) *Service {
	s := &Service{
		db: o.DB, now: o.Now, log: o.Log, publicURL: strings.TrimRight(o.PublicURL, "/"), config: o.Config,
		senders: o.Channels, rateLimits: maps.Clone(o.RateLimits), jobLease: o.JobLease, bus: o.Events,
		workerID: randomID(), lanes: newLanes(o.DB, o.IngestLanes), records: &recordGroup{max: maxRecordBatch},
		replayMax: o.ReplayMaxMessages,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.senders == nil {
		s.senders = notifiers.NewChannels(nil, nil)
	}
	if s.rateLimits == nil {
		s.rateLimits = DefaultRateLimits()
	}
	if s.jobLease == 0 {
		s.jobLease = DefaultJobLease
	}
	return s
}

// DefaultRateLimits allows one SMS and one call a minute per number:
// a phone that buzzes on every alert of a burst gets silenced by its
// owner, and carriers filter numbers that text too fast.
func DefaultRateLimits() map[db.ContactType]time.Duration {
	return map[db.ContactType]time.Duration{db.ContactSMS: time.Minute, db.ContactVoice: time.Minute}
}

// clock returns the current time as both engines store it: UTC, whole
// microseconds, so a value read back equals the value written.
func (s *Service) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}
