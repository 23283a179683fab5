package db

import "github.com/klaxonhq/klaxon/invalid"

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
