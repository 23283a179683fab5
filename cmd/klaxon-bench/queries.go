package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// namedQuery is one GraphQL request people make against a filled
// database, as the web client makes it.
type namedQuery struct {
	Name  string
	Query string
	Vars  map[string]any
	// PlanGap, when set, says why no index answers this query yet; the
	// plan test reports it as skipped rather than passing it.
	PlanGap string
}

// teamFilterGap is why a team's view still sorts: an alert's and a
// message's owner is their integration's, so a team with several
// integrations gathers their rows from several index ranges and sorts
// them. Carrying the owner on the row would let one index answer.
const teamFilterGap = "a team's rows come from several integrations' index ranges and are sorted"

const alertListFields = `totalCount totalCountCapped pageInfo { hasNextPage endCursor } nodes { id number status severity subject openedAt lastSeenAt closedAt appendCount integration { id name } }`

const messageListFields = `totalCount totalCountCapped pageInfo { hasNextPage endCursor } nodes { id receivedAt status sourceId }`

// listQueries are the pages the issue of costs that stay flat names:
// alerts with totalCount and each filter, the inbound log by integration
// and by status, one alert with its timeline, messages and
// notifications, and the audit log. integrationID is the loudest
// integration's, alertID an alert with a long timeline.
func listQueries(integrationID, alertID, teamID string) []namedQuery {
	alerts := func(name, filter string) namedQuery {
		return namedQuery{Name: name, Query: `query { alerts(first: 50` + filter + `) { ` + alertListFields + ` } }`}
	}
	return []namedQuery{
		alerts("alerts", ""),
		alerts("alerts status OPEN,ACKNOWLEDGED", `, filter: {status: [OPEN, ACKNOWLEDGED]}`),
		alerts("alerts status CLOSED", `, filter: {status: [CLOSED]}`),
		alerts("alerts integration", `, filter: {integrationId: "`+integrationID+`"}`),
		alerts("alerts integration, not closed", `, filter: {integrationId: "`+integrationID+`", status: [OPEN, ACKNOWLEDGED]}`),
		alerts("alerts severity critical", `, filter: {severity: ["critical"]}`),
		alerts("alerts overdue", `, filter: {overdue: true}`),
		withPlanGap(alerts("alerts team", `, filter: {teamIds: ["`+teamID+`"]}`), teamFilterGap),
		withPlanGap(alerts("alerts team, not closed", `, filter: {teamIds: ["`+teamID+`"], status: [OPEN, ACKNOWLEDGED]}`), teamFilterGap),
		{Name: "inboundMessages team", Query: `query { inboundMessages(first: 50, teamIds: ["` + teamID + `"]) { ` + messageListFields + ` } }`, PlanGap: teamFilterGap},
		{Name: "inboundMessages integration", Query: `query { inboundMessages(first: 50, integrationId: "` + integrationID + `") { ` + messageListFields + ` } }`},
		{Name: "inboundMessages status FILTERED", Query: `query { inboundMessages(first: 50, status: [FILTERED]) { ` + messageListFields + ` } }`},
		{Name: "inboundMessages status MAPPING_FAILED", Query: `query { inboundMessages(first: 50, status: [MAPPING_FAILED]) { ` + messageListFields + ` } }`},
		{Name: "alert with timeline, messages, notifications", Query: `query($id: ID!) { alert(id: $id) { id status subject timeline { at type message user { id } } messages(first: 50) { ` + messageListFields + ` } notifications { id channel status attempts user { id } } } }`,
			Vars: map[string]any{"id": alertID}},
		{Name: "auditLog", Query: `query { auditLog(first: 50) { totalCount totalCountCapped nodes { id at actorName entityType entityId action changes } } }`},
		{Name: "auditLog integration", Query: `query { auditLog(first: 50, entityType: INTEGRATION) { totalCount totalCountCapped nodes { id at action } } }`},
	}
}

func withPlanGap(q namedQuery, gap string) namedQuery {
	q.PlanGap = gap
	return q
}

// queryTargets finds the ids listQueries needs in what the server holds:
// the integration with the most alerts among the first page's, and the
// alert of that page with the most repeats.
func queryTargets(ctx context.Context, a *api) (integrationID, alertID, teamID string, err error) {
	var data struct {
		Alerts struct {
			Nodes []struct {
				ID          string `json:"id"`
				AppendCount int    `json:"appendCount"`
				Integration *struct {
					ID string `json:"id"`
				} `json:"integration"`
			} `json:"nodes"`
		} `json:"alerts"`
	}
	if err := a.do(ctx, `query { alerts(first: 500, filter: {status: [CLOSED]}) { nodes { id appendCount integration { id } } } }`, nil, &data); err != nil {
		return "", "", "", fmt.Errorf("find query targets: %w", err)
	}
	byIntegration := map[string]int{}
	best := -1
	for _, n := range data.Alerts.Nodes {
		if n.Integration != nil {
			byIntegration[n.Integration.ID]++
		}
		if n.AppendCount > best {
			best, alertID = n.AppendCount, n.ID
		}
	}
	most := 0
	for id, n := range byIntegration {
		if n > most || (n == most && id < integrationID) {
			most, integrationID = n, id
		}
	}
	if integrationID == "" || alertID == "" {
		return "", "", "", errors.New("find query targets: the server holds no closed alert from an integration; fill the database first (klaxon-bench fill)")
	}
	// The team owning the most integrations, as a team's own view would
	// ask for.
	var owners struct {
		Integrations []struct {
			Team *struct {
				ID string `json:"id"`
			} `json:"team"`
		} `json:"integrations"`
	}
	if err := a.do(ctx, `query { integrations { team { id } } }`, nil, &owners); err != nil {
		return "", "", "", fmt.Errorf("find query targets: %w", err)
	}
	byTeam := map[string]int{}
	for _, in := range owners.Integrations {
		if in.Team != nil {
			byTeam[in.Team.ID]++
		}
	}
	most = 0
	for id, n := range byTeam {
		if n > most || (n == most && id < teamID) {
			most, teamID = n, id
		}
	}
	if teamID == "" {
		return "", "", "", errors.New("find query targets: no integration belongs to a team; fill the database first (klaxon-bench fill)")
	}
	return integrationID, alertID, teamID, nil
}

// QueryTiming is one query's latency over its runs.
type QueryTiming struct {
	Name  string  `json:"name"`
	Runs  int     `json:"runs"`
	P50ms float64 `json:"p50Ms"`
	P99ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

func runQueries(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("klaxon-bench queries", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: klaxon-bench queries [flags]\n\nTimes each list and detail query people run (alerts with totalCount and\neach filter, the inbound log, one alert in full, the audit log) against a\nrunning server, one request at a time, and prints p50 and p99 per query.\nRun it against a server over a filled database (klaxon-bench fill).\n\nflags:\n")
		fs.PrintDefaults()
	}
	base := fs.String("url", "http://localhost:8080", "base URL of the Klaxon server")
	email := fs.String("email", os.Getenv("KLAXON_ADMIN_EMAIL"), "admin email (KLAXON_ADMIN_EMAIL); the audit log needs an admin")
	password := fs.String("password", os.Getenv("KLAXON_ADMIN_PASSWORD"), "admin password (KLAXON_ADMIN_PASSWORD)")
	runs := fs.Int("n", 200, "runs of each query, after 5 unmeasured ones")
	asJSON := fs.Bool("json", false, "print the results as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *email == "" || *password == "" {
		return errors.New("an admin email and password are needed (-email, -password or KLAXON_ADMIN_EMAIL, KLAXON_ADMIN_PASSWORD)")
	}
	if *runs < 1 {
		return errors.New("-n must be at least 1")
	}
	client := newClient(1, 60*time.Second)
	defer client.CloseIdleConnections()
	a := &api{base: strings.TrimRight(*base, "/"), http: client}
	if err := a.login(ctx, *email, *password); err != nil {
		return err
	}
	timings, err := timeQueries(ctx, a, *runs)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(timings)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "query\truns\tp50 ms\tp99 ms\tmax ms")
	for _, t := range timings {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\n", t.Name, t.Runs, t.P50ms, t.P99ms, t.MaxMs)
	}
	return tw.Flush()
}

// timeQueries runs each of listQueries runs times, one request at a time,
// and measures each from sending the request to having read the reply.
func timeQueries(ctx context.Context, a *api, runs int) ([]QueryTiming, error) {
	integrationID, alertID, teamID, err := queryTargets(ctx, a)
	if err != nil {
		return nil, err
	}
	var out []QueryTiming
	for _, q := range listQueries(integrationID, alertID, teamID) {
		var sink json.RawMessage
		for range 5 {
			if err := a.do(ctx, q.Query, q.Vars, &sink); err != nil {
				return nil, fmt.Errorf("%s: %w", q.Name, err)
			}
		}
		latencies := make([]time.Duration, runs)
		for i := range runs {
			began := time.Now()
			if err := a.do(ctx, q.Query, q.Vars, &sink); err != nil {
				return nil, fmt.Errorf("%s: %w", q.Name, err)
			}
			latencies[i] = time.Since(began)
		}
		slices.Sort(latencies)
		out = append(out, QueryTiming{Name: q.Name, Runs: runs, P50ms: ms(quantile(latencies, 0.5)), P99ms: ms(quantile(latencies, 0.99)), MaxMs: ms(latencies[len(latencies)-1])})
	}
	return out, nil
}
