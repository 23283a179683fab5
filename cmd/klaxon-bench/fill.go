package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/integrations"
	"github.com/klaxonhq/klaxon/rules"
)

// fillSpec is what `klaxon-bench fill` writes: the history of a team that
// has run Klaxon for Days days up to Until. The same spec and seed write
// the same rows.
type fillSpec struct {
	Messages     int
	Alerts       int
	Integrations int
	Users        int
	Teams        int
	// Audit is how many audit entries to write; 0 writes one for every
	// twenty alerts.
	Audit int
	Days  int
	Seed  uint64
	Until time.Time
	// AdminEmail and AdminPassword, when set, make the first filled
	// user an admin who can sign in: Klaxon creates its first admin only
	// in a database without users.
	AdminEmail, AdminPassword string
}

// fillCounts is how many rows fill wrote to each table.
type fillCounts struct {
	Users         int `json:"users"`
	Teams         int `json:"teams"`
	Integrations  int `json:"integrations"`
	Messages      int `json:"inboundMessages"`
	Alerts        int `json:"alerts"`
	OpenAlerts    int `json:"openAlerts"`
	Timeline      int `json:"alertLog"`
	Notifications int `json:"notifications"`
	Events        int `json:"events"`
	// Audit counts the entries fill wrote itself; creating the
	// integrations through their store records more.
	Audit int `json:"auditEntries"`
}

func runFill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("klaxon-bench fill", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: klaxon-bench fill -database-url URL [flags]\n\nMigrates an empty Klaxon database and fills it with a year of realistic,\nseeded history: integrations, users and teams, the inbound log, alerts\n(most closed) with their timelines, notifications, events and audit\nentries.\n\nflags:\n")
		fs.PrintDefaults()
	}
	url := fs.String("database-url", "", "the database to fill: sqlite:///path/klaxon.db or postgres://…")
	spec := fillSpec{}
	fs.IntVar(&spec.Messages, "messages", 1_000_000, "inbound messages")
	fs.IntVar(&spec.Alerts, "alerts", 300_000, "alerts")
	fs.IntVar(&spec.Integrations, "integrations", 36, "integrations")
	fs.IntVar(&spec.Users, "users", 40, "users")
	fs.IntVar(&spec.Teams, "teams", 4, "teams; a third of the integrations belong to one")
	fs.IntVar(&spec.Audit, "audit", 0, "audit entries (default: one for every twenty alerts)")
	fs.IntVar(&spec.Days, "days", 365, "days of history")
	fs.Uint64Var(&spec.Seed, "seed", 1, "seed: the same seed and -until write the same rows")
	fs.StringVar(&spec.AdminEmail, "admin-email", os.Getenv("KLAXON_ADMIN_EMAIL"), "email of the first filled user, an admin who can sign in (KLAXON_ADMIN_EMAIL)")
	fs.StringVar(&spec.AdminPassword, "admin-password", os.Getenv("KLAXON_ADMIN_PASSWORD"), "that admin's password (KLAXON_ADMIN_PASSWORD)")
	until := fs.String("until", "", "RFC 3339 time the history ends at (default: now, to the hour)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if *url == "" {
		return errors.New("-database-url is required")
	}
	spec.Until = time.Now().UTC().Truncate(time.Hour)
	if *until != "" {
		t, err := time.Parse(time.RFC3339, *until)
		if err != nil {
			return fmt.Errorf("-until: %w", err)
		}
		spec.Until = t.UTC()
	}
	if err := spec.check(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	d, err := db.Open(ctx, *url)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	began := time.Now()
	counts, err := fill(ctx, d, spec, log)
	if err != nil {
		return err
	}
	if d.Kind == db.Postgres {
		// What autovacuum does after a bulk load, done now: measurements
		// that start at once must not meet plans made without statistics,
		// and autovacuum may be off or not have come round yet.
		if _, err := d.ExecContext(ctx, "VACUUM ANALYZE"); err != nil {
			return fmt.Errorf("analyze the filled database: %w", err)
		}
	}
	fmt.Fprintf(stdout, "filled %s in %s: %d integrations, %d users, %d teams, %d inbound messages, %d alerts (%d not closed), %d timeline entries, %d notifications, %d events, %d audit entries\n",
		d.Kind, time.Since(began).Round(time.Millisecond), counts.Integrations, counts.Users, counts.Teams, counts.Messages, counts.Alerts, counts.OpenAlerts,
		counts.Timeline, counts.Notifications, counts.Events, counts.Audit)
	return nil
}

func (s fillSpec) check() error {
	switch {
	case s.Alerts < 1:
		return errors.New("-alerts must be at least 1")
	case s.Messages < s.Alerts:
		return errors.New("-messages must be at least -alerts: every alert was opened by a message")
	case s.Integrations < 1 || s.Integrations > 1000:
		return errors.New("-integrations must be between 1 and 1000")
	case s.Users < 2:
		return errors.New("-users must be at least 2")
	case s.Teams < 0 || s.Teams > s.Users:
		return errors.New("-teams must be between 0 and -users")
	case s.Audit < 0:
		return errors.New("-audit must not be negative")
	case s.Days < 1:
		return errors.New("-days must be at least 1")
	case (s.AdminEmail == "") != (s.AdminPassword == ""):
		return errors.New("-admin-email and -admin-password go together")
	}
	return nil
}

// fill writes spec's history into d, which must be migrated and hold no
// alerts or inbound messages yet. Configuration goes through Klaxon's own
// stores where one exists (integrations, with their rulesets and audit
// entries); the run-time tables, far larger, are written in bulk: COPY on
// PostgreSQL, batched transactions on SQLite.
func fill(ctx context.Context, d *db.DB, spec fillSpec, log *slog.Logger) (*fillCounts, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	for _, table := range []string{"alerts", "inbound_messages"} {
		var n int
		if err := d.DB.DB.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			return nil, fmt.Errorf("fill: count %s: %w", table, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("fill: %s already holds %d rows; fill an empty database", table, n)
		}
	}
	g := &generator{spec: spec, rng: rand.New(rand.NewPCG(spec.Seed, spec.Seed^0x6b6c61786f6e)), start: spec.Until.Add(-time.Duration(spec.Days) * 24 * time.Hour)}
	counts := &fillCounts{}
	if err := g.configure(ctx, d, counts); err != nil {
		return nil, err
	}
	g.planAlerts()
	g.planMessages()
	log.Info("fill: planned", "alerts", len(g.alerts), "messages", len(g.messages))
	w, err := newBulkWriter(ctx, d)
	if err != nil {
		return nil, err
	}
	steps := []struct {
		table string
		cols  []string
		rows  func(emit func(...any) error) error
		count *int
	}{
		{"alerts", alertColumns, g.alertRows, &counts.Alerts},
		{"inbound_messages", messageColumns, g.messageRows, &counts.Messages},
		{"alert_log", timelineColumns, g.timelineRows, &counts.Timeline},
		{"notifications", notificationColumns, g.notificationRows, &counts.Notifications},
		{"events", eventColumns, g.eventRows, &counts.Events},
		{"audit_log", auditColumns, g.auditRows, &counts.Audit},
	}
	for _, s := range steps {
		began := time.Now()
		n, err := w.write(ctx, s.table, s.cols, s.rows)
		if err != nil {
			return nil, fmt.Errorf("fill %s: %w", s.table, err)
		}
		*s.count = n
		log.Info("fill: wrote", "table", s.table, "rows", n, "took", time.Since(began).Round(time.Millisecond))
	}
	if err := w.finish(ctx); err != nil {
		return nil, err
	}
	for _, a := range g.alerts {
		if a.closedAt == 0 {
			counts.OpenAlerts++
		}
	}
	return counts, nil
}

// generator holds the plan of the history, drawn from one seeded source
// in a fixed order so that a seed always gives the same rows.
type generator struct {
	spec  fillSpec
	rng   *rand.Rand
	start time.Time

	users        []fillUser
	integrations []fillIntegration
	// weights draws an integration: a few loud ones take most traffic.
	weights []float64

	alerts   []plannedAlert
	messages []plannedMessage
	// byAlert lists each alert's message ids in time order:
	// alertMessages[alertFirst[i]:alertFirst[i+1]].
	alertFirst    []int32
	alertMessages []int64

	// Ids the bulk tables start after (what the database already holds).
	auditBase int64
}

type fillUser struct {
	id    int
	email string
	// method is the user's one e-mail contact method.
	method int
}

type fillIntegration struct {
	id   int
	kind rules.IntegrationType
	// remediation: the integration's alerts carry due dates.
	remediation bool
}

// plannedAlert is one alert's life, in nanoseconds since the Unix epoch.
type plannedAlert struct {
	integ          int16
	severity       uint8
	ackBy, closeBy int16 // user index + 1; 0 none
	closedByMsg    bool
	previous       int32 // alert index + 1; 0 none
	appends        int32
	notifications  uint8
	openedAt       int64
	ackAt          int64
	closedAt       int64 // 0: not closed
	source         [16]byte
	lastSeen       int64
}

type messageKind uint8

const (
	msgOpen messageKind = iota
	msgAppend
	msgClose
	msgNoise
)

type plannedMessage struct {
	at    int64
	alert int32 // index; -1 for a message that touched no alert
	kind  messageKind
	integ int16
	// noise is the status of a message that touched no alert.
	noise uint8
}

var severities = []string{"critical", "high", "medium", "low"}

// severityShares is how often each severity opens an alert, in percent.
var severityShares = []int{6, 30, 50, 14}

// noiseStatuses are the outcomes of messages that touch no alert, with
// their shares in percent.
var noiseStatuses = []struct {
	status db.InboundStatus
	share  int
}{
	{db.InboundStatus("FILTERED"), 40},
	{db.InboundStatus("MAPPED_IGNORED"), 25},
	{db.InboundStatus("PULSE"), 15},
	{db.InboundStatus("CHANGE"), 10},
	{db.InboundStatus("MAPPING_FAILED"), 10},
}

// remediationDays is how long a finding of each severity may stay open
// on an integration with deadlines.
var remediationDays = []int{7, 30, 90, 180}

func (g *generator) pickShare(shares []int) int {
	n := g.rng.IntN(100)
	for i, s := range shares {
		if n < s {
			return i
		}
		n -= s
	}
	return len(shares) - 1
}

func (g *generator) pickIntegration() int {
	x := g.rng.Float64() * g.weights[len(g.weights)-1]
	i, _ := slices.BinarySearch(g.weights, x)
	return min(i, len(g.weights)-1)
}

// configure creates the users, teams and integrations, dated at the start
// of the history.
func (g *generator) configure(ctx context.Context, d *db.DB, counts *fillCounts) error {
	at := g.start
	users := make([]*db.User, g.spec.Users)
	for i := range users {
		role := db.RoleResponder
		switch {
		case i < 2:
			role = db.RoleAdmin
		case i%5 == 4:
			role = db.RoleViewer
		}
		users[i] = &db.User{Email: fmt.Sprintf("user%03d@fill.example", i), Name: fmt.Sprintf("User %03d", i), Role: role, CreatedAt: at, UpdatedAt: at}
	}
	if g.spec.AdminEmail != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(g.spec.AdminPassword), bcrypt.DefaultCost)
		if err != nil {
			return fmt.Errorf("fill: hash the admin's password: %w", err)
		}
		users[0].Email, users[0].Name, users[0].PasswordHash = strings.ToLower(strings.TrimSpace(g.spec.AdminEmail)), "Administrator", string(hash)
	}
	if _, err := d.NewInsert().Model(&users).Exec(ctx); err != nil {
		return fmt.Errorf("fill users: %w", err)
	}
	for _, u := range users {
		g.users = append(g.users, fillUser{id: u.ID, email: u.Email})
	}
	methods := make([]*db.ContactMethod, len(users))
	for i, u := range users {
		methods[i] = &db.ContactMethod{UserID: u.ID, Name: "Work email", Type: db.ContactEmail, Value: u.Email, Verified: true, CreatedAt: at}
	}
	if _, err := d.NewInsert().Model(&methods).Exec(ctx); err != nil {
		return fmt.Errorf("fill contact methods: %w", err)
	}
	for i, m := range methods {
		g.users[i].method = m.ID
	}
	var teams []*db.Group
	for i := range g.spec.Teams {
		teams = append(teams, &db.Group{Name: fmt.Sprintf("Team %d", i+1), Description: "Filled", CreatedAt: at})
	}
	if len(teams) > 0 {
		if _, err := d.NewInsert().Model(&teams).Exec(ctx); err != nil {
			return fmt.Errorf("fill teams: %w", err)
		}
		var members []*db.GroupMember
		for i, u := range users {
			role := db.TeamResponder
			if i < len(teams) {
				role = db.TeamManager
			}
			members = append(members, &db.GroupMember{GroupID: teams[i%len(teams)].ID, UserID: u.ID, Role: role})
		}
		if _, err := d.NewInsert().Model(&members).Exec(ctx); err != nil {
			return fmt.Errorf("fill team members: %w", err)
		}
	}
	store := integrations.NewStore(d, "https://klaxon.example", func() time.Time { return at }, func() {})
	kinds := []rules.IntegrationType{rules.TypeDetectify, rules.TypeDetectify, rules.TypeDetectify, rules.TypeGeneric, rules.TypeAlertmanager}
	for i := range g.spec.Integrations {
		kind := kinds[i%len(kinds)]
		name := fmt.Sprintf("%s %02d", kind, i+1)
		integ, err := store.CreateIntegration(ctx, integrations.IntegrationInput{Name: &name, Type: &kind})
		if err != nil {
			return fmt.Errorf("fill integration %s: %w", name, err)
		}
		if len(teams) > 0 && i%3 == 1 {
			if _, err := d.NewUpdate().Table("integrations").Set("team_id = ?", teams[i%len(teams)].ID).Where("id = ?", integ.ID).Exec(ctx); err != nil {
				return fmt.Errorf("fill integration %s: team: %w", name, err)
			}
		}
		g.integrations = append(g.integrations, fillIntegration{id: integ.ID, kind: kind, remediation: kind == rules.TypeDetectify && i%2 == 0})
		// Zipf-like: the first integrations are the loud ones.
		w := 1 / math.Pow(float64(i+1), 0.9)
		if len(g.weights) > 0 {
			w += g.weights[len(g.weights)-1]
		}
		g.weights = append(g.weights, w)
	}
	if err := d.DB.DB.QueryRowContext(ctx, "SELECT COALESCE(max(id), 0) FROM audit_log").Scan(&g.auditBase); err != nil {
		return fmt.Errorf("fill: read audit ids: %w", err)
	}
	counts.Users, counts.Teams, counts.Integrations = len(users), len(teams), len(g.integrations)
	return nil
}

// planAlerts draws every alert's life. Alerts open evenly over the
// history; recent ones are more often still open, old ones nearly always
// closed; a few bring back a closed finding of the same source.
func (g *generator) planAlerts() {
	n := g.spec.Alerts
	g.alerts = make([]plannedAlert, n)
	span := g.spec.Until.Sub(g.start)
	until := g.spec.Until.UnixNano()
	reused := make(map[int32]bool)
	for i := range g.alerts {
		a := &g.alerts[i]
		a.openedAt = g.start.UnixNano() + int64(float64(span)*(float64(i)+g.rng.Float64())/float64(n))
		a.integ = int16(g.pickIntegration())
		a.severity = uint8(g.pickShare(severityShares))
		binaryUUID(g.rng, &a.source)
		if i > 0 && g.rng.IntN(100) < 3 {
			j := int32(i - 1 - g.rng.IntN(min(i, 500)))
			if p := g.alerts[j]; p.closedAt != 0 && p.closedAt < a.openedAt && !reused[j] {
				reused[j] = true
				a.integ, a.source, a.previous = p.integ, p.source, j+1
			}
		}
		closeShare := 995
		if until-a.openedAt < int64(14*24*time.Hour) {
			closeShare = 600
		}
		// Lifetimes are log-normal: minutes for most, weeks for some.
		life := int64(math.Exp(g.rng.NormFloat64()*1.6+8.5) * float64(time.Second))
		if g.rng.IntN(2) == 0 {
			a.ackBy = int16(1 + g.rng.IntN(len(g.users)))
			a.ackAt = a.openedAt + life/4 + int64(time.Second)
		}
		if g.rng.IntN(1000) < closeShare && a.openedAt+life < until {
			a.closedAt = a.openedAt + life + int64(2*time.Second)
			if g.rng.IntN(100) < 65 {
				a.closedByMsg = true
			} else {
				a.closeBy = int16(1 + g.rng.IntN(len(g.users)))
			}
		}
		if a.ackAt >= until || (a.closedAt != 0 && a.ackAt >= a.closedAt) {
			a.ackBy, a.ackAt = 0, 0
		}
		if a.severity <= 2 {
			a.notifications = uint8(1 + g.rng.IntN(3))
		}
		a.lastSeen = a.openedAt
	}
}

// planMessages spreads the messages over the alerts' lives: one opening
// each, a closing one for those a message closed, the rest repeats of
// open alerts and messages that touched no alert, then puts them in time
// order, which is id order as in a real log.
func (g *generator) planMessages() {
	n := g.spec.Messages
	msgs := make([]plannedMessage, 0, n)
	for i := range g.alerts {
		a := &g.alerts[i]
		msgs = append(msgs, plannedMessage{at: a.openedAt, alert: int32(i), kind: msgOpen, integ: a.integ})
	}
	for i := range g.alerts {
		a := &g.alerts[i]
		if !a.closedByMsg {
			continue
		}
		if len(msgs) < n {
			msgs = append(msgs, plannedMessage{at: a.closedAt, alert: int32(i), kind: msgClose, integ: a.integ})
		} else {
			// No message left to close it with: a person did.
			a.closedByMsg, a.closeBy = false, int16(1+i%len(g.users))
		}
	}
	rest := n - len(msgs)
	noise := rest * 15 / 100
	until := g.spec.Until.UnixNano()
	span := until - g.start.UnixNano()
	for range rest - noise {
		i := g.rng.IntN(len(g.alerts))
		a := &g.alerts[i]
		end := a.closedAt
		if end == 0 {
			end = until
		}
		at := a.openedAt + 1 + g.rng.Int64N(max(end-a.openedAt-1, 1))
		a.appends++
		a.lastSeen = max(a.lastSeen, at)
		msgs = append(msgs, plannedMessage{at: at, alert: int32(i), kind: msgAppend, integ: a.integ})
	}
	shares := make([]int, len(noiseStatuses))
	for i, s := range noiseStatuses {
		shares[i] = s.share
	}
	for range noise {
		msgs = append(msgs, plannedMessage{at: g.start.UnixNano() + g.rng.Int64N(span), alert: -1, kind: msgNoise, integ: int16(g.pickIntegration()), noise: uint8(g.pickShare(shares))})
	}
	slices.SortStableFunc(msgs, func(x, y plannedMessage) int { return compareInt64(x.at, y.at) })
	g.messages = msgs
	g.alertFirst = make([]int32, len(g.alerts)+1)
	for _, m := range msgs {
		if m.alert >= 0 {
			g.alertFirst[m.alert+1]++
		}
	}
	for i := 1; i < len(g.alertFirst); i++ {
		g.alertFirst[i] += g.alertFirst[i-1]
	}
	g.alertMessages = make([]int64, g.alertFirst[len(g.alerts)])
	next := slices.Clone(g.alertFirst[:len(g.alerts)])
	for i, m := range msgs {
		if m.alert >= 0 {
			g.alertMessages[next[m.alert]] = int64(i + 1)
			next[m.alert]++
		}
	}
	for i := range g.alerts {
		a := &g.alerts[i]
		if a.closedByMsg {
			a.lastSeen = max(a.lastSeen, a.closedAt)
		}
	}
}

func compareInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func binaryUUID(rng *rand.Rand, b *[16]byte) {
	for i := range 2 {
		v := rng.Uint64()
		for j := range 8 {
			b[i*8+j] = byte(v >> (8 * j))
		}
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
}

func uuidString(b [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func nanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// nullTime is a nullable timestamp column's value: nil for zero.
func nullTime(n int64) any {
	if n == 0 {
		return nil
	}
	return nanos(n)
}

func (g *generator) userID(oneBased int16) any {
	if oneBased == 0 {
		return nil
	}
	return int64(g.users[oneBased-1].id)
}

var alertColumns = []string{"id", "integration_id", "source_id", "source_name", "subject", "severity", "url", "details", "status",
	"append_count", "opened_at", "last_seen_at", "acknowledged_at", "acknowledged_by", "closed_at", "closed_by", "previous_alert_id", "due_at", "overdue_at"}

func (g *generator) alertRows(emit func(...any) error) error {
	until := g.spec.Until.UnixNano()
	for i, a := range g.alerts {
		integ := g.integrations[a.integ]
		source := uuidString(a.source)
		h := int(a.source[0])
		v := vulnerabilities[h%len(vulnerabilities)]
		asset := assets[h/7%len(assets)]
		status := "CLOSED"
		switch {
		case a.closedAt != 0:
		case a.ackAt != 0:
			status = "ACKNOWLEDGED"
		default:
			status = "OPEN"
		}
		var previous any
		if a.previous != 0 {
			previous = int64(a.previous)
		}
		var due, overdue any
		if integ.remediation {
			d := a.openedAt + int64(remediationDays[a.severity])*int64(24*time.Hour)
			due = nanos(d)
			if (a.closedAt == 0 && d < until) || a.closedAt > d {
				overdue = nanos(d)
			}
		}
		err := emit(int64(i+1), int64(integ.id), source, asset.name, v.title+" on "+asset.name, severities[a.severity],
			"https://detectify.com/dashboard/findings/"+source, v.description, status, int64(a.appends),
			nanos(a.openedAt), nanos(a.lastSeen), nullTime(a.ackAt), g.userID(a.ackBy), nullTime(a.closedAt), g.userID(a.closeBy), previous, due, overdue)
		if err != nil {
			return err
		}
	}
	return nil
}

var messageColumns = []string{"id", "integration_id", "received_at", "remote_addr", "headers", "body", "status", "detail", "source_id", "alert_id"}

const fillHeaders = `{"Content-Type":"application/json","User-Agent":"Detectify-Webhooks/1.0"}`

func (g *generator) messageRows(emit func(...any) error) error {
	for i, m := range g.messages {
		integ := g.integrations[m.integ]
		at := nanos(m.at)
		var alertID any
		var source, status, detail string
		var body []byte
		var err error
		if m.alert >= 0 {
			a := &g.alerts[m.alert]
			alertID = int64(m.alert + 1)
			source = uuidString(a.source)
			severity, event := severities[a.severity], "finding_updated"
			switch m.kind {
			case msgOpen:
				status, event = "MAPPED_OPENED", "finding"
			case msgAppend:
				status = "MAPPED_APPENDED"
			case msgClose:
				status, severity = "MAPPED_CLOSED", "low"
			}
			body, err = sampleBody(integ.kind, source, severity, event, at)
		} else {
			status = string(noiseStatuses[m.noise].status)
			source = fmt.Sprintf("scan-%d", m.at%997)
			if status == "MAPPING_FAILED" {
				detail = "no value at $.finding.uuid"
			}
			body, err = sampleBody(integ.kind, source, "info", "scan_finished", at)
		}
		if err != nil {
			return err
		}
		if err := emit(int64(i+1), int64(integ.id), at, fmt.Sprintf("10.%d.%d.%d:443", m.integ, i%251, i%241), fillHeaders, body, status, detail, source, alertID); err != nil {
			return err
		}
	}
	return nil
}

// sampleBody renders a message in the shape its integration's senders
// use: Detectify findings as in rules/testdata/detectify, Alertmanager
// and generic alerts as their senders post them.
func sampleBody(kind rules.IntegrationType, source, severity, event string, at time.Time) ([]byte, error) {
	switch kind {
	case rules.TypeAlertmanager:
		status := "firing"
		if severity == "low" {
			status = "resolved"
		}
		return fmt.Appendf(nil, `{"version":"4","groupKey":"{}:{alertname=\"HighLatency\"}","status":%q,"receiver":"klaxon","groupLabels":{"alertname":"HighLatency"},"commonLabels":{"alertname":"HighLatency","severity":%q},"commonAnnotations":{"summary":"p99 latency above 500ms"},"externalURL":"http://alertmanager:9093","alerts":[{"status":%q,"labels":{"alertname":"HighLatency","instance":"api-1:9100","severity":%q},"annotations":{"summary":"p99 latency above 500ms on api-1"},"startsAt":%q,"endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus:9090/graph","fingerprint":%q}]}`,
			status, severity, status, severity, at.Format(time.RFC3339), source), nil
	case rules.TypeGeneric:
		return fmt.Appendf(nil, `{"id":%q,"title":"Disk usage above 90%% on db-2","severity":%q,"event":%q,"source":"node-exporter","details":"/var/lib/postgresql is 91%% full","timestamp":%q}`,
			source, severity, event, at.Format(time.RFC3339)), nil
	}
	return detectifyBody(source, severity, event, at)
}

var timelineColumns = []string{"alert_id", "at", "type", "message", "user_id", "inbound_message_id"}

// timelineRows writes each alert's entries oldest first: opened, each
// repeat, the notifications, acknowledged, closed. Ids are left to the
// database.
func (g *generator) timelineRows(emit func(...any) error) error {
	for i, a := range g.alerts {
		id := int64(i + 1)
		msgs := g.alertMessages[g.alertFirst[i]:g.alertFirst[i+1]]
		entries := 0
		for _, mid := range msgs {
			m := g.messages[mid-1]
			typ, text := "APPENDED", "Repeated by the integration"
			switch m.kind {
			case msgOpen:
				typ, text = "OPENED", "Opened by the integration"
			case msgClose:
				typ, text = "CLOSED", "Closed by the integration"
			}
			if m.kind == msgOpen {
				if err := emit(id, nanos(m.at), typ, text, nil, mid); err != nil {
					return err
				}
				for n := range int(a.notifications) {
					u := g.users[(i+n)%len(g.users)]
					if err := emit(id, nanos(m.at+int64(n+1)*int64(time.Second)), "NOTIFICATION", "Email to "+u.email, int64(u.id), nil); err != nil {
						return err
					}
				}
				entries += 1 + int(a.notifications)
				continue
			}
			if err := emit(id, nanos(m.at), typ, text, nil, mid); err != nil {
				return err
			}
		}
		if a.ackBy != 0 {
			if err := emit(id, nanos(a.ackAt), "ACKNOWLEDGED", "", g.userID(a.ackBy), nil); err != nil {
				return err
			}
		}
		if a.closeBy != 0 {
			if err := emit(id, nanos(a.closedAt), "CLOSED", "", g.userID(a.closeBy), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

var notificationColumns = []string{"alert_id", "user_id", "contact_method_id", "channel", "destination", "status", "attempts", "error", "step", "round", "dedup_key", "created_at", "updated_at"}

func (g *generator) notificationRows(emit func(...any) error) error {
	for i, a := range g.alerts {
		for n := range int(a.notifications) {
			u := g.users[(i+n)%len(g.users)]
			status, errText, attempts := "DELIVERED", "", int64(1)
			if (i+n)%50 == 0 {
				status, errText, attempts = "FAILED", "550 5.1.1 mailbox unavailable", 3
			}
			at := nanos(a.openedAt + int64(n+1)*int64(time.Second))
			err := emit(int64(i+1), int64(u.id), int64(u.method), "EMAIL", u.email, status, attempts, errText, int64(0), int64(0),
				fmt.Sprintf("fill-%d-%d", i+1, n), at, at)
			if err != nil {
				return err
			}
		}
	}
	return nil
}

var eventColumns = []string{"kind", "type", "alert_id", "integration_id", "inbound_message_id", "at"}

// eventRows writes what the bus would have relayed: one event per inbound
// message and the alert's own (opened, closed) where a message caused
// them, in log order; a person's acknowledgement or close follows the
// alert's last message.
func (g *generator) eventRows(emit func(...any) error) error {
	lastOf := func(alert int32) int64 { return g.alertMessages[g.alertFirst[alert+1]-1] }
	for i, m := range g.messages {
		mid := int64(i + 1)
		integID := int64(g.integrations[m.integ].id)
		var alertID any
		status := string(noiseStatuses[m.noise].status)
		if m.alert >= 0 {
			alertID = int64(m.alert + 1)
			status = [...]string{msgOpen: "MAPPED_OPENED", msgAppend: "MAPPED_APPENDED", msgClose: "MAPPED_CLOSED"}[m.kind]
		}
		if err := emit("inbound", status, alertID, integID, mid, nanos(m.at)); err != nil {
			return err
		}
		if m.alert < 0 {
			continue
		}
		switch m.kind {
		case msgOpen:
			if err := emit("alert", "OPENED", alertID, integID, nil, nanos(m.at)); err != nil {
				return err
			}
		case msgClose:
			if err := emit("alert", "CLOSED", alertID, integID, nil, nanos(m.at)); err != nil {
				return err
			}
		}
		a := &g.alerts[m.alert]
		if lastOf(m.alert) != mid {
			continue
		}
		if a.ackBy != 0 {
			if err := emit("alert", "ACKNOWLEDGED", alertID, integID, nil, nanos(a.ackAt)); err != nil {
				return err
			}
		}
		if a.closeBy != 0 {
			if err := emit("alert", "CLOSED", alertID, integID, nil, nanos(a.closedAt)); err != nil {
				return err
			}
		}
	}
	return nil
}

var auditColumns = []string{"id", "at", "actor_user_id", "actor", "entity_type", "entity_id", "action", "changes"}

// auditRows writes a year of configuration changes, by default one for
// every twenty alerts, most of them edits of integrations and users by
// the admins.
func (g *generator) auditRows(emit func(...any) error) error {
	n := g.spec.Audit
	if n == 0 {
		n = max(g.spec.Alerts/20, 50)
	}
	span := g.spec.Until.Sub(g.start)
	for i := range n {
		admin := g.users[i%2]
		at := g.start.Add(time.Duration(float64(span) * (float64(i) + 0.5) / float64(n)))
		entity, entityID, action, changes := "INTEGRATION", int64(g.integrations[i%len(g.integrations)].id), "UPDATED", fmt.Sprintf(`{"rateLimitPerMinute":{"from":%d,"to":%d}}`, 600+i%7, 600+(i+1)%7)
		switch i % 5 {
		case 1:
			u := g.users[i%len(g.users)]
			entity, entityID, changes = "USER", int64(u.id), fmt.Sprintf(`{"name":{"from":"User %d","to":"User %d"}}`, i, i+1)
		case 2:
			entity, action, changes = "RULESET", "UPDATED", `{"rules":{"from":"[redacted]","to":"[changed]"}}`
			entityID = int64(1 + i%len(g.integrations))
		case 3:
			if g.spec.Teams > 0 {
				entity, entityID, action, changes = "GROUP", int64(1+i%g.spec.Teams), "MEMBER_ADDED", fmt.Sprintf(`{"userId":{"to":"%d"}}`, g.users[i%len(g.users)].id)
			}
		}
		if err := emit(g.auditBase+int64(i+1), at, int64(admin.id), admin.email, entity, entityID, action, changes); err != nil {
			return err
		}
	}
	return nil
}
