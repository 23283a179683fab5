package alerting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
)

// The escalation engine's timers are rows in alert_jobs, in the same
// database as the alerts, so a job is created in the transaction that
// opens its alert and removed in the transaction that carries out its
// effect: a restart loses none and a crash repeats none.
//
// A worker takes due jobs by leasing them with one conditional UPDATE. On
// PostgreSQL a second instance's UPDATE waits for the first and then sees
// the lease and skips the row; SQLite has a single writer. Either way each
// job runs on one worker at a time, and a worker that dies only delays its
// jobs until the lease runs out.

const (
	jobEscalate = "escalate"
	jobNotify   = "notify"

	// DefaultJobLease is how long a worker holds a job it took. It must
	// outlast any job's run (a send is cut off after 30 s), or another
	// instance may take the job while it is still running and send twice.
	DefaultJobLease = 2 * time.Minute

	jobBatch      = 64
	jobWorkers    = 16
	maxJobRetries = 5
)

var errLostLease = errors.New("job lease lost to another worker")

// randomID is 64 random bits in hex: a worker's lease id, and what keeps
// apart the jobs of two changes that are otherwise alike.
func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// enqueue schedules a job; a job with the same dedup key already queued
// makes this a no-op.
func enqueue(ctx context.Context, idb bun.IDB, kind string, alertID int, runAt time.Time, dedupKey string, args any, now time.Time) error {
	return insertJob(ctx, idb, &db.AlertJob{Kind: kind, AlertID: alertID, RunAt: runAt, DedupKey: dedupKey, CreatedAt: now}, args)
}

// insertJob is enqueue for a job whose other columns the caller sets.
func insertJob(ctx context.Context, idb bun.IDB, job *db.AlertJob, args any) error {
	raw, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("encode %s job: %w", job.Kind, err)
	}
	job.Args = string(raw)
	if _, err := idb.NewInsert().Model(job).On("CONFLICT (dedup_key) DO NOTHING").Exec(ctx); err != nil {
		return fmt.Errorf("enqueue %s job for alert %d: %w", job.Kind, job.AlertID, err)
	}
	return nil
}

// claimDueJobs leases up to limit jobs due at now to this worker.
// The pruning turn's row is a lease of its own (TakePruneTurn), never
// run as a job.
func (s *Service) claimDueJobs(ctx context.Context, now time.Time, limit int) ([]*db.AlertJob, error) {
	var jobs []*db.AlertJob
	err := s.db.NewRaw(`UPDATE alert_jobs SET locked_by = ?, locked_until = ?, attempts = attempts + 1
		WHERE id IN (
			SELECT id FROM alert_jobs
			WHERE run_at <= ? AND (locked_until IS NULL OR locked_until < ?) AND kind <> '`+jobPrune+`'
			ORDER BY run_at, id LIMIT ?)
		AND (locked_until IS NULL OR locked_until < ?)
		RETURNING id, kind, alert_id, run_at, args, dedup_key, attempts, locked_by, locked_until, contact_method_id`,
		s.workerID, now.Add(s.jobLease), now, now, limit, now,
	).Scan(ctx, &jobs)
	if err != nil {
		return nil, fmt.Errorf("claim due jobs: %w", db.Classify(err))
	}
	return jobs, nil
}

// finishJob deletes a job this worker still holds, inside tx, so the job
// disappears exactly when its effects commit. A job is held under the
// lease name it was taken with: the worker's for a claimed job, a bundle's
// for one taken into another job's message.
func (s *Service) finishJob(ctx context.Context, tx bun.Tx, job *db.AlertJob) error {
	if job.LockedBy == "" {
		return errLostLease
	}
	res, err := tx.NewDelete().Model((*db.AlertJob)(nil)).Where("id = ? AND locked_by = ?", job.ID, job.LockedBy).Exec(ctx)
	if err != nil {
		return fmt.Errorf("finish job %d: %w", job.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLostLease
	}
	return nil
}

// retryJob releases a job to run again at runAt, keeping its error.
func (s *Service) retryJob(ctx context.Context, tx bun.Tx, job *db.AlertJob, runAt time.Time, cause error) error {
	return s.releaseJob(ctx, tx, job, runAt, cause)
}

// deferJob puts a job off until runAt without counting the run as an
// attempt: being held back by a rate limit is not a failure, and must
// not bring the job closer to maxJobRetries.
func (s *Service) deferJob(ctx context.Context, tx bun.Tx, job *db.AlertJob, runAt time.Time) error {
	return s.releaseJob(ctx, tx, job, runAt, nil)
}

// releaseJob unlocks a held job for runAt; a nil cause means the run
// was no attempt and is taken back off the count claimDueJobs added.
func (s *Service) releaseJob(ctx context.Context, tx bun.Tx, job *db.AlertJob, runAt time.Time, cause error) error {
	if job.LockedBy == "" {
		return errLostLease
	}
	q := tx.NewUpdate().Model((*db.AlertJob)(nil)).
		Set("run_at = ?", runAt).Set("locked_until = NULL").Set("locked_by = ''").
		Where("id = ? AND locked_by = ?", job.ID, job.LockedBy)
	if cause != nil {
		q = q.Set("last_error = ?", cause.Error())
	} else {
		q = q.Set("attempts = attempts - 1")
	}
	res, err := q.Exec(ctx)
	if err != nil {
		return fmt.Errorf("release job %d: %w", job.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return errLostLease
	}
	return nil
}

// RunDueJobs carries out every job due at the current time and returns how
// many ran. Tests call it after moving the clock; RunEngine calls it on a
// timer.
//
// When ctx ends it takes no more jobs: those already started run to their
// end, unhindered by ctx (each commits its effect with its removal, so
// cutting one short would only waste the work), and those taken but not
// started are handed back at once for the next worker.
//
// When the database turns out to be unavailable it takes no more jobs
// either, and returns an error that is db.ErrUnavailable: the jobs it
// holds but could not run are handed back by the first call that finds
// the database again.
func (s *Service) RunDueJobs(ctx context.Context) (int, error) {
	runCtx := context.WithoutCancel(ctx)
	if err := s.handBackStranded(runCtx); err != nil {
		return 0, err
	}
	var away atomic.Bool
	// The first job to find the database away stops the others where
	// they wait for it, before they have changed anything: on SQLite
	// each would otherwise hold the one connection for a busy timeout,
	// ahead of the webhooks.
	jobCtx, stopJobs := context.WithCancelCause(runCtx)
	defer stopJobs(nil)
	var ran atomic.Int64
	var mu sync.Mutex
	var unstarted []*db.AlertJob
	keep := func(jobs ...*db.AlertJob) {
		mu.Lock()
		unstarted = append(unstarted, jobs...)
		mu.Unlock()
	}
	// Due jobs run side by side on jobWorkers workers: a burst of alerts
	// must not queue its steps behind each other's commits and sends.
	// With a backlog (a full batch), the next batch is claimed as soon
	// as the last job of this one has a worker, not once every job of it
	// has finished: a few slow sends must not leave the other workers
	// idle.
	work := make(chan *db.AlertJob)
	var busy sync.WaitGroup
	var workers sync.WaitGroup
	for range jobWorkers {
		workers.Go(func() {
			for job := range work {
				if ctx.Err() != nil || away.Load() {
					keep(job)
					busy.Done()
					continue
				}
				switch err := s.runJobLogged(jobCtx, job); {
				case err == nil:
					ran.Add(1)
				case errors.Is(err, errSentUnrecorded):
					// Kept with its outcome, which is recorded later.
					away.Store(true)
					stopJobs(db.ErrUnavailable)
				case errors.Is(err, db.ErrUnavailable):
					away.Store(true)
					stopJobs(db.ErrUnavailable)
					keep(job)
				}
				busy.Done()
			}
		})
	}
	var claimErr error
	// A job often queues another that is due at once, so an empty claim
	// ends the run only once the jobs under way have finished and a claim
	// after them finds nothing either; the bound keeps one call from
	// running forever on a pathological policy. drained says no job is
	// under way, so that an idle poll is one claim.
	drained := true
	for range 1000 {
		if ctx.Err() != nil || away.Load() {
			break
		}
		jobs, err := s.claimDueJobs(ctx, s.clock(), jobBatch)
		if err != nil {
			claimErr = err
			break
		}
		if len(jobs) == 0 {
			if drained {
				break
			}
			busy.Wait()
			drained = true
			continue
		}
		for i, job := range jobs {
			if ctx.Err() != nil || away.Load() {
				keep(jobs[i:]...)
				break
			}
			busy.Add(1)
			work <- job
		}
		if len(jobs) < jobBatch {
			// Not a backlog: let the batch finish, so the next claim sees
			// all it queued at once. A burst of notifications for one
			// number then goes out as one message (see notify).
			busy.Wait()
		}
		drained = len(jobs) < jobBatch
	}
	close(work)
	workers.Wait()
	total := int(ran.Load())
	if away.Load() {
		s.strand(unstarted)
		return total, fmt.Errorf("run due jobs: %w", db.ErrUnavailable)
	}
	if err := s.handBack(runCtx, unstarted); err != nil {
		return total, err
	}
	return total, claimErr
}

// handBack releases jobs taken but never started, as due as they were and
// without counting an attempt, so a stopping worker does not sit on them
// until their lease runs out. When the database is unavailable, the jobs
// not yet released are kept for the next RunDueJobs, and the error is
// db.ErrUnavailable.
func (s *Service) handBack(ctx context.Context, jobs []*db.AlertJob) error {
	for i, job := range jobs {
		err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			return s.releaseJob(ctx, tx, job, job.RunAt, nil)
		})
		if err = db.Classify(err); errors.Is(err, db.ErrUnavailable) {
			s.strand(jobs[i:])
			return fmt.Errorf("hand back engine jobs: %w", err)
		}
		if err != nil && !errors.Is(err, errLostLease) {
			s.log.ErrorContext(ctx, "hand back engine job", "job", job.ID, "err", err)
		}
	}
	return nil
}

// strand keeps jobs this worker holds but could not run or release
// because the database went away, to be handed back once it is back
// rather than left until their lease runs out. Nothing of theirs was
// committed, or if a commit did go through unseen it also removed the
// job, and handing it back then finds nothing to release.
func (s *Service) strand(jobs []*db.AlertJob) {
	s.stranded.Lock()
	s.stranded.jobs = append(s.stranded.jobs, jobs...)
	s.stranded.Unlock()
}

// handBackStranded records the outcomes of the sends made while the
// database went away, then hands back the jobs strand kept. A send whose
// job was taken by another worker meanwhile (its lease ended) is not
// recorded: that worker sends it again, as after a crash.
func (s *Service) handBackStranded(ctx context.Context) error {
	s.stranded.Lock()
	deliveries := s.stranded.deliveries
	s.stranded.deliveries = nil
	s.stranded.Unlock()
	for i, d := range deliveries {
		err := db.Classify(s.record(ctx, d))
		if errors.Is(err, db.ErrUnavailable) {
			s.stranded.Lock()
			s.stranded.deliveries = append(deliveries[i:], s.stranded.deliveries...)
			s.stranded.Unlock()
			return fmt.Errorf("record deliveries: %w", err)
		}
		if err != nil && !errors.Is(err, errLostLease) {
			s.log.ErrorContext(ctx, "record delivery", "job", d.jobID(), "err", err)
		}
	}
	s.stranded.Lock()
	jobs := s.stranded.jobs
	s.stranded.jobs = nil
	s.stranded.Unlock()
	return s.handBack(ctx, jobs)
}

// runJobLogged runs one job and returns its error; failures are logged
// and the job is put back with a backoff. A job that failed because the
// database is unavailable is neither: the caller keeps it.
func (s *Service) runJobLogged(ctx context.Context, job *db.AlertJob) error {
	err := db.Classify(s.runJob(ctx, job))
	if err != nil && errors.Is(context.Cause(ctx), db.ErrUnavailable) && !errors.Is(err, db.ErrUnavailable) && !errors.Is(err, errLostLease) {
		// Stopped while it waited for the database (see RunDueJobs).
		err = fmt.Errorf("%w: %w", db.ErrUnavailable, err)
	}
	switch {
	case err == nil, errors.Is(err, errLostLease), errors.Is(err, db.ErrUnavailable):
	default:
		s.log.ErrorContext(ctx, "engine job failed", "job", job.ID, "kind", job.Kind, "alert", job.AlertID, "err", err)
		s.releaseAfterError(ctx, job, err)
	}
	return err
}

// releaseAfterError puts a job whose run failed unexpectedly (say, the
// database went away) back on the queue with a backoff, so it is retried
// rather than stuck until its lease ends.
func (s *Service) releaseAfterError(ctx context.Context, job *db.AlertJob, cause error) {
	err := s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return s.retryJob(ctx, tx, job, s.clock().Add(backoff(job.Attempts)), cause)
	})
	if err != nil && !errors.Is(err, errLostLease) {
		s.log.ErrorContext(ctx, "release failed job", "job", job.ID, "err", err)
	}
}

func (s *Service) runJob(ctx context.Context, job *db.AlertJob) error {
	switch job.Kind {
	case jobEscalate:
		var args escalateArgs
		if err := json.Unmarshal([]byte(job.Args), &args); err != nil {
			return s.dropJob(ctx, job, fmt.Errorf("decode escalate job: %w", err))
		}
		return s.escalate(ctx, job, args)
	case jobMaintenanceEnd:
		var args maintenanceArgs
		if err := json.Unmarshal([]byte(job.Args), &args); err != nil {
			return s.dropJob(ctx, job, fmt.Errorf("decode %s job: %w", jobMaintenanceEnd, err))
		}
		return s.maintenanceEnded(ctx, job, args)
	case jobNotify:
		var args notifyArgs
		if err := json.Unmarshal([]byte(job.Args), &args); err != nil {
			return s.dropJob(ctx, job, fmt.Errorf("decode notify job: %w", err))
		}
		return s.notify(ctx, job, args)
	case jobOverdue:
		return s.markOverdue(ctx, job)
	case jobAutoClose:
		var args autoCloseArgs
		if err := json.Unmarshal([]byte(job.Args), &args); err != nil {
			return s.dropJob(ctx, job, fmt.Errorf("decode auto-close job: %w", err))
		}
		return s.autoClose(ctx, job, args)
	case jobAckTimeout:
		var args ackTimeoutArgs
		if err := json.Unmarshal([]byte(job.Args), &args); err != nil {
			return s.dropJob(ctx, job, fmt.Errorf("decode acknowledgement timeout job: %w", err))
		}
		return s.ackTimedOut(ctx, job, args)
	case jobUnsnooze:
		var args unsnoozeArgs
		if err := json.Unmarshal([]byte(job.Args), &args); err != nil {
			return s.dropJob(ctx, job, fmt.Errorf("decode unsnooze job: %w", err))
		}
		return s.unsnooze(ctx, job, args)
	case jobHeartbeatDeadline:
		var args heartbeatArgs
		if err := json.Unmarshal([]byte(job.Args), &args); err != nil {
			return s.dropJob(ctx, job, fmt.Errorf("decode heartbeat job: %w", err))
		}
		return s.heartbeatDeadline(ctx, job, args)
	case jobScanHeartbeat:
		var args scanHeartbeatArgs
		if err := json.Unmarshal([]byte(job.Args), &args); err != nil {
			return s.dropJob(ctx, job, fmt.Errorf("decode %s job: %w", jobScanHeartbeat, err))
		}
		return s.scanHeartbeatDeadline(ctx, job, args)
	case jobWorkflow:
		args, err := decodeWorkflowArgs(job)
		if err != nil {
			return s.dropJob(ctx, job, err)
		}
		return s.runWorkflow(ctx, job, args)
	case jobNotice:
		args, err := decodeNoticeArgs(job)
		if err != nil {
			return s.dropJob(ctx, job, err)
		}
		return s.sendNotice(ctx, job, args)
	default:
		return s.dropJob(ctx, job, fmt.Errorf("unknown job kind %q", job.Kind))
	}
}

// dropJob removes a job that can never run, logging why.
func (s *Service) dropJob(ctx context.Context, job *db.AlertJob, cause error) error {
	s.log.ErrorContext(ctx, "dropping engine job", "job", job.ID, "err", cause)
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return s.finishJob(ctx, tx, job)
	})
}

// RunEngine runs due jobs every interval until ctx ends, then returns once
// the jobs in hand have finished (see RunDueJobs). While the database is
// unavailable it polls less and less often (see engineOutage), and says
// so once when the outage begins and once when it ends.
func (s *Service) RunEngine(ctx context.Context, interval time.Duration) {
	timer := time.NewTimer(interval)
	defer timer.Stop()
	outage := engineOutage{interval: interval}
	for {
		_, err := s.RunDueJobs(ctx)
		wait := interval
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, db.ErrUnavailable):
			var began bool
			if wait, began = outage.failed(s.clock()); began {
				s.log.WarnContext(ctx, "engine paused: the database is unavailable; retrying until it is back", "err", err)
			}
		case err != nil:
			s.log.ErrorContext(ctx, "engine run", "err", err)
		default:
			if lasted, ended := outage.recovered(s.clock()); ended {
				s.log.InfoContext(ctx, "engine resumed: the database is back", "unavailable_for", lasted.Round(time.Millisecond))
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// maxOutagePoll bounds how long the engine waits between polls while the
// database is unavailable, and so how late it notices it is back.
const maxOutagePoll = 2 * time.Second

// engineOutage follows, for the engine's loop, whether the database is
// unavailable: since when, and how long to wait before polling again,
// doubling from the poll interval up to maxOutagePoll so an outage is
// not met with a failed query (and a log line) every interval.
type engineOutage struct {
	interval time.Duration
	since    time.Time // zero while the database is reachable
	wait     time.Duration
}

// failed records a poll at now that found the database unavailable. It
// returns how long to wait before the next, and whether this poll began
// the outage.
func (o *engineOutage) failed(now time.Time) (wait time.Duration, began bool) {
	if o.since.IsZero() {
		o.since, o.wait = now, o.interval
		return o.wait, true
	}
	o.wait = min(2*o.wait, max(maxOutagePoll, o.interval))
	return o.wait, false
}

// recovered records a poll at now that reached the database, and reports
// whether that ended an outage, and how long it lasted.
func (o *engineOutage) recovered(now time.Time) (lasted time.Duration, ended bool) {
	if o.since.IsZero() {
		return 0, false
	}
	lasted, o.since = now.Sub(o.since), time.Time{}
	return lasted, true
}

func backoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 8 {
		attempt = 8
	}
	return 15 * time.Second << (attempt - 1)
}
