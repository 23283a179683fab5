package integrations_test

import (
	"strconv"
	"testing"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
)

// The findings settings are stored, read back and audited like the rest
// of an integration.
func TestFindingsSettingsAreStoredAndAudited(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		c := newConfig(t, d)
		p, err := c.policies.CreateEscalationPolicy(c.ctx, policies.PolicyInput{Name: ptr("Fixers"), Steps: []policies.StepInput{{Targets: []db.Target{{Type: db.TargetRecipients}}}}})
		if err != nil {
			t.Fatal(err)
		}
		integ, err := c.svc.CreateIntegration(c.ctx, integrations.IntegrationInput{Name: ptr("Scanner"), Type: ptr(rules.TypeDetectify),
			RegressionWindowDays: ptr(30), Remediation: &rules.Remediation{{Severity: "critical", Days: 2}}, OverduePolicyID: &p.ID})
		if err != nil {
			t.Fatal(err)
		}
		stored, err := c.svc.Integration(c.ctx, integ.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.RegressionWindowDays != 30 || len(stored.Remediation) != 1 || stored.Remediation[0] != (rules.Deadline{Severity: "critical", Days: 2}) ||
			stored.OverduePolicyID == nil || *stored.OverduePolicyID != p.ID {
			t.Fatalf("stored %+v", stored)
		}
		if _, err := c.svc.UpdateIntegration(c.ctx, integ.ID, integrations.IntegrationInput{
			Remediation: &rules.Remediation{{Severity: "critical", Days: 1}, {Severity: "high", Days: 7}}, ClearOverduePolicy: true}); err != nil {
			t.Fatal(err)
		}
		var last audit.Entry
		if err := d.NewSelect().Model(&last).Where("entity_type = ? AND entity_id = ?", audit.Integration, integ.ID).Order("id DESC").Limit(1).Scan(c.ctx); err != nil {
			t.Fatal(err)
		}
		// A setting cleared is left out of the record, as grouping is.
		want := `{"overduePolicyId":{"from":` + strconv.Itoa(p.ID) + `},"remediation":{"from":[{"days":2,"severity":"critical"}],"to":[{"days":1,"severity":"critical"},{"days":7,"severity":"high"}]}}`
		if last.Action != audit.Updated || last.Changes != want {
			t.Fatalf("audit %s %s\nwant %s", last.Action, last.Changes, want)
		}
	})
}
