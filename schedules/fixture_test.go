package schedules_test

import (
	"context"
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/schedules"
)

type config struct {
	t        *testing.T
	ctx      context.Context
	d        *db.DB
	svc      *schedules.Store
	policies *policies.Store
	// clock is what the stores read as now; advance moves it.
	clock *time.Time
}

func newConfig(t *testing.T, d *db.DB) *config {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return clock }
	pol := policies.NewStore(d, now, nil)
	return &config{t: t, ctx: context.Background(), d: d, svc: schedules.NewStore(d, now, pol), policies: pol, clock: &clock}
}

func (c *config) advance(d time.Duration) { *c.clock = c.clock.Add(d) }

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

func ptr[T any](v T) *T { return &v }

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
