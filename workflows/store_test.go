package workflows_test

import (
	"errors"
	"testing"

	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/rules"
	"github.com/klaxonhq/klaxon/workflows"
)

func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var fe *invalid.Field
	if !errors.As(err, &fe) || fe.Name != field {
		t.Fatalf("want invalid %s, got %v", field, err)
	}
}

// A template that does not parse, or fails against a sample alert, is
// refused with the error, naming the template; nothing is stored, not
// even an audit entry.
func TestBadInputIsRefusedAndLeavesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		good := func() workflows.Input {
			return workflows.Input{Name: "issue", On: []db.WorkflowEvent{db.WorkflowOpened}, Method: "POST",
				URL: f.receive.server.URL, Body: issueBody, Headers: []db.WorkflowHeader{{Name: "Authorization", Value: "token abc"}}}
		}
		cases := []struct {
			name  string
			edit  func(*workflows.Input)
			field string
		}{
			{"body does not parse", func(in *workflows.Input) { in.Body = `{"title": {{.Alert.Subject}` }, "action.body"},
			{"body fails to render", func(in *workflows.Input) { in.Body = `{{.Alert.Nope}}` }, "action.body"},
			{"function with wrong arguments", func(in *workflows.Input) { in.Body = `{{json}}` }, "action.body"},
			{"header fails to render", func(in *workflows.Input) {
				in.Headers = append(in.Headers, db.WorkflowHeader{Name: "X-Title", Value: "{{index .Alert 3}}"})
			}, "action.headers[1].value"},
			{"header name", func(in *workflows.Input) { in.Headers[0].Name = "Bad Name" }, "action.headers[0].name"},
			{"no changes", func(in *workflows.Input) { in.On = nil }, "on"},
			{"unknown change", func(in *workflows.Input) { in.On = []db.WorkflowEvent{"REOPENED"} }, "on"},
			{"method", func(in *workflows.Input) { in.Method = "TRACE" }, "action.method"},
			{"url", func(in *workflows.Input) { in.URL = "ftp://example.com/x" }, "action.url"},
			{"refused address", func(in *workflows.Input) { in.URL = "http://169.254.169.254/latest" }, "action.url"},
			{"condition", func(in *workflows.Input) {
				in.Conditions = []rules.Condition{{Field: "colour", Op: rules.OpEquals, Value: "red"}}
			}, "conditions[0].field"},
			{"integration", func(in *workflows.Input) { in.IntegrationID = ptr(9999) }, "integrationId"},
		}
		for _, c := range cases {
			in := good()
			c.edit(&in)
			_, err := f.store.CreateWorkflow(f.ctx, in)
			wantFieldError(t, err, c.field)
		}
		list, err := f.store.Workflows(f.ctx)
		if err != nil || len(list) != 0 {
			t.Fatalf("workflows after refusals: %v, %v", list, err)
		}
		n, err := d.NewSelect().Model((*audit.Entry)(nil)).Where("entity_type = ?", audit.Workflow).Count(f.ctx)
		if err != nil || n != 0 {
			t.Fatalf("%d audit entries after refusals: %v", n, err)
		}

		// An update with a bad template keeps the workflow as it was.
		w, err := f.store.CreateWorkflow(f.ctx, good())
		if err != nil {
			t.Fatal(err)
		}
		bad := good()
		bad.Body = "{{.Nope}}"
		_, err = f.store.UpdateWorkflow(f.ctx, w.ID, bad)
		wantFieldError(t, err, "action.body")
		if got, err := f.store.Workflow(f.ctx, w.ID); err != nil || got.Body != issueBody {
			t.Fatalf("after a refused update: %+v, %v", got, err)
		}
	})
}

// Creating, updating and deleting are audited, without header values
// (they often hold a token), and each change reaches alerting at once.
func TestChangesAreAuditedAndFollowed(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		in := workflows.Input{Name: "issue", On: []db.WorkflowEvent{db.WorkflowOpened}, Method: "post",
			URL: f.receive.server.URL, Body: issueBody, Headers: []db.WorkflowHeader{{Name: "Authorization", Value: "token secret-value"}}}
		w, err := f.store.CreateWorkflow(f.ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if w.Method != "POST" {
			t.Fatalf("method %q, want POST", w.Method)
		}
		in.On = []db.WorkflowEvent{db.WorkflowClosed}
		if _, err := f.store.UpdateWorkflow(f.ctx, w.ID, in); err != nil {
			t.Fatal(err)
		}
		// Updated to follow closes only: an opened alert sends nothing.
		f.open(f.integ, "db-1", "high")
		if f.jobs() != 0 {
			t.Fatal("the update did not reach alerting")
		}
		if err := f.store.DeleteWorkflow(f.ctx, w.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.store.DeleteWorkflow(f.ctx, w.ID); !errors.Is(err, db.ErrNotFound) {
			t.Fatalf("deleting again: %v, want not found", err)
		}
		var entries []*audit.Entry
		if err := d.NewSelect().Model(&entries).Where("entity_type = ?", audit.Workflow).Order("id").Scan(f.ctx); err != nil {
			t.Fatal(err)
		}
		var actions []audit.Action
		for _, e := range entries {
			actions = append(actions, e.Action)
			if containsAll(e.Changes, "secret-value") {
				t.Fatalf("audit entry keeps a header value: %s", e.Changes)
			}
		}
		if len(actions) != 3 || actions[0] != audit.Created || actions[1] != audit.Updated || actions[2] != audit.Deleted {
			t.Fatalf("audit actions %v", actions)
		}
	})
}
