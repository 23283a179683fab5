package alerting

import (
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// A dry run (testIntegration, one message) and a replay (a stored log
// under another ruleset) answer "what would ingest do?" without writing.
// Both go through judge and settle below: the same decision and the same
// plan as ingest (planIngest), settled against a simulated alert instead
// of the alerts table, so the two can never disagree with each other or
// with ingest about an outcome.

// verdict is one message judged by a route: the rules' decision and the
// plan ingest would carry out for it.
type verdict struct {
	decision rules.Decision
	plan     ingestPlan
}

// judge decides what a parsed body (parseErr when it did not parse) does
// on route r. refused, when set, is why a stored message was refused
// before its body was read: the refusal stands whatever the rules say.
// facts are what the rules ask about the source (see Service.factsFor),
// as the caller's alerts, real or simulated, answer them.
func (r *route) judge(parsed *rules.Message, parseErr error, refused string, facts rules.Facts) verdict {
	if refused != "" {
		none := rules.Decision{RuleIndex: -1}
		return verdict{decision: none, plan: planIngest(r.integ, none, refused, db.InboundRefused, nil)}
	}
	d, failure := r.decide(parsed, parseErr, facts)
	return verdict{decision: d, plan: planIngest(r.integ, d, failure, db.InboundMappingFailed, nil)}
}

// sourceState is what ingest would read of one source's alert in the
// alerts table, kept by a simulation instead. Everything a simulated
// outcome may depend on about the source's past lives here.
type sourceState struct {
	open bool
	// acknowledged says the open alert is acknowledged (and not just
	// snoozed): an acknowledging message then changes nothing.
	acknowledged bool
	// subject is the open alert's subject, as it opened.
	subject string
	// lastSeen is when the open alert last had a message; with
	// autoCloseMinutes it says when the alert closes for silence.
	lastSeen         time.Time
	autoCloseMinutes int
	// closedAt is when the source's last alert closed within the
	// simulation; zero when none did.
	closedAt time.Time
}

// settle is the outcome of plan for a source in state st, and moves st as
// carrying the plan out would move the alert: the one place that says
// which branch of a plan the alerts table would take.
func (st *sourceState) settle(p *ingestPlan, at time.Time) ingestOutcome {
	took := true
	switch p.Step {
	case stepOpenOrAppend:
		took = !st.open
		if took {
			st.open, st.acknowledged, st.subject, st.autoCloseMinutes = true, false, p.Fields.Subject, p.AutoCloseMinutes
		}
		st.lastSeen = at
	case stepClose, stepPulse:
		// A pulse closes its key's missed-pulse alert when one is open.
		took = st.open
		if took {
			st.open, st.acknowledged, st.closedAt = false, false, at
		}
	case stepAcknowledge:
		took = st.open && !st.acknowledged
		st.acknowledged = st.open
	case stepNote:
		took = st.open
	}
	return p.outcome(took)
}

// age closes the open alert if it went quiet for its auto-close time
// before at, as the auto-close job would have. A replay calls it before
// each message; a dry run does not, since there the alerts table is the
// truth and the job has not run yet.
func (st *sourceState) age(at time.Time) {
	if !st.open || st.autoCloseMinutes <= 0 {
		return
	}
	if quietUntil := st.lastSeen.Add(time.Duration(st.autoCloseMinutes) * time.Minute); !at.Before(quietUntil) {
		st.open, st.acknowledged, st.closedAt = false, false, quietUntil
	}
}
