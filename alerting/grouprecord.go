package alerting

import (
	"context"
	"errors"
	"sync"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// Sends finish side by side, and each outcome is a small transaction: a
// job removed, a timeline entry, a notification row updated. Recorded one
// by one, a storm's outcomes would each wait for a commit (and on SQLite
// for the one connection). As with ingest's group commit (groupcommit.go),
// the outcomes that finish while one is being recorded are recorded
// together in the next transaction. Nobody waits for a batch to fill.

// maxRecordBatch bounds one transaction of outcomes.
const maxRecordBatch = 64

type recordGroup struct {
	mu        sync.Mutex
	pending   []*pendingRecord
	recording bool
}

type pendingRecord struct {
	d *unrecorded
	// lead says whether the waiter must lead the next batch (true) or
	// has been recorded, with err (false).
	lead chan bool
	err  error
}

// recordTogether records d's outcome, in one transaction with the others
// waiting, and returns once that is committed. Its error is what
// s.record(ctx, d) would have returned.
func (s *Service) recordTogether(ctx context.Context, d *unrecorded) error {
	g := &s.records
	p := &pendingRecord{d: d, lead: make(chan bool, 1)}
	g.mu.Lock()
	if !g.recording {
		g.recording = true
		g.mu.Unlock()
	} else {
		g.pending = append(g.pending, p)
		g.mu.Unlock()
		// A waiter cannot give up early: it may be handed the lead.
		if !<-p.lead {
			return p.err
		}
	}

	g.mu.Lock()
	n := min(len(g.pending), maxRecordBatch-1)
	batch := make([]*pendingRecord, 0, n+1)
	batch = append(batch, p)
	batch = append(batch, g.pending[:n]...)
	g.pending = append(g.pending[:0:0], g.pending[n:]...)
	g.mu.Unlock()

	s.recordBatch(context.WithoutCancel(ctx), batch)
	for _, q := range batch[1:] {
		q.lead <- false
	}

	g.mu.Lock()
	if len(g.pending) > 0 {
		next := g.pending[0]
		g.pending = g.pending[1:]
		g.mu.Unlock()
		next.lead <- true
	} else {
		g.recording = false
		g.mu.Unlock()
	}
	return p.err
}

// errRecordApart stops a batch's transaction when one outcome in it
// cannot be recorded; every outcome is then recorded on its own.
var errRecordApart = errors.New("an outcome of the batch is recorded apart")

// recordBatch records every outcome of batch in one transaction. If one
// of them fails (say, its job was taken over by another worker), nothing
// of the batch is kept and each is recorded in a transaction of its own,
// so it fails alone. When the database is unavailable the whole batch
// fails at once.
func (s *Service) recordBatch(ctx context.Context, batch []*pendingRecord) {
	if len(batch) > 1 {
		err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			for _, p := range batch {
				if err := s.recordIn(ctx, tx, p.d); err != nil {
					return errRecordApart
				}
			}
			return nil
		})
		err = db.Classify(err)
		switch {
		case err == nil:
			return
		case errors.Is(err, db.ErrUnavailable):
			for _, p := range batch {
				p.err = err
			}
			return
		}
	}
	for i, p := range batch {
		p.err = s.record(ctx, p.d)
		if errors.Is(db.Classify(p.err), db.ErrUnavailable) {
			for _, q := range batch[i+1:] {
				q.err = p.err
			}
			return
		}
	}
}
