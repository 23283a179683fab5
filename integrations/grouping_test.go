package integrations_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/rules"
)

func TestGroupingIsValidatedStoredAndAudited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		integ, err := c.svc.CreateIntegration(c.ctx, integrations.IntegrationInput{Name: ptr("Scanner"), Type: ptr(rules.TypeDetectify),
			Grouping: &rules.Grouping{By: []string{" severity ", "$.finding.asset"}, WindowMinutes: 15}})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := c.svc.Integration(c.ctx, integ.ID)
		if err != nil {
			t.Fatal(err)
		}
		if g := stored.Grouping; g == nil || g.WindowMinutes != 15 || strings.Join(g.By, ",") != "severity,$.finding.asset" {
			t.Fatalf("stored grouping %+v", stored.Grouping)
		}

		for _, bad := range []struct {
			g     rules.Grouping
			field string
		}{
			{rules.Grouping{WindowMinutes: 0}, "grouping.windowMinutes"},
			{rules.Grouping{WindowMinutes: 24*60 + 1}, "grouping.windowMinutes"},
			{rules.Grouping{By: []string{"colour"}, WindowMinutes: 5}, "grouping.by[0]"},
			{rules.Grouping{By: []string{"severity", "$.a[?"}, WindowMinutes: 5}, "grouping.by[1]"},
		} {
			_, err := c.svc.UpdateIntegration(c.ctx, integ.ID, integrations.IntegrationInput{Name: ptr("Renamed"), Grouping: &bad.g})
			var field *invalid.Field
			if !errors.As(err, &field) || field.Name != bad.field {
				t.Fatalf("grouping %+v: %v, want an invalid %s", bad.g, err, bad.field)
			}
		}
		if after, _ := c.svc.Integration(c.ctx, integ.ID); after.Name != "Scanner" || after.Grouping.WindowMinutes != 15 {
			t.Fatalf("a refused update wrote %+v", after)
		}

		if _, err := c.svc.UpdateIntegration(c.ctx, integ.ID, integrations.IntegrationInput{ClearGrouping: true}); err != nil {
			t.Fatal(err)
		}
		if after, _ := c.svc.Integration(c.ctx, integ.ID); after.Grouping != nil {
			t.Fatalf("grouping after clearing: %+v", after.Grouping)
		}
		var entries []*audit.Entry
		if err := d.NewSelect().Model(&entries).Where("entity_type = ? AND entity_id = ?", audit.Integration, integ.ID).Order("id").Scan(c.ctx); err != nil {
			t.Fatal(err)
		}
		last := entries[len(entries)-1]
		if len(entries) != 2 || last.Action != audit.Updated ||
			last.Changes != `{"grouping":{"from":{"by":["severity","$.finding.asset"],"windowMinutes":15}}}` {
			t.Fatalf("audit entries %d, the last %+v", len(entries), last)
		}
	})
}
