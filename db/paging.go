package db

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/invalid"
)

// Lists read a page at a time (alerts, inbound messages, the audit log)
// are DefaultPageSize long unless the caller asks otherwise, and never
// longer than MaxPageSize. The GraphQL complexity limit counts a page by
// the same numbers.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// PageRequest asks for up to First items after the item with id After (0
// for the start), newest first; First 0 means DefaultPageSize.
type PageRequest struct {
	First int
	After int
}

// Limit is how many items the page holds, or invalid input on "first".
func (p PageRequest) Limit() (int, error) {
	switch {
	case p.First == 0:
		return DefaultPageSize, nil
	case p.First < 0 || p.First > MaxPageSize:
		return 0, invalid.Fieldf("first", "must be between 1 and %d", MaxPageSize)
	}
	return p.First, nil
}

// CountCap is as far as a list's total is counted: counting every match
// of a filter over a year of alerts or messages reads them all, so a
// list counts up to CountCap + 1 and says "more than CountCap" beyond.
const CountCap = 10_000

// CountUpTo counts q's rows, newest first, stopping after CountCap + 1:
// a result above CountCap means "more than CountCap". It reads at most
// that many index entries however large the table grows. q must select
// from a table whose key is id.
func CountUpTo(ctx context.Context, idb bun.IDB, q *bun.SelectQuery) (int, error) {
	var n int
	inner := q.ColumnExpr("1").OrderExpr("id DESC").Limit(CountCap + 1)
	if err := idb.NewSelect().ColumnExpr("count(*)").TableExpr("(?) AS capped", inner).Scan(ctx, &n); err != nil {
		return 0, err
	}
	return n, nil
}
