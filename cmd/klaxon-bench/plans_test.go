package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
)

// planFill is large enough that both planners choose as they do over a
// year of history: at tens of thousands of rows a sequential scan or a
// sort costs PostgreSQL's planner far more than an index, as it does at
// millions, while a table of a thousand rows is read whole whatever the
// indexes (so the audit log gets more entries than one per twenty
// alerts).
var planFill = fillSpec{Messages: 70_000, Alerts: 25_000, Audit: 15_000, Integrations: 36, Users: 40, Teams: 4, Days: 365, Seed: 1,
	Until: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), AdminEmail: adminEmail, AdminPassword: adminPassword}

// analyzeLargeTables does what autovacuum does after a bulk load: fresh
// statistics, and the visibility map that lets a count read an index
// alone.
const analyzeLargeTables = "VACUUM ANALYZE alerts, inbound_messages, alert_log, notifications, events, audit_log"

// largeTables grow with traffic; the configuration tables stay small
// enough that reading one whole is no cost.
var largeTables = map[string]bool{"alerts": true, "inbound_messages": true, "alert_log": true, "notifications": true, "events": true, "audit_log": true}

// boundedIndexes are the partial indexes whose every entry is a row that
// stays few however long Klaxon runs, by the condition that makes them
// partial. Walking all of one is bounded by what it holds, not by the
// table; and a statement with that condition must read through one of
// them, not walk a larger index filtering for it.
var boundedIndexes = map[string]string{
	"alerts_unclosed":             "status <> 'CLOSED'",
	"alerts_unclosed_integration": "status <> 'CLOSED'",
	"alerts_overdue_list":         "overdue_at IS NOT NULL",
}

// unboundedReads names each bounded condition stmt has but plan reads
// through none of the bounded indexes for it.
func unboundedReads(stmt, plan string) []string {
	var problems []string
	for cond := range boundedConditions() {
		if !strings.Contains(stmt, cond) {
			continue
		}
		found := false
		for name, c := range boundedIndexes {
			if c == cond && strings.Contains(plan, name) {
				found = true
			}
		}
		if !found {
			problems = append(problems, "filters on "+cond+" but reads through none of its partial indexes")
		}
	}
	return problems
}

func boundedConditions() map[string]bool {
	out := map[string]bool{}
	for _, c := range boundedIndexes {
		out[c] = true
	}
	return out
}

// maxSortedRows is the most rows a plan may sort: a page of 50 comes out
// of an index in order; a sort of thousands grows with the data.
const maxSortedRows = 1000

// TestQueryPlansUseIndexes runs the list and detail queries people make
// (listQueries, the same the queries mode times) through the real server
// over a filled database, captures every statement they send with a bun
// query hook, and has the database explain each one. A statement fails
// when its plan reads a large table whole (a sequential scan, or a scan
// of a whole index under a filter) or sorts more than a few rows; two
// statements that do both show that the checks can fail.
//
// The planners see what they see in production. PostgreSQL's autovacuum
// analyzes a table after a bulk load, so the test runs VACUUM ANALYZE
// and no planner setting: no enable_seqscan = off, which would hide the
// very plans this test looks for. Klaxon never runs ANALYZE on SQLite,
// so SQLite plans here, as in production, without statistics.
func TestQueryPlansUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 70,000 messages per database")
	}
	if raceDetector {
		// A plan is the database's; the race detector cannot change it but
		// makes the fill thirteen times slower. The README's test command
		// runs this test again without it.
		t.Skip("runs without -race (README, \"Set-up\")")
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := fill(ctx, d, planFill, quietLog()); err != nil {
			t.Fatal(err)
		}
		if d.Kind == db.Postgres {
			if _, err := d.DB.DB.ExecContext(ctx, analyzeLargeTables); err != nil {
				t.Fatal(err)
			}
		}
		capture := &statementCapture{}
		d.DB.AddQueryHook(capture)
		base := startKlaxon(t, d, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), capturing{}, true)))
			})
		})
		a := &api{base: base, http: newClient(1, 60*time.Second)}
		if err := a.login(ctx, adminEmail, adminPassword); err != nil {
			t.Fatal(err)
		}
		integrationID, alertID, teamID, err := queryTargets(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		explained := 0
		for _, q := range listQueries(integrationID, alertID, teamID) {
			if q.PlanGap != "" {
				t.Run(q.Name, func(t *testing.T) { t.Skip("known plan gap: " + q.PlanGap) })
				continue
			}
			capture.take()
			var reply json.RawMessage
			if err := a.do(ctx, q.Query, q.Vars, &reply); err != nil {
				t.Fatalf("%s: %v", q.Name, err)
			}
			stmts := capture.take()
			touched := false
			for _, stmt := range stmts {
				if !readsLargeTable(stmt) {
					continue
				}
				touched = true
				explained++
				plan, problems := planProblems(t, d, stmt)
				t.Logf("%s: %.200s%s", q.Name, stmt, plan)
				if len(problems) > 0 {
					t.Errorf("%s: %s\n  statement: %s\n  plan: %s", q.Name, strings.Join(problems, "; "), stmt, plan)
				}
			}
			if !touched {
				t.Errorf("%s: no statement on a large table was captured (%d in all): the capture missed the query", q.Name, len(stmts))
			}
		}
		t.Logf("%d statements explained", explained)

		// The checks can fail: a filter on a column no index leads with,
		// and a sort of a whole table, are reported on both databases.
		for _, stmt := range []string{
			`SELECT count(*) FROM alerts WHERE subject LIKE '%Injection%'`,
			`SELECT * FROM alerts ORDER BY last_seen_at DESC LIMIT 51`,
		} {
			if _, problems := planProblems(t, d, stmt); len(problems) == 0 {
				t.Errorf("%s: no problem found", stmt)
			}
		}

		// Totals are exact up to the cap and say when they stop there.
		for filter, where := range map[string]string{
			"":                                       "",
			"status: [OPEN, ACKNOWLEDGED]":           "WHERE status IN ('OPEN', 'ACKNOWLEDGED')",
			"status: [OPEN]":                         "WHERE status = 'OPEN'",
			"status: [ACKNOWLEDGED, CLOSED]":         "WHERE status IN ('ACKNOWLEDGED', 'CLOSED')",
			`integrationId: "` + integrationID + `"`: "WHERE integration_id = " + integrationID,
		} {
			var got struct {
				Alerts struct {
					TotalCount       int  `json:"totalCount"`
					TotalCountCapped bool `json:"totalCountCapped"`
					Nodes            []struct {
						ID string `json:"id"`
					} `json:"nodes"`
				} `json:"alerts"`
			}
			if err := a.do(ctx, `query { alerts(first: 500, filter: {`+filter+`}) { totalCount totalCountCapped nodes { id } } }`, nil, &got); err != nil {
				t.Fatalf("alerts {%s}: %v", filter, err)
			}
			exact := countRows(t, d, "SELECT count(*) FROM alerts "+where)
			want, capped := min(exact, db.CountCap), exact > db.CountCap
			if got.Alerts.TotalCount != want || got.Alerts.TotalCountCapped != capped || len(got.Alerts.Nodes) != min(exact, 500) {
				t.Errorf("alerts {%s}: totalCount %d, capped %v, %d nodes; %d match, want %d, %v, %d",
					filter, got.Alerts.TotalCount, got.Alerts.TotalCountCapped, len(got.Alerts.Nodes), exact, want, capped, min(exact, 500))
			}
		}
	})
}

// TestUnboundedReadsNeedTheirIndex: a filter on unclosed alerts read
// through a larger index is reported.
func TestUnboundedReadsNeedTheirIndex(t *testing.T) {
	if p := unboundedReads(`SELECT 1 FROM alerts WHERE (status <> 'CLOSED') AND (integration_id = 1)`, "SEARCH alert USING INDEX alerts_integration (integration_id=?)"); len(p) != 1 {
		t.Errorf("a walk of alerts_integration for unclosed alerts: %q, want one problem", p)
	}
	if p := unboundedReads(`SELECT 1 FROM alerts WHERE (status <> 'CLOSED') AND (integration_id = 1)`, "SEARCH alert USING INDEX alerts_unclosed_integration (integration_id=?)"); len(p) != 0 {
		t.Errorf("a walk of alerts_unclosed_integration: %q, want none", p)
	}
}

// planProblems explains stmt on d and returns the plan and what is wrong
// with it.
func planProblems(t *testing.T, d *db.DB, stmt string) (string, []string) {
	t.Helper()
	var plan string
	var problems []string
	if d.Kind == db.Postgres {
		plan, problems = explainPostgres(t, d, stmt)
	} else {
		plan, problems = explainSQLite(t, d, stmt)
	}
	return plan, append(problems, unboundedReads(stmt, plan)...)
}

type capturing struct{}

// statementCapture records the SQL bun sends on behalf of a request
// marked capturing, arguments and all, as the database receives it.
type statementCapture struct {
	mu    sync.Mutex
	stmts []string
}

func (c *statementCapture) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context {
	return ctx
}

func (c *statementCapture) AfterQuery(ctx context.Context, e *bun.QueryEvent) {
	if ctx.Value(capturing{}) == nil || e.Err != nil {
		return
	}
	c.mu.Lock()
	c.stmts = append(c.stmts, e.Query)
	c.mu.Unlock()
}

func (c *statementCapture) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.stmts
	c.stmts = nil
	return out
}

var fromTable = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+"?([a-z_]+)"?`)

func readsLargeTable(stmt string) bool {
	if !strings.HasPrefix(strings.TrimSpace(strings.ToUpper(stmt)), "SELECT") {
		return false
	}
	for _, m := range fromTable.FindAllStringSubmatch(stmt, -1) {
		if largeTables[m[1]] {
			return true
		}
	}
	return false
}

// explainPostgres returns the plan of stmt and what is wrong with it: a
// sequential scan of a large table, or a sort of more than maxSortedRows.
// The plan is run (EXPLAIN ANALYZE, on statements that only read) so that
// a sort is judged by the rows it was handed, not by an estimate a
// misjudged filter can make small.
func explainPostgres(t *testing.T, d *db.DB, stmt string) (string, []string) {
	t.Helper()
	var raw string
	if err := d.DB.DB.QueryRowContext(context.Background(), "EXPLAIN (ANALYZE, FORMAT JSON) "+stmt).Scan(&raw); err != nil {
		t.Fatalf("explain %s: %v", stmt, err)
	}
	var plans []struct {
		Plan pgPlan `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(raw), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("explain %s: %v: %s", stmt, err, raw)
	}
	var problems []string
	var lines []string
	var walk func(p *pgPlan, depth int)
	walk = func(p *pgPlan, depth int) {
		line := p.NodeType
		if p.RelationName != "" {
			line += " on " + p.RelationName
		}
		if p.IndexName != "" {
			line += " using " + p.IndexName
		}
		lines = append(lines, fmt.Sprintf("%s%s (rows %.0f estimated, %.0f read)", strings.Repeat("  ", depth), line, p.PlanRows, p.ActualRows*max(p.ActualLoops, 1)))
		switch {
		case p.NodeType == "Seq Scan" && largeTables[p.RelationName]:
			problems = append(problems, "sequential scan of "+p.RelationName)
		case p.NodeType == "Sort":
			// A sort under a LIMIT is estimated by what it keeps; what
			// it reads is what its input returned.
			sorted := p.PlanRows
			for _, c := range p.Plans {
				sorted = max(sorted, c.ActualRows*max(c.ActualLoops, 1))
			}
			if sorted > maxSortedRows {
				problems = append(problems, fmt.Sprintf("sort of %.0f rows", sorted))
			}
		}
		for i := range p.Plans {
			walk(&p.Plans[i], depth+1)
		}
	}
	walk(&plans[0].Plan, 0)
	return "\n    " + strings.Join(lines, "\n    "), problems
}

type pgPlan struct {
	NodeType     string   `json:"Node Type"`
	RelationName string   `json:"Relation Name"`
	IndexName    string   `json:"Index Name"`
	PlanRows     float64  `json:"Plan Rows"`
	ActualRows   float64  `json:"Actual Rows"`
	ActualLoops  float64  `json:"Actual Loops"`
	Plans        []pgPlan `json:"Plans"`
}

var tableAlias = regexp.MustCompile(`(?i)"?([a-z_]+)"? AS "?([a-z_]+)"?`)

var sqliteScan = regexp.MustCompile(`^SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?`)

// explainSQLite returns the plan of stmt and what is wrong with it. A
// SCAN walks a table (or one of its indexes) from one end; without a
// WHERE clause that is a walk down the newest ids stopped by the LIMIT,
// with one it reads every row until enough match, unless the index it
// walks holds only a bounded set of rows. A temporary B-tree for ORDER
// BY sorts everything the search found.
func explainSQLite(t *testing.T, d *db.DB, stmt string) (string, []string) {
	t.Helper()
	rows, err := d.DB.DB.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+stmt)
	if err != nil {
		t.Fatalf("explain %s: %v", stmt, err)
	}
	defer rows.Close()
	filtered := strings.Contains(strings.ToUpper(stmt), " WHERE ")
	// SQLite's plan names a table by its alias when it has one.
	large := map[string]bool{}
	for name := range largeTables {
		large[name] = true
	}
	for _, m := range tableAlias.FindAllStringSubmatch(stmt, -1) {
		if largeTables[m[1]] {
			large[m[2]] = true
		}
	}
	var problems, lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, detail)
		if m := sqliteScan.FindStringSubmatch(detail); m != nil && large[m[1]] && filtered && boundedIndexes[m[2]] == "" {
			problems = append(problems, "full scan of "+m[1])
		}
		if strings.HasPrefix(detail, "USE TEMP B-TREE FOR ORDER BY") {
			problems = append(problems, "sort of every row found")
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return "\n    " + strings.Join(lines, "\n    "), problems
}
