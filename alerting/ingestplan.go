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
	// stepPulse counts a pulse of PulseKey and queues the key's deadline
	// (see scanheartbeat.go), then closes the key's missed-pulse alert
	// (Then), or finds none open (Else).
	stepPulse
	// stepAcknowledge acknowledges the source's open alert on behalf of
	// the sender (Then), or finds none that is not acknowledged already
	// (Else). Only the generic executor carries it out.
	stepAcknowledge
	// stepNote adds a note to the source's open alert (Then), or finds
	// none (Else). Only the generic executor carries it out.
	stepNote
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
	// HoldPaging stores the route's own recipients but, instead of the
	// first escalation, queues the start of paging for when the plan's
	// maintenance window ends (see holdPaging). It leaves WatchSilence
	// alone: a held alert still closes after its silence.
	HoldPaging bool
	// CancelJobs drops the alert's pending jobs. When its first step was
	// still held back by the paging delay, the timeline also says it
	// closed before paging (a LogNotPaged entry after the outcome's).
	CancelJobs bool
	// WatchSilence enqueues the alert's auto-close job, due when the
	// plan's AutoCloseMinutes pass without a message. Appends do not
	// move it: the job looks at last_seen_at when it runs and puts
	// itself off if a message came meanwhile.
	WatchSilence bool
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
	// Hold is the maintenance window covering the integration, nil if
	// none: an alert opened under it is not paged.
	Hold *suppression
	// Then is the outcome of stepStore, and of the other steps when their
	// write took effect; Else when the database found otherwise.
	Then, Else ingestOutcome
	// Group, set when the integration groups, puts an opened alert into
	// its group (Then.joined when another alert leads it), and ends the
	// group of a closed alert that led one (see grouping.go).
	Group *groupPlan
	// PageDelayMinutes holds an opened alert's first escalation back
	// that long; DelayEntry is the timeline entry saying so, written
	// after the outcome's when a first step was queued ("" without a
	// delay).
	PageDelayMinutes int
	DelayEntry       string
	// AutoCloseMinutes is how long an opened alert may go without a
	// message before it closes; 0 never closes it.
	AutoCloseMinutes int

	// PulseKey is the key a stepPulse counts under; PulseHours the
	// integration's scanHeartbeatHours, 0 when it watches no pulses.
	PulseKey   string
	PulseHours int
	// RegressionDays is how far back an opened alert looks for the
	// source's closed alert it brings back (see regression.go); 0 does
	// not look.
	RegressionDays int
	// DueDays is the remediation deadline of the mapped severity in days,
	// 0 for none: an opened alert is due that long after it opened (see
	// remediation.go).
	DueDays int
	// RaiseRank, when not 0, is the rank of the mapped severity: an
	// append that outranks the alert's severity raises it, and pulls its
	// due time in to DueDays after it opened when that is earlier. It is
	// set when the integration has deadlines.
	RaiseRank int
	// Watched says a workflow could follow the alert: the generic path,
	// which queues workflows where it records each event, carries the
	// plan out.
	Watched bool
}

// pageAt is when an alert opened at now takes its first step.
func (p *ingestPlan) pageAt(now time.Time) time.Time {
	return now.Add(time.Duration(p.PageDelayMinutes) * time.Minute)
}

// autoCloseJob is the auto-close job of an alert opened at now.
func (p *ingestPlan) autoCloseJob(alertID int, now time.Time) *db.AlertJob {
	return &db.AlertJob{Kind: jobAutoClose, AlertID: alertID, RunAt: now.Add(time.Duration(p.AutoCloseMinutes) * time.Minute),
		DedupKey: autoCloseKey(alertID), CreatedAt: now}
}

// planIngest decides what a message does. failure, when set, is why its
// body may not act (a refused signature, a mapping failure), and
// failStatus what it is logged as.
// hold, when not nil, is the maintenance window covering the integration
// now.
func planIngest(integ *db.Integration, d rules.Decision, failure string, failStatus db.InboundStatus, hold *suppression) ingestPlan {
	p := planAction(integ, d, failure, failStatus, hold)
	if g := integ.Grouping; g != nil && (p.Step == stepOpenOrAppend || p.Step == stepClose) {
		p.Group = &groupPlan{Key: d.GroupKey, Window: time.Duration(g.WindowMinutes) * time.Minute}
	}
	return p
}

func planAction(integ *db.Integration, d rules.Decision, failure string, failStatus db.InboundStatus, hold *suppression) ingestPlan {
	if failure != "" {
		return ingestPlan{Step: stepStore, Then: ingestOutcome{Status: failStatus, Detail: failure}}
	}
	switch d.Action {
	case rules.ActionOpen:
		p := ingestPlan{
			Step:     stepOpenOrAppend,
			Fields:   d.Fields,
			PolicyID: policyFor(integ, d.Route),
			Route:    d.Route,
			Then: ingestOutcome{Status: db.InboundOpened, Detail: d.Detail,
				Entry: db.LogOpened, EntryText: "Opened: " + d.Detail, StartPaging: true},
			Else: ingestOutcome{Status: db.InboundAppended, Detail: d.Detail,
				Entry: db.LogAppended, EntryText: "Duplicate message appended"},
			// A rule's route changes who is paged, not when: its policy
			// waits out the integration's delay too.
			PageDelayMinutes: integ.PageDelayMinutes,
			RegressionDays:   integ.RegressionWindowDays,
		}
		if len(integ.Remediation) > 0 {
			p.DueDays = integ.Remediation.DaysFor(d.Fields.Severity)
			p.RaiseRank = rules.SeverityRank(d.Fields.Severity)
		}
		if integ.PageDelayMinutes > 0 {
			p.DelayEntry = "Paging in " + minutes(integ.PageDelayMinutes)
		}
		if n := integ.AutoCloseAfterMinutes; n != nil && *n > 0 {
			p.AutoCloseMinutes, p.Then.WatchSilence = *n, true
		}
		if hold != nil {
			// The alert is real and opens as usual; only its paging waits.
			p.Hold = hold
			p.Then.StartPaging, p.Then.HoldPaging = false, true
			p.Then.EntryText += hold.note()
		}
		return p
	case rules.ActionClose:
		return ingestPlan{
			Step:   stepClose,
			Fields: d.Fields,
			Then: ingestOutcome{Status: db.InboundClosed, Detail: d.Detail,
				Entry: db.LogClosed, EntryText: "Closed: " + d.Detail, CancelJobs: true},
			Else: ingestOutcome{Status: db.InboundIgnored, Detail: d.Detail + "; no open alert for this source"},
		}
	case rules.ActionAcknowledge:
		return ingestPlan{
			Step:   stepAcknowledge,
			Fields: d.Fields,
			Then: ingestOutcome{Status: db.InboundAcknowledged, Detail: d.Detail,
				Entry: db.LogAcknowledged, EntryText: "Acknowledged by the integration: " + d.Detail},
			Else: ingestOutcome{Status: db.InboundIgnored, Detail: d.Detail + "; " + alreadyAcknowledged},
		}
	case rules.ActionNote:
		if d.Fields.Details == "" {
			return ingestPlan{Step: stepStore, Then: ingestOutcome{Status: db.InboundIgnored, Detail: d.Detail + "; the note is empty"}}
		}
		return ingestPlan{
			Step:   stepNote,
			Fields: d.Fields,
			Then: ingestOutcome{Status: db.InboundNoteAdded, Detail: d.Detail,
				Entry: db.LogNote, EntryText: d.Fields.Details},
			Else: ingestOutcome{Status: db.InboundIgnored, Detail: d.Detail + "; no open alert for this source"},
		}
	case rules.ActionIgnore:
		return ingestPlan{Step: stepStore, Then: ingestOutcome{Status: db.InboundFiltered, Detail: d.Detail}}
	case rules.ActionPulse:
		key := pulseKey(d.Fields)
		what, pulse := pulseWords(integ.Type, key)
		p := ingestPlan{
			Step:     stepPulse,
			Fields:   rules.Fields{SourceID: scanHeartbeatSource(key)},
			PulseKey: key,
			Then: ingestOutcome{Status: db.InboundPulse, Detail: d.Detail + "; a pulse of " + what + ", which closes its missed-pulse alert",
				Entry: db.LogClosed, EntryText: "Closed: a " + pulse + " came for " + what, CancelJobs: true},
			Else: ingestOutcome{Status: db.InboundPulse, Detail: d.Detail + "; a pulse of " + what},
		}
		if h := integ.ScanHeartbeatHours; h != nil && *h > 0 {
			p.PulseHours = *h
		}
		return p
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

// holdsPaging says that the alert the plan may open is held back by a
// maintenance window, which only the generic executor carries out: it is
// rare, and the fast paths stay as they are for every other message.
func (p *ingestPlan) holdsPaging() bool {
	return p.Step == stepOpenOrAppend && p.Then.HoldPaging
}

// pagesOwnRecipients says that opening the alert stores recipients named
// by the rule, which only the generic executor does.
func (p *ingestPlan) pagesOwnRecipients() bool {
	return p.Step == stepOpenOrAppend && p.Then.StartPaging && p.Route.NamesRecipients()
}

// genericOnly says that only the generic executor carries the plan out:
// an acknowledgement (rare, and it reads the alert's policy), a note, a
// pulse (one per completed scan), a held alert, or one paging the rule's
// own recipients.
func (p *ingestPlan) genericOnly() bool {
	return p.Step == stepAcknowledge || p.Step == stepNote || p.Step == stepPulse || p.pagesOwnRecipients() || p.holdsPaging() || p.Watched
}

// policyFor is the escalation policy an opened alert follows: the
// matching rule's, else the integration's.
func policyFor(integ *db.Integration, route rules.Route) *int {
	if route.EscalationPolicyID != 0 {
		return &route.EscalationPolicyID
	}
	return integ.EscalationPolicyID
}
