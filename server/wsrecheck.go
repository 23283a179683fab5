package server

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/klaxonhq/klaxon/auth"
)

// wsTokenCheckInterval is how long a websocket may outlive the end of its
// session: signing out, on any instance, the user's removal or the API
// key's revocation.
const wsTokenCheckInterval = time.Minute

// tokenCheck authenticates the token of every open websocket again at an
// interval, so a session that has ended closes its sockets with 4401 as
// it refuses HTTP requests; the socket's expiry timer only knows when the
// token runs out. Sockets that share a token cost one check. Like
// keepAlive, it runs no goroutine while no socket is open.
type tokenCheck struct {
	interval     time.Duration
	authenticate func(ctx context.Context, token string) error
	log          *slog.Logger

	mu       sync.Mutex
	sessions map[*wsSession]struct{}
	timer    *time.Timer
}

func newTokenCheck(interval time.Duration, authenticate func(ctx context.Context, token string) error, log *slog.Logger) *tokenCheck {
	return &tokenCheck{interval: interval, authenticate: authenticate, log: log, sessions: map[*wsSession]struct{}{}}
}

// add starts checking sess, whose token has just been accepted.
func (k *tokenCheck) add(sess *wsSession) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.sessions[sess] = struct{}{}
	if k.timer == nil {
		k.timer = time.AfterFunc(k.interval, k.tick)
	}
}

// remove forgets sess; the last one out stops the timer.
func (k *tokenCheck) remove(sess *wsSession) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.sessions, sess)
	if len(k.sessions) == 0 && k.timer != nil && k.timer.Stop() {
		k.timer = nil
	}
}

func (k *tokenCheck) tick() {
	k.sweep(context.Background())
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.sessions) == 0 {
		k.timer = nil
		return
	}
	k.timer.Reset(k.interval)
}

// sweep closes the sockets whose token no longer authenticates. A check
// that fails for another reason (the database is unreachable) closes
// nothing.
func (k *tokenCheck) sweep(ctx context.Context) {
	k.mu.Lock()
	byToken := map[string][]*wsSession{}
	for sess := range k.sessions {
		byToken[sess.token] = append(byToken[sess.token], sess)
	}
	k.mu.Unlock()
	for token, sessions := range byToken {
		err := k.authenticate(ctx, token)
		if err == nil {
			continue
		}
		if !errors.Is(err, auth.ErrUnauthenticated) {
			k.log.ErrorContext(ctx, "check websocket token", "err", err)
			continue
		}
		for _, sess := range sessions {
			sess.conn.WriteClose(closeUnauthorized, "session ended")
			sess.conn.Close()
		}
	}
}
