package alerting

import (
	"reflect"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// Every way a stored message can end, decided without a database: each
// executor only follows the branch its database answers.
func TestPlanIngestCoversEveryOutcome(t *testing.T) {
	integPolicy, rulePolicy := 3, 9
	integ := &db.Integration{ID: 1, EscalationPolicyID: &integPolicy}
	fields := rules.Fields{SourceID: "finding-1", Subject: "XSS"}
	open := rules.Decision{Action: rules.ActionOpen, Fields: fields, Detail: "rule high"}
	closing := rules.Decision{Action: rules.ActionClose, Fields: fields, Detail: "rule fixed"}
	pulse := rules.Decision{Action: rules.ActionPulse, Fields: rules.Fields{SourceName: "web"}, Detail: "rule scans"}
	acking := rules.Decision{Action: rules.ActionAcknowledge, Fields: fields, Detail: "rule ack"}
	noting := rules.Decision{Action: rules.ActionNote, Fields: rules.Fields{SourceID: "finding-1", Details: "Restarted"}, Detail: "rule note"}
	emptyNote := rules.Decision{Action: rules.ActionNote, Fields: fields, Detail: "rule note"}
	routed := open
	routed.Route = rules.Route{EscalationPolicyID: rulePolicy, RecipientUserIDs: []int{7}}

	tests := []struct {
		name       string
		decision   rules.Decision
		failure    string
		failStatus db.InboundStatus
		took       bool
		step       ingestStep
		policyID   *int
		want       ingestOutcome
	}{
		{name: "refused signature", failure: "bad signature", failStatus: db.InboundRefused, took: true,
			step: stepStore, want: ingestOutcome{Status: db.InboundRefused, Detail: "bad signature"}},
		{name: "mapping failed", decision: open, failure: "no source id", failStatus: db.InboundMappingFailed, took: true,
			step: stepStore, want: ingestOutcome{Status: db.InboundMappingFailed, Detail: "no source id"}},
		{name: "filtered", decision: rules.Decision{Action: rules.ActionIgnore, Detail: "rule noise"}, took: true,
			step: stepStore, want: ingestOutcome{Status: db.InboundFiltered, Detail: "rule noise"}},
		{name: "no rule matched", decision: rules.Decision{RuleIndex: -1, Detail: "no rule matched"}, took: true,
			step: stepStore, want: ingestOutcome{Status: db.InboundIgnored, Detail: "no rule matched"}},
		{name: "opened", decision: open, took: true, step: stepOpenOrAppend, policyID: &integPolicy,
			want: ingestOutcome{Status: db.InboundOpened, Detail: "rule high", Entry: db.LogOpened, EntryText: "Opened: rule high", StartPaging: true}},
		{name: "opened on the rule's route", decision: routed, took: true, step: stepOpenOrAppend, policyID: &rulePolicy,
			want: ingestOutcome{Status: db.InboundOpened, Detail: "rule high", Entry: db.LogOpened, EntryText: "Opened: rule high", StartPaging: true}},
		{name: "appended", decision: open, took: false, step: stepOpenOrAppend, policyID: &integPolicy,
			want: ingestOutcome{Status: db.InboundAppended, Detail: "rule high", Entry: db.LogAppended, EntryText: "Duplicate message appended"}},
		{name: "closed", decision: closing, took: true, step: stepClose,
			want: ingestOutcome{Status: db.InboundClosed, Detail: "rule fixed", Entry: db.LogClosed, EntryText: "Closed: rule fixed", CancelJobs: true}},
		{name: "close with none open", decision: closing, took: false, step: stepClose,
			want: ingestOutcome{Status: db.InboundIgnored, Detail: "rule fixed; no open alert for this source"}}, {name: "pulse closing its missed-pulse alert", decision: pulse, took: true, step: stepPulse,
			want: ingestOutcome{Status: db.InboundPulse, Detail: "rule scans; a pulse of key web, which closes its missed-pulse alert",
				Entry: db.LogClosed, EntryText: "Closed: a pulse came for key web", CancelJobs: true}},
		{name: "pulse", decision: pulse, took: false, step: stepPulse,
			want: ingestOutcome{Status: db.InboundPulse, Detail: "rule scans; a pulse of key web"}},
		{name: "acknowledged", decision: acking, took: true, step: stepAcknowledge,
			want: ingestOutcome{Status: db.InboundAcknowledged, Detail: "rule ack", Entry: db.LogAcknowledged, EntryText: "Acknowledged by the integration: rule ack"}},
		{name: "acknowledge with none open or unacknowledged", decision: acking, took: false, step: stepAcknowledge,
			want: ingestOutcome{Status: db.InboundIgnored, Detail: "rule ack; " + alreadyAcknowledged}},
		{name: "note added", decision: noting, took: true, step: stepNote,
			want: ingestOutcome{Status: db.InboundNoteAdded, Detail: "rule note", Entry: db.LogNote, EntryText: "Restarted"}},
		{name: "note with none open", decision: noting, took: false, step: stepNote,
			want: ingestOutcome{Status: db.InboundIgnored, Detail: "rule note; no open alert for this source"}},
		{name: "empty note", decision: emptyNote, took: true, step: stepStore,
			want: ingestOutcome{Status: db.InboundIgnored, Detail: "rule note; the note is empty"}},
		{name: "change event", failure: "Change event: deployed", failStatus: db.InboundChange, took: true,
			step: stepStore, want: ingestOutcome{Status: db.InboundChange, Detail: "Change event: deployed"}},
	}
	seen := map[db.InboundStatus]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := planIngest(integ, tt.decision, tt.failure, tt.failStatus, nil)
			if plan.Step != tt.step {
				t.Fatalf("step %d, want %d", plan.Step, tt.step)
			}
			if !reflect.DeepEqual(plan.PolicyID, tt.policyID) {
				t.Fatalf("policy %v, want %v", plan.PolicyID, tt.policyID)
			}
			if tt.step != stepStore && tt.step != stepPulse && plan.Fields != tt.decision.Fields {
				t.Fatalf("fields %+v, want %+v", plan.Fields, tt.decision.Fields)
			}
			if got, want := plan.genericOnly(), tt.step == stepAcknowledge || tt.step == stepNote || tt.step == stepPulse || (tt.took && tt.decision.Route.NamesRecipients()); got != want {
				t.Fatalf("generic only: %v, want %v", got, want)
			}
			if got := plan.outcome(tt.took); got != tt.want {
				t.Fatalf("outcome\n got %+v\nwant %+v", got, tt.want)
			}
			if got, want := plan.pagesOwnRecipients(), tt.took && tt.decision.Route.NamesRecipients(); got != want {
				t.Fatalf("pages own recipients: %v, want %v", got, want)
			}
			seen[tt.want.Status] = true
		})
	}
	// PENDING is a message not yet decided, never an outcome.
	for _, s := range []db.InboundStatus{db.InboundOpened, db.InboundAppended, db.InboundClosed, db.InboundIgnored,
		db.InboundFiltered, db.InboundMappingFailed, db.InboundRefused, db.InboundPulse,
		db.InboundAcknowledged, db.InboundNoteAdded, db.InboundChange} {
		if !seen[s] {
			t.Errorf("no case ends as %s", s)
		}
	}
}

// A pulse counts under its sourceName, or the default key without one,
// names the key's missed-pulse alert by source id, and carries the
// integration's window, never joins a group; Detectify speaks of
// profiles and scans.
func TestPlanIngestPulse(t *testing.T) {
	hours := 24
	for _, tt := range []struct {
		name       string
		integ      *db.Integration
		sourceName string
		key, entry string
		hours      int
	}{
		{"watched Detectify profile", &db.Integration{Type: rules.TypeDetectify, ScanHeartbeatHours: &hours, Grouping: &rules.Grouping{WindowMinutes: 5}}, "app.example.com",
			"app.example.com", "Closed: a completed scan came for profile app.example.com", 24},
		{"unwatched, no sourceName", &db.Integration{Type: rules.TypeGeneric}, "", "default", "Closed: a pulse came for key default", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := rules.Decision{Action: rules.ActionPulse, Fields: rules.Fields{SourceID: "sha256:x", SourceName: tt.sourceName}, Detail: "rule scans"}
			p := planIngest(tt.integ, d, "", "", nil)
			if p.Step != stepPulse || p.PulseKey != tt.key || p.PulseHours != tt.hours || p.Fields.SourceID != "scan-heartbeat:"+tt.key ||
				p.Then.EntryText != tt.entry || p.Group != nil || !p.genericOnly() || p.Step != stepPulse {
				t.Fatalf("plan %+v", p)
			}
		})
	}
}

// A maintenance window covering the integration changes only what the
// opening does about paging; a duplicate and a close are as without it.
func TestPlanIngestHoldsPagingUnderMaintenance(t *testing.T) {
	policy := 3
	integ := &db.Integration{ID: 1, EscalationPolicyID: &policy}
	fields := rules.Fields{SourceID: "finding-1"}
	hold := &suppression{WindowID: 5, Name: "deploy", Until: time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC), Page: true}
	open := rules.Decision{Action: rules.ActionOpen, Fields: fields, Detail: "rule high"}
	plan := planIngest(integ, open, "", "", hold)
	want := ingestOutcome{Status: db.InboundOpened, Detail: "rule high", Entry: db.LogOpened,
		EntryText: `Opened: rule high; opened during maintenance window "deploy": not paged`, HoldPaging: true}
	if got := plan.outcome(true); got != want {
		t.Fatalf("opened under maintenance\n got %+v\nwant %+v", got, want)
	}
	if plain := planIngest(integ, open, "", "", nil); plan.outcome(false) != plain.outcome(false) {
		t.Fatalf("appended under maintenance %+v, want %+v", plan.outcome(false), plain.outcome(false))
	}
	if plan.Hold != hold || !plan.holdsPaging() {
		t.Fatal("the plan does not name the window holding its paging")
	}
	closing := rules.Decision{Action: rules.ActionClose, Fields: fields, Detail: "rule fixed"}
	c, plain := planIngest(integ, closing, "", "", hold), planIngest(integ, closing, "", "", nil)
	if c.holdsPaging() || c.outcome(true) != plain.outcome(true) {
		t.Fatalf("a close under maintenance differs: %+v", c)
	}
}

// The paging delay and auto-close are part of the decision: an opened
// alert carries both, an append neither, and a routed alert waits too.
func TestPlanIngestCarriesDelayAndAutoClose(t *testing.T) {
	quiet := 30
	integ := &db.Integration{ID: 1, PageDelayMinutes: 5, AutoCloseAfterMinutes: &quiet}
	open := rules.Decision{Action: rules.ActionOpen, Fields: rules.Fields{SourceID: "x"}, Detail: "rule high",
		Route: rules.Route{RecipientUserIDs: []int{7}}}
	plan := planIngest(integ, open, "", "", nil)
	if plan.PageDelayMinutes != 5 || plan.DelayEntry != "Paging in 5 minutes" || plan.AutoCloseMinutes != 30 {
		t.Fatalf("plan %+v", plan)
	}
	if !plan.Then.WatchSilence || plan.Else.WatchSilence || plan.Else.StartPaging {
		t.Fatalf("outcomes %+v / %+v", plan.Then, plan.Else)
	}
	off := planIngest(&db.Integration{ID: 1}, open, "", "", nil)
	if off.PageDelayMinutes != 0 || off.DelayEntry != "" || off.AutoCloseMinutes != 0 || off.Then.WatchSilence {
		t.Fatalf("plan without flap control %+v", off)
	}
}

// A maintenance window holds an opened alert's paging but not its
// auto-close: the alert still closes after its silence.
func TestPlanIngestHoldKeepsAutoClose(t *testing.T) {
	quiet := 30
	integ := &db.Integration{ID: 1, PageDelayMinutes: 5, AutoCloseAfterMinutes: &quiet}
	hold := &suppression{WindowID: 5, Name: "deploy", Until: time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC), Page: true}
	open := rules.Decision{Action: rules.ActionOpen, Fields: rules.Fields{SourceID: "x"}, Detail: "rule high"}
	plan := planIngest(integ, open, "", "", hold)
	if !plan.Then.HoldPaging || plan.Then.StartPaging || !plan.Then.WatchSilence || plan.AutoCloseMinutes != 30 {
		t.Fatalf("held plan %+v", plan)
	}
}
