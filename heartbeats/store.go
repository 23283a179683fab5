package heartbeats

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
)

// Status is where a monitor stands.
type Status string

const (
	// Pending is a monitor that has not pulsed yet.
	Pending Status = "PENDING"
	Up      Status = "UP"
	// Down is a monitor that missed its deadline; its alert is open
	// until the next pulse.
	Down Status = "DOWN"
)

const (
	// MaxIntervalMinutes bounds interval and grace to 31 days each: a job
	// that reports less often than monthly is better watched otherwise.
	MaxIntervalMinutes = 31 * 24 * 60
	defaultSeverity    = "high"
)

// Severities are the severities a monitor's alert may have, as a manual
// alert's.
var Severities = []string{"critical", "high", "medium", "low", "info"}

// Monitor is a heartbeat monitor.
type Monitor struct {
	bun.BaseModel `bun:"table:heartbeat_monitors"`

	ID   int    `bun:"id,pk,autoincrement"`
	Name string `bun:"name"`
	// TeamID owns it; nil is organisation-wide.
	TeamID             *int       `bun:"team_id"`
	Token              string     `bun:"token"`
	Status             Status     `bun:"status"`
	IntervalMinutes    int        `bun:"interval_minutes"`
	GraceMinutes       int        `bun:"grace_minutes"`
	Severity           string     `bun:"severity"`
	EscalationPolicyID *int       `bun:"escalation_policy_id"`
	PulseCount         int        `bun:"pulse_count"`
	LastPulseAt        *time.Time `bun:"last_pulse_at"`
	CreatedAt          time.Time  `bun:"created_at"`
	UpdatedAt          time.Time  `bun:"updated_at"`
}

// deadline is when the monitor goes DOWN without another pulse.
func (m *Monitor) deadline() time.Time {
	from := m.CreatedAt
	if m.LastPulseAt != nil {
		from = *m.LastPulseAt
	}
	return from.Add(time.Duration(m.IntervalMinutes+m.GraceMinutes) * time.Minute)
}

// Recipient is a user or group a monitor's alerts are for.
type Recipient struct {
	bun.BaseModel `bun:"table:heartbeat_recipients"`

	MonitorID int           `bun:"monitor_id,pk"`
	Kind      db.TargetType `bun:"kind,pk"`
	TargetID  int           `bun:"target_id,pk"`
}

// Paging is what the monitors ask of alerting, each inside the
// monitor's own transaction; *alerting.Service implements it.
type Paging interface {
	ScheduleHeartbeatDeadline(ctx context.Context, tx bun.Tx, monitorID int, at time.Time) error
	CloseHeartbeatAlert(ctx context.Context, tx bun.Tx, monitorID int, why string, now time.Time) (*db.Alert, error)
	WakeEvents()
}

// Store keeps the heartbeat monitors.
type Store struct {
	db        *db.DB
	publicURL string
	now       func() time.Time
	paging    Paging
	limiter   pulseLimiter
}

// NewStore builds the monitor store over d; publicURL is where pulses
// are sent, now is the clock. UsePaging must be called before the store
// is used.
func NewStore(d *db.DB, publicURL string, now func() time.Time) *Store {
	return &Store{db: d, publicURL: strings.TrimRight(publicURL, "/"), now: now}
}

// UsePaging sets the alerting service the monitors open and close alerts
// and queue deadlines through. It is separate from NewStore because that
// service reads the monitors too.
func (s *Store) UsePaging(p Paging) { s.paging = p }

// clock returns the current time as both engines store it.
func (s *Store) clock() time.Time {
	return s.now().UTC().Truncate(time.Microsecond)
}

// URL is where the monitored job sends its pulses.
func (s *Store) URL(m *Monitor) string {
	return s.publicURL + "/heartbeats/" + m.Token
}

// Input is what createHeartbeatMonitor and updateHeartbeatMonitor take;
// nil means "default" on create and "unchanged" on update.
type Input struct {
	// Team is the owning team; on update, unset keeps it.
	Team            db.TeamChange
	Name            *string
	IntervalMinutes *int
	GraceMinutes    *int
	Severity        *string
	// EscalationPolicyID pages through that policy; ClearEscalationPolicy
	// removes it on update.
	EscalationPolicyID    *int
	ClearEscalationPolicy bool
	// RecipientUserIDs and RecipientGroupIDs are who the alerts are for;
	// nil keeps them on update, an empty list clears them.
	RecipientUserIDs  []int
	RecipientGroupIDs []int
}

func apply(m *Monitor, in Input) error {
	in.Team.Apply(&m.TeamID)
	if in.Name != nil {
		name, err := invalid.Name("name", *in.Name)
		if err != nil {
			return err
		}
		m.Name = name
	}
	if in.IntervalMinutes != nil {
		if *in.IntervalMinutes < 1 || *in.IntervalMinutes > MaxIntervalMinutes {
			return invalid.Fieldf("intervalMinutes", "must be 1 to %d", MaxIntervalMinutes)
		}
		m.IntervalMinutes = *in.IntervalMinutes
	}
	if in.GraceMinutes != nil {
		if *in.GraceMinutes < 0 || *in.GraceMinutes > MaxIntervalMinutes {
			return invalid.Fieldf("graceMinutes", "must be 0 to %d", MaxIntervalMinutes)
		}
		m.GraceMinutes = *in.GraceMinutes
	}
	if in.Severity != nil {
		sev := strings.ToLower(strings.TrimSpace(*in.Severity))
		if !slices.Contains(Severities, sev) {
			return invalid.Fieldf("severity", "must be one of %s", strings.Join(Severities, ", "))
		}
		m.Severity = sev
	}
	if in.EscalationPolicyID != nil {
		m.EscalationPolicyID = in.EscalationPolicyID
	} else if in.ClearEscalationPolicy {
		m.EscalationPolicyID = nil
	}
	return nil
}

func checkRefs(ctx context.Context, tx bun.Tx, in Input) error {
	if in.EscalationPolicyID != nil {
		if err := db.RequireRows(ctx, tx, (*db.EscalationPolicy)(nil), "escalationPolicyId", "escalation policy", []int{*in.EscalationPolicyID}); err != nil {
			return err
		}
	}
	return db.HeartbeatRecipients.Check(ctx, tx, in.RecipientUserIDs, in.RecipientGroupIDs)
}

// requirePaged refuses a monitor whose missed pulse would page nobody.
func requirePaged(ctx context.Context, tx bun.Tx, m *Monitor) error {
	if m.EscalationPolicyID != nil {
		return nil
	}
	n, err := tx.NewSelect().Model((*Recipient)(nil)).Where("monitor_id = ?", m.ID).Count(ctx)
	if err != nil {
		return fmt.Errorf("count recipients of heartbeat monitor %d: %w", m.ID, err)
	}
	if n == 0 {
		return invalid.New("escalationPolicyId", "give an escalation policy or at least one user or group to page")
	}
	return nil
}

func newToken() (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("generate heartbeat token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// Monitors lists the monitors by id.
func (s *Store) Monitors(ctx context.Context) ([]*Monitor, error) {
	list := []*Monitor{}
	if err := s.db.NewSelect().Model(&list).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list heartbeat monitors: %w", err)
	}
	return list, nil
}

// Monitor returns one monitor, or an error that is db.ErrNotFound.
func (s *Store) Monitor(ctx context.Context, id int) (*Monitor, error) {
	return monitorByID(ctx, s.db, id, false)
}

func monitorByID(ctx context.Context, idb bun.IDB, id int, lock bool) (*Monitor, error) {
	m := new(Monitor)
	q := idb.NewSelect().Model(m).Where("id = ?", id)
	if lock && idb.Dialect().Name() == dialect.PG {
		q = q.For("UPDATE")
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("load heartbeat monitor %d: %w", id, db.Classify(err))
	}
	return m, nil
}

// CreateMonitor stores a new PENDING monitor with a fresh token and
// queues its first deadline: a monitor that never pulses goes DOWN too.
func (s *Store) CreateMonitor(ctx context.Context, in Input) (*Monitor, error) {
	if in.Name == nil {
		return nil, invalid.New("name", "is required")
	}
	if in.IntervalMinutes == nil {
		return nil, invalid.New("intervalMinutes", "is required")
	}
	now := s.clock()
	m := &Monitor{Status: Pending, Severity: defaultSeverity, CreatedAt: now, UpdatedAt: now}
	if err := apply(m, in); err != nil {
		return nil, err
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	m.Token = token
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := checkRefs(ctx, tx, in); err != nil {
			return err
		}
		if _, err := tx.NewInsert().Model(m).Exec(ctx); err != nil {
			return nameTaken(fmt.Errorf("create heartbeat monitor: %w", err))
		}
		if err := db.HeartbeatRecipients.Replace(ctx, tx, m.ID, in.RecipientUserIDs, in.RecipientGroupIDs); err != nil {
			return err
		}
		if err := requirePaged(ctx, tx, m); err != nil {
			return err
		}
		if err := s.paging.ScheduleHeartbeatDeadline(ctx, tx, m.ID, m.deadline()); err != nil {
			return err
		}
		after, err := recordOf(ctx, tx, m)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, now, audit.HeartbeatMonitor, m.ID, audit.Created, nil, after)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// UpdateMonitor changes a monitor. Its deadline moves with a new interval
// or grace; a DOWN monitor keeps waiting for its next pulse.
func (s *Store) UpdateMonitor(ctx context.Context, id int, in Input) (*Monitor, error) {
	var m *Monitor
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if m, err = monitorByID(ctx, tx, id, true); err != nil {
			return err
		}
		before, err := recordOf(ctx, tx, m)
		if err != nil {
			return err
		}
		if err := apply(m, in); err != nil {
			return err
		}
		if err := checkRefs(ctx, tx, in); err != nil {
			return err
		}
		m.UpdatedAt = s.clock()
		if _, err := tx.NewUpdate().Model(m).
			Column("name", "team_id", "interval_minutes", "grace_minutes", "severity", "escalation_policy_id", "updated_at").
			WherePK().Exec(ctx); err != nil {
			return nameTaken(fmt.Errorf("update heartbeat monitor %d: %w", id, err))
		}
		if err := db.HeartbeatRecipients.Replace(ctx, tx, m.ID, in.RecipientUserIDs, in.RecipientGroupIDs); err != nil {
			return err
		}
		if err := requirePaged(ctx, tx, m); err != nil {
			return err
		}
		if m.Status != Down {
			if err := s.paging.ScheduleHeartbeatDeadline(ctx, tx, m.ID, m.deadline()); err != nil {
				return err
			}
		}
		after, err := recordOf(ctx, tx, m)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, m.UpdatedAt, audit.HeartbeatMonitor, m.ID, audit.Updated, before, after)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DeleteMonitor removes a monitor with its deadline job; its open alert,
// if any, is closed saying why.
func (s *Store) DeleteMonitor(ctx context.Context, id int) error {
	var closed *db.Alert
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		m, err := monitorByID(ctx, tx, id, true)
		if err != nil {
			return err
		}
		before, err := recordOf(ctx, tx, m)
		if err != nil {
			return err
		}
		now := s.clock()
		closed, err = s.paging.CloseHeartbeatAlert(ctx, tx, m.ID, fmt.Sprintf("Closed: heartbeat monitor %q was deleted", m.Name), now)
		if err != nil {
			return err
		}
		if _, err := tx.NewDelete().Model(m).WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("delete heartbeat monitor %d: %w", id, err)
		}
		return audit.Record(ctx, tx, now, audit.HeartbeatMonitor, id, audit.Deleted, before, nil)
	})
	if err != nil {
		return err
	}
	if closed != nil {
		s.paging.WakeEvents()
	}
	return nil
}

// RotateToken replaces the monitor's token; the old URL stops working at
// once.
func (s *Store) RotateToken(ctx context.Context, id int) (*Monitor, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	var m *Monitor
	err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var err error
		if m, err = monitorByID(ctx, tx, id, true); err != nil {
			return err
		}
		before, err := recordOf(ctx, tx, m)
		if err != nil {
			return err
		}
		m.Token, m.UpdatedAt = token, s.clock()
		if _, err := tx.NewUpdate().Model(m).Column("token", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("rotate token of heartbeat monitor %d: %w", id, err)
		}
		after, err := recordOf(ctx, tx, m)
		if err != nil {
			return err
		}
		return audit.Record(ctx, tx, m.UpdatedAt, audit.HeartbeatMonitor, id, audit.TokenRotated, before, after)
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// nameTaken turns a unique-name conflict into a field error.
func nameTaken(err error) error {
	if errors.Is(db.Classify(err), db.ErrConflict) {
		return invalid.New("name", "another heartbeat monitor has this name")
	}
	return err
}
