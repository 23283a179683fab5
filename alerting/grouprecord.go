package alerting

import (
	"context"
	"errors"

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

type recordGroup = batcher[*pendingRecord]

type pendingRecord struct {
	d   *unrecorded
	err error
}

// recordTogether records d's outcome, in one transaction with the others
// waiting, and returns once that is committed. Its error is what
// s.record(ctx, d) would have returned.
func (s *Service) recordTogether(ctx context.Context, d *unrecorded) error {
	p := &pendingRecord{d: d}
	s.records.join(p, func(batch []*pendingRecord) {
		s.recordBatch(context.WithoutCancel(ctx), batch)
	})
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
