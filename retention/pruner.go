package retention

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults for how often and how much.
const (
	// DefaultInterval is the time between the starts of two runs. Ages are
	// counted in days, so a few minutes late costs nothing, and a run that
	// finds nothing due costs a few indexed reads.
	DefaultInterval = 10 * time.Minute
	// DefaultLease is how long a run holds the turn without renewing it
	// (it renews once a quarter of it has passed); an instance that dies
	// mid-run delays pruning by at most this.
	DefaultLease = 2 * time.Minute
	// DefaultBatch is how many rows one batch removes or empties.
	DefaultBatch = 1000
	// restFactor is how long a run rests between two batches, in batches.
	restFactor = 2
)

// Kind is one thing that ages out, pruned by the package that owns it.
type Kind struct {
	// Name labels the kind in metrics and logs.
	Name string
	// Age is how long it is kept; 0 keeps it for ever.
	Age time.Duration
	// Batch is the most Prune is asked to remove at once; default
	// DefaultBatch.
	Batch int
	// Prune removes at most limit of what is older than before, oldest
	// first, in one short transaction or a few, and says how many it
	// removed; fewer than limit means nothing more is due.
	Prune func(ctx context.Context, before time.Time, limit int) (int, error)
	// Backlog estimates how many are due at before, cheaply.
	Backlog func(ctx context.Context, before time.Time) (int64, error)
}

// Turns is the lease that lets one instance at a time prune
// (alerting.Service implements it).
type Turns interface {
	TakePruneTurn(ctx context.Context, holder string, now time.Time, lease time.Duration) (bool, error)
	RenewPruneTurn(ctx context.Context, holder string, now time.Time, lease time.Duration) (bool, error)
	EndPruneTurn(ctx context.Context, holder string, next time.Time) error
}

// Options configure a Pruner.
type Options struct {
	Turns Turns
	Kinds []Kind
	// Now is the clock ages are measured on; default time.Now.
	Now func() time.Time
	// Log receives a line per run that pruned anything; default nowhere.
	Log *slog.Logger
	// Interval is the time between two runs; default DefaultInterval.
	Interval time.Duration
	// Lease is how long a run holds the turn unrenewed; default
	// DefaultLease.
	Lease time.Duration
}

// Pruner runs the kinds' pruning on one instance at a time.
type Pruner struct {
	o       Options
	holder  string
	metrics *metrics
}

// New builds a Pruner from o, filling in the defaults.
func New(o Options) *Pruner {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	for i := range o.Kinds {
		if o.Kinds[i].Batch <= 0 {
			o.Kinds[i].Batch = DefaultBatch
		}
	}
	b := make([]byte, 8)
	rand.Read(b)
	names := make([]string, len(o.Kinds))
	for i, k := range o.Kinds {
		names[i] = k.Name
	}
	return &Pruner{o: o, holder: "pruner-" + hex.EncodeToString(b), metrics: newMetrics(names)}
}

// Report is what one run did.
type Report struct {
	// Ran is false when another instance held the turn, or it was not due.
	Ran bool
	// Pruned counts what each kind removed, by name.
	Pruned map[string]int
}

// errTurnLost ends a run whose lease another instance took over.
var errTurnLost = errors.New("retention: pruning turn lost to another instance")

// RunOnce prunes everything due now, if this instance gets the turn. It
// returns early, handing the turn back, when ctx ends.
func (p *Pruner) RunOnce(ctx context.Context) (Report, error) {
	report := Report{Pruned: map[string]int{}}
	took, err := p.o.Turns.TakePruneTurn(ctx, p.holder, p.o.Now(), p.o.Lease)
	if err != nil || !took {
		return report, err
	}
	report.Ran = true
	started := p.o.Now()
	runErr := p.runKinds(ctx, started, report.Pruned)
	if errors.Is(runErr, errTurnLost) {
		p.o.Log.Warn("pruning stopped: another instance took the turn", "pruned", report.Pruned)
		return report, nil
	}
	// A stopped or failed run is due again at once, on whichever instance
	// asks next; a finished one after an interval.
	next := started.Add(p.o.Interval)
	if runErr != nil {
		next = p.o.Now()
	}
	endCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := p.o.Turns.EndPruneTurn(endCtx, p.holder, next); err != nil && runErr == nil {
		runErr = err
	}
	if runErr == nil {
		p.metrics.lastRun.Set(float64(p.o.Now().Unix()))
	}
	if total(report.Pruned) > 0 {
		p.o.Log.Info("pruned", "pruned", report.Pruned, "took", p.o.Now().Sub(started).Round(time.Millisecond))
	}
	if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
		return report, nil
	}
	return report, runErr
}

// runKinds prunes each kind in turn with cutoffs taken at now.
func (p *Pruner) runKinds(ctx context.Context, now time.Time, pruned map[string]int) error {
	for _, k := range p.o.Kinds {
		if k.Age <= 0 {
			continue
		}
		n, err := p.runKind(ctx, k, now.Add(-k.Age))
		pruned[k.Name] = n
		if err != nil {
			return err
		}
	}
	return nil
}

// runKind prunes one kind in batches until nothing older than before is
// left, ctx ends or the turn is lost.
func (p *Pruner) runKind(ctx context.Context, k Kind, before time.Time) (int, error) {
	backlog, err := k.Backlog(ctx, before)
	if err != nil {
		return 0, err
	}
	p.metrics.backlog.WithLabelValues(k.Name).Set(float64(backlog))
	pruned := 0
	var renewed time.Time
	for {
		if err := ctx.Err(); err != nil {
			return pruned, err
		}
		// The lease is renewed once a quarter of it has gone, not before
		// every batch: on SQLite each renewal is one more commit that
		// ingest waits behind. A quarter leaves three to spare for a slow
		// batch before another instance could take the turn.
		if now := p.o.Now(); renewed.IsZero() || now.Sub(renewed) >= p.o.Lease/4 {
			held, err := p.o.Turns.RenewPruneTurn(ctx, p.holder, now, p.o.Lease)
			if err != nil {
				return pruned, err
			}
			if !held {
				return pruned, errTurnLost
			}
			renewed = now
		}
		start := time.Now()
		n, err := k.Prune(ctx, before, k.Batch)
		took := time.Since(start)
		if err != nil {
			return pruned, fmt.Errorf("prune %s: %w", k.Name, err)
		}
		pruned += n
		p.metrics.pruned.WithLabelValues(k.Name).Add(float64(n))
		p.metrics.batches.WithLabelValues(k.Name).Observe(took.Seconds())
		p.metrics.backlog.WithLabelValues(k.Name).Set(float64(max(0, backlog-int64(pruned))))
		if n < k.Batch {
			p.metrics.backlog.WithLabelValues(k.Name).Set(0)
			return pruned, nil
		}
		// Resting twice as long as the batch took leaves the database to
		// others two thirds of the time, and backs off by itself when the
		// database is slow.
		if err := rest(ctx, restFactor*took); err != nil {
			return pruned, err
		}
	}
}

// rest waits d of real time (a pause between two batches, not a deadline
// of the run) unless ctx ends first.
func rest(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run prunes whenever a run is due, looking every poll, until ctx ends.
func (p *Pruner) Run(ctx context.Context, poll time.Duration) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := p.RunOnce(ctx); err != nil && ctx.Err() == nil {
			p.o.Log.Warn("pruning failed; it is tried again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
