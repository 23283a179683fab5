package audit

import (
	"context"
	"fmt"
	"github.com/klaxonhq/klaxon/invalid"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// Log reads the audit log.
type Log struct {
	db bun.IDB
}

// NewLog reads the audit log of the database d.
func NewLog(d bun.IDB) *Log { return &Log{db: d} }

// Filter narrows the log; zero values match everything. An EntityID
// needs an EntityType, as ids are only unique within a type.
type Filter struct {
	EntityType EntityType
	EntityID   *int
}

// List returns up to first entries (0 means the default page) older than
// the entry with id after (0 means from the newest), newest first, with
// the total the filter matches (counted up to db.CountCap + 1) and
// whether more follow.
func (l *Log) List(ctx context.Context, f Filter, p db.PageRequest) (entries []*Entry, total int, more bool, err error) {
	first, err := p.Limit()
	if err != nil {
		return nil, 0, false, err
	}
	after := p.After
	if f.EntityType != "" && !f.EntityType.Valid() {
		return nil, 0, false, invalid.New("entityType", fmt.Sprintf("unknown entity type %q", f.EntityType))
	}
	if f.EntityID != nil && f.EntityType == "" {
		return nil, 0, false, invalid.New("entityId", "needs entityType")
	}
	filter := func(q *bun.SelectQuery) *bun.SelectQuery {
		if f.EntityType != "" {
			q = q.Where("entity_type = ?", f.EntityType)
		}
		if f.EntityID != nil {
			q = q.Where("entity_id = ?", *f.EntityID)
		}
		return q
	}
	count, err := db.CountUpTo(ctx, l.db, l.db.NewSelect().Model((*Entry)(nil)).Apply(filter))
	if err != nil {
		return nil, 0, false, fmt.Errorf("count audit entries: %w", err)
	}
	q := l.db.NewSelect().Model(&entries).Apply(filter).Order("id DESC").Limit(int64(first + 1))
	if after > 0 {
		q = q.Where("id < ?", after)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, 0, false, fmt.Errorf("list audit entries: %w", err)
	}
	if len(entries) > first {
		entries, more = entries[:first], true
	}
	return entries, int(count), more, nil
}

// Since returns the entries after the one with id afterID, oldest first:
// what happened since a reader last looked.
func (l *Log) Since(ctx context.Context, afterID int) ([]*Entry, error) {
	var entries []*Entry
	if err := l.db.NewSelect().Model(&entries).Where("id > ?", afterID).Order("id").Scan(ctx); err != nil {
		return nil, fmt.Errorf("list audit entries since %d: %w", afterID, err)
	}
	return entries, nil
}
