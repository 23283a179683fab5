package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
)

// A token the check refuses closes every socket it opened; one the check
// could not decide (the database is down) closes none; the timer runs only
// while sockets are registered.
func TestTokenCheckClosesOnlyEndedSessions(t *testing.T) {
	verdicts := map[string]error{
		"ended":   fmt.Errorf("%w: signed out", auth.ErrUnauthenticated),
		"unknown": errors.New("database unreachable"),
		"valid":   nil,
	}
	checked := map[string]int{}
	k := newTokenCheck(time.Hour, func(_ context.Context, token string) (*auth.Access, error) {
		checked[token]++
		if err := verdicts[token]; err != nil {
			return nil, err
		}
		return auth.NewAccess(&db.User{ID: 7, Role: db.RoleMember}, map[int]db.TeamRole{3: db.TeamObserver}), nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))

	pairs := map[string][]*keepAlivePair{}
	for _, token := range []string{"ended", "ended", "unknown", "valid"} {
		p := newKeepAlivePair(t, subprotocolTransportWS)
		pairs[token] = append(pairs[token], p)
		k.add(&wsSession{conn: p.server, token: token})
	}
	if _, scheduled := k.active(); !scheduled {
		t.Fatal("no check scheduled with sockets open")
	}
	k.sweep(context.Background())

	for token, n := range checked {
		if n != 1 {
			t.Errorf("token %q checked %d times, want once", token, n)
		}
	}
	for _, s := range k.snapshot() {
		if s.token == "valid" && (s.access.User() == nil || !s.access.ReadScope().Includes(&[]int{3}[0])) {
			t.Errorf("a valid token's session did not take the access read with it: %+v", s.access.ReadScope())
		}
		if s.token == "unknown" && s.access.User() != nil {
			t.Errorf("a session whose check failed took an access")
		}
	}
	for token, ps := range pairs {
		for _, p := range ps {
			if token != "ended" {
				// A socket still open takes a message.
				p.server.writeMessage("next", "", nil)
			}
			_, err := p.next(t)
			if closed, want := err != nil, token == "ended"; closed != want {
				t.Errorf("socket of a %q token: closed %v, want %v (%v)", token, closed, want, err)
			}
		}
	}

	for _, s := range k.snapshot() {
		k.remove(s)
	}
	if n, scheduled := k.active(); n != 0 || scheduled {
		t.Fatalf("%d sessions, check scheduled %v after all were removed", n, scheduled)
	}
}
