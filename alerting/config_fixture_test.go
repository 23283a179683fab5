package alerting_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/schedules"
)

// config is a service over one database for the configuration tests.
type config struct {
	t   *testing.T
	ctx context.Context
	d   *db.DB
	svc *alerting.Service
	// schedules and policies keep the configuration the service only
	// reads; a change to a policy drops the service's webhook routes.
	schedules *schedules.Store
	policies  *policies.Store
	// integrations keeps the integrations and rulesets; its changes drop
	// the service's webhook routes too.
	integrations *integrations.Store
}

func newConfig(t *testing.T, d *db.DB) *config {
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	svc := newService(t, d)
	pol := policies.NewStore(d, now, svc.RoutesChanged)
	return &config{t: t, ctx: context.Background(), d: d, svc: svc, schedules: schedules.NewStore(d, now, pol), policies: pol,
		integrations: integrations.NewStore(d, "https://klaxon.example", now, svc.RoutesChanged)}
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

// addGroup stores a group with the given members and returns its id.
func (c *config) addGroup(name string, members ...int) int {
	c.t.Helper()
	g := &db.Group{Name: name, CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if _, err := c.d.NewInsert().Model(g).Exec(c.ctx); err != nil {
		c.t.Fatalf("insert group %s: %v", name, err)
	}
	for _, id := range members {
		if _, err := c.d.NewInsert().Model(&db.GroupMember{GroupID: g.ID, UserID: id}).Exec(c.ctx); err != nil {
			c.t.Fatalf("add member: %v", err)
		}
	}
	return g.ID
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
