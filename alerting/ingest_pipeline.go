package alerting

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/klaxonhq/klaxon/db"
)

// On PostgreSQL a batch in a transaction still costs a round trip per
// message, and the server and the committer wait on each other for every
// one. commitPipelined sends the whole batch at once instead, as one
// pipeline of prepared statements with a single Sync, which PostgreSQL
// runs as one transaction: one round trip and one commit for the batch.

// commitPipelined stores batch as one pipeline. It reports false, having
// stored nothing, when a message needs the generic path or the pipeline
// failed; then the caller stores the batch in a transaction, unless err
// is db.ErrUnavailable. Messages whose alert changed under them (no row
// back) are stored again the usual way.
func (s *Service) commitPipelined(ctx context.Context, batch []*pendingIngest) (done bool, err error) {
	restore := func() {
		for _, p := range batch {
			*p.msg = p.original
		}
	}
	b := &pgx.Batch{}
	stmts := make([]pgStatement, len(batch))
	for i, p := range batch {
		st, ok, err := pgStatementFor(p)
		if err != nil || !ok {
			restore()
			return false, nil
		}
		stmts[i] = st
		if st.groupLock != nil {
			b.Queue(groupLockSQL, st.groupLock...)
		}
		b.Queue(st.sql, st.args...)
	}

	var retry []*pendingIngest
	conn, err := s.db.Planned.Conn(ctx)
	if err == nil {
		err = conn.Raw(func(driverConn any) error {
			c, ok := driverConn.(*stdlib.Conn)
			if !ok {
				return fmt.Errorf("unexpected driver connection %T", driverConn)
			}
			retry, err = readPipelined(c.Conn().SendBatch(ctx, b), batch, stmts)
			return err
		})
		conn.Close()
	}
	if err != nil {
		restore()
		if err = db.Classify(err); errors.Is(err, db.ErrUnavailable) {
			return false, err
		}
		s.log.WarnContext(ctx, "pipelined ingest failed; storing the batch in a transaction", "messages", len(batch), "err", err)
		return false, nil
	}
	for _, p := range retry {
		*p.msg = p.original
		s.commitEach(ctx, []*pendingIngest{p})
	}
	return true, nil
}

// readPipelined reads the batch's results into its messages, returning
// those to store again. Any error means nothing was stored: the server
// runs the batch as one transaction.
func readPipelined(br pgx.BatchResults, batch []*pendingIngest, stmts []pgStatement) (retry []*pendingIngest, err error) {
	defer func() {
		if cerr := br.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	for i, st := range stmts {
		if st.groupLock != nil {
			if _, err := br.Exec(); err != nil {
				return nil, fmt.Errorf("take group lock: %w", err)
			}
		}
		again, err := st.read(br.QueryRow())
		if err != nil {
			return nil, err
		}
		if again {
			retry = append(retry, batch[i])
		}
	}
	return retry, nil
}
