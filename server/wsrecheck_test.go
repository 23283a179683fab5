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
	k := newTokenCheck(time.Hour, func(_ context.Context, token string) error {
		checked[token]++
		return verdicts[token]
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
