package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/klaxonhq/klaxon/invalid"
	"reflect"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

type thing struct {
	Name      string         `json:"name"`
	Count     int            `json:"count"`
	Tags      []string       `json:"tags"`
	Token     string         `json:"token"`
	Password  string         `json:"password"`
	Owner     *int           `json:"ownerId"`
	Settings  map[string]any `json:"settings"`
	TokenSeen int            `json:"tokenVersion"`
}

func TestRecordKeepsWhatChanged(t *testing.T) {
	one := 1
	base := thing{Name: "a", Count: 1, Tags: []string{"x"}, Token: "tok-1", Password: "", Settings: map[string]any{"url": "https://h", "apiKey": "k-1"}}
	renamed := base
	renamed.Name, renamed.Owner, renamed.TokenSeen = "b", &one, 2
	rekeyed := base
	rekeyed.Token, rekeyed.Password = "tok-2", "hash"
	cleared := base
	cleared.Token = ""
	for _, tc := range []struct {
		name          string
		before, after any
		want          string // "" when nothing is recorded
	}{
		{
			"created: every field, secrets hidden", nil, base,
			`{"count":{"to":1},"name":{"to":"a"},"ownerId":{"to":null},"password":{"to":""},` +
				`"settings":{"to":{"apiKey":"[redacted]","url":"https://h"}},"tags":{"to":["x"]},"token":{"to":"[redacted]"},"tokenVersion":{"to":0}}`,
		},
		{
			"deleted: every field as it was", base, nil,
			`{"count":{"from":1},"name":{"from":"a"},"ownerId":{"from":null},"password":{"from":""},` +
				`"settings":{"from":{"apiKey":"[redacted]","url":"https://h"}},"tags":{"from":["x"]},"token":{"from":"[redacted]"},"tokenVersion":{"from":0}}`,
		},
		{
			"updated: only the changed fields", base, renamed,
			`{"name":{"from":"a","to":"b"},"ownerId":{"from":null,"to":1},"tokenVersion":{"from":0,"to":2}}`,
		},
		{
			"a replaced secret says so, a new one is hidden", base, rekeyed,
			`{"password":{"from":"","to":"[redacted]"},"token":{"from":"[redacted]","to":"[changed]"}}`,
		},
		{
			"a cleared secret shows as empty", base, cleared,
			`{"token":{"from":"[redacted]","to":""}}`,
		},
		{"an update changing nothing is not recorded", base, base, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := dbtest.SQLite(t)
			ctx := audit.WithActor(context.Background(), 7, "ann@example.com")
			at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
			if err := audit.Record(ctx, d, at, audit.Integration, 42, audit.Updated, tc.before, tc.after); err != nil {
				t.Fatal(err)
			}
			entries, total, _, err := audit.NewLog(d).List(context.Background(), audit.Filter{}, db.PageRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if total != 0 {
					t.Fatalf("recorded %+v, want nothing", entries[0])
				}
				return
			}
			if total != 1 {
				t.Fatalf("%d entries, want 1", total)
			}
			e := entries[0]
			if e.Changes != tc.want {
				t.Errorf("changes\n got %s\nwant %s", e.Changes, tc.want)
			}
			if e.ActorUserID == nil || *e.ActorUserID != 7 || e.Actor != "ann@example.com" || !e.At.Equal(at) ||
				e.EntityType != audit.Integration || e.EntityID != 42 || e.Action != audit.Updated {
				t.Errorf("entry %+v", e)
			}
		})
	}
}

func TestActor(t *testing.T) {
	ctx := context.Background()
	if a := audit.ActorFrom(ctx); a.UserID != nil || a.Name != audit.SystemName {
		t.Errorf("no actor: %+v, want the system", a)
	}
	if a := audit.ActorFrom(audit.WithSystemActor(ctx, "cli")); a.UserID != nil || a.Name != "cli" {
		t.Errorf("cli: %+v", a)
	}
	if a := audit.ActorFrom(audit.WithActor(ctx, 3, "bo@example.com")); a.UserID == nil || *a.UserID != 3 || a.Name != "bo@example.com" {
		t.Errorf("user: %+v", a)
	}
}

func TestListFiltersAndPages(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		type ref struct {
			typ audit.EntityType
			id  int
		}
		for i := range 7 {
			r := ref{audit.Schedule, i % 2}
			if i%3 == 0 {
				r.typ = audit.Group
			}
			if err := audit.Record(ctx, d, at, r.typ, r.id, audit.Created, nil, map[string]int{"n": i}); err != nil {
				t.Fatal(err)
			}
		}
		log := audit.NewLog(d)
		list := func(f audit.Filter, first int) []int {
			t.Helper()
			var ns []int
			after := 0
			for {
				entries, total, more, err := log.List(ctx, f, db.PageRequest{First: first, After: after})
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range entries {
					var c map[string]struct{ To int }
					if err := json.Unmarshal([]byte(e.Changes), &c); err != nil {
						t.Fatal(err)
					}
					ns = append(ns, c["n"].To)
					after = e.ID
				}
				if !more {
					if total != len(ns) {
						t.Errorf("total %d, listed %d", total, len(ns))
					}
					return ns
				}
			}
		}
		one := 1
		for _, tc := range []struct {
			name string
			f    audit.Filter
			want []int
		}{
			{"everything", audit.Filter{}, []int{6, 5, 4, 3, 2, 1, 0}},
			{"one type", audit.Filter{EntityType: audit.Schedule}, []int{5, 4, 2, 1}},
			{"one entity", audit.Filter{EntityType: audit.Schedule, EntityID: &one}, []int{5, 1}},
		} {
			for _, first := range []int{1, 2, 50} {
				if got := list(tc.f, first); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("%s, pages of %d: %v, want %v", tc.name, first, got, tc.want)
				}
			}
		}
		for _, tc := range []struct {
			f     audit.Filter
			first int
			field string
		}{
			{audit.Filter{EntityID: &one}, 0, "entityId"},
			{audit.Filter{EntityType: "ALERT"}, 0, "entityType"},
			{audit.Filter{}, 501, "first"},
			{audit.Filter{}, -1, "first"},
		} {
			_, _, _, err := log.List(ctx, tc.f, db.PageRequest{First: tc.first})
			var fe *invalid.Field
			if !errors.As(err, &fe) || fe.Name != tc.field {
				t.Errorf("List(%+v, %d): %v, want an error on %s", tc.f, tc.first, err, tc.field)
			}
		}
	})
}
