package main

import (
	"context"
	"fmt"
)

// Check is the comparison of what the server stored with what it
// answered. OK is false when anything answered 2xx is missing, or when
// anything is there twice.
type Check struct {
	OK bool `json:"ok"`
	// Accepted is the number of webhooks answered 2xx; Unsure those
	// answered otherwise or not at all, which may or may not be stored.
	Accepted int `json:"accepted"`
	Unsure   int `json:"unsure"`
	// InboundLog is the number of entries in the integration's inbound log.
	InboundLog int `json:"inboundLog"`
	// Alerts is every alert of the integration; OpenAlerts the unclosed ones,
	// and ExpectedOpen the findings the tool opened and did not close.
	Alerts       int      `json:"alerts"`
	OpenAlerts   int      `json:"openAlerts"`
	ExpectedOpen int      `json:"expectedOpen"`
	Problems     []string `json:"problems,omitempty"`
	// MoreProblems counts the problems not listed.
	MoreProblems int `json:"moreProblems,omitempty"`
}

const maxListedProblems = 20

func (c *Check) problem(format string, args ...any) {
	c.OK = false
	if len(c.Problems) < maxListedProblems {
		c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
		return
	}
	c.MoreProblems++
}

// verify reads the integration's inbound log and alerts back over GraphQL
// and compares them with the replies and the tool's own record of each
// finding.
func verify(ctx context.Context, a *api, integrationID string, o *outcome, state map[string]finding) (*Check, error) {
	c := &Check{OK: true, Accepted: len(o.accepted), Unsure: o.unsure}

	logged, total, err := a.inboundMessages(ctx, integrationID)
	if err != nil {
		return nil, err
	}
	c.InboundLog = len(logged)
	if !total.matches(len(logged)) {
		c.problem("inbound log: totalCount is %s but paging returned %d entries", total, len(logged))
	}
	stored := make(map[string]string, len(logged))
	for _, m := range logged {
		if _, dup := stored[m.ID]; dup {
			c.problem("inbound log: message %s listed twice", m.ID)
		}
		stored[m.ID] = m.Status
	}
	answered := make(map[string]bool, len(o.accepted))
	lost := 0
	for _, acc := range o.accepted {
		if answered[acc.messageID] {
			c.problem("doubled: two webhooks were answered with message id %s", acc.messageID)
		}
		answered[acc.messageID] = true
		status, ok := stored[acc.messageID]
		switch {
		case !ok:
			lost++
			c.problem("lost: message %s (%s for finding %s) was answered 2xx but is not in the inbound log", acc.messageID, acc.kind, acc.finding)
		case status != acc.status:
			c.problem("inbound log: message %s is %s but was answered %s", acc.messageID, status, acc.status)
		}
	}
	// Unexpected replies come after losses: a lost opening makes every
	// later repeat of its finding open again, and those echoes must not
	// crowd the cause out of the listed problems.
	for _, u := range o.unexpected {
		c.problem("%s", u)
	}
	// Messages the tool got no 2xx for may have been stored all the same
	// (a reply lost on the way back); more than that is something stored
	// twice or from nowhere.
	if extra := len(stored) - (len(answered) - lost); extra > c.Unsure {
		c.problem("doubled: %d inbound messages were never answered 2xx, but only %d webhooks went without a 2xx", extra, c.Unsure)
	}

	alerts, total, err := a.alerts(ctx, integrationID)
	if err != nil {
		return nil, err
	}
	c.Alerts = len(alerts)
	if !total.matches(len(alerts)) {
		c.problem("alerts: totalCount is %s but paging returned %d", total, len(alerts))
	}
	bySource := map[string][]alertNode{}
	for _, al := range alerts {
		bySource[al.SourceID] = append(bySource[al.SourceID], al)
		if al.Status != "CLOSED" {
			c.OpenAlerts++
		}
		if _, known := state[al.SourceID]; !known {
			c.problem("alert %s is for finding %q, which the tool never sent", al.ID, al.SourceID)
		}
	}
	for id, f := range state {
		als := bySource[id]
		if len(als) > 1 {
			c.problem("doubled: finding %s has %d alerts", id, len(als))
			continue
		}
		if f.unsure || !f.opened {
			continue
		}
		if !f.closed {
			c.ExpectedOpen++
		}
		if len(als) == 0 {
			c.problem("lost: finding %s was opened (2xx) but has no alert", id)
			continue
		}
		al := als[0]
		switch {
		case f.closed && al.Status != "CLOSED":
			c.problem("lost: finding %s was closed (2xx) but its alert %s is %s", id, al.ID, al.Status)
		case !f.closed && al.Status == "CLOSED":
			c.problem("finding %s was never closed but its alert %s is CLOSED", id, al.ID)
		}
		switch {
		case f.unsureAppends && al.AppendCount < f.appends:
			c.problem("lost: finding %s had %d repeats appended (2xx) but its alert %s counts %d", id, f.appends, al.ID, al.AppendCount)
		case !f.unsureAppends && al.AppendCount != f.appends:
			c.problem("finding %s had %d repeats appended (2xx) but its alert %s counts %d", id, f.appends, al.ID, al.AppendCount)
		}
	}
	return c, nil
}
