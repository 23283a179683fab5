package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/rules"
)

// On SQLite the writer's time goes into compiling SQL: bun writes every
// argument into the statement's text (the body as a kilobyte of hex), so
// each statement is parsed anew. The ingest path's statements are
// prepared once here and run with bound arguments. The generic path stays
// the reference; these statements must leave exactly the rows it would,
// which the ingest tests check on both databases.

type sqliteIngest struct {
	mu       sync.Mutex
	prepared bool

	open, append, close, cancelJobs, message, entry, event, eventPair, firstJob, job *sql.Stmt
	regression, raiseRead, raise, unqueueOverdue                                     *sql.Stmt
	claimGroup, setGroup, endGroup, takingMembers, joinedEntries, joinedEvents       *sql.Stmt
}

// sqliteBatch is the prepared statements bound to one batch's
// transaction: binding them once per batch rather than once per
// statement spares database/sql a wrapper for every statement run.
type sqliteBatch struct {
	open, append, close, cancelJobs, message, entry, event, eventPair, firstJob, job *sql.Stmt
	regression, raiseRead, raise, unqueueOverdue                                     *sql.Stmt

	// The grouping statements are bound on first use: most batches have
	// no grouping integration's messages.
	ctx      context.Context
	tx       *sql.Tx
	prepared *sqliteIngest
	grouping map[string]*sql.Stmt
}

// QueryRowContext and ExecContext run the grouping statements (see
// groupQuerier) prepared.
func (q *sqliteBatch) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return q.groupStmt(query).QueryRowContext(ctx, args...)
}

func (q *sqliteBatch) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return q.groupStmt(query).ExecContext(ctx, args...)
}

func (q *sqliteBatch) groupStmt(query string) *sql.Stmt {
	if st, ok := q.grouping[query]; ok {
		return st
	}
	var st *sql.Stmt
	switch query {
	case claimGroupSQL:
		st = q.prepared.claimGroup
	case setGroupSQL:
		st = q.prepared.setGroup
	case endGroupSQL:
		st = q.prepared.endGroup
	case takingMembersSQL:
		st = q.prepared.takingMembers
	case joinedEntriesSQL:
		st = q.prepared.joinedEntries
	case joinedEventsSQL:
		st = q.prepared.joinedEvents
	default:
		panic("unprepared grouping statement: " + query)
	}
	if q.grouping == nil {
		q.grouping = map[string]*sql.Stmt{}
	}
	st = q.tx.StmtContext(q.ctx, st)
	q.grouping[query] = st
	return st
}

var sqliteIngestSQL = map[string]string{
	"open": `INSERT INTO alerts
		(integration_id, source_id, source_name, subject, severity, url, details, status, append_count, opened_at, last_seen_at, escalation_policy_id, group_id, previous_alert_id, due_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, '` + string(db.AlertOpen) + `', 0, ?, ?, ?, ?, ` + previousAlertSQL + `, ?)
		ON CONFLICT (integration_id, source_id) WHERE status <> '` + string(db.AlertClosed) + `' DO NOTHING
		RETURNING id, previous_alert_id`,
	// regression reads when the alert an opened one brings back closed.
	"regression": `SELECT closed_at FROM alerts WHERE id = ?`,
	"append": `UPDATE alerts SET append_count = append_count + 1, last_seen_at = ?
		WHERE integration_id = ? AND source_id = ? AND status <> '` + string(db.AlertClosed) + `'
		RETURNING id, severity`,
	// raiseRead, raise and unqueueOverdue raise an appended alert's
	// severity (see raiseSeverity).
	"raiseRead":      `SELECT opened_at, due_at FROM alerts WHERE id = ?`,
	"raise":          `UPDATE alerts SET severity = ?, due_at = ? WHERE id = ?`,
	"unqueueOverdue": `DELETE FROM alert_jobs WHERE alert_id = ? AND kind = '` + jobOverdue + `'`,
	"close": `UPDATE alerts SET status = '` + string(db.AlertClosed) + `', closed_at = ?
		WHERE integration_id = ? AND source_id = ? AND status <> '` + string(db.AlertClosed) + `'
		RETURNING id`,
	// cancelJobs returns 1 for the first escalation step when it was
	// still held back by the paging delay (see cancelAllJobs).
	"cancelJobs": `DELETE FROM alert_jobs WHERE alert_id = ? AND kind <> '` + jobWorkflow + `'
		RETURNING CASE WHEN dedup_key = ? AND run_at > ? THEN 1 ELSE 0 END`,
	"message": `INSERT INTO inbound_messages (integration_id, received_at, remote_addr, headers, body, status, detail, source_id, alert_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
	"entry": `INSERT INTO alert_log (alert_id, at, type, message, inbound_message_id) VALUES (?, ?, ?, ?, ?)`,
	// Events go straight into the numbered table, as events.record does
	// on SQLite.
	"event": events.InsertValuesSQL(1),
	// A message that changes an alert has two events, the message's and
	// the alert's, in that order; one statement numbers both (rows of a
	// VALUES list are inserted in order).
	"eventPair": events.InsertValuesSQL(2),
	// The first escalation job, when the alert has a policy or the
	// integration has recipients to page.
	"claimGroup": claimGroupSQL,
	"setGroup":   setGroupSQL,
	"endGroup":   endGroupSQL,
	// A member's message leaves two timeline entries, the member's and
	// its leader's, and three events: the message's, the member's and the
	// leader's.
	"takingMembers": takingMembersSQL,
	"joinedEntries": joinedEntriesSQL,
	"joinedEvents":  joinedEventsSQL,
	"firstJob": `INSERT INTO alert_jobs (kind, alert_id, run_at, args, dedup_key, created_at)
		SELECT ?, ?, ?, ?, ?, ? WHERE ? OR EXISTS (SELECT 1 FROM integration_recipients WHERE integration_id = ?)
		ON CONFLICT (dedup_key) DO NOTHING`,
	"job": `INSERT INTO alert_jobs (kind, alert_id, run_at, args, dedup_key, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (dedup_key) DO NOTHING`,
}

// prepare readies the statements on the database's one connection. It must
// run outside a transaction: the transaction would hold that connection.
func (q *sqliteIngest) prepare(ctx context.Context, d *db.DB) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.prepared {
		return nil
	}
	targets := map[string]**sql.Stmt{
		"open": &q.open, "append": &q.append, "close": &q.close, "cancelJobs": &q.cancelJobs,
		"message": &q.message, "entry": &q.entry, "event": &q.event, "eventPair": &q.eventPair, "firstJob": &q.firstJob,
		"regression": &q.regression, "raiseRead": &q.raiseRead, "raise": &q.raise, "unqueueOverdue": &q.unqueueOverdue,
		"claimGroup": &q.claimGroup, "setGroup": &q.setGroup, "endGroup": &q.endGroup,
		"takingMembers": &q.takingMembers, "joinedEntries": &q.joinedEntries, "joinedEvents": &q.joinedEvents,
		"job": &q.job,
	}
	for name, target := range targets {
		st, err := d.DB.DB.PrepareContext(ctx, sqliteIngestSQL[name])
		if err != nil {
			// Nothing is kept: the next batch tries again.
			return fmt.Errorf("prepare %s statement: %w", name, err)
		}
		*target = st
	}
	q.prepared = true
	return nil
}

// in binds the prepared statements to tx for one batch.
func (q *sqliteIngest) in(ctx context.Context, tx bun.Tx) *sqliteBatch {
	bind := func(st *sql.Stmt) *sql.Stmt { return tx.Tx.StmtContext(ctx, st) }
	return &sqliteBatch{
		open: bind(q.open), append: bind(q.append), close: bind(q.close), cancelJobs: bind(q.cancelJobs),
		message: bind(q.message), entry: bind(q.entry), event: bind(q.event), eventPair: bind(q.eventPair), firstJob: bind(q.firstJob),
		job: bind(q.job), regression: bind(q.regression),
		raiseRead: bind(q.raiseRead), raise: bind(q.raise), unqueueOverdue: bind(q.unqueueOverdue),
		ctx: ctx, tx: tx.Tx, prepared: q,
	}
}

// execute carries out plan with the prepared statements. It reports
// false, having done nothing, for the plans it leaves to the generic
// executor.
func (q *sqliteBatch) execute(ctx context.Context, integrationID int, msg *db.InboundMessage, plan ingestPlan) (bool, error) {
	if plan.genericOnly() {
		return false, nil
	}
	now := db.SQLiteTime(msg.ReceivedAt)
	var alertID int
	took := true
	var err error
	// leaderID is the first alert of the opened alert's group.
	leaderID := 0
	// previousID is the closed alert an opened one brings back.
	var previousID *int
	switch plan.Step {
	case stepOpenOrAppend:
		var joining *int
		if plan.Group != nil {
			if joining, err = takingMembers(ctx, q, integrationID, plan.Group.Key, now); err != nil {
				return false, err
			}
		}
		var since any
		if t := plan.regressionSince(msg.ReceivedAt); t != nil {
			since = db.SQLiteTime(*t)
		}
		var due any
		if t := plan.dueAt(msg.ReceivedAt); t != nil {
			due = db.SQLiteTime(*t)
		}
		var storedSeverity string
		alertID, took, previousID, storedSeverity, err = q.openOrAppend(ctx, integrationID, plan.PolicyID, joining, plan.Fields, now, since, due)
		if err == nil && took && joining != nil {
			leaderID = *joining
		}
		if err == nil && !took {
			err = q.raiseSeverity(ctx, &plan, alertID, storedSeverity, msg.ReceivedAt)
		}
	case stepClose:
		alertID, took, err = q.closeBySource(ctx, integrationID, plan.Fields.SourceID, now)
	}
	if err != nil {
		return false, err
	}
	out := plan.outcome(took)
	if plan.Group != nil && took {
		switch plan.Step {
		case stepOpenOrAppend:
			if leaderID == 0 {
				ends := db.SQLiteTime(msg.ReceivedAt.Add(plan.Group.Window))
				if leaderID, err = claimGroup(ctx, q, integrationID, plan.Group.Key, alertID, now, ends); err != nil {
					return false, err
				}
			}
			if leaderID != alertID {
				out = out.joined(leaderID, plan.Hold)
			}
		case stepClose:
			if err := endGroup(ctx, q, alertID, now); err != nil {
				return false, err
			}
		}
	}
	if out.Entry != "" {
		msg.AlertID = &alertID
	}
	heldBack := false
	if out.CancelJobs {
		if heldBack, err = q.cancelAllJobs(ctx, alertID, now); err != nil {
			return false, err
		}
	}
	paging := false
	if out.StartPaging {
		first := escalateArgs{}
		args, err := json.Marshal(first)
		if err != nil {
			return false, fmt.Errorf("encode %s job: %w", jobEscalate, err)
		}
		res, err := q.firstJob.ExecContext(ctx,
			jobEscalate, alertID, db.SQLiteTime(plan.pageAt(msg.ReceivedAt)), string(args), escalateKey(alertID, first), now, plan.PolicyID != nil, integrationID)
		if err != nil {
			return false, fmt.Errorf("enqueue %s job for alert %d: %w", jobEscalate, alertID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return false, fmt.Errorf("enqueue %s job for alert %d: %w", jobEscalate, alertID, err)
		}
		paging = n > 0
	}
	if out.WatchSilence {
		job := plan.autoCloseJob(alertID, msg.ReceivedAt)
		args, err := json.Marshal(autoCloseArgs{Minutes: plan.AutoCloseMinutes})
		if err != nil {
			return false, fmt.Errorf("encode %s job: %w", jobAutoClose, err)
		}
		if _, err := q.job.ExecContext(ctx, job.Kind, alertID, db.SQLiteTime(job.RunAt), string(args), job.DedupKey, now); err != nil {
			return false, fmt.Errorf("enqueue %s job for alert %d: %w", jobAutoClose, alertID, err)
		}
	}
	if due := plan.dueAt(msg.ReceivedAt); due != nil && took && plan.Step == stepOpenOrAppend {
		if err := q.queueOverdue(ctx, alertID, *due, now); err != nil {
			return false, err
		}
	}
	msg.Status, msg.Detail = out.Status, out.Detail
	if out.Entry == "" {
		return true, q.store(ctx, msg, now)
	}
	if leaderID != 0 && leaderID != alertID {
		// A member pages nobody, so it has no paging entries of its own.
		if err := q.storeJoined(ctx, msg, now, out.Entry, out.EntryText, leaderID); err != nil {
			return true, err
		}
		return true, q.noteRegression(ctx, took, alertID, previousID, now)
	}
	if err := q.storeWithEntry(ctx, msg, now, out.Entry, out.EntryText); err != nil {
		return true, err
	}
	if paging && plan.DelayEntry != "" {
		if _, err := q.entry.ExecContext(ctx, alertID, now, string(db.LogPagingDelayed), plan.DelayEntry, nil); err != nil {
			return true, fmt.Errorf("store timeline entry: %w", err)
		}
	}
	if heldBack {
		if _, err := q.entry.ExecContext(ctx, alertID, now, string(db.LogNotPaged), closedBeforePagingText, nil); err != nil {
			return true, fmt.Errorf("store timeline entry: %w", err)
		}
	}
	return true, q.noteRegression(ctx, took, alertID, previousID, now)
}

// noteRegression is noteRegression of the generic path, when the alert
// opened (took) and brings one back.
func (q *sqliteBatch) noteRegression(ctx context.Context, took bool, alertID int, previousID *int, now string) error {
	if !took || previousID == nil {
		return nil
	}
	var closedAt time.Time
	if err := q.regression.QueryRowContext(ctx, *previousID).Scan(&closedAt); err != nil {
		return fmt.Errorf("read alert %d that alert %d brings back: %w", *previousID, alertID, err)
	}
	if _, err := q.entry.ExecContext(ctx, alertID, now, string(db.LogRegression), regressionText(*previousID, closedAt), nil); err != nil {
		return fmt.Errorf("store timeline entry: %w", err)
	}
	return nil
}

// cancelAllJobs is cancelAllJobs of the generic path.
func (q *sqliteBatch) cancelAllJobs(ctx context.Context, alertID int, now string) (heldBack bool, err error) {
	rows, err := q.cancelJobs.QueryContext(ctx, alertID, escalateKey(alertID, escalateArgs{}), now)
	if err != nil {
		return false, fmt.Errorf("cancel jobs of alert %d: %w", alertID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var held int
		if err := rows.Scan(&held); err != nil {
			return false, fmt.Errorf("cancel jobs of alert %d: %w", alertID, err)
		}
		heldBack = heldBack || held == 1
	}
	if err := rows.Err(); err != nil {
		return false, fmt.Errorf("cancel jobs of alert %d: %w", alertID, err)
	}
	return heldBack, nil
}

// storeJoined is storeWithEntry for a member's message, with noteJoined
// on its leader, in as many statements.
func (q *sqliteBatch) storeJoined(ctx context.Context, msg *db.InboundMessage, now string, typ db.AlertLogType, text string, leaderID int) error {
	if err := q.insertMessage(ctx, msg, now); err != nil {
		return err
	}
	memberID := *msg.AlertID
	if _, err := q.ExecContext(ctx, joinedEntriesSQL,
		memberID, now, string(typ), text, msg.ID,
		leaderID, now, string(db.LogGrouped), joinedText(memberID), msg.ID); err != nil {
		return fmt.Errorf("store timeline entries: %w", err)
	}
	args := append(events.Values(events.KindInbound, string(msg.Status), msg.AlertID, msg.IntegrationID, &msg.ID, now),
		events.Values(events.KindAlert, string(typ), msg.AlertID, msg.IntegrationID, nil, now)...)
	args = append(args, events.Values(events.KindAlert, string(db.LogGrouped), &leaderID, msg.IntegrationID, nil, now)...)
	if _, err := q.ExecContext(ctx, joinedEventsSQL, args...); err != nil {
		return fmt.Errorf("record events of inbound message %d and alerts %d and %d: %w", msg.ID, memberID, leaderID, err)
	}
	return nil
}

var (
	joinedEntriesSQL = `INSERT INTO alert_log (alert_id, at, type, message, inbound_message_id) VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)`
	joinedEventsSQL  = events.InsertValuesSQL(3)
)

func (q *sqliteBatch) openOrAppend(ctx context.Context, integrationID int, policyID, groupID *int, f rules.Fields, now string, regressionSince, dueAt any) (alertID int, opened bool, previousID *int, storedSeverity string, err error) {
	open, appendTo := q.open, q.append
	// The same race as on the generic path: an alert closed between the
	// INSERT and the UPDATE frees the slot again.
	for range 3 {
		err = open.QueryRowContext(ctx, integrationID, f.SourceID, f.SourceName, f.Subject, f.Severity, f.URL, f.Details, now, now, policyID, groupID,
			integrationID, f.SourceID, regressionSince, dueAt).Scan(&alertID, &previousID)
		if err == nil {
			return alertID, true, previousID, "", nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil, "", fmt.Errorf("open alert: %w", err)
		}
		err = appendTo.QueryRowContext(ctx, now, integrationID, f.SourceID).Scan(&alertID, &storedSeverity)
		if err == nil {
			return alertID, false, nil, storedSeverity, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, false, nil, "", fmt.Errorf("append to alert: %w", err)
		}
	}
	return 0, false, nil, "", errors.New("open alert: the open alert kept changing; giving up")
}

// raiseSeverity is raiseSeverity of the generic path.
func (q *sqliteBatch) raiseSeverity(ctx context.Context, plan *ingestPlan, alertID int, stored string, now time.Time) error {
	if !plan.raises(stored) {
		return nil
	}
	var openedAt time.Time
	var dueAt *time.Time
	if err := q.raiseRead.QueryRowContext(ctx, alertID).Scan(&openedAt, &dueAt); err != nil {
		return fmt.Errorf("raise severity of alert %d: %w", alertID, err)
	}
	due, moved := plan.raisedDue(openedAt, dueAt)
	var dueArg any
	if due != nil {
		dueArg = db.SQLiteTime(*due)
	}
	if _, err := q.raise.ExecContext(ctx, plan.Fields.Severity, dueArg, alertID); err != nil {
		return fmt.Errorf("raise severity of alert %d: %w", alertID, err)
	}
	if !moved {
		return nil
	}
	if _, err := q.unqueueOverdue.ExecContext(ctx, alertID); err != nil {
		return fmt.Errorf("move the due time of alert %d: %w", alertID, err)
	}
	return q.queueOverdue(ctx, alertID, *due, db.SQLiteTime(now))
}

// queueOverdue inserts the overdue job of an alert due at due.
func (q *sqliteBatch) queueOverdue(ctx context.Context, alertID int, due time.Time, now string) error {
	if _, err := q.job.ExecContext(ctx, jobOverdue, alertID, db.SQLiteTime(due), overdueArgsJSON, overdueKey(alertID, due), now); err != nil {
		return fmt.Errorf("enqueue %s job for alert %d: %w", jobOverdue, alertID, err)
	}
	return nil
}

func (q *sqliteBatch) closeBySource(ctx context.Context, integrationID int, sourceID, now string) (alertID int, closed bool, err error) {
	err = q.close.QueryRowContext(ctx, now, integrationID, sourceID).Scan(&alertID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("close alert: %w", err)
	}
	return alertID, true, nil
}

// store is insertMessage: the message with its final status, and its
// event for live subscribers.
func (q *sqliteBatch) store(ctx context.Context, msg *db.InboundMessage, now string) error {
	if err := q.insertMessage(ctx, msg, now); err != nil {
		return err
	}
	if _, err := q.event.ExecContext(ctx,
		events.Values(events.KindInbound, string(msg.Status), msg.AlertID, msg.IntegrationID, &msg.ID, now)...); err != nil {
		return fmt.Errorf("record event of inbound message %d: %w", msg.ID, err)
	}
	return nil
}

func (q *sqliteBatch) insertMessage(ctx context.Context, msg *db.InboundMessage, now string) error {
	headers, err := json.Marshal(msg.Headers)
	if err != nil {
		return fmt.Errorf("encode headers: %w", err)
	}
	err = q.message.QueryRowContext(ctx,
		msg.IntegrationID, now, msg.RemoteAddr, string(headers), msg.Body, string(msg.Status), msg.Detail, msg.SourceID, msg.AlertID,
	).Scan(&msg.ID)
	if err != nil {
		return fmt.Errorf("store inbound message: %w", err)
	}
	return nil
}

// storeWithEntry is insertMessageAndLog.
func (q *sqliteBatch) storeWithEntry(ctx context.Context, msg *db.InboundMessage, now string, typ db.AlertLogType, text string) error {
	if err := q.insertMessage(ctx, msg, now); err != nil {
		return err
	}
	if _, err := q.entry.ExecContext(ctx, *msg.AlertID, now, string(typ), text, msg.ID); err != nil {
		return fmt.Errorf("store timeline entry: %w", err)
	}
	pair := append(events.Values(events.KindInbound, string(msg.Status), msg.AlertID, msg.IntegrationID, &msg.ID, now),
		events.Values(events.KindAlert, string(typ), msg.AlertID, msg.IntegrationID, nil, now)...)
	if _, err := q.eventPair.ExecContext(ctx, pair...); err != nil {
		return fmt.Errorf("record events of inbound message %d and alert %d: %w", msg.ID, *msg.AlertID, err)
	}
	return nil
}
