package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/rules"
)

// A workflow's request is a job in alert_jobs, queued by alertChanged in
// the transaction of the change it follows: a change that commits has
// its requests queued, one that rolls back has none. The job sends the
// request outside any transaction and records the attempt, with its
// removal or its next run, in one; the lease keeps a second worker off
// it meanwhile, so each attempt is made once.

const jobWorkflow = "workflow"

// workflowRetries are the waits after a failed attempt of a workflow's
// request before the next; after the last the request is given up.
var workflowRetries = []time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour}

type workflowArgs struct {
	WorkflowID int              `json:"workflowId"`
	Event      db.WorkflowEvent `json:"event"`
	ActorID    *int             `json:"actorId,omitempty"`
}

// workflowCache keeps every workflow between changes: alertChanged asks
// it on every change of every alert, and ingest on every message.
type workflowCache struct {
	mu         sync.Mutex
	generation uint64
	list       []*db.Workflow
	loaded     bool
}

func (c *workflowCache) invalidate() {
	c.mu.Lock()
	c.generation++
	c.loaded, c.list = false, nil
	c.mu.Unlock()
}

// workflowList returns every workflow, from the cache when it is fresh,
// else read through idb: inside a transaction, its own (on SQLite, the
// one connection), which changes alerts but never workflows, so what it
// reads may be kept.
func (s *Service) workflowList(ctx context.Context, idb bun.IDB) ([]*db.Workflow, error) {
	if s.config.Workflows == nil {
		return nil, nil
	}
	c := &s.workflows
	c.mu.Lock()
	if c.loaded {
		list := c.list
		c.mu.Unlock()
		return list, nil
	}
	generation := c.generation
	c.mu.Unlock()
	list, err := s.config.Workflows.AllWorkflows(ctx, idb)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.generation == generation {
		c.list, c.loaded = list, true
	}
	c.mu.Unlock()
	return list, nil
}

// workflowsFor returns the workflows on integrationID's alerts (0: an
// alert opened by hand) and the global ones.
func (s *Service) workflowsFor(ctx context.Context, idb bun.IDB, integrationID int) ([]*db.Workflow, error) {
	list, err := s.workflowList(ctx, idb)
	if err != nil {
		return nil, err
	}
	var out []*db.Workflow
	for _, w := range list {
		if w.IntegrationID == nil || *w.IntegrationID == integrationID {
			out = append(out, w)
		}
	}
	return out, nil
}

// workflowsMayFire tells ingest whether a message of the integration
// could set off a workflow, so that it takes the generic path, which
// queues them; without one (or when that cannot be told) the fast paths
// run as if workflows did not exist.
func (s *Service) workflowsMayFire(ctx context.Context, integrationID int) bool {
	list, err := s.workflowsFor(ctx, s.db, integrationID)
	if err != nil {
		// Safe either way: the generic path asks again and fails the
		// message's transaction if the list still cannot be read.
		return true
	}
	return len(list) > 0
}

// workflowEvent maps an alert event's type onto the change a workflow
// follows; ok is false for the changes no workflow follows.
func workflowEvent(typ string) (db.WorkflowEvent, bool) {
	switch typ {
	case string(db.LogOpened):
		return db.WorkflowOpened, true
	case string(db.LogAcknowledged):
		return db.WorkflowAcknowledged, true
	case string(db.LogEscalated):
		return db.WorkflowEscalated, true
	case string(db.LogClosed):
		return db.WorkflowClosed, true
	case string(db.LogNote), "NOTE_ADDED":
		return db.WorkflowNoteAdded, true
	}
	return "", false
}

// alertChanged records the event of an alert's change and queues the
// workflows following it, in the change's transaction. Every change of
// an alert on the generic paths records its event here, so a workflow
// misses none.
func (s *Service) alertChanged(ctx context.Context, idb bun.IDB, typ string, alertID, integrationID int, at time.Time) error {
	if err := events.AlertChanged(ctx, idb, typ, alertID, integrationID, at); err != nil {
		return err
	}
	return s.queueWorkflows(ctx, idb, typ, alertID, integrationID, at)
}

func (s *Service) queueWorkflows(ctx context.Context, idb bun.IDB, typ string, alertID, integrationID int, at time.Time) error {
	event, ok := workflowEvent(typ)
	if !ok {
		return nil
	}
	list, err := s.workflowsFor(ctx, idb, integrationID)
	if err != nil {
		return fmt.Errorf("workflows of alert %d: %w", alertID, err)
	}
	var alert *db.Alert
	var actor *int
	for _, w := range list {
		if !w.Follows(event) {
			continue
		}
		if alert == nil {
			if alert, err = alertByID(ctx, idb, alertID); err != nil {
				return err
			}
			if actor, err = actorOf(ctx, idb, alertID, at); err != nil {
				return err
			}
		}
		filter, err := rules.CompileFilter("conditions", w.Conditions)
		if err != nil {
			// Validated when saved; a condition the rules no longer take
			// must not block the alert's change.
			s.log.ErrorContext(ctx, "workflow conditions no longer compile", "workflow", w.ID, "err", err)
			continue
		}
		if !filter.Matches(alertFields(alert)) {
			continue
		}
		args := workflowArgs{WorkflowID: w.ID, Event: event, ActorID: actor}
		key := fmt.Sprintf("workflow:%d:%d:%s:%s", w.ID, alertID, event, randomID())
		if err := enqueue(ctx, idb, jobWorkflow, alertID, at, key, args, at); err != nil {
			return err
		}
	}
	return nil
}

// actorOf is the user whose timeline entry at at recorded the change,
// nil when Klaxon made it.
func actorOf(ctx context.Context, idb bun.IDB, alertID int, at time.Time) (*int, error) {
	var ids []int
	err := idb.NewSelect().Table("alert_log").Column("user_id").
		Where("alert_id = ? AND at = ? AND user_id IS NOT NULL", alertID, at).OrderExpr("id DESC").Limit(1).Scan(ctx, &ids)
	if err != nil {
		return nil, fmt.Errorf("who changed alert %d: %w", alertID, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	return &ids[0], nil
}

func alertFields(a *db.Alert) rules.Fields {
	return rules.Fields{SourceID: a.SourceID, SourceName: a.SourceName, Subject: a.Subject, Severity: a.Severity, URL: a.URL, Details: a.Details}
}

// runWorkflow makes one attempt of a workflow's request and records it
// on the alert's timeline.
func (s *Service) runWorkflow(ctx context.Context, job *db.AlertJob, args workflowArgs) error {
	req, w, err := s.prepareWorkflow(ctx, job, args)
	if err != nil || req == nil {
		return err
	}
	// From here the request may be out: its record is not cut short.
	ctx = context.WithoutCancel(ctx)
	sendCtx, cancel := context.WithTimeout(ctx, notifiers.SendTimeout)
	started := time.Now()
	status, sendErr := s.senders.Request(sendCtx, *req)
	took := time.Since(started)
	cancel()
	d := &unrecorded{job: job, recordTx: func(ctx context.Context, tx bun.Tx) error {
		return s.recordWorkflowAttempt(ctx, tx, job, w, args, req, status, sendErr, took)
	}}
	err = db.Classify(s.record(ctx, d))
	if errors.Is(err, db.ErrUnavailable) {
		// The request is out: left to its lease, the job would make the
		// same attempt again. Its outcome is kept and recorded by the
		// first run that finds the database back, as a notification's.
		s.stranded.Lock()
		s.stranded.deliveries = append(s.stranded.deliveries, d)
		s.stranded.Unlock()
		return fmt.Errorf("%w: %w", errSentUnrecorded, err)
	}
	return err
}

// prepareWorkflow renders the request; a nil request means the job was
// finished instead (its workflow or alert is gone, or its templates no
// longer render, which retrying will not change).
func (s *Service) prepareWorkflow(ctx context.Context, job *db.AlertJob, args workflowArgs) (*notifiers.WorkflowRequest, *db.Workflow, error) {
	w, err := s.config.Workflows.WorkflowByID(ctx, s.db, args.WorkflowID)
	if errors.Is(err, db.ErrNotFound) {
		// Deleted since: its requests go with it.
		return nil, nil, s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			return s.finishJob(ctx, tx, job)
		})
	}
	if err != nil {
		return nil, nil, err
	}
	alert, err := alertByID(ctx, s.db, job.AlertID)
	if err != nil {
		return nil, nil, err
	}
	data, err := s.workflowData(ctx, alert, args)
	if err != nil {
		return nil, nil, err
	}
	req := &notifiers.WorkflowRequest{Method: w.Method, URL: w.URL}
	for i, h := range w.Headers {
		v, err := notifiers.RenderWorkflow(h.Value, data)
		if err != nil {
			return nil, nil, s.giveUpWorkflow(ctx, job, w, fmt.Errorf("header %d: %w", i+1, err))
		}
		req.Headers = append(req.Headers, [2]string{h.Name, v})
	}
	if req.Body, err = notifiers.RenderWorkflow(w.Body, data); err != nil {
		return nil, nil, s.giveUpWorkflow(ctx, job, w, fmt.Errorf("body: %w", err))
	}
	return req, w, nil
}

func (s *Service) workflowData(ctx context.Context, a *db.Alert, args workflowArgs) (notifiers.WorkflowData, error) {
	data := notifiers.WorkflowData{Event: string(args.Event), Link: fmt.Sprintf("%s/alerts/%d", s.publicURL, a.ID),
		Alert: notifiers.WorkflowAlert{ID: a.ID, Number: a.ID, Subject: a.Subject, Severity: a.Severity, Status: string(a.Status),
			URL: a.URL, Details: a.Details, SourceID: a.SourceID, SourceName: a.SourceName, OpenedAt: a.OpenedAt, AppendCount: a.AppendCount}}
	if a.IntegrationID != nil {
		integ, err := s.config.Integrations.IntegrationByID(ctx, s.db, *a.IntegrationID)
		if err != nil && !errors.Is(err, db.ErrNotFound) {
			return data, err
		}
		if integ != nil {
			data.Integration = integ.Name
		}
	}
	if args.ActorID != nil {
		user := new(db.User)
		err := s.db.NewSelect().Model(user).Where("id = ?", *args.ActorID).Scan(ctx)
		if err != nil && !errors.Is(db.Classify(err), db.ErrNotFound) {
			return data, fmt.Errorf("load user %d: %w", *args.ActorID, err)
		}
		data.Actor = user.Name
		if data.Actor == "" {
			data.Actor = user.Email
		}
	}
	return data, nil
}

// giveUpWorkflow records why a request was not sent and finishes its job.
func (s *Service) giveUpWorkflow(ctx context.Context, job *db.AlertJob, w *db.Workflow, cause error) error {
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if err := s.finishJob(ctx, tx, job); err != nil {
			return err
		}
		timeline := &timelineWriter{tx: tx, alertID: job.AlertID, at: s.clock()}
		return timeline.add(ctx, db.LogWorkflow, fmt.Sprintf("Workflow %q not sent: its template failed: %s", w.Name, cause))
	})
}

// recordWorkflowAttempt writes the attempt on the timeline and finishes
// the job, or puts it off to the next attempt after a temporary failure.
func (s *Service) recordWorkflowAttempt(ctx context.Context, tx bun.Tx, job *db.AlertJob, w *db.Workflow, args workflowArgs,
	req *notifiers.WorkflowRequest, status int, sendErr error, took time.Duration) error {
	now := s.clock()
	// The URL stays off the timeline, which every VIEWER reads: it often
	// carries a key (see docs/SECURITY.md, Outbound requests).
	text := fmt.Sprintf("Workflow %q (%s) attempt %d: %s", w.Name, args.Event, job.Attempts, req.Method)
	if status != 0 {
		text += fmt.Sprintf(" answered %d", status)
	}
	text += fmt.Sprintf(" in %s", took.Round(time.Millisecond))
	if sendErr == nil {
		if err := s.finishJob(ctx, tx, job); err != nil {
			return err
		}
		return (&timelineWriter{tx: tx, alertID: job.AlertID, at: now}).add(ctx, db.LogWorkflow, text)
	}
	text += ": " + sendErr.Error()
	if notifiers.IsPermanent(sendErr) || job.Attempts > len(workflowRetries) {
		if err := s.finishJob(ctx, tx, job); err != nil {
			return err
		}
		text += "; given up"
	} else {
		wait := workflowRetries[max(job.Attempts, 1)-1]
		if err := s.retryJob(ctx, tx, job, now.Add(wait), sendErr); err != nil {
			return err
		}
		text += fmt.Sprintf("; next attempt in %s", wait)
	}
	return (&timelineWriter{tx: tx, alertID: job.AlertID, at: now}).add(ctx, db.LogWorkflow, text)
}

func decodeWorkflowArgs(job *db.AlertJob) (workflowArgs, error) {
	var args workflowArgs
	if err := json.Unmarshal([]byte(job.Args), &args); err != nil {
		return args, fmt.Errorf("decode %s job: %w", jobWorkflow, err)
	}
	return args, nil
}
