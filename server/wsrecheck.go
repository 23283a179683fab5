package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/klaxonhq/klaxon/auth"
)

// wsTokenCheckInterval is how long a websocket may outlive the end of its
// session (signing out, on any instance, the user's removal or the API
// key's revocation), and how long its subscriptions may go on judging
// events by team roles or a global role that have changed.
const wsTokenCheckInterval = time.Minute

// tokenCheck authenticates the token of every open websocket again at an
// interval (see sweeper), so a session that has ended closes its sockets
// with 4401 as it refuses HTTP requests; the socket's expiry timer only
// knows when the token runs out. A session still valid has its caller's
// access read again with it, for its subscriptions. Sockets that share a
// token cost one check.
type tokenCheck struct {
	*sweeper[*wsSession]
	authenticate func(ctx context.Context, token string) (*auth.Access, error)
	log          *slog.Logger
}

func newTokenCheck(interval time.Duration, authenticate func(ctx context.Context, token string) (*auth.Access, error), log *slog.Logger) *tokenCheck {
	k := &tokenCheck{authenticate: authenticate, log: log}
	k.sweeper = newSweeper[*wsSession](interval, func() { k.sweep(context.Background()) })
	return k
}

// sweep closes the sockets whose token no longer authenticates. A check
// that fails for another reason (the database is unreachable) closes
// nothing.
func (k *tokenCheck) sweep(ctx context.Context) {
	byToken := map[string][]*wsSession{}
	for _, sess := range k.snapshot() {
		byToken[sess.token] = append(byToken[sess.token], sess)
	}
	for token, sessions := range byToken {
		access, err := k.authenticate(ctx, token)
		if err == nil {
			for _, sess := range sessions {
				sess.access.Store(access)
			}
			continue
		}
		if !errors.Is(err, auth.ErrUnauthenticated) {
			k.log.ErrorContext(ctx, "check websocket token", "err", err)
			continue
		}
		for _, sess := range sessions {
			sess.conn.closeWith(closeUnauthorized, "session ended")
		}
	}
}
