package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/rules"
)

// On PostgreSQL every statement is a round trip, and a message's effects
// (its alert, inbound log row, timeline entry, first escalation job and
// events) are each one statement on the generic path. Here they are one
// statement per message: data-modifying CTEs that see each other's
// RETURNING rows, the events among them: the batch's transaction holds
// the numbering lock (events.BeginNumbering). The generic path stays the
// reference; these statements must leave exactly the rows it would, with
// its events in the same order, which the ingest tests check on both
// databases.

// pgOpenSQL opens an alert or appends to the source's open one. The
// UPDATE runs only when the INSERT met the open alert; if that alert was
// committed by another transaction after this statement's snapshot, the
// UPDATE cannot see it either and no row comes back: the caller retries.
var pgOpenSQL = fmt.Sprintf(`WITH opened AS (
	INSERT INTO alerts (integration_id, source_id, source_name, subject, severity, url, details, status, append_count, opened_at, last_seen_at, escalation_policy_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, '%[1]s', 0, $8, $8, $9)
	ON CONFLICT (integration_id, source_id) WHERE status <> '%[2]s' DO NOTHING
	RETURNING id
), appended AS (
	UPDATE alerts SET append_count = append_count + 1, last_seen_at = $8
	WHERE integration_id = $1 AND source_id = $2 AND status <> '%[2]s' AND NOT EXISTS (SELECT 1 FROM opened)
	RETURNING id
), target AS (
	SELECT id, TRUE AS opened FROM opened
	UNION ALL
	SELECT id, FALSE FROM appended
), msg AS (
	INSERT INTO inbound_messages (integration_id, received_at, remote_addr, headers, body, status, detail, source_id, alert_id)
	SELECT $1::bigint, $8::timestamptz, $10, $11, $12::bytea, CASE WHEN t.opened THEN '%[3]s' ELSE '%[4]s' END, $13, $2, t.id FROM target t
	RETURNING id, alert_id, status
), entry AS (
	INSERT INTO alert_log (alert_id, at, type, message, inbound_message_id)
	SELECT m.alert_id, $8::timestamptz,
		CASE WHEN m.status = '%[3]s' THEN '%[5]s' ELSE '%[6]s' END,
		CASE WHEN m.status = '%[3]s' THEN $14 ELSE 'Duplicate message appended' END, m.id
	FROM msg m
), job AS (
	INSERT INTO alert_jobs (kind, alert_id, run_at, args, dedup_key, created_at)
	SELECT '%[7]s', o.id, $8::timestamptz, '{"step":0,"round":0}', '%[7]s:' || o.id || ':0:0', $8::timestamptz FROM opened o
	WHERE $9::bigint IS NOT NULL OR EXISTS (SELECT 1 FROM integration_recipients WHERE integration_id = $1)
	ON CONFLICT (dedup_key) DO NOTHING
), ev AS (
	INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
	SELECT 'inbound', m.status, m.alert_id, $1::bigint, m.id, $8::timestamptz FROM msg m
	UNION ALL
	SELECT 'alert', CASE WHEN m.status = '%[3]s' THEN '%[5]s' ELSE '%[6]s' END, m.alert_id, $1::bigint, NULL, $8::timestamptz FROM msg m
)
SELECT id, alert_id, status FROM msg`,
	db.AlertOpen, db.AlertClosed, db.InboundOpened, db.InboundAppended, db.LogOpened, db.LogAppended, jobEscalate)

// pgCloseSQL closes the source's open alert, cancels its jobs and logs
// the message as closing it, or as ignored when nothing was open.
var pgCloseSQL = fmt.Sprintf(`WITH closed AS (
	UPDATE alerts SET status = '%[1]s', closed_at = $3
	WHERE integration_id = $1 AND source_id = $2 AND status <> '%[1]s'
	RETURNING id
), jobs AS (
	DELETE FROM alert_jobs WHERE alert_id IN (SELECT id FROM closed)
), msg AS (
	INSERT INTO inbound_messages (integration_id, received_at, remote_addr, headers, body, status, detail, source_id, alert_id)
	SELECT $1::bigint, $3::timestamptz, $4, $5, $6::bytea,
		CASE WHEN c.id IS NULL THEN '%[2]s' ELSE '%[3]s' END,
		CASE WHEN c.id IS NULL THEN $8 ELSE $7 END, $2, c.id
	FROM (SELECT 1) AS one LEFT JOIN closed c ON TRUE
	RETURNING id, alert_id, status, detail
), entry AS (
	INSERT INTO alert_log (alert_id, at, type, message, inbound_message_id)
	SELECT m.alert_id, $3::timestamptz, '%[4]s', $9, m.id FROM msg m WHERE m.alert_id IS NOT NULL
), ev AS (
	INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
	SELECT 'inbound', m.status, m.alert_id, $1::bigint, m.id, $3::timestamptz FROM msg m
	UNION ALL
	SELECT 'alert', '%[4]s', m.alert_id, $1::bigint, NULL, $3::timestamptz FROM msg m WHERE m.alert_id IS NOT NULL
)
SELECT id, alert_id, status, detail FROM msg`,
	db.AlertClosed, db.InboundIgnored, db.InboundClosed, db.LogClosed)

// pgLogSQL stores a message that touches no alert.
const pgLogSQL = `WITH msg AS (
	INSERT INTO inbound_messages (integration_id, received_at, remote_addr, headers, body, status, detail, source_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	RETURNING id, status
), ev AS (
	INSERT INTO events (kind, type, integration_id, inbound_message_id, at)
	SELECT 'inbound', m.status, $1::bigint, m.id, $2::timestamptz FROM msg m
)
SELECT id FROM msg`

// pgStatement is one message's statement: run alone in the batch's
// transaction (storeOne) or queued with the others in one pipeline
// (commitPipelined).
type pgStatement struct {
	sql  string
	args []any
	// read takes the statement's row into the message. retry says that
	// the open alert changed under the statement, which then wrote
	// nothing.
	read func(row rowScanner) (retry bool, err error)
}

// rowScanner is a row of database/sql or of pgx.
type rowScanner interface{ Scan(dest ...any) error }

// pgStatementFor is p's statement; ok is false, having changed nothing,
// when p is left to the generic path.
func pgStatementFor(p *pendingIngest) (st pgStatement, ok bool, err error) {
	msg, d := p.msg, p.decision
	if p.failure == "" && d.Action == rules.ActionOpen && d.Route.NamesRecipients() {
		return pgStatement{}, false, nil
	}
	headers, err := json.Marshal(msg.Headers)
	if err != nil {
		return pgStatement{}, false, fmt.Errorf("encode headers: %w", err)
	}
	now := msg.ReceivedAt
	switch {
	case p.failure == "" && d.Action == rules.ActionOpen:
		f := d.Fields
		return pgStatement{
			sql: pgOpenSQL,
			args: []any{p.integ.ID, f.SourceID, f.SourceName, f.Subject, f.Severity, f.URL, f.Details, now, policyFor(p.integ, d.Route),
				msg.RemoteAddr, string(headers), msg.Body, d.Detail, "Opened: " + d.Detail},
			read: func(row rowScanner) (bool, error) {
				var alertID int
				var status string
				err := row.Scan(&msg.ID, &alertID, &status)
				if errors.Is(err, sql.ErrNoRows) {
					return true, nil
				}
				if err != nil {
					return false, fmt.Errorf("open alert: %w", err)
				}
				msg.AlertID, msg.Status, msg.Detail = &alertID, db.InboundStatus(status), d.Detail
				return false, nil
			},
		}, true, nil
	case p.failure == "" && d.Action == rules.ActionClose:
		return pgStatement{
			sql: pgCloseSQL,
			args: []any{p.integ.ID, d.Fields.SourceID, now, msg.RemoteAddr, string(headers), msg.Body,
				d.Detail, d.Detail + "; no open alert for this source", "Closed: " + d.Detail},
			read: func(row rowScanner) (bool, error) {
				var alertID sql.NullInt64
				var status string
				if err := row.Scan(&msg.ID, &alertID, &status, &msg.Detail); err != nil {
					return false, fmt.Errorf("close alert: %w", err)
				}
				msg.Status = db.InboundStatus(status)
				if alertID.Valid {
					id := int(alertID.Int64)
					msg.AlertID = &id
				}
				return false, nil
			},
		}, true, nil
	}
	switch {
	case p.failure != "":
		msg.Status, msg.Detail = p.failStatus, p.failure
	case d.Action == rules.ActionIgnore:
		msg.Status, msg.Detail = db.InboundFiltered, d.Detail
	default:
		msg.Status, msg.Detail = db.InboundIgnored, d.Detail
	}
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

// storePostgres stores p in tx, which holds the numbering lock
// (events.BeginNumbering), in one statement, or on the generic path.
func (s *Service) storePostgres(ctx context.Context, tx bun.Tx, p *pendingIngest) error {
	st, ok, err := pgStatementFor(p)
	if err != nil {
		return err
	}
	if !ok {
		if err := s.apply(ctx, tx, p.integ, p.msg, p.decision); err != nil {
			return err
		}
		// Its events went to the outbox: number them now, before those of
		// the messages after it.
		return events.RelayOutbox(ctx, tx)
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
