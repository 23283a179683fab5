package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/rules"
)

type escalateArgs struct {
	Step  int `json:"step"`
	Round int `json:"round"`
	// Cycle tells apart the pagings of one alert: 0 for the one it
	// opened with, and for a paging restarted later (a snooze ending) the
	// id of the job that restarted it, so the restarted steps and
	// notifications get keys of their own instead of matching the first
	// paging's.
	Cycle int `json:"cycle,omitempty"`
	// PolicyID, when set, is the policy this paging follows instead of
	// the alert's own: the overdue policy (see remediation.go).
	PolicyID int `json:"policyId,omitempty"`
}

type notifyArgs struct {
	UserID          int `json:"userId"`
	ContactMethodID int `json:"contactMethodId"`
	Step            int `json:"step"`
	Round           int `json:"round"`
	Cycle           int `json:"cycle,omitempty"`
}

func escalateKey(alertID int, a escalateArgs) string {
	if a.Cycle != 0 {
		return fmt.Sprintf("escalate:%d:c%d:%d:%d", alertID, a.Cycle, a.Round, a.Step)
	}
	return fmt.Sprintf("escalate:%d:%d:%d", alertID, a.Round, a.Step)
}

func notifyKey(alertID int, a notifyArgs) string {
	if a.Cycle != 0 {
		return fmt.Sprintf("notify:%d:c%d:%d:%d:%d:%d", alertID, a.Cycle, a.Round, a.Step, a.UserID, a.ContactMethodID)
	}
	return fmt.Sprintf("notify:%d:%d:%d:%d:%d", alertID, a.Round, a.Step, a.UserID, a.ContactMethodID)
}

// startPaging queues the first escalation step of a newly opened alert,
// due at pageAt, in the transaction that opened it, and reports whether
// it did. A rule's route gives the alert its own recipients. Without a
// policy, an alert with recipients pages them once.
func (s *Service) startPaging(ctx context.Context, tx bun.Tx, integrationID *int, policyID *int, route rules.Route, alertID int, now, pageAt time.Time) (bool, error) {
	own, err := storeRouteRecipients(ctx, tx, route, alertID)
	if err != nil {
		return false, err
	}
	return s.queueFirstStep(ctx, tx, integrationID, policyID, len(own) > 0, alertID, now, pageAt)
}

// storeRouteRecipients gives an alert the recipients its rule names.
func storeRouteRecipients(ctx context.Context, tx bun.Tx, route rules.Route, alertID int) ([]*db.AlertRecipient, error) {
	var own []*db.AlertRecipient
	for _, id := range route.RecipientUserIDs {
		own = append(own, &db.AlertRecipient{AlertID: alertID, Kind: db.TargetUser, TargetID: id})
	}
	for _, id := range route.RecipientGroupIDs {
		own = append(own, &db.AlertRecipient{AlertID: alertID, Kind: db.TargetGroup, TargetID: id})
	}
	if len(own) > 0 {
		if _, err := tx.NewInsert().Model(&own).On("CONFLICT DO NOTHING").Exec(ctx); err != nil {
			return nil, fmt.Errorf("store recipients of alert %d: %w", alertID, err)
		}
	}
	return own, nil
}

// queueFirstStep queues an alert's first escalation step, due at pageAt,
// unless it has no one to page: no policy, no recipients of its own
// (ownRecipients) and none from its integration (an alert opened by hand
// has none). It reports whether it queued the step.
func (s *Service) queueFirstStep(ctx context.Context, tx bun.Tx, integrationID *int, policyID *int, ownRecipients bool, alertID int, now, pageAt time.Time) (bool, error) {
	if policyID == nil && !ownRecipients {
		if integrationID == nil {
			return false, nil
		}
		recipients, err := s.config.Integrations.RecipientsOf(ctx, tx, *integrationID)
		if err != nil {
			return false, fmt.Errorf("start paging: %w", err)
		}
		if len(recipients) == 0 {
			return false, nil
		}
	}
	first := escalateArgs{}
	return true, enqueue(ctx, tx, jobEscalate, alertID, pageAt, escalateKey(alertID, first), first, now)
}

// plan is the policy an alert follows: its steps and extra rounds.
type plan struct {
	name   string
	steps  []*db.EscalationStep
	repeat int
}

func (s *Service) loadPlan(ctx context.Context, tx bun.Tx, alert *db.Alert, policyID int) (*plan, error) {
	if policyID != 0 {
		policy, err := s.config.Policies.PolicyByID(ctx, tx, policyID)
		if err != nil {
			return nil, err
		}
		return &plan{name: policy.Name, steps: policy.Steps, repeat: policy.Repeat}, nil
	}
	if alert.EscalationPolicyID == nil {
		return &plan{name: "recipients", steps: []*db.EscalationStep{{Targets: []db.Target{{Type: db.TargetRecipients}}}}}, nil
	}
	policy, err := s.config.Policies.PolicyByID(ctx, tx, *alert.EscalationPolicyID)
	if err != nil {
		return nil, err
	}
	return &plan{name: policy.Name, steps: policy.Steps, repeat: policy.Repeat}, nil
}

// escalate runs one step of an alert's policy: it queues a notification
// job per user and notification rule, records what it did on the
// timeline, and queues the next step, all in one transaction.
//
// A notification due at once is not left for the next poll to claim: its
// job is queued already held by this worker, prepared in the step's
// transaction, and sent as soon as that commits. The job row is still
// what makes it safe: if this worker dies before recording the outcome,
// the job runs again once its lease ends, as any other.
func (s *Service) escalate(ctx context.Context, job *db.AlertJob, args escalateArgs) error {
	defer s.bus.Kick()
	var immediate []*outgoing
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		immediate = nil
		// The step's timeline entries go in together, as one statement.
		timeline := &timelineWriter{tx: tx, buffered: true}
		err := func() error {
			if err := s.finishJob(ctx, tx, job); err != nil {
				return err
			}
			now := s.clock()
			alert, err := alertByID(ctx, tx, job.AlertID)
			if err != nil {
				return err
			}
			if alert.Status != db.AlertOpen {
				return nil
			}
			p, err := s.loadPlan(ctx, tx, alert, args.PolicyID)
			if err != nil {
				return err
			}
			timeline.alertID, timeline.at = alert.ID, now
			if args.Step >= len(p.steps) {
				return timeline.add(ctx, db.LogPolicyDone, fmt.Sprintf("Escalation policy %q has no step %d; paging stopped", p.name, args.Step+1))
			}
			step := p.steps[args.Step]
			if err := timeline.add(ctx, db.LogEscalated, fmt.Sprintf("Escalated to step %d of %d (round %d of %d) of policy %q",
				args.Step+1, len(p.steps), args.Round+1, p.repeat+1, p.name)); err != nil {
				return err
			}
			// The first step is the alert's first page, which workflows
			// follow as OPENED: only a later step is an escalation to them.
			record := s.alertChanged
			if args.Step == 0 && args.Round == 0 {
				record = events.AlertChanged
			}
			if err := record(ctx, tx, string(db.LogEscalated), alert.ID, eventIntegration(alert), now); err != nil {
				return err
			}
			users, err := s.resolveTargets(ctx, tx, alert, step.Targets, now, timeline)
			if err != nil {
				return err
			}
			for _, userID := range users {
				out, err := s.queueNotifications(ctx, tx, alert, userID, args, now, timeline)
				if err != nil {
					return err
				}
				immediate = append(immediate, out...)
			}
			next := escalateArgs{Step: args.Step + 1, Round: args.Round, Cycle: args.Cycle, PolicyID: args.PolicyID}
			if next.Step == len(p.steps) {
				if args.Round >= p.repeat {
					return timeline.add(ctx, db.LogPolicyDone, fmt.Sprintf("Escalation policy %q finished", p.name))
				}
				next = escalateArgs{Step: 0, Round: args.Round + 1, Cycle: args.Cycle, PolicyID: args.PolicyID}
			}
			runAt := now.Add(time.Duration(step.DelayMinutes) * time.Minute)
			return enqueue(ctx, tx, jobEscalate, alert.ID, runAt, escalateKey(alert.ID, next), next, now)
		}()
		if err != nil {
			return err
		}
		return timeline.flush(ctx)
	})
	if err != nil {
		if errors.Is(db.Classify(err), db.ErrUnavailable) && len(immediate) > 0 {
			// The database went away at the commit, which may have gone
			// through unseen: then the notifications' jobs exist, held by
			// this worker, and would wait out their lease unsent. They are
			// handed back once it is back; a job the commit never made is
			// not found then, and nothing happens.
			s.strand(jobsOf(immediate))
		}
		return err
	}
	return s.sendImmediate(ctx, immediate)
}

// sendImmediate sends the notifications a step prepared in its own
// transaction, each as the notify job would have (see runJobLogged).
// A failure is the notification's own: its job goes back on the queue,
// and the step, already committed, is not repeated. Only the database
// going away is the caller's to handle.
func (s *Service) sendImmediate(ctx context.Context, outs []*outgoing) error {
	for i, out := range outs {
		err := db.Classify(s.sendPrepared(ctx, out))
		switch {
		case err == nil, errors.Is(err, errLostLease):
		case errors.Is(err, errSentUnrecorded):
			// Kept with its outcome; the others were never claimed by a
			// poll, so they are handed back as stranded.
			s.strand(jobsOf(outs[i+1:]))
			return err
		case errors.Is(err, db.ErrUnavailable):
			s.strand(jobsOf(outs[i:]))
			return err
		default:
			job := out.primary.job
			s.log.ErrorContext(ctx, "engine job failed", "job", job.ID, "kind", job.Kind, "alert", job.AlertID, "err", err)
			s.releaseAfterError(ctx, job, err)
		}
	}
	return nil
}

// jobsOf lists the jobs whose messages outs are, bundled ones included.
func jobsOf(outs []*outgoing) []*db.AlertJob {
	var jobs []*db.AlertJob
	for _, out := range outs {
		for _, p := range out.parts() {
			jobs = append(jobs, p.job)
		}
	}
	return jobs
}

// resolveTargets turns a step's targets into user ids at now, in a stable
// order without repeats. A target that resolves to nobody is recorded on
// the timeline and the step goes on with the others.
func (s *Service) resolveTargets(ctx context.Context, tx bun.Tx, alert *db.Alert, targets []db.Target, now time.Time, timeline *timelineWriter) ([]int, error) {
	var users []int
	for _, target := range targets {
		var found []int
		var err error
		switch target.Type {
		case db.TargetUser:
			n, cerr := tx.NewSelect().Model((*db.User)(nil)).Where("id = ?", target.ID).Count(ctx)
			if cerr != nil {
				return nil, fmt.Errorf("check user %d: %w", target.ID, cerr)
			}
			if n > 0 {
				found = []int{target.ID}
			}
		case db.TargetGroup:
			found, err = s.config.Groups.MemberIDs(ctx, tx, []int{target.ID})
		case db.TargetSchedule:
			found, err = s.config.OnCall.OnCallUsers(ctx, tx, target.ID, now)
		case db.TargetRecipients:
			found, err = s.recipientUsers(ctx, tx, alert)
		}
		if err != nil {
			return nil, fmt.Errorf("resolve %s target %d: %w", target.Type, target.ID, err)
		}
		if len(found) == 0 {
			msg := fmt.Sprintf("No one to notify for %s %d", strings.ToLower(string(target.Type)), target.ID)
			logType := db.LogEscalated
			switch target.Type {
			case db.TargetSchedule:
				msg, logType = fmt.Sprintf("No one on call for schedule %d", target.ID), db.LogNoOneOnCall
			case db.TargetRecipients:
				msg = "The integration has no recipients"
				if alert.IntegrationID == nil {
					msg = "The alert has no recipients"
				}
			}
			if err := timeline.add(ctx, logType, msg); err != nil {
				return nil, err
			}
			continue
		}
		for _, id := range found {
			if !slices.Contains(users, id) {
				users = append(users, id)
			}
		}
	}
	return users, nil
}

// recipientUsers resolves the alert's recipients: its own when a rule
// routed it, otherwise its integration's, groups expanded to members.
func (s *Service) recipientUsers(ctx context.Context, tx bun.Tx, alert *db.Alert) ([]int, error) {
	var chosen []*db.AlertRecipient
	if err := tx.NewSelect().Model(&chosen).Where("alert_id = ?", alert.ID).Scan(ctx); err != nil {
		return nil, fmt.Errorf("recipients of alert %d: %w", alert.ID, err)
	}
	type target struct {
		kind db.TargetType
		id   int
	}
	targets := make([]target, 0, len(chosen))
	for _, r := range chosen {
		targets = append(targets, target{r.Kind, r.TargetID})
	}
	// An alert opened by hand has no integration to fall back on.
	if len(targets) == 0 && alert.IntegrationID != nil {
		ofIntegration, err := s.config.Integrations.RecipientsOf(ctx, tx, *alert.IntegrationID)
		if err != nil {
			return nil, fmt.Errorf("recipients of alert %d: %w", alert.ID, err)
		}
		for _, r := range ofIntegration {
			targets = append(targets, target{r.Kind, r.TargetID})
		}
	}
	var ids, groups []int
	for _, t := range targets {
		switch t.kind {
		case db.TargetUser:
			ids = append(ids, t.id)
		case db.TargetGroup:
			groups = append(groups, t.id)
		}
	}
	if len(groups) > 0 {
		members, err := s.config.Groups.MemberIDs(ctx, tx, groups)
		if err != nil {
			return nil, fmt.Errorf("recipients of alert %d: %w", alert.ID, err)
		}
		ids = append(ids, members...)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// queueNotifications queues one notification job per notification rule of
// the user, each after its rule's delay. A job due at once is queued held
// by this worker and prepared here; its message is returned, to be sent
// once tx commits.
func (s *Service) queueNotifications(ctx context.Context, tx bun.Tx, alert *db.Alert, userID int, step escalateArgs, now time.Time, timeline *timelineWriter) ([]*outgoing, error) {
	rules, err := s.config.Contacts.RulesToQueue(ctx, tx, userID)
	if err != nil {
		return nil, err
	}
	if len(rules) == 0 {
		return nil, timeline.add(ctx, db.LogNotification, fmt.Sprintf("User %d has no notification rules; nobody was notified for them", userID))
	}
	var immediate []*outgoing
	for _, rule := range rules {
		args := notifyArgs{UserID: userID, ContactMethodID: rule.ContactMethodID, Step: step.Step, Round: step.Round, Cycle: step.Cycle}
		runAt := now.Add(time.Duration(rule.DelayMinutes) * time.Minute)
		job := &db.AlertJob{Kind: jobNotify, AlertID: alert.ID, RunAt: runAt, DedupKey: notifyKey(alert.ID, args), CreatedAt: now, ContactMethodID: &rule.ContactMethodID}
		// A rate-limited channel's job is left to the poll: the first
		// message to a number takes along every other job due for it by
		// then (see notify), and a burst sent one step at a time would
		// reach the phone as one message and then a second.
		inline := rule.DelayMinutes == 0 && s.rateLimits[rule.Type] == 0
		if inline {
			// As claimDueJobs would leave it: held, one attempt.
			until := now.Add(s.jobLease)
			job.LockedBy, job.LockedUntil, job.Attempts = s.workerID, &until, 1
		}
		if err := insertJob(ctx, tx, job, args); err != nil {
			return nil, err
		}
		when := "now"
		if rule.DelayMinutes > 0 {
			when = fmt.Sprintf("in %d min if still unacknowledged", rule.DelayMinutes)
		}
		if err := timeline.add(ctx, db.LogNotification, fmt.Sprintf("Notification queued for %s by %s, %s", rule.Email, rule.Type, when)); err != nil {
			return nil, err
		}
		if !inline || job.ID == 0 {
			// Later, or already queued (job.ID is set only by an insert):
			// a poll claims it when due.
			continue
		}
		// What the notification itself records comes after the step's
		// entries.
		if err := timeline.flush(ctx); err != nil {
			return nil, err
		}
		out, err := s.prepareNotify(ctx, tx, job, args, alert)
		if err != nil {
			return nil, err
		}
		if out != nil {
			immediate = append(immediate, out)
		}
	}
	return immediate, nil
}

// timelineWriter appends entries to one alert's timeline inside a
// transaction.
type timelineWriter struct {
	tx      bun.Tx
	alertID int
	at      time.Time
	// buffered keeps entries back until flush, which stores them in one
	// statement; the caller flushes before it commits.
	buffered bool
	pending  []*db.AlertLog
}

func (w *timelineWriter) add(ctx context.Context, typ db.AlertLogType, message string) error {
	entry := &db.AlertLog{AlertID: w.alertID, At: w.at, Type: typ, Message: message}
	if w.buffered {
		w.pending = append(w.pending, entry)
		return nil
	}
	if _, err := w.tx.NewInsert().Model(entry).Exec(ctx); err != nil {
		return fmt.Errorf("store timeline entry: %w", err)
	}
	return nil
}

// flush stores the entries kept back, in the order they were added.
func (w *timelineWriter) flush(ctx context.Context) error {
	if len(w.pending) == 0 {
		return nil
	}
	if _, err := w.tx.NewInsert().Model(&w.pending).Exec(ctx); err != nil {
		return fmt.Errorf("store timeline entries: %w", err)
	}
	w.pending = nil
	return nil
}
