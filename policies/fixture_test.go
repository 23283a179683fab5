package policies_test

import (
	"context"
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/oncall"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/schedules"
)

type config struct {
	t         *testing.T
	ctx       context.Context
	d         *db.DB
	svc       *policies.Store
	schedules *schedules.Store
	// integrations keeps the integrations, which may name a policy.
	integrations *integrations.Store
}

func newConfig(t *testing.T, d *db.DB) *config {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now := func() time.Time { return clock }
	svc := policies.NewStore(d, now, nil)
	sched := schedules.NewStore(d, now, svc)
	return &config{t: t, ctx: context.Background(), d: d, svc: svc, schedules: sched,
		integrations: integrations.NewStore(d, "https://klaxon.example", now, nil)}
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

// jan is 2026-01-<day> at hh:mm UTC.
func jan(day, hh, mm int) time.Time {
	return time.Date(2026, time.January, day, hh, mm, 0, 0, time.UTC)
}

func daily(handoff time.Time, participants ...int) oncall.Layer {
	return oncall.Layer{Name: "daily", ShiftLength: 1, ShiftUnit: oncall.UnitDays, HandoffAt: handoff, ParticipantIDs: participants}
}

func (c *config) schedule(name string, layers ...oncall.Layer) *db.Schedule {
	c.t.Helper()
	sched, err := c.schedules.CreateSchedule(c.ctx, schedules.ScheduleInput{Name: &name, TimeZone: ptr("UTC"), Layers: layers})
	if err != nil {
		c.t.Fatalf("create schedule %s: %v", name, err)
	}
	return sched
}
