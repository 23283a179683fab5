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
// RETURNING rows. The events are collected and written for the whole
// batch at its end (events.WriteNumbered). The generic path stays the reference; these statements
// must leave exactly the rows it would, which the ingest tests check on
// both databases.

// pgOpenSQL opens an alert or appends to the source's open one. The
// UPDATE runs only when the INSERT met the open alert; if that alert was
// committed by another transaction after this statement's snapshot, the
// UPDATE cannot see it either and no row comes back: the caller retries.
// The numbered variant writes the message's events straight into the
// events table, for a batch that holds the numbering lock
// (commitPipelined).
var pgOpenSQL, pgOpenNumberedSQL = pgOpen(""), pgOpen(`,
	ev AS (
	INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
	SELECT 'inbound', m.status, m.alert_id, $1::bigint, m.id, $8::timestamptz FROM msg m
	UNION ALL
	SELECT 'alert', CASE WHEN m.status = '` + string(db.InboundOpened) + `' THEN '` + string(db.LogOpened) + `' ELSE '` + string(db.LogAppended) + `' END, m.alert_id, $1::bigint, NULL, $8::timestamptz FROM msg m
	)`)

func pgOpen(numbering string) string {
	return fmt.Sprintf(`WITH opened AS (
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
)%[8]s
SELECT id, alert_id, status FROM msg`,
		db.AlertOpen, db.AlertClosed, db.InboundOpened, db.InboundAppended, db.LogOpened, db.LogAppended, jobEscalate, numbering)
}

// pgCloseSQL closes the source's open alert, cancels its jobs and logs
// the message as closing it, or as ignored when nothing was open.
var pgCloseSQL, pgCloseNumberedSQL = pgClose(""), pgClose(`,
	ev AS (
	INSERT INTO events (kind, type, alert_id, integration_id, inbound_message_id, at)
	SELECT 'inbound', m.status, m.alert_id, $1::bigint, m.id, $3::timestamptz FROM msg m
	UNION ALL
	SELECT 'alert', '` + string(db.LogClosed) + `', m.alert_id, $1::bigint, NULL, $3::timestamptz FROM msg m WHERE m.alert_id IS NOT NULL
	)`)

func pgClose(numbering string) string {
	return fmt.Sprintf(`WITH closed AS (
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
)%[5]s
SELECT id, alert_id, status, detail FROM msg`,
		db.AlertClosed, db.InboundIgnored, db.InboundClosed, db.LogClosed, numbering)
}

// pgLogSQL stores a message that touches no alert.
const pgLogSQL = `INSERT INTO inbound_messages (integration_id, received_at, remote_addr, headers, body, status, detail, source_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	RETURNING id`

// pgLogNumberedSQL is pgLogSQL numbering its event at once.
const pgLogNumberedSQL = `WITH msg AS (
	INSERT INTO inbound_messages (integration_id, received_at, remote_addr, headers, body, status, detail, source_id)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	RETURNING id, status
), ev AS (
	INSERT INTO events (kind, type, integration_id, inbound_message_id, at)
	SELECT 'inbound', m.status, $1::bigint, m.id, $2::timestamptz FROM msg m
)
SELECT id FROM msg`

// applyPostgres is apply in one statement per message. It reports false,
// having done nothing, for the cases it leaves to the generic path.
func applyPostgres(ctx context.Context, tx bun.Tx, integ *db.Integration, msg *db.InboundMessage, d rules.Decision, evs *[]events.Numbered) (bool, error) {
	headers, err := json.Marshal(msg.Headers)
	if err != nil {
		return false, fmt.Errorf("encode headers: %w", err)
	}
	now := msg.ReceivedAt
	msg.Detail = d.Detail
	switch d.Action {
	case rules.ActionOpen:
		if d.Route.NamesRecipients() {
			return false, nil
		}
		policyID := policyFor(integ, d.Route)
		f := d.Fields
		for range 3 {
			var alertID int
			var status string
			err := tx.Tx.QueryRowContext(ctx, pgOpenSQL, db.PlanOnce,
				integ.ID, f.SourceID, f.SourceName, f.Subject, f.Severity, f.URL, f.Details, now, policyID,
				msg.RemoteAddr, string(headers), msg.Body, d.Detail, "Opened: "+d.Detail,
			).Scan(&msg.ID, &alertID, &status)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return false, fmt.Errorf("open alert: %w", err)
			}
			msg.AlertID, msg.Status = &alertID, db.InboundStatus(status)
			change := db.LogAppended
			if msg.Status == db.InboundOpened {
				change = db.LogOpened
			}
			*evs = append(*evs, messageEvent(msg), alertEvent(change, msg))
			return true, nil
		}
		return false, errors.New("open alert: the open alert kept changing; giving up")
	case rules.ActionClose:
		var alertID sql.NullInt64
		var status string
		err := tx.Tx.QueryRowContext(ctx, pgCloseSQL, db.PlanOnce,
			integ.ID, d.Fields.SourceID, now, msg.RemoteAddr, string(headers), msg.Body,
			d.Detail, d.Detail+"; no open alert for this source", "Closed: "+d.Detail,
		).Scan(&msg.ID, &alertID, &status, &msg.Detail)
		if err != nil {
			return false, fmt.Errorf("close alert: %w", err)
		}
		msg.Status = db.InboundStatus(status)
		if !alertID.Valid {
			*evs = append(*evs, messageEvent(msg))
			return true, nil
		}
		id := int(alertID.Int64)
		msg.AlertID = &id
		*evs = append(*evs, messageEvent(msg), alertEvent(db.LogClosed, msg))
		return true, nil
	case rules.ActionIgnore:
		msg.Status = db.InboundFiltered
	default:
		msg.Status = db.InboundIgnored
	}
	return true, insertMessagePostgres(ctx, tx, msg, headers, evs)
}

func insertMessagePostgres(ctx context.Context, tx bun.Tx, msg *db.InboundMessage, headers []byte, evs *[]events.Numbered) error {
	err := tx.Tx.QueryRowContext(ctx, pgLogSQL, db.PlanOnce,
		msg.IntegrationID, msg.ReceivedAt, msg.RemoteAddr, string(headers), msg.Body, string(msg.Status), msg.Detail, msg.SourceID,
	).Scan(&msg.ID)
	if err != nil {
		return fmt.Errorf("store inbound message: %w", err)
	}
	*evs = append(*evs, messageEvent(msg))
	return nil
}

// messageEvent is the event of a stored inbound message, as
// events.MessageStored records it.
func messageEvent(msg *db.InboundMessage) events.Numbered {
	id := msg.ID
	return events.Numbered{Kind: events.KindInbound, Type: string(msg.Status), AlertID: msg.AlertID, IntegrationID: msg.IntegrationID, InboundMessageID: &id, At: msg.ReceivedAt}
}

// alertEvent is the event of the change msg made to its alert, as
// events.AlertChanged records it.
func alertEvent(change db.AlertLogType, msg *db.InboundMessage) events.Numbered {
	return events.Numbered{Kind: events.KindAlert, Type: string(change), AlertID: msg.AlertID, IntegrationID: msg.IntegrationID, At: msg.ReceivedAt}
}
