package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/rules"
)

// On PostgreSQL every statement is a round trip, and a message's effects
// (its alert, inbound log row, timeline entry, first escalation job and
// events) are each one statement on the generic path. Here they are one
// statement per message: data-modifying CTEs that see each other's
// RETURNING rows, the events among them, which are numbered as they are
// written (see events/settled.go). The generic path stays the
// reference; these statements must leave exactly the rows it would, with
// its events in the same order, which the ingest tests check on both
// databases.

// Each statement carries out its plan's step with both outcomes bound as
// arguments; the database's answer picks one. An outcome's entry type is
// NULL when it leaves no timeline entry (and so no alert event).

// pgOpenSQL opens an alert or appends to the source's open one. The
// UPDATE runs only when the INSERT met the open alert; if that alert was
// committed by another transaction after this statement's snapshot, the
// UPDATE cannot see it either and no row comes back: the caller retries.
// $13–$17 are the outcome when the alert was opened, $18–$22 when appended
// to: status, detail, entry type, entry text, whether to start paging;
// $27 and $28 whether each watches for silence. $23 is when the first
// step is due, $26 the timeline entry saying it waits (NULL for none);
// $24 and $25 the auto-close job's due time and arguments.
//
// pgOpenGroupedSQL also puts an opened alert into its group (see
// grouping.go), with the same rows the generic executor leaves: $29 is
// the group key, $30 when a group it leads stops taking members, $31 and
// $32 joinedNote and joinedEntry. The alert's id is drawn first so that
// it can name itself as its group's first alert in the one INSERT. The
// statement's last column is the leader its claim left on the key's
// group row. An integration that groups has its messages committed in
// one lane (see laneKey), so on one instance it is always the alert
// itself; another instance may have claimed the row since the statement
// read it, and then the statement fails rather than make a second leader,
// and the message is stored again, the generic way.
var pgOpenSQL, pgOpenGroupedSQL = pgOpenStatement(false, true), pgOpenStatement(true, true)

// pgOpenUndueSQL and pgOpenGroupedUndueSQL are the two for a plan with no
// remediation deadline (most: deadlines are set per integration), which
// then takes none of their CTEs nor their arguments but the first.
var pgOpenUndueSQL, pgOpenGroupedUndueSQL = pgOpenStatement(false, false), pgOpenStatement(true, false)

// The findings arguments follow: from $29 ($33 when grouped) the time
// since which a closed alert of the source is brought back (NULL: none),
// the opened alert's due time (NULL: none) and its overdue job's key, the
// plan's RaiseRank and DueDays. Both statements read the source's latest
// alert closed since then in prev: the opened alert links to it, and its
// regression entry comes last, as on the generic path. An append that
// outranks the alert's severity raises it in the UPDATE; when that moves
// the due time (moved, which compares with the alerts as they were before
// the statement), the old overdue job goes and the new one comes.
func pgOpenStatement(grouped, deadlines bool) string {
	const columns = "integration_id, source_id, source_name, subject, severity, url, details, status, append_count, opened_at, last_seen_at, escalation_policy_id"
	values := fmt.Sprintf("$1, $2, $3, $4, $5, $6, $7, '%s', 0, $8, $8, $9", db.AlertOpen)
	n := 29
	if grouped {
		n = 33
	}
	arg := func(i int, typ string) string { return fmt.Sprintf("$%d::%s", n+i, typ) }
	since, due, dueKey, raiseRank, dueDays := arg(0, "timestamptz"), arg(1, "timestamptz"), arg(2, "text"), arg(3, "integer"), arg(4, "integer")
	regressionCTE := `prev AS (
	SELECT p.id, p.closed_at FROM alerts p WHERE p.integration_id = $1 AND p.source_id = $2 AND p.closed_at >= ` + since + `
	ORDER BY p.closed_at DESC, p.id DESC LIMIT 1
), `
	raised := fmt.Sprintf("%s < %s", rules.SeverityRankSQL("severity"), raiseRank)
	raisedDue := fmt.Sprintf("CASE WHEN %s > 0 THEN opened_at + make_interval(hours => 24 * %s) END", dueDays, dueDays)
	remediation := pgRemediation{
		appendSet: fmt.Sprintf(`,
		severity = CASE WHEN %[1]s THEN $5 ELSE severity END,
		due_at = CASE WHEN %[1]s AND %[2]s < COALESCE(due_at, 'infinity') THEN %[2]s ELSE due_at END`, raised, raisedDue),
		movedCTE: fmt.Sprintf(`, moved AS (
	SELECT a.id, a.due_at FROM appended a JOIN alerts old ON old.id = a.id WHERE a.due_at IS DISTINCT FROM old.due_at
), unqueued AS (
	DELETE FROM alert_jobs WHERE kind = '%s' AND alert_id IN (SELECT id FROM moved)
)`, jobOverdue),
		overdueJobs: fmt.Sprintf(`
	UNION ALL
	SELECT '%[1]s', o.id, %[2]s, '%[3]s', '%[1]s:' || o.id || ':' || %[4]s, $8::timestamptz FROM opened o WHERE %[2]s IS NOT NULL
	UNION ALL
	SELECT '%[1]s', m.id, m.due_at, '%[3]s', '%[1]s:' || m.id || ':' || extract(epoch FROM date_trunc('second', m.due_at))::bigint, $8::timestamptz FROM moved m`,
			jobOverdue, due, overdueArgsJSON, dueKey),
	}
	dueColumn, dueValue := ", due_at", ", "+due
	if !deadlines {
		remediation, dueColumn, dueValue = pgRemediation{}, "", ""
	}
	regressionEntry := fmt.Sprintf(`
	UNION ALL
	SELECT o.id, $8::timestamptz, '%s', format('%s', p.id, to_char(p.closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')), NULL FROM opened o, prev p`,
		db.LogRegression, regressionFormat)
	groupCTEs, returning := "", "id, NULL::bigint AS leader"
	text, page := "$16::text", "$17::boolean"
	claim, groupEntry, groupEvent, final := "", "", "", "SELECT id, alert_id, status, detail FROM msg"
	if grouped {
		groupCTEs = `grp AS (
	SELECT leader_id FROM alert_groups WHERE integration_id = $1 AND group_key = $29 AND window_ends_at > $8
), fresh AS (
	SELECT nextval('alerts_id_seq') AS id
), `
		values = "(SELECT id FROM fresh), " + values + ", COALESCE((SELECT leader_id FROM grp), (SELECT id FROM fresh))"
		returning = "id, NULLIF(group_id, id) AS leader"
		text = "CASE WHEN leader IS NULL THEN $16::text ELSE $16::text || format($31::text, leader) END"
		page = "$17::boolean AND leader IS NULL"
		claim = `, claim AS (
	INSERT INTO alert_groups (integration_id, group_key, leader_id, window_ends_at)
	SELECT $1::bigint, $29::text, o.id, $30::timestamptz FROM opened o WHERE o.leader IS NULL
	ON CONFLICT (integration_id, group_key) DO UPDATE SET
		leader_id = CASE WHEN alert_groups.window_ends_at <= $8 THEN excluded.leader_id ELSE alert_groups.leader_id END,
		window_ends_at = CASE WHEN alert_groups.window_ends_at <= $8 THEN excluded.window_ends_at ELSE alert_groups.window_ends_at END
	RETURNING leader_id
)`
		groupEntry = fmt.Sprintf(`
	UNION ALL
	SELECT t.leader, $8::timestamptz, '%s', format($32::text, t.id), m.id FROM msg m, target t WHERE t.leader IS NOT NULL`, db.LogGrouped)
		groupEvent = fmt.Sprintf("SELECT '%s', '%s', t.leader, $1::bigint, NULL, $8::timestamptz FROM msg m, target t WHERE t.leader IS NOT NULL", events.KindAlert, db.LogGrouped)
		final = "SELECT id, alert_id, status, detail, (SELECT leader_id FROM claim) FROM msg"
		return pgOpenTemplate(regressionCTE+groupCTEs, "id, "+columns+", group_id, previous_alert_id"+dueColumn, values+", (SELECT id FROM prev)"+dueValue, returning, claim, text, page, groupEntry+regressionEntry, final, remediation, groupEvent)
	}
	return pgOpenTemplate(regressionCTE+groupCTEs, columns+", previous_alert_id"+dueColumn, values+", (SELECT id FROM prev)"+dueValue, returning, claim, text, page, groupEntry+regressionEntry, final, remediation)
}

// pgRemediation are the parts of pgOpenTemplate that raise an appended
// alert's severity and queue overdue jobs.
type pgRemediation struct {
	appendSet, movedCTE, overdueJobs string
}

func pgOpenTemplate(groupCTEs, columns, values, returning, claim, text, page, groupEntry, final string, remediation pgRemediation, groupEvents ...string) string {
	return fmt.Sprintf(`WITH %[6]sopened AS (
	INSERT INTO alerts (%[7]s)
	VALUES (%[8]s)
	ON CONFLICT (integration_id, source_id) WHERE status <> '%[1]s' DO NOTHING
	RETURNING %[9]s
)%[10]s, appended AS (
	UPDATE alerts SET append_count = append_count + 1, last_seen_at = $8%[15]s
	WHERE integration_id = $1 AND source_id = $2 AND status <> '%[1]s' AND NOT EXISTS (SELECT 1 FROM opened)
	RETURNING id, due_at
)%[16]s, target AS (
	SELECT id, $13::text AS status, $14::text AS detail, $15::text AS entry, %[11]s AS text, %[12]s AS page, $27::boolean AS watch, leader FROM opened
	UNION ALL
	SELECT id, $18::text, $19::text, $20::text, $21::text, $22::boolean, $28::boolean, NULL::bigint FROM appended
), msg AS (
	INSERT INTO inbound_messages (integration_id, received_at, remote_addr, headers, body, status, detail, source_id, alert_id)
	SELECT $1::bigint, $8::timestamptz, $10, $11, $12::bytea, t.status, t.detail, $2, CASE WHEN t.entry IS NOT NULL THEN t.id END
	FROM target t
	RETURNING id, alert_id, status, detail
), job AS (
	INSERT INTO alert_jobs (kind, alert_id, run_at, args, dedup_key, created_at)
	SELECT '%[2]s', t.id, $23::timestamptz, '{"step":0,"round":0}', '%[2]s:' || t.id || ':0:0', $8::timestamptz FROM target t
	WHERE t.page AND ($9::bigint IS NOT NULL OR EXISTS (SELECT 1 FROM integration_recipients WHERE integration_id = $1))
	UNION ALL
	SELECT '%[4]s', t.id, $24::timestamptz, $25::text, '%[4]s:' || t.id, $8::timestamptz FROM target t WHERE t.watch%[17]s
	ON CONFLICT (dedup_key) DO NOTHING
	RETURNING kind
), entry AS (
	INSERT INTO alert_log (alert_id, at, type, message, inbound_message_id)
	SELECT t.id, $8::timestamptz, t.entry, t.text, m.id FROM msg m, target t WHERE t.entry IS NOT NULL
	UNION ALL
	SELECT t.id, $8::timestamptz, '%[5]s', $26::text, NULL FROM target t
	WHERE $26::text IS NOT NULL AND EXISTS (SELECT 1 FROM job WHERE kind = '%[2]s')%[13]s
), ev AS (
	%[3]s
)
%[14]s`,
		db.AlertClosed, jobEscalate,
		events.InsertSelectSQL(append([]string{
			fmt.Sprintf("SELECT '%s', m.status, m.alert_id, $1::bigint, m.id, $8::timestamptz FROM msg m", events.KindInbound),
			fmt.Sprintf("SELECT '%s', t.entry, t.id, $1::bigint, NULL, $8::timestamptz FROM msg m, target t WHERE t.entry IS NOT NULL", events.KindAlert)},
			groupEvents...)...),
		jobAutoClose, db.LogPagingDelayed,
		groupCTEs, columns, values, returning, claim, text, page, groupEntry, final,
		remediation.appendSet, remediation.movedCTE, remediation.overdueJobs)
}

// pgCloseSQL closes the source's open alert, or finds none. $7–$11 are
// the outcome when it closed one, $12–$16 when none was open: status,
// detail, entry type, entry text, whether to cancel the alert's jobs.
// Cancelling a first step the paging delay still held back adds the
// entry that says nobody was paged. pgCloseGroupedSQL also ends the
// group the closed alert leads, as endGroup does.
var pgCloseSQL, pgCloseGroupedSQL = pgCloseStatement(""), pgCloseStatement(`, ended AS (
	UPDATE alert_groups SET window_ends_at = $3 WHERE leader_id IN (SELECT id FROM closed) AND window_ends_at > $3
)`)

func pgCloseStatement(endGroup string) string {
	return fmt.Sprintf(`WITH closed AS (
	UPDATE alerts SET status = '%[1]s', closed_at = $3
	WHERE integration_id = $1 AND source_id = $2 AND status <> '%[1]s'
	RETURNING id
)%[6]s, outcome AS (
	SELECT c.id,
		CASE WHEN c.id IS NULL THEN $12::text ELSE $7::text END AS status,
		CASE WHEN c.id IS NULL THEN $13::text ELSE $8::text END AS detail,
		CASE WHEN c.id IS NULL THEN $14::text ELSE $9::text END AS entry,
		CASE WHEN c.id IS NULL THEN $15::text ELSE $10::text END AS text,
		CASE WHEN c.id IS NULL THEN $16::boolean ELSE $11::boolean END AS cancel
	FROM (SELECT 1) AS one LEFT JOIN closed c ON TRUE
), jobs AS (
	DELETE FROM alert_jobs WHERE alert_id IN (SELECT id FROM outcome WHERE cancel) AND kind <> '`+jobWorkflow+`'
	RETURNING alert_id, dedup_key, run_at
), msg AS (
	INSERT INTO inbound_messages (integration_id, received_at, remote_addr, headers, body, status, detail, source_id, alert_id)
	SELECT $1::bigint, $3::timestamptz, $4, $5, $6::bytea, o.status, o.detail, $2, CASE WHEN o.entry IS NOT NULL THEN o.id END
	FROM outcome o
	RETURNING id, alert_id, status, detail
), entry AS (
	INSERT INTO alert_log (alert_id, at, type, message, inbound_message_id)
	SELECT o.id, $3::timestamptz, o.entry, o.text, m.id FROM msg m, outcome o WHERE o.entry IS NOT NULL
	UNION ALL
	SELECT o.id, $3::timestamptz, '%[3]s', '%[4]s', NULL FROM outcome o
	WHERE o.entry IS NOT NULL AND EXISTS (SELECT 1 FROM jobs j WHERE j.dedup_key = '%[5]s:' || o.id || ':0:0' AND j.run_at > $3::timestamptz)
), ev AS (
	%[2]s
)
SELECT id, alert_id, status, detail FROM msg`,
		db.AlertClosed,
		events.InsertSelectSQL(
			fmt.Sprintf("SELECT '%s', m.status, m.alert_id, $1::bigint, m.id, $3::timestamptz FROM msg m", events.KindInbound),
			fmt.Sprintf("SELECT '%s', o.entry, o.id, $1::bigint, NULL, $3::timestamptz FROM msg m, outcome o WHERE o.entry IS NOT NULL", events.KindAlert)),
		db.LogNotPaged, closedBeforePagingText, jobEscalate, endGroup)
}

// pgLogSQL stores a message that touches no alert.
var pgLogSQL = fmt.Sprintf(`WITH msg AS (
	INSERT INTO inbound_messages (integration_id, received_at, remote_addr, headers, body, status, detail, source_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	RETURNING id, status
), ev AS (
	%s
)
SELECT id FROM msg`,
	events.InsertSelectSQL(fmt.Sprintf("SELECT '%s', m.status, NULL::bigint, $1::bigint, m.id, $2::timestamptz FROM msg m", events.KindInbound)))

// pgOutcomeArgs are an outcome's arguments to pgOpenSQL or pgCloseSQL;
// flag is its StartPaging or CancelJobs.
func pgOutcomeArgs(o ingestOutcome, flag bool) []any {
	var entry, text any
	if o.Entry != "" {
		entry, text = string(o.Entry), o.EntryText
	}
	return []any{string(o.Status), o.Detail, entry, text, flag}
}

// pgStatement is one message's statement: run alone in the batch's
// transaction (storeOne) or queued with the others in one pipeline
// (commitPipelined).
type pgStatement struct {
	sql  string
	args []any
	// groupLock, for a message of an integration that groups, are the
	// arguments of groupLockSQL, run just before the statement.
	groupLock []any
	// read takes the statement's row into the message. retry says that
	// the open alert changed under the statement, which then wrote
	// nothing.
	read func(row rowScanner) (retry bool, err error)
}

// groupLockSQL takes a group key's lock until the transaction ends. One
// instance commits an integration's grouped messages in one lane (see
// laneKey), but instances commit side by side, and two alerts opening at
// once for one key must not both find no group and both lead one: the
// second waits here for the first to commit, and its statement, which
// reads the groups afresh, then joins the first's group. Only messages
// of one integration that groups, on different instances, ever wait.
const groupLockSQL = "SELECT pg_advisory_xact_lock(hashtextextended($1::bigint::text || ':' || $2::text, 727266044))"

// rowScanner is a row of database/sql or of pgx.
type rowScanner interface{ Scan(dest ...any) error }

// pgStatementFor is p's statement; ok is false, having changed nothing,
// when p is left to the generic executor.
func pgStatementFor(p *pendingIngest) (st pgStatement, ok bool, err error) {
	msg, plan := p.msg, p.plan()
	if plan.genericOnly() {
		return pgStatement{}, false, nil
	}
	headers, err := json.Marshal(msg.Headers)
	if err != nil {
		return pgStatement{}, false, fmt.Errorf("encode headers: %w", err)
	}
	now := msg.ReceivedAt
	// readAlert takes the row of pgOpenSQL, pgCloseSQL or their grouped
	// forms; claimed says the row ends with the leader of pgOpenGroupedSQL's
	// claim.
	readAlert := func(what string, claimed bool) func(row rowScanner) (bool, error) {
		return func(row rowScanner) (bool, error) {
			var alertID, leaderID sql.NullInt64
			var status string
			dest := []any{&msg.ID, &alertID, &status, &msg.Detail}
			if claimed {
				dest = append(dest, &leaderID)
			}
			err := row.Scan(dest...)
			if errors.Is(err, sql.ErrNoRows) {
				return true, nil
			}
			if err != nil {
				return false, fmt.Errorf("%s: %w", what, err)
			}
			if leaderID.Valid && (!alertID.Valid || leaderID != alertID) {
				return false, fmt.Errorf("%s: group %q is led by alert %d, which another instance claimed meanwhile", what, plan.Group.Key, leaderID.Int64)
			}
			msg.Status, msg.AlertID = db.InboundStatus(status), nil
			if alertID.Valid {
				id := int(alertID.Int64)
				msg.AlertID = &id
			}
			return false, nil
		}
	}
	switch plan.Step {
	case stepOpenOrAppend:
		f := plan.Fields
		args := []any{p.integ.ID, f.SourceID, f.SourceName, f.Subject, f.Severity, f.URL, f.Details, now, plan.PolicyID,
			msg.RemoteAddr, string(headers), msg.Body}
		args = append(args, pgOutcomeArgs(plan.Then, plan.Then.StartPaging)...)
		args = append(args, pgOutcomeArgs(plan.Else, plan.Else.StartPaging)...)
		var closeAt, closeArgs, delayEntry any
		if plan.AutoCloseMinutes > 0 {
			raw, err := json.Marshal(autoCloseArgs{Minutes: plan.AutoCloseMinutes})
			if err != nil {
				return pgStatement{}, false, fmt.Errorf("encode %s job: %w", jobAutoClose, err)
			}
			closeAt, closeArgs = plan.autoCloseJob(0, now).RunAt, string(raw)
		}
		if plan.DelayEntry != "" {
			delayEntry = plan.DelayEntry
		}
		args = append(args, plan.pageAt(now), closeAt, closeArgs, delayEntry, plan.Then.WatchSilence, plan.Else.WatchSilence)
		if g := plan.Group; g != nil {
			args = append(args, g.Key, now.Add(g.Window), joinedNote, joinedEntry)
		}
		var dueKey any
		due := plan.dueAt(now)
		if due != nil {
			// The alert's id is the statement's; the key's time is known.
			dueKey = strconv.FormatInt(due.Unix(), 10)
		}
		args = append(args, plan.regressionSince(now))
		query, groupedQuery := pgOpenUndueSQL, pgOpenGroupedUndueSQL
		if due != nil || plan.RaiseRank != 0 {
			args = append(args, due, dueKey, plan.RaiseRank, plan.DueDays)
			query, groupedQuery = pgOpenSQL, pgOpenGroupedSQL
		}
		if g := plan.Group; g != nil {
			return pgStatement{sql: groupedQuery, args: args, read: readAlert("open alert", true), groupLock: []any{p.integ.ID, g.Key}}, true, nil
		}
		return pgStatement{sql: query, args: args, read: readAlert("open alert", false)}, true, nil
	case stepClose:
		args := []any{p.integ.ID, plan.Fields.SourceID, now, msg.RemoteAddr, string(headers), msg.Body}
		args = append(args, pgOutcomeArgs(plan.Then, plan.Then.CancelJobs)...)
		args = append(args, pgOutcomeArgs(plan.Else, plan.Else.CancelJobs)...)
		if g := plan.Group; g != nil {
			return pgStatement{sql: pgCloseGroupedSQL, args: args, read: readAlert("close alert", false), groupLock: []any{p.integ.ID, g.Key}}, true, nil
		}
		return pgStatement{sql: pgCloseSQL, args: args, read: readAlert("close alert", false)}, true, nil
	}
	msg.Status, msg.Detail = plan.Then.Status, plan.Then.Detail
	return pgStatement{
		sql:  pgLogSQL,
		args: []any{msg.IntegrationID, now, msg.RemoteAddr, string(headers), msg.Body, string(msg.Status), msg.Detail, msg.SourceID},
		read: func(row rowScanner) (bool, error) {
			if err := row.Scan(&msg.ID); err != nil {
				return false, fmt.Errorf("store inbound message: %w", err)
			}
			return false, nil
		},
	}, true, nil
}

// storePostgres stores p in tx, in one statement, or on the generic path.
func (s *Service) storePostgres(ctx context.Context, tx bun.Tx, p *pendingIngest) error {
	st, ok, err := pgStatementFor(p)
	if err != nil {
		return err
	}
	if plan := p.plan(); plan.Group != nil {
		if _, err := tx.Tx.ExecContext(ctx, groupLockSQL, db.PlanOnce, p.integ.ID, plan.Group.Key); err != nil {
			return fmt.Errorf("take group lock: %w", err)
		}
	}
	if !ok {
		return s.executeGeneric(ctx, tx, p.integ.ID, p.msg, p.plan())
	}
	args := append([]any{db.PlanOnce}, st.args...)
	for range 3 {
		retry, err := st.read(tx.Tx.QueryRowContext(ctx, st.sql, args...))
		if !retry {
			return err
		}
	}
	return errors.New("open alert: the open alert kept changing; giving up")
}
