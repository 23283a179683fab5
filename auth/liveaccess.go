package auth

import (
	"context"
	"sync/atomic"

	"github.com/klaxonhq/klaxon/db"
)

// LiveAccess is the access of a caller on a long-lived connection (a
// websocket), kept current while the connection lasts: its subscriptions
// judge every event by it, so a caller removed from a team, or demoted,
// stops hearing of that team's things once it is read again, without
// having to subscribe anew.
type LiveAccess struct {
	current atomic.Pointer[liveScope]
}

type liveScope struct {
	access *Access
	// scope is access.ReadScope(nil), worked out once per change rather
	// than for every event.
	scope *db.TeamScope
}

// Store makes a the access from now on.
func (l *LiveAccess) Store(a *Access) {
	l.current.Store(&liveScope{access: a, scope: a.ReadScope(nil)})
}

// User is the caller as last read, nil before any Store: fresher than
// the one the connection was opened with, whose role may have changed.
func (l *LiveAccess) User() *db.User {
	if cur := l.current.Load(); cur != nil {
		return cur.access.User
	}
	return nil
}

// ReadScope is the owners whose things the caller may see now, nil for
// every owner; before any Store it is nothing at all.
func (l *LiveAccess) ReadScope() *db.TeamScope {
	cur := l.current.Load()
	if cur == nil {
		return &db.TeamScope{TeamIDs: []int{}}
	}
	return cur.scope
}

type liveAccessKey struct{}

// WithLiveAccess gives ctx's operations the connection's live access.
func WithLiveAccess(ctx context.Context, l *LiveAccess) context.Context {
	return context.WithValue(ctx, liveAccessKey{}, l)
}

// LiveAccessFrom is the connection's live access, or nil outside one.
func LiveAccessFrom(ctx context.Context) *LiveAccess {
	l, _ := ctx.Value(liveAccessKey{}).(*LiveAccess)
	return l
}

// AccessOf reads u's team roles afresh: for a connection that keeps its
// caller's access current.
func (s *Service) AccessOf(ctx context.Context, u *db.User) (*Access, error) {
	return s.loadAccess(ctx, u)
}
