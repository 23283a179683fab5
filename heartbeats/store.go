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

	ID                 int        `bun:"id,pk,autoincrement"`
	Name               string     `bun:"name"`
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
	if err := db.RequireRows(ctx, tx, (*db.User)(nil), "recipientUserIds[]", "user", in.RecipientUserIDs); err != nil {
		return err
	}
	return db.RequireRows(ctx, tx, (*db.Group)(nil), "recipientGroupIds[]", "group", in.RecipientGroupIDs)
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
		if err := replaceRecipients(ctx, tx, m.ID, in); err != nil {
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
			Column("name", "interval_minutes", "grace_minutes", "severity", "escalation_policy_id", "updated_at").
			WherePK().Exec(ctx); err != nil {
			return nameTaken(fmt.Errorf("update heartbeat monitor %d: %w", id, err))
		}
		if err := replaceRecipients(ctx, tx, m.ID, in); err != nil {
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

// Pulse records a pulse of the monitor whose URL carries token: counted
// on its row, the monitor UP. The first pulse, and the first after the
// monitor went DOWN, queue its deadline job again (a pulse while UP
// leaves the one job where it is: it finds the pulse when due); the
// first after DOWN also closes the monitor's alert. An unknown token is
// db.ErrNotFound; a monitor over PulsesPerMinute is refused with a
// *db.RateLimitError and nothing written.
func (s *Store) Pulse(ctx context.Context, token string) (*Monitor, error) {
	var id int
	if err := s.db.NewSelect().Model((*Monitor)(nil)).Column("id").Where("token = ?", token).Scan(ctx, &id); err != nil {
		return nil, fmt.Errorf("look up heartbeat token: %w", db.Classify(err))
	}
	// Refused before anything is written, as a webhook over its limit.
	if wait := s.limiter.take(id, s.now()); wait > 0 {
		return nil, &db.RateLimitError{Wait: wait, Reason: fmt.Sprintf("this heartbeat takes at most %d pulses a minute", PulsesPerMinute)}
	}
	var m *Monitor
	var closed *db.Alert
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		m = new(Monitor)
		// By id and token both: a rotation meanwhile retires the token.
		q := tx.NewSelect().Model(m).Where("id = ? AND token = ?", id, token)
		if s.db.Kind == db.Postgres {
			q = q.For("UPDATE")
		}
		if err := q.Scan(ctx); err != nil {
			return fmt.Errorf("look up heartbeat token: %w", db.Classify(err))
		}
		was := m.Status
		now := s.clock()
		m.Status, m.LastPulseAt, m.PulseCount = Up, &now, m.PulseCount+1
		_, err := tx.NewUpdate().Model((*Monitor)(nil)).
			Set("pulse_count = pulse_count + 1").Set("last_pulse_at = ?", now).Set("status = ?", Up).
			Where("id = ?", m.ID).Exec(ctx)
		if err != nil {
			return fmt.Errorf("record pulse of heartbeat monitor %d: %w", m.ID, err)
		}
		if was == Up {
			return nil
		}
		if err := s.paging.ScheduleHeartbeatDeadline(ctx, tx, m.ID, m.deadline()); err != nil {
			return err
		}
		if was == Down {
			closed, err = s.paging.CloseHeartbeatAlert(ctx, tx, m.ID, fmt.Sprintf("Closed: heartbeat %q pulsed again", m.Name), now)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if closed != nil {
		s.paging.WakeEvents()
	}
	return m, nil
}

// CheckDeadline is what the monitor's deadline job finds at now (see
// alerting.Heartbeats): the new deadline if a pulse came meanwhile, else
// the monitor goes DOWN and its alert is handed back to be opened; zero
// and nil when the monitor is gone or already DOWN.
func (s *Store) CheckDeadline(ctx context.Context, tx bun.Tx, monitorID int, now time.Time) (time.Time, *db.MissedHeartbeat, error) {
	m, err := monitorByID(ctx, tx, monitorID, true)
	if errors.Is(err, db.ErrNotFound) {
		return time.Time{}, nil, nil
	}
	if err != nil {
		return time.Time{}, nil, err
	}
	if m.Status == Down {
		return time.Time{}, nil, nil
	}
	if deadline := m.deadline(); deadline.After(now) {
		return deadline, nil, nil
	}
	if _, err := tx.NewUpdate().Model((*Monitor)(nil)).Set("status = ?", Down).Where("id = ?", m.ID).Exec(ctx); err != nil {
		return time.Time{}, nil, fmt.Errorf("mark heartbeat monitor %d down: %w", m.ID, err)
	}
	users, groups, err := recipientIDs(ctx, tx, m.ID)
	if err != nil {
		return time.Time{}, nil, err
	}
	since := "it was created at " + m.CreatedAt.Format(time.RFC3339)
	if m.LastPulseAt != nil {
		since = "its last pulse at " + m.LastPulseAt.Format(time.RFC3339)
	}
	silent := m.IntervalMinutes + m.GraceMinutes
	return time.Time{}, &db.MissedHeartbeat{
		Alert: &db.Alert{
			// One source id per outage: alerts without an integration
			// keep their source ids unique for good, and the open-alert
			// index on the monitor is what makes an outage one alert.
			SourceID:           fmt.Sprintf("heartbeat:%d:%d", m.ID, now.UnixMicro()),
			SourceName:         "heartbeat " + m.Name,
			Subject:            fmt.Sprintf("heartbeat %s missed", m.Name),
			Details:            fmt.Sprintf("No pulse for %d minutes (interval %d + grace %d) since %s.", silent, m.IntervalMinutes, m.GraceMinutes, since),
			Severity:           m.Severity,
			EscalationPolicyID: m.EscalationPolicyID,
			HeartbeatMonitorID: &m.ID,
		},
		UserIDs:  users,
		GroupIDs: groups,
		Timeline: fmt.Sprintf("Opened: heartbeat %q sent no pulse for %d minutes since %s", m.Name, silent, since),
	}, nil
}

// nameTaken turns a unique-name conflict into a field error.
func nameTaken(err error) error {
	if errors.Is(db.Classify(err), db.ErrConflict) {
		return invalid.New("name", "another heartbeat monitor has this name")
	}
	return err
}

// replaceRecipients stores the input's recipient lists, each replacing
// the monitor's recipients of its kind when not nil.
func replaceRecipients(ctx context.Context, tx bun.Tx, monitorID int, in Input) error {
	for _, kind := range []struct {
		kind db.TargetType
		ids  []int
	}{{db.TargetUser, in.RecipientUserIDs}, {db.TargetGroup, in.RecipientGroupIDs}} {
		if kind.ids == nil {
			continue
		}
		if _, err := tx.NewDelete().Model((*Recipient)(nil)).Where("monitor_id = ? AND kind = ?", monitorID, kind.kind).Exec(ctx); err != nil {
			return fmt.Errorf("replace recipients of heartbeat monitor %d: %w", monitorID, err)
		}
		var rows []*Recipient
		for _, id := range kind.ids {
			r := &Recipient{MonitorID: monitorID, Kind: kind.kind, TargetID: id}
			if !slices.ContainsFunc(rows, func(o *Recipient) bool { return *o == *r }) {
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		if _, err := tx.NewInsert().Model(&rows).Exec(ctx); err != nil {
			return fmt.Errorf("store recipients of heartbeat monitor %d: %w", monitorID, err)
		}
	}
	return nil
}

func recipientIDs(ctx context.Context, idb bun.IDB, monitorID int) (users, groups []int, err error) {
	var rows []*Recipient
	if err := idb.NewSelect().Model(&rows).Where("monitor_id = ?", monitorID).Order("kind", "target_id").Scan(ctx); err != nil {
		return nil, nil, fmt.Errorf("recipients of heartbeat monitor %d: %w", monitorID, err)
	}
	users, groups = []int{}, []int{}
	for _, r := range rows {
		switch r.Kind {
		case db.TargetUser:
			users = append(users, r.TargetID)
		case db.TargetGroup:
			groups = append(groups, r.TargetID)
		}
	}
	return users, groups, nil
}

// Recipients returns the users and groups a monitor's alerts are for;
// deleted ones are left out.
func (s *Store) Recipients(ctx context.Context, monitorID int) ([]*db.User, []*db.Group, error) {
	users := []*db.User{}
	err := s.db.NewSelect().Model(&users).
		Where("id IN (SELECT target_id FROM heartbeat_recipients WHERE monitor_id = ? AND kind = ?)", monitorID, db.TargetUser).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("recipient users of heartbeat monitor %d: %w", monitorID, err)
	}
	groups := []*db.Group{}
	err = s.db.NewSelect().Model(&groups).
		Where("id IN (SELECT target_id FROM heartbeat_recipients WHERE monitor_id = ? AND kind = ?)", monitorID, db.TargetGroup).
		Order("id").Scan(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("recipient groups of heartbeat monitor %d: %w", monitorID, err)
	}
	return users, groups, nil
}

// record is what the audit log keeps of a monitor, by API names.
type record struct {
	Name               string `json:"name"`
	Token              string `json:"token"`
	IntervalMinutes    int    `json:"intervalMinutes"`
	GraceMinutes       int    `json:"graceMinutes"`
	Severity           string `json:"severity"`
	EscalationPolicyID *int   `json:"escalationPolicyId"`
	RecipientUserIDs   []int  `json:"recipientUserIds"`
	RecipientGroupIDs  []int  `json:"recipientGroupIds"`
}

func recordOf(ctx context.Context, idb bun.IDB, m *Monitor) (*record, error) {
	users, groups, err := recipientIDs(ctx, idb, m.ID)
	if err != nil {
		return nil, err
	}
	return &record{
		Name: m.Name, Token: m.Token, IntervalMinutes: m.IntervalMinutes, GraceMinutes: m.GraceMinutes,
		Severity: m.Severity, EscalationPolicyID: m.EscalationPolicyID, RecipientUserIDs: users, RecipientGroupIDs: groups,
	}, nil
}
