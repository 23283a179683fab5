package alerting

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/invalid"
	"github.com/klaxonhq/klaxon/rules"
)

// A replay answers "what would this integration's stored messages have
// become under another ruleset?" before an admin saves it. It walks the
// inbound log of a time range in (received_at, id) order, a page at a
// time, judges each body under the current ruleset ("before") and the
// proposed one ("after") with the dry run's judge and settle, and keeps
// one simulated alert state per source for each side. Nothing is
// written. Memory holds the sources that opened an alert in the range
// (or had one open at its start), one page of bodies and the fixed
// example lists, never the log.

const (
	// DefaultReplayMaxMessages is how many messages a replay reads at most
	// unless Options.ReplayMaxMessages says otherwise: about 25 s of CPU
	// on the 2 vCPUs docs/PERFORMANCE.md measures on, which keeps the
	// answer inside the server's 60 s write timeout.
	DefaultReplayMaxMessages = 500_000
	// replayPageSize is how many stored messages one read of the log
	// fetches.
	replayPageSize = 1000
	// ReplayExamples is how many example messages a replay keeps per
	// changed outcome.
	ReplayExamples = 20
	// ReplayAlertList is how many alerts a replay lists as not opened, and
	// as opened in addition; the totals count them all.
	ReplayAlertList = 1000
)

// ReplayRequest is what replayRuleset takes.
type ReplayRequest struct {
	IntegrationID int
	// Rules is the proposed ruleset; the integration's mapping stays.
	Rules    []rules.Rule
	From, To time.Time
}

// Replay is what a stored log would have become under a proposed ruleset
// (After) against what it becomes under the integration's current one
// (Before), both computed by the same simulation.
type Replay struct {
	Messages int
	// Before and After count messages by the status they would be stored
	// with.
	Before, After map[db.InboundStatus]int
	// NotOpened are sources whose alerts opened fewer times after than
	// before, OpenedInAddition more; each lists at most ReplayAlertList,
	// by source id, and the totals count every one.
	NotOpened, OpenedInAddition           []ReplayedAlert
	NotOpenedTotal, OpenedInAdditionTotal int
	// Changes are the outcomes that differ, by (before, after) status.
	Changes []OutcomeChange
}

// ReplayedAlert is one source whose alerts the proposed ruleset opens a
// different number of times.
type ReplayedAlert struct {
	SourceID, Subject         string
	OpenedBefore, OpenedAfter int
}

// OutcomeChange counts the messages whose status goes from Before to
// After, with the first ReplayExamples of them.
type OutcomeChange struct {
	Before, After db.InboundStatus
	Count         int
	Examples      []ReplayedMessage
}

// ReplayedMessage is one message whose outcome the proposed ruleset
// changes; Decision is the proposed ruleset's.
type ReplayedMessage struct {
	MessageID     int
	ReceivedAt    time.Time
	Before, After db.InboundStatus
	Decision      rules.Decision
}

// replaySource is one source's simulated alert under each ruleset.
type replaySource struct {
	before, after             sourceState
	openedBefore, openedAfter int
	subject                   string
}

// replayRow is the part of a stored message a replay reads.
type replayRow struct {
	ID         int              `bun:"id"`
	ReceivedAt time.Time        `bun:"received_at"`
	Status     db.InboundStatus `bun:"status"`
	Detail     string           `bun:"detail"`
	Body       []byte           `bun:"body"`

	// parsed, parseErr and refused are the body as judge read it, kept
	// for a side whose rules ask for facts (see facts).
	parsed   *rules.Message `bun:"-"`
	parseErr error          `bun:"-"`
	refused  string         `bun:"-"`
}

// ReplayRuleset replays the integration's inbound log in [From, To) under
// the proposed rules and the current ones. Bad input is an *invalid.Field;
// an unknown integration db.ErrNotFound.
func (s *Service) ReplayRuleset(ctx context.Context, req ReplayRequest) (*Replay, error) {
	if !req.From.Before(req.To) {
		return nil, invalid.New("to", "must be after from")
	}
	if err := rules.ValidateRules(req.Rules); err != nil {
		var fe *invalid.Field
		if errors.As(err, &fe) {
			return nil, invalid.New("ruleset."+fe.Name, fe.Reason)
		}
		return nil, err
	}
	integ, err := s.config.Integrations.IntegrationByID(ctx, s.db, req.IntegrationID)
	if err != nil {
		return nil, err
	}
	current, err := s.routeFor(ctx, integ.Token)
	if err != nil {
		return nil, err
	}
	proposed := current.withRules(req.Rules)
	from, to := req.From.UTC(), req.To.UTC()
	n, err := s.db.NewSelect().Table("inbound_messages").
		Where("integration_id = ? AND received_at >= ? AND received_at < ?", integ.ID, from, to).
		Where(replayableBody).Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("replay: count messages: %w", err)
	}
	if limit := s.replayMaxMessages(); n > int64(limit) {
		return nil, invalid.Fieldf("to", "the range holds %d messages and a replay reads at most %d (KLAXON_REPLAY_MAX_MESSAGES); narrow from and to", n, limit)
	}
	run := &replayRun{current: current, proposed: proposed, sources: map[string]*replaySource{},
		out: &Replay{Before: map[db.InboundStatus]int{}, After: map[db.InboundStatus]int{}},
		ctx: ctx, db: s.db, from: from}
	if err := s.loadOpenAlerts(ctx, run, integ.ID, from); err != nil {
		return nil, err
	}
	if err := s.walkLog(ctx, integ.ID, from, to, run.page); err != nil {
		return nil, err
	}
	if run.err != nil {
		return nil, run.err
	}
	return run.result(), nil
}

func (s *Service) replayMaxMessages() int {
	if s.replayMax > 0 {
		return s.replayMax
	}
	return DefaultReplayMaxMessages
}

// withRules is the route r would be with specs in place of its ruleset:
// the same integration, mapping and grouping.
func (r *route) withRules(specs []rules.Rule) *route {
	p := &route{integ: r.integ}
	p.compile(specs)
	return p
}

// loadOpenAlerts starts each side's simulation from the integration's
// alerts that were open at from.
func (s *Service) loadOpenAlerts(ctx context.Context, run *replayRun, integrationID int, from time.Time) error {
	var open []struct {
		SourceID   string    `bun:"source_id"`
		Subject    string    `bun:"subject"`
		LastSeenAt time.Time `bun:"last_seen_at"`
	}
	err := s.db.NewSelect().Table("alerts").Column("source_id", "subject", "last_seen_at").
		Where("integration_id = ? AND opened_at < ? AND (closed_at IS NULL OR closed_at >= ?)", integrationID, from, from).
		Scan(ctx, &open)
	if err != nil {
		return fmt.Errorf("replay: read the alerts open at the start: %w", err)
	}
	autoClose := 0
	if n := run.current.integ.AutoCloseAfterMinutes; n != nil {
		autoClose = *n
	}
	for _, a := range open {
		// A message after from may have moved last_seen_at, and the one
		// before from is not kept apart: from is the latest it can have
		// been, which keeps the alert open the longest.
		seen := a.LastSeenAt
		if seen.After(from) {
			seen = from
		}
		st := sourceState{open: true, subject: a.Subject, lastSeen: seen, autoCloseMinutes: autoClose}
		run.sources[a.SourceID] = &replaySource{before: st, after: st, subject: a.Subject}
	}
	return nil
}

// walkLog hands visit the integration's messages received in [from, to)
// in (received_at, id) order, replayPageSize at a time. While visit works
// on one page the next is being read, into the other of two buffers that
// take turns: visit must not keep a row.
func (s *Service) walkLog(ctx context.Context, integrationID int, from, to time.Time, visit func([]replayRow)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []replayRow, 2)
	free <- make([]replayRow, 0, replayPageSize)
	free <- make([]replayRow, 0, replayPageSize)
	pages := make(chan []replayRow)
	read := make(chan error, 1)
	go func() {
		defer close(pages)
		read <- s.readLog(ctx, integrationID, from, to, free, pages)
	}()
	for page := range pages {
		visit(page)
		free <- page[:0]
	}
	return <-read
}

// replayableBody leaves out the messages whose body retention has pruned:
// there is nothing left to judge, and judging an empty body would count
// them as failures of either ruleset.
const replayableBody = "body_pruned_at IS NULL"

// readLog reads the pages walkLog hands on, each into a buffer taken from
// free, and sends it on pages.
func (s *Service) readLog(ctx context.Context, integrationID int, from, to time.Time, free <-chan []replayRow, pages chan<- []replayRow) error {
	afterAt, afterID := from, 0
	for first := true; ; first = false {
		var page []replayRow
		select {
		case page = <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
		q := s.db.NewSelect().Table("inbound_messages").Column("id", "received_at", "status", "detail", "body").
			Where("integration_id = ? AND received_at < ?", integrationID, to).Where(replayableBody)
		if first {
			q = q.Where("received_at >= ?", from)
		} else {
			// A row value, not an OR of two comparisons: PostgreSQL seeks
			// the index to it, where the OR would filter the whole range
			// from its start on every page.
			q = q.Where("(received_at, id) > (?, ?)", afterAt, afterID)
		}
		if err := q.OrderExpr("received_at, id").Limit(replayPageSize).Scan(ctx, &page); err != nil {
			return fmt.Errorf("replay: read the inbound log: %w", err)
		}
		full := len(page) == replayPageSize
		if full {
			last := page[len(page)-1]
			afterAt, afterID = last.ReceivedAt, last.ID
		}
		if len(page) > 0 {
			select {
			case pages <- page:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !full {
			return nil
		}
	}
}

// replayRun is one replay in progress.
type replayRun struct {
	current, proposed *route
	sources           map[string]*replaySource
	changes           map[[2]db.InboundStatus]*OutcomeChange
	out               *Replay
	// verdicts are one page's, before and after, reused from page to page.
	verdicts [][2]verdict

	// ctx, db and from serve the facts a side's rules may ask about
	// sources the replay has not seen close (closedBeforeFrom); err is
	// the first such read that failed, which ends the replay.
	ctx              context.Context
	db               bun.IDB
	from             time.Time
	closedBeforeFrom map[string]time.Time
	err              error
}

// page replays one page of stored messages. Parsing and judging a body
// is most of a replay's work and depends on nothing but the body, so the
// page's bodies are judged in parallel; their outcomes are then settled in
// order, since each may depend on the ones before it.
func (run *replayRun) page(rows []replayRow) {
	run.verdicts = slices.Grow(run.verdicts[:0], len(rows))[:len(rows)]
	workers := min(runtime.GOMAXPROCS(0), len(rows))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(rows); i += workers {
				run.verdicts[i] = run.judge(&rows[i])
			}
		})
	}
	wg.Wait()
	for i := range rows {
		if run.err != nil {
			return
		}
		run.message(&rows[i], &run.verdicts[i][0], &run.verdicts[i][1])
	}
}

// judge judges one stored message under the current ruleset and the
// proposed one, parsing its body once.
func (run *replayRun) judge(row *replayRow) [2]verdict {
	refused := ""
	if row.Status == db.InboundRefused {
		// The signature was checked with the secret of the day; the
		// ruleset has no say in it, so a refusal stays one.
		refused = row.Detail
	}
	var parsed *rules.Message
	var parseErr error
	if refused == "" {
		parsed, parseErr = rules.Parse(row.Body)
	}
	row.parsed, row.parseErr, row.refused = parsed, parseErr, refused
	none := rules.Facts{}
	return [2]verdict{run.current.judge(parsed, parseErr, refused, none), run.proposed.judge(parsed, parseErr, refused, none)}
}

// message settles one judged message on both sides and counts it.
func (run *replayRun) message(row *replayRow, before, after *verdict) {
	// A side whose rules ask for facts is judged again here, in order,
	// with the facts its own simulated alerts give at this message.
	for side, r := range []*route{run.current, run.proposed} {
		if !r.program.NeedsFacts() || row.refused != "" || row.parseErr != nil {
			continue
		}
		facts, err := run.facts(r, row, side == 0)
		if err != nil {
			run.err = err
			return
		}
		v := r.judge(row.parsed, row.parseErr, row.refused, facts)
		if side == 0 {
			*before = v
		} else {
			*after = v
		}
	}
	src := run.source(&before.plan, &after.plan)
	var b, a ingestOutcome
	if src == nil {
		// Neither side opens an alert and none is known for the source:
		// a close finds nothing, on both sides alike.
		var none sourceState
		b, a = none.settle(&before.plan, row.ReceivedAt), none.settle(&after.plan, row.ReceivedAt)
	} else {
		src.before.age(row.ReceivedAt)
		src.after.age(row.ReceivedAt)
		b, a = src.before.settle(&before.plan, row.ReceivedAt), src.after.settle(&after.plan, row.ReceivedAt)
		if b.Status == db.InboundOpened {
			src.openedBefore++
		}
		if a.Status == db.InboundOpened {
			src.openedAfter++
		}
		if src.subject == "" {
			src.subject = cmp.Or(before.plan.Fields.Subject, after.plan.Fields.Subject)
		}
	}
	run.out.Messages++
	run.out.Before[b.Status]++
	run.out.After[a.Status]++
	if b.Status != a.Status {
		run.change(row, b.Status, a.Status, after.decision)
	}
}

// source is the simulated state of the source the plans name, created
// when either side may open an alert for it; nil when neither plan
// touches an alert, or only closes one of a source never seen open.
func (run *replayRun) source(before, after *ingestPlan) *replaySource {
	id := ""
	switch {
	case before.Step != stepStore:
		id = before.Fields.SourceID
	case after.Step != stepStore:
		id = after.Fields.SourceID
	default:
		return nil
	}
	// The mapping is the same on both sides, so both plans name the same
	// source whenever both name one.
	if src := run.sources[id]; src != nil {
		return src
	}
	if before.Step != stepOpenOrAppend && after.Step != stepOpenOrAppend {
		return nil
	}
	src := &replaySource{}
	run.sources[id] = src
	return src
}

func (run *replayRun) change(row *replayRow, before, after db.InboundStatus, d rules.Decision) {
	if run.changes == nil {
		run.changes = map[[2]db.InboundStatus]*OutcomeChange{}
	}
	key := [2]db.InboundStatus{before, after}
	c := run.changes[key]
	if c == nil {
		c = &OutcomeChange{Before: before, After: after}
		run.changes[key] = c
	}
	c.Count++
	if len(c.Examples) < ReplayExamples {
		c.Examples = append(c.Examples, ReplayedMessage{MessageID: row.ID, ReceivedAt: row.ReceivedAt, Before: before, After: after, Decision: d})
	}
}

// result sorts what the run gathered into its answer.
func (run *replayRun) result() *Replay {
	out := run.out
	for id, src := range run.sources {
		a := ReplayedAlert{SourceID: id, Subject: src.subject, OpenedBefore: src.openedBefore, OpenedAfter: src.openedAfter}
		switch {
		case a.OpenedBefore > a.OpenedAfter:
			out.NotOpened = append(out.NotOpened, a)
		case a.OpenedAfter > a.OpenedBefore:
			out.OpenedInAddition = append(out.OpenedInAddition, a)
		}
	}
	out.NotOpened, out.NotOpenedTotal = firstBySource(out.NotOpened)
	out.OpenedInAddition, out.OpenedInAdditionTotal = firstBySource(out.OpenedInAddition)
	for _, c := range run.changes {
		out.Changes = append(out.Changes, *c)
	}
	slices.SortFunc(out.Changes, func(x, y OutcomeChange) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Before, y.Before), cmp.Compare(x.After, y.After))
	})
	return out
}

func firstBySource(list []ReplayedAlert) ([]ReplayedAlert, int) {
	slices.SortFunc(list, func(x, y ReplayedAlert) int { return cmp.Compare(x.SourceID, y.SourceID) })
	return list[:min(len(list), ReplayAlertList)], len(list)
}

// facts are the facts r's rules ask about row's source on one side of the
// replay (before: the current rules), as regressionFact reads them from
// the alerts table in ingest: none of the source's alerts is open, and
// one closed within the integration's regression window. The side's own
// simulation knows the closes since from; for a source it has not seen
// close, the table's alerts closed before from answer.
func (run *replayRun) facts(r *route, row *replayRow, before bool) (rules.Facts, error) {
	fields, ok := r.program.MapFields(row.parsed)
	days := r.integ.RegressionWindowDays
	if !ok || fields.SourceID == "" || days <= 0 {
		return rules.Facts{}, nil
	}
	since := row.ReceivedAt.AddDate(0, 0, -days)
	var closedAt time.Time
	if src := run.sources[fields.SourceID]; src != nil {
		st := &src.after
		if before {
			st = &src.before
		}
		st.age(row.ReceivedAt)
		if st.open {
			return rules.Facts{}, nil
		}
		closedAt = st.closedAt
	}
	if closedAt.IsZero() {
		var err error
		if closedAt, err = run.lastClosedBeforeFrom(fields.SourceID); err != nil {
			return rules.Facts{}, err
		}
	}
	return rules.Facts{Regression: !closedAt.IsZero() && !closedAt.Before(since)}, nil
}

// lastClosedBeforeFrom is when the source's latest alert closed before
// the replay's start, zero if none did; read once per source.
func (run *replayRun) lastClosedBeforeFrom(sourceID string) (time.Time, error) {
	if at, ok := run.closedBeforeFrom[sourceID]; ok {
		return at, nil
	}
	var closed []time.Time
	err := run.db.NewSelect().Table("alerts").Column("closed_at").
		Where("integration_id = ? AND source_id = ? AND closed_at < ?", run.current.integ.ID, sourceID, run.from).
		OrderExpr("closed_at DESC").Limit(1).Scan(run.ctx, &closed)
	if err != nil {
		return time.Time{}, fmt.Errorf("replay: when %q last closed: %w", sourceID, err)
	}
	if run.closedBeforeFrom == nil {
		run.closedBeforeFrom = map[string]time.Time{}
	}
	var at time.Time
	if len(closed) > 0 {
		at = closed[0]
	}
	run.closedBeforeFrom[sourceID] = at
	return at, nil
}
