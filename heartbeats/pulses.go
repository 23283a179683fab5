package heartbeats

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

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
