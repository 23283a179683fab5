package server_test

import (
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

const replayQuery = `query($id: ID!, $rules: [RuleInput!]!, $from: Time!, $to: Time!) {
	replayRuleset(integrationId: $id, ruleset: {rules: $rules}, from: $from, to: $to) {
		messages before { status count } after { status count }
		notOpened { sourceId subject openedBefore openedAfter } notOpenedTotal
		openedInAddition { sourceId } openedInAdditionTotal
		changes { before after count examples { messageId receivedAt before after rule { position name action } } } } }`

type outcomeCount struct {
	Status string `json:"status"`
	Count  int    `json:"count"`
}

type rulesetReplay struct {
	Messages  int            `json:"messages"`
	Before    []outcomeCount `json:"before"`
	After     []outcomeCount `json:"after"`
	NotOpened []struct {
		SourceID     string `json:"sourceId"`
		Subject      string `json:"subject"`
		OpenedBefore int    `json:"openedBefore"`
		OpenedAfter  int    `json:"openedAfter"`
	} `json:"notOpened"`
	NotOpenedTotal        int `json:"notOpenedTotal"`
	OpenedInAdditionTotal int `json:"openedInAdditionTotal"`
	Changes               []struct {
		Before, After string
		Count         int
		Examples      []struct {
			MessageID string `json:"messageId"`
			Before    string `json:"before"`
			After     string `json:"after"`
			Rule      *struct {
				Position int    `json:"position"`
				Name     string `json:"name"`
				Action   string `json:"action"`
			} `json:"rule"`
		} `json:"examples"`
	} `json:"changes"`
}

// TestReplayRulesetOverGraphQL replays a Detectify log under a ruleset
// that opens only critical findings, and refuses bad input with codes.
func TestReplayRulesetOverGraphQL(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		integ := h.createIntegration("DETECTIFY")
		from := time.Now().UTC().Add(-time.Minute)
		h.postWebhook(integ.Token(t), finding("crit-1", "critical"))
		high := h.postWebhook(integ.Token(t), finding("high-1", "high"))
		h.postWebhook(integ.Token(t), finding("high-1", "low"))
		to := time.Now().UTC().Add(time.Minute)
		criticalOnly := []map[string]any{
			{"name": "Open critical", "action": "OPEN", "conditions": []map[string]any{{"field": "severity", "op": "EQUALS", "value": "critical"}}},
			{"name": "Close low", "action": "CLOSE", "conditions": []map[string]any{{"field": "severity", "op": "EQUALS", "value": "low"}}},
		}
		vars := map[string]any{"id": integ.ID, "rules": criticalOnly, "from": from, "to": to}
		var data struct {
			Replay rulesetReplay `json:"replayRuleset"`
		}
		h.mustGQL(h.admin.Token, replayQuery, vars, &data)
		r := data.Replay
		wantBefore := []outcomeCount{{"MAPPED_CLOSED", 1}, {"MAPPED_OPENED", 2}}
		wantAfter := []outcomeCount{{"MAPPED_IGNORED", 2}, {"MAPPED_OPENED", 1}}
		if r.Messages != 3 || !equalCounts(r.Before, wantBefore) || !equalCounts(r.After, wantAfter) {
			t.Fatalf("messages %d, before %v, after %v; want 3, %v, %v", r.Messages, r.Before, r.After, wantBefore, wantAfter)
		}
		if r.NotOpenedTotal != 1 || len(r.NotOpened) != 1 || r.NotOpened[0].SourceID != "high-1" || r.NotOpened[0].Subject != "Finding high-1" ||
			r.NotOpened[0].OpenedBefore != 1 || r.NotOpened[0].OpenedAfter != 0 || r.OpenedInAdditionTotal != 0 {
			t.Fatalf("not opened %+v (%d), opened in addition %d", r.NotOpened, r.NotOpenedTotal, r.OpenedInAdditionTotal)
		}
		// The high finding no longer opens: no rule matches it. Its low
		// message then closes nothing and matches rule 2.
		for _, c := range r.Changes {
			e := c.Examples[0]
			switch {
			case c.Before == "MAPPED_OPENED" && c.After == "MAPPED_IGNORED":
				if e.MessageID != high.MessageID || e.Rule != nil {
					t.Errorf("opened → ignored example %+v, want message %s and no rule", e, high.MessageID)
				}
			case c.Before == "MAPPED_CLOSED" && c.After == "MAPPED_IGNORED":
				if e.Rule == nil || e.Rule.Position != 2 || e.Rule.Name != "Close low" || e.Rule.Action != "CLOSE" {
					t.Errorf("closed → ignored example %+v, want rule 2 Close low", e)
				}
			default:
				t.Errorf("unexpected change %s → %s", c.Before, c.After)
			}
		}
		if len(r.Changes) != 2 {
			t.Errorf("%d changes, want 2", len(r.Changes))
		}

		unknown := map[string]any{"id": "999999", "rules": criticalOnly, "from": from, "to": to}
		h.wantGQLError(h.admin.Token, replayQuery, unknown, "NOT_FOUND")
		empty := map[string]any{"id": integ.ID, "rules": criticalOnly, "from": to, "to": from}
		if e := h.wantGQLError(h.admin.Token, replayQuery, empty, "BAD_USER_INPUT"); e.Extensions.Field != "to" {
			t.Errorf("from after to: field %q, want to", e.Extensions.Field)
		}
		broken := map[string]any{"id": integ.ID, "rules": []map[string]any{{"action": "OPEN", "conditions": []map[string]any{{"op": "EQUALS", "value": "x"}}}},
			"from": from, "to": to}
		if e := h.wantGQLError(h.admin.Token, replayQuery, broken, "BAD_USER_INPUT"); e.Extensions.Field != "ruleset.rules[0].conditions[0].field" {
			t.Errorf("a condition without field or path: field %q", e.Extensions.Field)
		}
	})
}

func equalCounts(got, want []outcomeCount) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
