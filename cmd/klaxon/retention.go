package main

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/retention"
)

// retentionSettings are how long each kind of record is kept; 0 keeps it
// for ever.
type retentionSettings retention.Settings

const day = 24 * time.Hour

// Defaults. Events are only what a subscriber resumes from (nothing else
// reads old ones), and a resume reaches back at most 100,000 events
// anyway; a week lets a consumer that was down over a long weekend catch
// up, and keeps the table small next to the messages that made them.
const (
	defaultRetainBodies       = 90 * day
	defaultRetainClosedAlerts = 365 * day
	defaultRetainEvents       = 7 * day
	// minRetention refuses an age so short it is surely a slip (90s for
	// 90d), which would empty the log at the first run.
	minRetention = time.Hour
)

func (r *retentionSettings) bind(s *settings) {
	s.age(&r.Bodies, "retain-bodies", "KLAXON_RETAIN_BODIES", defaultRetainBodies, "how long inbound message bodies are kept (the message row stays); 0 keeps them for ever")
	s.age(&r.ClosedAlerts, "retain-closed-alerts", "KLAXON_RETAIN_CLOSED_ALERTS", defaultRetainClosedAlerts, "how long a closed alert is kept, with its timeline, notifications and action links; 0 keeps them for ever")
	s.age(&r.Events, "retain-events", "KLAXON_RETAIN_EVENTS", defaultRetainEvents, "how long delivered events are kept for subscribers to resume from; 0 keeps them for ever")
	s.age(&r.Audit, "retain-audit", "KLAXON_RETAIN_AUDIT", 0, "how long audit entries are kept; 0 (the default) keeps them for ever")
}

// age is a duration setting that also takes days ("90d"), as retention
// ages are written.
func (s *settings) age(p *time.Duration, flagName, envName string, def time.Duration, help string) {
	*p = def
	if v, ok := s.env(envName); ok {
		d, err := parseAge(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", envName, err))
		}
		*p = d
	}
	s.fs.Func(flagName, help+" (default "+formatAge(def)+"; "+envName+")", func(v string) error {
		d, err := parseAge(v)
		*p = d
		return err
	})
}

// parseAge reads "90d", a Go duration ("36h"), or "0"; an age is 0 or at
// least minRetention.
func parseAge(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	var d time.Duration
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("%q is not a number of days (write 90d, 36h or 0)", v)
		}
		d = time.Duration(n) * day
	} else {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			return 0, fmt.Errorf("%q is not an age (write 90d, 36h or 0)", v)
		}
	}
	if d != 0 && d < minRetention {
		return 0, fmt.Errorf("%q is too short: an age is 0 (keep for ever) or at least 1h", v)
	}
	return d, nil
}

func formatAge(d time.Duration) string {
	if d == 0 {
		return "0, for ever"
	}
	if d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// pruner builds the retention pruner: each kind pruned by the package
// that owns its table, one instance at a time through alerting's job
// lease.
func (r retentionSettings) pruner(store *db.DB, svc *alerting.Service, auditLog *audit.Log, now func() time.Time, log *slog.Logger) *retention.Pruner {
	log.Info("retention", "bodies", formatAge(r.Bodies), "closed_alerts", formatAge(r.ClosedAlerts), "events", formatAge(r.Events), "audit", formatAge(r.Audit))
	kinds := retention.Kinds(retention.Settings(r), store, svc, auditLog)
	return retention.New(retention.Options{Turns: svc, Kinds: kinds, Now: now, Log: log})
}
