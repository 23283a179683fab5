package alerting

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/rules"
)

// On PostgreSQL a batch in a transaction still costs a round trip per
// message, and the server and the committer wait on each other for every
// one. commitPipelined sends the whole batch at once instead, as one
// pipeline of prepared statements with a single Sync, which PostgreSQL
// runs as one transaction: one round trip and one commit for the batch.

// pipelinedStatement is one message's statement in a pipelined batch.
type pipelinedStatement struct {
	p    *pendingIngest
	kind rules.Action // ActionOpen, ActionClose, or "" for a message that touches no alert
}

// commitPipelined stores batch as one pipeline. It reports
// false, having stored nothing, when the batch needs the generic path or
// the query failed; then the caller stores it in a transaction. Messages
// whose alert changed under them (no row back) are stored again the usual
// way.
func (s *Service) commitPipelined(ctx context.Context, batch []*pendingIngest) bool {
	stmts := make([]pipelinedStatement, 0, len(batch))
	for _, p := range batch {
		st := pipelinedStatement{p: p}
		if p.failure == "" {
			switch p.decision.Action {
			case rules.ActionOpen:
				if p.decision.Route.NamesRecipients() {
					return false
				}
				st.kind = rules.ActionOpen
			case rules.ActionClose:
				st.kind = rules.ActionClose
			}
		}
		stmts = append(stmts, st)
	}

	b := &pgx.Batch{}
	b.Queue(events.NumberingLockSQL)
	b.Queue(events.RelayOutboxSQL)
	for _, st := range stmts {
		if err := queueMessage(b, st); err != nil {
			s.log.ErrorContext(ctx, "pipelined ingest", "err", err)
			return false
		}
	}
	b.Queue(events.SignalSQL)

	var retry []*pendingIngest
	conn, err := s.db.Planned.Conn(ctx)
	if err == nil {
		err = conn.Raw(func(driverConn any) error {
			c, ok := driverConn.(*stdlib.Conn)
			if !ok {
				return fmt.Errorf("unexpected driver connection %T", driverConn)
			}
			retry, err = readPipelined(c.Conn().SendBatch(ctx, b), stmts)
			return err
		})
		conn.Close()
	}
	if err != nil {
		for _, p := range batch {
			*p.msg = p.original
		}
		s.log.WarnContext(ctx, "pipelined ingest failed; storing the batch in a transaction", "messages", len(batch), "err", err)
		return false
	}
	for _, p := range retry {
		*p.msg = p.original
		s.commitEach(ctx, []*pendingIngest{p})
	}
	return true
}

func queueMessage(b *pgx.Batch, st pipelinedStatement) error {
	p, msg := st.p, st.p.msg
	headers, err := json.Marshal(msg.Headers)
	if err != nil {
		return fmt.Errorf("encode headers: %w", err)
	}
	now := msg.ReceivedAt
	d := p.decision
	switch st.kind {
	case rules.ActionOpen:
		f := d.Fields
		b.Queue(pgOpenNumberedSQL, p.integ.ID, f.SourceID, f.SourceName, f.Subject, f.Severity, f.URL, f.Details, now, policyFor(p.integ, d.Route),
			msg.RemoteAddr, string(headers), msg.Body, d.Detail, "Opened: "+d.Detail)
	case rules.ActionClose:
		b.Queue(pgCloseNumberedSQL, p.integ.ID, d.Fields.SourceID, now, msg.RemoteAddr, string(headers), msg.Body,
			d.Detail, d.Detail+"; no open alert for this source", "Closed: "+d.Detail)
	default:
		msg.Status, msg.Detail = messageOutcome(p)
		b.Queue(pgLogNumberedSQL, msg.IntegrationID, now, msg.RemoteAddr, string(headers), msg.Body, string(msg.Status), msg.Detail, msg.SourceID)
	}
	return nil
}

// messageOutcome is the status and detail of a message that touches no
// alert, as storeOne and apply give it.
func messageOutcome(p *pendingIngest) (db.InboundStatus, string) {
	if p.failure != "" {
		return p.failStatus, p.failure
	}
	if p.decision.Action == rules.ActionIgnore {
		return db.InboundFiltered, p.decision.Detail
	}
	return db.InboundIgnored, p.decision.Detail
}

// readPipelined reads the batch's results into the messages, returning
// those to store again. Any error means nothing was stored: the server
// runs the batch as one transaction.
func readPipelined(br pgx.BatchResults, stmts []pipelinedStatement) (retry []*pendingIngest, err error) {
	defer func() {
		if cerr := br.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("take numbering lock: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("number outbox events: %w", err)
	}
	for _, st := range stmts {
		msg := st.p.msg
		switch st.kind {
		case rules.ActionOpen:
			var alertID int
			var status string
			err := br.QueryRow().Scan(&msg.ID, &alertID, &status)
			if errors.Is(err, sql.ErrNoRows) {
				retry = append(retry, st.p)
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("open alert: %w", err)
			}
			msg.AlertID, msg.Status, msg.Detail = &alertID, db.InboundStatus(status), st.p.decision.Detail
		case rules.ActionClose:
			var alertID sql.NullInt64
			var status string
			if err := br.QueryRow().Scan(&msg.ID, &alertID, &status, &msg.Detail); err != nil {
				return nil, fmt.Errorf("close alert: %w", err)
			}
			msg.Status = db.InboundStatus(status)
			if alertID.Valid {
				id := int(alertID.Int64)
				msg.AlertID = &id
			}
		default:
			if err := br.QueryRow().Scan(&msg.ID); err != nil {
				return nil, fmt.Errorf("store inbound message: %w", err)
			}
		}
	}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("signal new events: %w", err)
	}
	return retry, nil
}
