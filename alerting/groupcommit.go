package alerting

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// Group commit: messages arriving while one transaction commits are
// stored together in the next (see batcher). Each request is still
// answered only after the commit that holds its message.

// maxBatch bounds one transaction, keeping its locks and its latency for
// the first message in it short.
const maxBatch = 128

type pendingIngest struct {
	integ    *db.Integration
	msg      *db.InboundMessage
	original db.InboundMessage
	decision rules.Decision
	failure  string
	// failStatus is what a message with a failure is logged as.
	failStatus db.InboundStatus
	// hold is the maintenance window covering the integration when the
	// message came, nil if none.
	hold *suppression
	// err is the outcome of the commit that held the message.
	err error
	// watched says a workflow could follow the message's alert, which
	// only the generic path queues (see workflowsMayFire).
	watched bool
}

// groupCommit is one lane of committers: one batch commits at a time in
// it. SQLite has one writer, so it has one lane; a second transaction
// would only wait for the first. PostgreSQL runs transactions side by
// side and nothing makes one commit wait for another (events are
// numbered without a lock, see events/settled.go), so it has several
// lanes (Options.IngestLanes), each with a connection of the pool the
// batches are sent on: while one lane waits for its commit's disk flush,
// the others use the cores. A message's lane follows from the alert it can touch
// (see laneKey), so that two lanes never write the same alert or group
// row: neither waits for the other's row locks, nor do they deadlock,
// and one source's messages are stored in the order they came.
type groupCommit = batcher[*pendingIngest]

// store commits p's message and its effects, in a batch with whatever
// else is waiting, and returns once that commit is done.
func (s *Service) store(ctx context.Context, p *pendingIngest) error {
	g := s.lanes[0]
	if len(s.lanes) > 1 {
		g = s.lanes[p.laneKey()%uint64(len(s.lanes))]
	}
	p.original = *p.msg
	g.join(p, func(batch []*pendingIngest) {
		// The batch belongs to every request in it, so the leader's
		// caller going away must not abort it.
		s.commitBatch(context.WithoutCancel(ctx), batch)
	})
	return p.err
}

// laneKey hashes what p's message can write besides its own log row: its
// source's alert, or, for an integration that groups, any of its alerts
// (a group's first alert and its members have different sources).
func (p *pendingIngest) laneKey() uint64 {
	h := fnv.New64a()
	var id [8]byte
	binary.LittleEndian.PutUint64(id[:], uint64(p.integ.ID))
	h.Write(id[:])
	if p.integ.Grouping == nil {
		h.Write([]byte(p.decision.Fields.SourceID))
	}
	return h.Sum64()
}

// commitBatch stores every message of batch in one transaction. If that
// fails, each is retried in a transaction of its own, so one message that
// cannot be stored fails alone. When the database is unavailable the
// whole batch fails at once with db.ErrUnavailable: retrying message by
// message would only keep each sender waiting for the same refusal (on
// SQLite, a busy timeout per message).
func (s *Service) commitBatch(ctx context.Context, batch []*pendingIngest) {
	defer s.bus.Kick()
	if s.db.Kind == db.SQLite {
		if err := s.sqlite.prepare(ctx, s.db); err != nil {
			failBatch(batch, err)
			return
		}
	}
	if s.db.Kind == db.Postgres {
		// Instances commit side by side, and their batches may touch the
		// same alerts. Taking row locks in one order everywhere means two
		// batches can wait for each other but never deadlock; messages of
		// one source keep the order they came in.
		batch = slices.Clone(batch)
		slices.SortStableFunc(batch, func(a, b *pendingIngest) int {
			return cmp.Or(cmp.Compare(a.integ.ID, b.integ.ID), strings.Compare(a.decision.Fields.SourceID, b.decision.Fields.SourceID))
		})
		done, err := s.commitPipelined(ctx, batch)
		if done {
			return
		}
		if errors.Is(err, db.ErrUnavailable) {
			failBatch(batch, err)
			return
		}
	}
	err := db.Classify(s.storeInTx(ctx, batch))
	if err == nil {
		return
	}
	if errors.Is(err, db.ErrUnavailable) {
		failBatch(batch, err)
		return
	}
	if len(batch) == 1 {
		failBatch(batch, err)
		// A configuration change on another instance (a deleted policy,
		// say) can make a cached route fail; the next message reloads it.
		s.routes.invalidate()
		return
	}
	s.commitEach(ctx, batch)
}

// failBatch gives every message of batch err, classified so that callers
// can tell an unavailable database with errors.Is.
func failBatch(batch []*pendingIngest, err error) {
	err = db.Classify(err)
	for _, p := range batch {
		p.err = fmt.Errorf("ingest message for integration %d: %w", p.integ.ID, err)
	}
}

// commitEach stores each message of batch in a transaction of its own,
// so that one that cannot be stored fails alone. Once the database turns
// out to be unavailable the rest fail with it, untried.
func (s *Service) commitEach(ctx context.Context, batch []*pendingIngest) {
	for i, p := range batch {
		*p.msg = p.original
		err := db.Classify(s.storeInTx(ctx, []*pendingIngest{p}))
		if errors.Is(err, db.ErrUnavailable) {
			failBatch(batch[i:], err)
			return
		}
		if err != nil {
			failBatch(batch[i:i+1], err)
			s.routes.invalidate()
		}
	}
}

// storeInTx stores batch in one transaction.
func (s *Service) storeInTx(ctx context.Context, batch []*pendingIngest) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var prepared *sqliteBatch
		if s.db.Kind == db.SQLite {
			prepared = s.sqlite.in(ctx, tx)
		}
		for _, p := range batch {
			if err := s.storeOne(ctx, tx, prepared, p); err != nil {
				return err
			}
		}
		return nil
	})
}

// storeOne stores p in tx; on SQLite, prepared is the batch's
// statements.
func (s *Service) storeOne(ctx context.Context, tx bun.Tx, prepared *sqliteBatch, p *pendingIngest) error {
	if s.db.Kind == db.Postgres {
		return s.storePostgres(ctx, tx, p)
	}
	plan := p.plan()
	done, err := prepared.execute(ctx, p.integ.ID, p.msg, plan)
	if done || err != nil {
		return err
	}
	return s.executeGeneric(ctx, tx, p.integ.ID, p.msg, plan)
}

// plan is what p's message does.
func (p *pendingIngest) plan() ingestPlan {
	plan := planIngest(p.integ, p.decision, p.failure, p.failStatus, p.hold)
	plan.Watched = p.watched
	return plan
}

// DefaultIngestLanes is how many ingest batches commit side by side on
// PostgreSQL unless Options.IngestLanes says otherwise. One: a lane's
// batch grows while the last one commits, and lanes side by side pay
// for smaller batches and for contending inside the database with cores
// it does not have to spare. On two vCPUs shared with the database, four
// lanes took 30% fewer messages a second than one (docs/PERFORMANCE.md);
// a database with cores to spare is where more lanes, or more instances,
// add.
const DefaultIngestLanes = 1

// newLanes makes the committing lanes for d (see groupCommit), and gives
// the pool the batches are sent on a connection for each.
func newLanes(d *db.DB, n int) []*groupCommit {
	if n <= 0 {
		n = DefaultIngestLanes
	}
	if d == nil || d.Kind != db.Postgres {
		n = 1
	} else {
		d.Planned.SetMaxOpenConns(n)
		d.Planned.SetMaxIdleConns(n)
	}
	lanes := make([]*groupCommit, n)
	for i := range lanes {
		lanes[i] = &groupCommit{max: maxBatch}
	}
	return lanes
}
