package contacts_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/egress"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/notifiers"
)

// config is a contact store over one database.
type config struct {
	t     *testing.T
	ctx   context.Context
	d     *db.DB
	store *contacts.Store
}

func newConfig(t *testing.T, d *db.DB) *config {
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	store := contacts.NewStore(d, now, slog.New(slog.NewTextHandler(io.Discard, nil)), notifiers.NewChannels(nil, localSinks))
	return &config{t: t, ctx: context.Background(), d: d, store: store}
}

// addUser stores a user straight in the database and returns its id.
func (c *config) addUser(name string) int {
	c.t.Helper()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	u := &db.User{Email: name + "@example.com", Name: name, Role: db.RoleResponder, CreatedAt: now, UpdatedAt: now}
	if _, err := c.d.NewInsert().Model(u).Exec(c.ctx); err != nil {
		c.t.Fatalf("insert user %s: %v", name, err)
	}
	return u.ID
}

// rows counts the rows of model's table.
func (c *config) rows(model any) int {
	c.t.Helper()
	n, err := c.d.NewSelect().Model(model).Count(c.ctx)
	if err != nil {
		c.t.Fatalf("count: %v", err)
	}
	return int(n)
}

// wantFieldError fails unless err is invalid input naming field.
func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var fe *invalid.Field
	if !errors.As(err, &fe) {
		t.Fatalf("want invalid %s, got %v", field, err)
	}
	if fe.Name != field {
		t.Fatalf("want invalid %s, got invalid %s (%v)", field, fe.Name, err)
	}
}

func ptr[T any](v T) *T { return &v }

// clock is a test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// localSinks admits loopback, as KLAXON_OUTBOUND_ALLOW=127.0.0.1/32,::1/128
// would, so webhooks to this machine can be saved.
var localSinks = func() *egress.Guard {
	allow, err := egress.ParseAllow("127.0.0.1/32,::1/128")
	if err != nil {
		panic(err)
	}
	return egress.New(allow, nil)
}()
