package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/klaxonhq/klaxon/db"
)

// Retention of the audit log. It is kept for ever unless an operator sets
// an age: it is the record of who changed what, and small next to the
// inbound log.

// Prune deletes at most limit entries recorded before before, oldest
// first, and returns how many it deleted.
func (l *Log) Prune(ctx context.Context, before time.Time, limit int) (int, error) {
	res, err := l.db.NewRaw(`DELETE FROM audit_log WHERE id IN (
		SELECT id FROM audit_log WHERE at < ? ORDER BY at, id LIMIT ?)`, before.UTC(), limit).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune audit log: %w", db.Classify(err))
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// backlogCap bounds Backlog's count, so that measuring the work left costs
// no more than a few batches of it.
const backlogCap = 100_000

// Backlog counts the entries due for pruning at before, up to 100,000.
func (l *Log) Backlog(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := l.db.NewRaw(fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM audit_log WHERE at < ? LIMIT %d) due`, backlogCap), before.UTC()).Scan(ctx, &n)
	if err != nil {
		return 0, fmt.Errorf("count audit entries due for pruning: %w", db.Classify(err))
	}
	return n, nil
}
