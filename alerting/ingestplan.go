package alerting

import (
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// The decision what an inbound message does is made here alone; the
// executors (bun in ingest.go, prepared statements on SQLite, one
// statement per message on PostgreSQL) only carry out its plan, so a rule
// change cannot drift between databases. Where the outcome hangs on the
// database (is an alert for the source already open?), the plan names
// both branches and the executor takes the one the database answers.

// ingestStep is what a plan asks of the alerts before the message is
// stored.
type ingestStep int

const (
	// stepStore touches no alert: the message is stored with outcome Then.
	stepStore ingestStep = iota
	// stepOpenOrAppend inserts an alert for the source unless one is
	// open (Then), and otherwise appends to the open one (Else). The
	// unique index of open alerts decides, so it holds under any
	// concurrency.
	stepOpenOrAppend
	// stepClose closes the source's open alert (Then), or finds none
	// (Else).
	stepClose
)

// ingestOutcome is what a message becomes on one branch of its step.
//
// An outcome with a timeline entry is about the step's alert: the message
// links to it. Every stored message publishes its inbound event; an
// outcome with a timeline entry publishes the alert's event of the
// entry's type after it, in the same transaction.
type ingestOutcome struct {
	Status db.InboundStatus
	Detail string
	// Entry is the alert's timeline entry type, empty when the message
	// leaves no entry; EntryText is its message.
	Entry     db.AlertLogType
	EntryText string
	// StartPaging enqueues the alert's first escalation (when it has a
	// policy or recipients to page), after storing the route's own
	// recipients.
	StartPaging bool
	// CancelJobs drops the alert's pending escalation and notification
	// jobs.
	CancelJobs bool
}

// ingestPlan is the effects of one inbound message.
type ingestPlan struct {
	Step ingestStep
	// Fields are the alert's fields (stepOpenOrAppend); Fields.SourceID
	// names the alert for either step.
	Fields rules.Fields
	// PolicyID is the escalation policy an opened alert follows, Route
	// the matching rule's own recipients.
	PolicyID *int
	Route    rules.Route
	// Then is the outcome of stepStore, and of the other steps when their
	// write took effect; Else when the database found otherwise.
	Then, Else ingestOutcome
	// Group, set when the integration groups, puts an opened alert into
	// its group (Then.joined when another alert leads it), and ends the
	// group of a closed alert that led one (see grouping.go).
	Group *groupPlan
}

// planIngest decides what a message does. failure, when set, is why its
// body may not act (a refused signature, a mapping failure), and
// failStatus what it is logged as.
func planIngest(integ *db.Integration, d rules.Decision, failure string, failStatus db.InboundStatus) ingestPlan {
	p := planAction(integ, d, failure, failStatus)
	if g := integ.Grouping; g != nil && (p.Step == stepOpenOrAppend || p.Step == stepClose) {
		p.Group = &groupPlan{Key: d.GroupKey, Window: time.Duration(g.WindowMinutes) * time.Minute}
	}
	return p
}

func planAction(integ *db.Integration, d rules.Decision, failure string, failStatus db.InboundStatus) ingestPlan {
	if failure != "" {
		return ingestPlan{Step: stepStore, Then: ingestOutcome{Status: failStatus, Detail: failure}}
	}
	switch d.Action {
	case rules.ActionOpen:
		return ingestPlan{
			Step:     stepOpenOrAppend,
			Fields:   d.Fields,
			PolicyID: policyFor(integ, d.Route),
			Route:    d.Route,
			Then: ingestOutcome{Status: db.InboundOpened, Detail: d.Detail,
				Entry: db.LogOpened, EntryText: "Opened: " + d.Detail, StartPaging: true},
			Else: ingestOutcome{Status: db.InboundAppended, Detail: d.Detail,
				Entry: db.LogAppended, EntryText: "Duplicate message appended"},
		}
	case rules.ActionClose:
		return ingestPlan{
			Step:   stepClose,
			Fields: d.Fields,
			Then: ingestOutcome{Status: db.InboundClosed, Detail: d.Detail,
				Entry: db.LogClosed, EntryText: "Closed: " + d.Detail, CancelJobs: true},
			Else: ingestOutcome{Status: db.InboundIgnored, Detail: d.Detail + "; no open alert for this source"},
		}
	case rules.ActionIgnore:
		return ingestPlan{Step: stepStore, Then: ingestOutcome{Status: db.InboundFiltered, Detail: d.Detail}}
	default:
		return ingestPlan{Step: stepStore, Then: ingestOutcome{Status: db.InboundIgnored, Detail: d.Detail}}
	}
}

// outcome is the branch the database's answer selects: took says the
// step's write took effect.
func (p *ingestPlan) outcome(took bool) ingestOutcome {
	if took || p.Step == stepStore {
		return p.Then
	}
	return p.Else
}

// pagesOwnRecipients says that opening the alert stores recipients named
// by the rule, which only the generic executor does.
func (p *ingestPlan) pagesOwnRecipients() bool {
	return p.Step == stepOpenOrAppend && p.Then.StartPaging && p.Route.NamesRecipients()
}

// policyFor is the escalation policy an opened alert follows: the
// matching rule's, else the integration's.
func policyFor(integ *db.Integration, route rules.Route) *int {
	if route.EscalationPolicyID != 0 {
		return &route.EscalationPolicyID
	}
	return integ.EscalationPolicyID
}
