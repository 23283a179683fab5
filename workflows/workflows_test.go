package workflows_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/rules"
)

const issueBody = `{"title": {{json .Alert.Subject}}, "severity": {{json .Alert.Severity}}, "integration": {{json .Integration}}, "link": {{json .Link}}, "by": {{json .Actor}}}`

// An alert that opens queues the workflow's request in its own
// transaction; the engine posts the rendered body, signed as a receiver
// checks it, and the attempt is on the alert's timeline.
func TestOpenedAlertPostsSignedRenderedBody(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.workflow("issue", &f.integ.ID, []db.WorkflowEvent{db.WorkflowOpened}, nil, issueBody)
		alertID := f.open(f.integ, "db-1", "critical")
		if got := f.receive.got(); len(got) != 0 || f.jobs() != 1 {
			t.Fatalf("before the engine ran: %d requests, %d jobs; want 0 and 1 queued", len(got), f.jobs())
		}
		f.run(f.svc)
		got := f.receive.got()
		if len(got) != 1 {
			t.Fatalf("%d requests, want 1", len(got))
		}
		req := got[0]
		var body map[string]string
		if err := json.Unmarshal([]byte(req.Body), &body); err != nil {
			t.Fatalf("body %q is not the rendered JSON: %v", req.Body, err)
		}
		want := map[string]string{"title": "disk full on db-1", "severity": "critical", "integration": "checks",
			"link": fmt.Sprintf("https://klaxon.example/alerts/%d", alertID), "by": ""}
		if fmt.Sprint(body) != fmt.Sprint(want) {
			t.Fatalf("body %v, want %v", body, want)
		}
		if h := req.Header.Get("X-Alert"); h != fmt.Sprintf("%d OPENED", alertID) {
			t.Fatalf("X-Alert header %q", h)
		}
		err := notifiers.VerifyWebhookSignature(secret, req.Header.Get(notifiers.WebhookTimestampHeader), req.Body,
			req.Header.Get(notifiers.WebhookSignatureHeader), time.Now(), 5*time.Minute)
		if err != nil {
			t.Fatalf("signature: %v", err)
		}
		if err := notifiers.VerifyWebhookSignature("another secret", req.Header.Get(notifiers.WebhookTimestampHeader), req.Body,
			req.Header.Get(notifiers.WebhookSignatureHeader), time.Now(), 5*time.Minute); err == nil {
			t.Fatal("the signature verifies under any secret")
		}
		entries := f.entries(alertID)
		if len(entries) != 1 || !containsAll(entries[0], `Workflow "issue" (OPENED) attempt 1: POST`, "answered 200") {
			t.Fatalf("timeline %q", entries)
		}
		if f.jobs() != 0 || f.run(f.svc) != 0 || len(f.receive.got()) != 1 {
			t.Fatal("the request was sent again")
		}
	})
}

// A receiver that fails is tried again after 1 and then 5 minutes, and
// each attempt is on the timeline; nothing is sent before its time.
func TestFailingReceiverIsRetriedWithBackoff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.receive.answers = []int{503, 500}
		f.workflow("issue", nil, []db.WorkflowEvent{db.WorkflowOpened}, nil, issueBody)
		alertID := f.open(f.integ, "db-1", "critical")
		f.run(f.svc)
		steps := []struct {
			advance time.Duration
			sent    int
		}{{0, 1}, {59 * time.Second, 1}, {time.Second, 2}, {4 * time.Minute, 2}, {time.Minute, 3}, {time.Hour, 3}}
		for i, s := range steps {
			f.clock.Advance(s.advance)
			f.run(f.svc)
			if n := len(f.receive.got()); n != s.sent {
				t.Fatalf("step %d: %d requests, want %d", i, n, s.sent)
			}
		}
		entries := f.entries(alertID)
		if len(entries) != 3 ||
			!containsAll(entries[0], "attempt 1", "answered 503", "next attempt in 1m0s") ||
			!containsAll(entries[1], "attempt 2", "answered 500", "next attempt in 5m0s") ||
			!containsAll(entries[2], "attempt 3", "answered 200") {
			t.Fatalf("timeline %q", entries)
		}
	})
}

// After the last retry the request is given up, on the timeline.
func TestRequestIsGivenUpAfterTheLastRetry(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.receive.answers = []int{500, 500, 500, 500, 500, 500, 500}
		f.workflow("issue", nil, []db.WorkflowEvent{db.WorkflowOpened}, nil, issueBody)
		alertID := f.open(f.integ, "db-1", "critical")
		for range 10 {
			f.run(f.svc)
			f.clock.Advance(3 * time.Hour)
		}
		entries := f.entries(alertID)
		if len(f.receive.got()) != 5 || len(entries) != 5 || !strings.HasSuffix(entries[4], "; given up") || f.jobs() != 0 {
			t.Fatalf("%d requests, timeline %q, %d jobs left", len(f.receive.got()), entries, f.jobs())
		}
	})
}

// Conditions on the alert's fields decide which alerts a workflow sends
// for.
func TestConditionsFilterAlerts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.workflow("critical", nil, []db.WorkflowEvent{db.WorkflowOpened},
			[]rules.Condition{{Field: "severity", Op: rules.OpEquals, Value: "critical"}}, issueBody)
		high := f.open(f.integ, "web-1", "high")
		critical := f.open(f.integ, "db-1", "critical")
		f.run(f.svc)
		got := f.receive.got()
		if len(got) != 1 || !strings.Contains(got[0].Body, "db-1") {
			t.Fatalf("requests %v, want one for the critical alert", got)
		}
		if len(f.entries(high)) != 0 || len(f.entries(critical)) != 1 {
			t.Fatal("timelines do not match the requests")
		}
	})
}

// A global workflow and one on the integration both send for its alert;
// one on another integration does not.
func TestGlobalAndIntegrationWorkflowsBothFire(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.workflow("global", nil, []db.WorkflowEvent{db.WorkflowOpened}, nil, issueBody)
		f.workflow("mine", &f.integ.ID, []db.WorkflowEvent{db.WorkflowOpened}, nil, issueBody)
		f.workflow("theirs", &f.other.ID, []db.WorkflowEvent{db.WorkflowOpened}, nil, issueBody)
		f.open(f.integ, "db-1", "high")
		f.run(f.svc)
		var paths []string
		for _, r := range f.receive.got() {
			paths = append(paths, r.Path)
		}
		if fmt.Sprint(paths) != "[/global /mine]" && fmt.Sprint(paths) != "[/mine /global]" {
			t.Fatalf("requests to %v, want /global and /mine", paths)
		}
	})
}

// Acknowledging, adding a note and closing each send
// the workflows that follow them, naming who did it.
func TestEachChangeSendsWithItsActor(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		alertID := f.open(f.integ, "db-1", "high")
		f.open(f.integ, "db-1", "high")
		// Created after the alert opened: the acknowledgement is the first
		// change to read the workflows, inside its own transaction.
		f.workflow("lifecycle", nil, []db.WorkflowEvent{db.WorkflowAcknowledged, db.WorkflowNoteAdded, db.WorkflowClosed}, nil,
			`{{.Event}} by {{.Actor}} status {{.Alert.Status}}`)
		if _, err := f.svc.Acknowledge(f.ctx, alertID, f.userID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.AddNote(f.ctx, alertID, f.userID, "looking"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Close(f.ctx, alertID, f.userID); err != nil {
			t.Fatal(err)
		}
		f.run(f.svc)
		var bodies []string
		for _, r := range f.receive.got() {
			bodies = append(bodies, r.Body)
		}
		want := []string{"ACKNOWLEDGED by Ada", "NOTE_ADDED by Ada", "CLOSED by Ada"}
		if len(bodies) != len(want) {
			t.Fatalf("bodies %q, want %q", bodies, want)
		}
		for _, w := range want {
			if !strings.Contains(strings.Join(bodies, "|"), w) {
				t.Fatalf("bodies %q lack %q", bodies, w)
			}
		}
	})
}

// Two instances share the queue: while one is sending, the other takes
// nothing; a restart between attempts neither repeats an attempt nor
// loses the next.
func TestInstancesAndRestartsSendEachAttemptOnce(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		f.workflow("issue", nil, []db.WorkflowEvent{db.WorkflowOpened}, nil, issueBody)
		f.receive.answers = []int{503}
		f.receive.hold, f.receive.arrived = make(chan struct{}), make(chan struct{})
		alertID := f.open(f.integ, "db-1", "critical")
		_, second := f.instance()
		done := make(chan int)
		go func() { n, _ := f.svc.RunDueJobs(f.ctx); done <- n }()
		<-f.receive.arrived
		if n := f.run(second); n != 0 {
			t.Fatalf("the second instance ran %d jobs while the first was sending", n)
		}
		close(f.receive.hold)
		<-done
		f.receive.mu.Lock()
		f.receive.hold = nil
		f.receive.mu.Unlock()

		// A restart: a new instance over the same database.
		_, restarted := f.instance()
		f.run(restarted)
		if n := len(f.receive.got()); n != 1 {
			t.Fatalf("%d requests before the retry is due, want 1", n)
		}
		f.clock.Advance(time.Minute)
		f.run(restarted)
		f.run(second)
		if n := len(f.receive.got()); n != 2 {
			t.Fatalf("%d requests, want 2 (the failed attempt and its retry)", n)
		}
		if entries := f.entries(alertID); len(entries) != 2 {
			t.Fatalf("timeline %q", entries)
		}
	})
}

// The database goes away while a request is out: the attempt is
// recorded once it is back, and the request is not made again when the
// job's lease would have run out.
func TestRequestSentWhileTheDatabaseGoesAwayIsRecordedOnce(t *testing.T) {
	d, relay := dbtest.PostgresBehindRelay(t)
	f := newFixture(t, d)
	f.workflow("issue", nil, []db.WorkflowEvent{db.WorkflowOpened}, nil, issueBody)
	alertID := f.open(f.integ, "db-1", "critical")
	f.receive.during = relay.Cut
	_, err := f.svc.RunDueJobs(f.ctx)
	relay.Restore()
	if !errors.Is(err, db.ErrUnavailable) {
		t.Fatalf("run due jobs that lost the database mid-send: %v, want ErrUnavailable", err)
	}
	f.receive.mu.Lock()
	f.receive.during = nil
	f.receive.mu.Unlock()
	f.run(f.svc)
	f.clock.Advance(3 * time.Hour)
	f.run(f.svc)
	if n := len(f.receive.got()); n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
	if entries := f.entries(alertID); len(entries) != 1 || !strings.Contains(entries[0], "answered 200") || f.jobs() != 0 {
		t.Fatalf("timeline %q, %d jobs left", entries, f.jobs())
	}
}

// A step after the first is an escalation; the first page, as the alert
// opens, is not.
func TestLaterStepsAreEscalations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		name := "two steps"
		policy, err := policies.NewStore(d, f.clock.Now, nil).CreateEscalationPolicy(f.ctx, policies.PolicyInput{Name: &name,
			Steps: []policies.StepInput{
				{DelayMinutes: 10, Targets: []db.Target{{Type: db.TargetUser, ID: f.userID}}},
				{DelayMinutes: 10, Targets: []db.Target{{Type: db.TargetUser, ID: f.userID}}},
			}})
		if err != nil {
			t.Fatal(err)
		}
		integName, typ := "paged", rules.TypeGeneric
		integ, err := integrations.NewStore(d, "https://klaxon.example", f.clock.Now, nil).CreateIntegration(f.ctx,
			integrations.IntegrationInput{Name: &integName, Type: &typ, EscalationPolicyID: &policy.ID})
		if err != nil {
			t.Fatal(err)
		}
		f.workflow("escalations", &integ.ID, []db.WorkflowEvent{db.WorkflowEscalated}, nil, `{{.Event}} {{.Alert.ID}}`)
		alertID := f.open(integ, "db-1", "high")
		f.run(f.svc)
		if n := len(f.receive.got()); n != 0 {
			t.Fatalf("%d requests after the first step, want 0", n)
		}
		f.clock.Advance(10 * time.Minute)
		f.run(f.svc)
		f.run(f.svc)
		got := f.receive.got()
		if len(got) != 1 || got[0].Body != fmt.Sprintf("ESCALATED %d", alertID) {
			t.Fatalf("requests %+v, want one ESCALATED", got)
		}
	})
}
