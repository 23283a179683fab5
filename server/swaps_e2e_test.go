package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/alerting"
	"github.com/klaxonhq/klaxon/audit"
	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/contacts"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/events"
	"github.com/klaxonhq/klaxon/notifiers"
	"github.com/klaxonhq/klaxon/policies"
	"github.com/klaxonhq/klaxon/resolvers"
	"github.com/klaxonhq/klaxon/schedules"
	"github.com/klaxonhq/klaxon/server"
)

const swapPublicURL = "https://klaxon.example"

// swapWorld is a server whose shift swaps notify by email through a
// real SMTP server, on a clock the test moves.
type swapWorld struct {
	*harness
	clock  *testClock
	mail   *mailServer
	refuse *atomic.Int32
	// alice and bob take turns daily from base; carol is in no layer.
	alice, bob, carol session
	base              time.Time
	scheduleID        string
}

func newSwapWorld(t *testing.T, d *db.DB) *swapWorld {
	ctx := context.Background()
	mail, refuse := startRefusingMailServer(t)
	clock := &testClock{now: time.Now().UTC().Truncate(time.Hour)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var svc *alerting.Service
	policyStore := policies.NewStore(d, clock.Now, func() { svc.RoutesChanged() })
	scheduleStore := schedules.NewStore(d, clock.Now, policyStore)
	email, err := notifiers.NewEmail(notifiers.EmailConfig{Host: mail.host, Port: mail.port, TLS: notifiers.SMTPNoTLS, From: "Klaxon <klaxon@example.com>"})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := auth.SigningKey(ctx, d, clock.Now())
	// Sessions outlast the hours the tests move the clock by.
	tokens, _ := auth.NewTokens(key, 48*time.Hour, clock.Now)
	authSvc, _ := auth.NewService(d, tokens, clock.Now)
	authSvc.SetPasswordCost(bcrypt.MinCost)
	channels := notifiers.NewChannels(notifiers.Senders{db.ContactEmail: email}, nil)
	contactStore := contacts.NewStore(d, clock.Now, log, channels)
	bus := events.NewBus(d, log)
	svc = alerting.NewService(alerting.Options{DB: d, PublicURL: swapPublicURL, Now: clock.Now, Log: log, Config: alerting.Config{
		OnCall: scheduleStore, Policies: policyStore, Contacts: contactStore, Groups: authSvc,
	}, Channels: channels, Events: bus})
	scheduleStore.UseNotices(svc)
	res := &resolvers.Resolver{Alerting: svc, Auth: authSvc, Events: bus, Audit: audit.NewLog(d), ScheduleStore: scheduleStore, PolicyStore: policyStore, ContactStore: contactStore}
	srv := server.New(server.Config{PublicURL: swapPublicURL, Now: clock.Now}, d, svc, authSvc, bus, res, log)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	h := &harness{t: t, db: d, auth: authSvc, alerting: svc, channels: channels, contacts: contactStore, bus: bus, srv: ts, server: srv, client: ts.Client(), seq: new(atomic.Int64)}
	h.admin = h.newUser(db.RoleAdmin)
	w := &swapWorld{harness: h, clock: clock, mail: mail, refuse: refuse, base: clock.Now()}
	w.alice, w.bob, w.carol = h.newUser(db.RoleViewer), h.newUser(db.RoleResponder), h.newUser(db.RoleViewer)
	for _, u := range []session{w.alice, w.bob, w.carol} {
		w.reachableByEmail(u)
	}
	var created struct {
		Schedule struct{ ID string } `json:"createSchedule"`
	}
	h.mustGQL(h.admin.Token, `mutation($input: CreateScheduleInput!) { createSchedule(input: $input) { id } }`, map[string]any{"input": map[string]any{
		"name": "Primary", "timeZone": "UTC",
		"layers": []any{map[string]any{"shiftLength": 1, "shiftUnit": "DAYS", "handoffAt": w.base.Format(time.RFC3339),
			"participantIds": []string{w.alice.ID, w.bob.ID}}},
	}}, &created)
	w.scheduleID = created.Schedule.ID
	return w
}

// reachableByEmail gives the user a verified email address, paged at once.
func (w *swapWorld) reachableByEmail(u session) {
	w.t.Helper()
	ctx := context.Background()
	var id int
	fmt.Sscan(u.ID, &id)
	now := w.clock.Now()
	cm := &db.ContactMethod{UserID: id, Name: "work", Type: db.ContactEmail, Value: u.Email, Verified: true, CreatedAt: now}
	if _, err := w.db.NewInsert().Model(cm).Exec(ctx); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.db.NewInsert().Model(&db.NotificationRule{UserID: id, ContactMethodID: cm.ID, CreatedAt: now}).Exec(ctx); err != nil {
		w.t.Fatal(err)
	}
}

// at is base plus hours, as the API writes times.
func (w *swapWorld) at(hours int) string {
	return w.base.Add(time.Duration(hours) * time.Hour).Format(time.RFC3339)
}

const requestSwap = `mutation($schedule: ID!, $to: ID!, $start: Time!, $end: Time!) {
	requestShiftSwap(input: {scheduleId: $schedule, toUserId: $to, start: $start, end: $end}) { id status } }`

func (w *swapWorld) request(as session, to string, start, end int) *gqlResponse {
	w.t.Helper()
	return w.gql(as.Token, requestSwap, map[string]any{"schedule": w.scheduleID, "to": to, "start": w.at(start), "end": w.at(end)})
}

func (w *swapWorld) runJobs() {
	w.t.Helper()
	if _, err := w.alerting.RunDueJobs(context.Background()); err != nil {
		w.t.Fatal(err)
	}
}

// noMail fails if a message has arrived. A send happens inside
// RunDueJobs, so anything sent is already in.
func (w *swapWorld) noMail() {
	w.t.Helper()
	select {
	case m := <-w.mail.got:
		w.t.Fatalf("unexpected email to %v:\n%s", m.to, m.data)
	default:
	}
}

// nextNotice reads the next email, which must go to want, and returns
// its subject and text.
func (w *swapWorld) nextNotice(want session) (subject, text string) {
	w.t.Helper()
	got := w.mail.next(w.t.(*testing.T))
	if len(got.to) != 1 || got.to[0] != want.Email {
		w.t.Fatalf("email to %v, want %s", got.to, want.Email)
	}
	msg, err := netmail.ReadMessage(strings.NewReader(string(got.data)))
	if err != nil {
		w.t.Fatal(err)
	}
	subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	var body io.Reader = msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(msg.Body)
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		w.t.Fatal(err)
	}
	return subject, strings.ReplaceAll(string(raw), "\r\n", "\n")
}

// follow opens a link from an email on the test server, as a browser
// would: GET shows the page, POST presses its button.
func (w *swapWorld) follow(method, link string) (int, string) {
	w.t.Helper()
	if !strings.HasPrefix(link, swapPublicURL+"/swaps/") {
		w.t.Fatalf("link %q is not a swap link under the public URL", link)
	}
	req, err := http.NewRequest(method, w.srv.URL+strings.TrimPrefix(link, swapPublicURL), nil)
	if err != nil {
		w.t.Fatal(err)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(page)
}

func (w *swapWorld) swapStatus(id string) string {
	w.t.Helper()
	var data struct {
		Swaps []struct {
			ID       string
			Status   string
			Override *struct{ ID string }
		} `json:"shiftSwaps"`
	}
	w.mustGQL(w.admin.Token, `query($id: ID!) { shiftSwaps(scheduleId: $id) { id status override { id } } }`, map[string]any{"id": w.scheduleID}, &data)
	for _, s := range data.Swaps {
		if s.ID == id {
			if s.Override != nil {
				return s.Status + " override " + s.Override.ID
			}
			return s.Status
		}
	}
	w.t.Fatalf("swap %s not listed: %+v", id, data.Swaps)
	return ""
}

// shifts renders the timeline of the first day as "0-2:alice …".
func (w *swapWorld) shifts() string {
	w.t.Helper()
	var data struct {
		Shifts []struct {
			Start, End time.Time
			Users      []struct{ ID string }
		} `json:"shifts"`
	}
	w.mustGQL(w.alice.Token, `query($id: ID!, $from: Time!, $to: Time!) { shifts(scheduleId: $id, from: $from, to: $to) { start end users { id } } }`,
		map[string]any{"id": w.scheduleID, "from": w.at(0), "to": w.at(24)}, &data)
	names := map[string]string{w.alice.ID: "alice", w.bob.ID: "bob", w.carol.ID: "carol"}
	var parts []string
	for _, s := range data.Shifts {
		var who []string
		for _, u := range s.Users {
			who = append(who, names[u.ID])
		}
		parts = append(parts, fmt.Sprintf("%d-%d:%s", int(s.Start.Sub(w.base).Hours()), int(s.End.Sub(w.base).Hours()), strings.Join(who, "+")))
	}
	return strings.Join(parts, " ")
}

var noticeLink = regexp.MustCompile(`(?m)^(Accept|Decline): (\S+)$`)

// TestShiftSwapByEmailLink is a swap end to end: alice asks bob to take
// two hours of her shift, the notice reaches bob by SMTP (after the
// server first refuses it for a while), bob follows its accept link, the
// shifts show him on call, alice is told, and the links are spent.
func TestShiftSwapByEmailLink(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newSwapWorld(t, d)

		// Refused before anything is stored or sent.
		if e := w.wantGQLError(w.carol.Token, requestSwap, map[string]any{"schedule": w.scheduleID, "to": w.bob.ID, "start": w.at(2), "end": w.at(4)}, "FORBIDDEN"); e.Path[0] != "requestShiftSwap" {
			t.Fatalf("refusal at %v", e.Path)
		}
		for _, tc := range []struct {
			to           string
			start, end   int
			field, cause string
		}{
			{w.carol.ID, 2, 4, "toUserId", "not a participant"},
			{w.alice.ID, 2, 4, "toUserId", "someone other than you"},
			{w.bob.ID, 4, 2, "end", "after start"},
			{w.bob.ID, 20, 30, "start", "not on call for the whole span"},
		} {
			r := w.request(w.alice, tc.to, tc.start, tc.end)
			if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "BAD_USER_INPUT" || r.Errors[0].Extensions.Field != tc.field || !strings.Contains(r.Errors[0].Message, tc.cause) {
				t.Fatalf("request to %s for %d-%d: %s, want BAD_USER_INPUT on %s saying %q", tc.to, tc.start, tc.end, r.Raw, tc.field, tc.cause)
			}
		}
		w.runJobs()
		w.noMail()

		var asked struct {
			Swap struct{ ID, Status string } `json:"requestShiftSwap"`
		}
		w.mustGQL(w.alice.Token, requestSwap, map[string]any{"schedule": w.scheduleID, "to": w.bob.ID, "start": w.at(2), "end": w.at(4)}, &asked)
		id := asked.Swap.ID
		var pending struct {
			Swaps []struct {
				ID       string
				FromUser struct{ ID string }
			} `json:"pendingShiftSwaps"`
		}
		w.mustGQL(w.bob.Token, `{ pendingShiftSwaps { id fromUser { id } } }`, nil, &pending)
		if len(pending.Swaps) != 1 || pending.Swaps[0].ID != id || pending.Swaps[0].FromUser.ID != w.alice.ID {
			t.Fatalf("bob's pending swaps: %+v", pending.Swaps)
		}

		// The mail server turns the first attempt away; the notice is
		// tried again a minute later.
		w.refuse.Store(1)
		w.runJobs()
		w.noMail()
		w.clock.Advance(time.Minute)
		w.runJobs()
		subject, text := w.nextNotice(w.bob)
		if !strings.Contains(subject, "asks you to take their shift on Primary") {
			t.Fatalf("notice subject %q", subject)
		}
		links := map[string]string{}
		for _, m := range noticeLink.FindAllStringSubmatch(text, -1) {
			links[m[1]] = m[2]
		}
		if links["Accept"] == "" || links["Decline"] == "" || links["Accept"] == links["Decline"] {
			t.Fatalf("notice without accept and decline links:\n%s", text)
		}

		// Opening the page changes nothing; its button accepts.
		if status, page := w.follow(http.MethodGet, links["Accept"]); status != http.StatusOK || !strings.Contains(page, "<button") {
			t.Fatalf("accept page: %d %s", status, page)
		}
		if got := w.swapStatus(id); got != "PENDING" {
			t.Fatalf("opening the link answered the swap: %s", got)
		}
		if status, page := w.follow(http.MethodPost, links["Accept"]); status != http.StatusOK || !strings.Contains(page, "Accepted") {
			t.Fatalf("accept: %d %s", status, page)
		}
		if got := w.swapStatus(id); !strings.HasPrefix(got, "ACCEPTED override ") {
			t.Fatalf("after the accept the swap is %s", got)
		}
		if got, want := w.shifts(), "0-2:alice 2-4:bob 4-24:alice"; got != want {
			t.Fatalf("shifts %s, want %s", got, want)
		}
		var overrides struct {
			Schedule struct {
				Overrides []struct {
					User        struct{ ID string }
					ReplaceUser struct{ ID string }
					Alongside   bool
				}
			}
		}
		w.mustGQL(w.alice.Token, `query($id: ID!) { schedule(id: $id) { overrides { user { id } replaceUser { id } alongside } } }`, map[string]any{"id": w.scheduleID}, &overrides)
		if o := overrides.Schedule.Overrides; len(o) != 1 || o[0].User.ID != w.bob.ID || o[0].ReplaceUser.ID != w.alice.ID || o[0].Alongside {
			t.Fatalf("overrides %+v", o)
		}
		var log struct {
			Log struct {
				Nodes []struct {
					Action string
					Actor  *struct{ ID string }
				}
			} `json:"auditLog"`
		}
		w.mustGQL(w.admin.Token, `{ auditLog(first: 3) { nodes { action actor { id } } } }`, nil, &log)
		if n := log.Log.Nodes; len(n) < 2 || n[0].Action != "SWAP_ACCEPTED" || n[0].Actor == nil || n[0].Actor.ID != w.bob.ID {
			t.Fatalf("the accept by link is not audited as bob's: %+v", n)
		}

		w.runJobs()
		subject, _ = w.nextNotice(w.alice)
		if !strings.Contains(subject, "took your shift on Primary") {
			t.Fatalf("answer notice subject %q", subject)
		}

		// Spent: neither link does anything more.
		for _, l := range []string{links["Accept"], links["Decline"]} {
			if status, page := w.follow(http.MethodPost, l); status != http.StatusGone || !strings.Contains(page, "already accepted") {
				t.Fatalf("a spent link answered %d %s", status, page)
			}
		}
		if status, _ := w.follow(http.MethodPost, swapPublicURL+"/swaps/"+url.PathEscape("not-a-token")+"/accept"); status != http.StatusNotFound {
			t.Fatalf("an unknown token answered %d", status)
		}
		w.runJobs()
		w.noMail()
	})
}

// TestShiftSwapDeclineAndExpiryOverTheAPI declines one swap over the API
// (the requester is told) and lets another expire, which then cannot be
// accepted by API or by link.
func TestShiftSwapDeclineAndExpiryOverTheAPI(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newSwapWorld(t, d)
		var first, second struct {
			Swap struct{ ID string } `json:"requestShiftSwap"`
		}
		w.mustGQL(w.alice.Token, requestSwap, map[string]any{"schedule": w.scheduleID, "to": w.bob.ID, "start": w.at(2), "end": w.at(4)}, &first)
		w.runJobs()
		w.nextNotice(w.bob)
		w.mustGQL(w.alice.Token, requestSwap, map[string]any{"schedule": w.scheduleID, "to": w.bob.ID, "start": w.at(6), "end": w.at(8)}, &second)
		w.runJobs()
		_, text := w.nextNotice(w.bob)
		var acceptSecond string
		for _, m := range noticeLink.FindAllStringSubmatch(text, -1) {
			if m[1] == "Accept" {
				acceptSecond = m[2]
			}
		}

		decline := `mutation($id: ID!) { declineShiftSwap(id: $id) { status } }`
		w.wantGQLError(w.alice.Token, decline, map[string]any{"id": first.Swap.ID}, "FORBIDDEN")
		w.mustGQL(w.bob.Token, decline, map[string]any{"id": first.Swap.ID}, nil)
		w.runJobs()
		if subject, _ := w.nextNotice(w.alice); !strings.Contains(subject, "declined your shift swap") {
			t.Fatalf("decline notice subject %q", subject)
		}

		w.clock.Advance(6 * time.Hour)
		if got := w.swapStatus(second.Swap.ID); got != "EXPIRED" {
			t.Fatalf("at its start the swap is %s", got)
		}
		e := w.wantGQLError(w.bob.Token, `mutation($id: ID!) { acceptShiftSwap(id: $id) { status } }`, map[string]any{"id": second.Swap.ID}, "BAD_USER_INPUT")
		if e.Extensions.Field != "id" || !strings.Contains(e.Message, "expired") {
			t.Fatalf("accepting an expired swap: %+v", e)
		}
		if status, page := w.follow(http.MethodPost, acceptSecond); status != http.StatusGone || !strings.Contains(page, "expired") {
			t.Fatalf("the link of an expired swap answered %d %s", status, page)
		}
		if got, want := w.shifts(), "0-24:alice"; got != want {
			t.Fatalf("shifts %s, want %s", got, want)
		}
	})
}

// TestParticipantPutsThemselvesOnCall: bob, a RESPONDER in the rotation,
// adds himself alongside alice; carol, outside it, may not; and bob may
// not replace anyone.
func TestParticipantPutsThemselvesOnCall(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		w := newSwapWorld(t, d)
		create := `mutation($input: CreateOverrideInput!) { createOverride(input: $input) { id alongside } }`
		input := func(user string, alongside bool, replace any) map[string]any {
			return map[string]any{"input": map[string]any{"scheduleId": w.scheduleID, "userId": user, "start": w.at(2), "end": w.at(4),
				"alongside": alongside, "replaceUserId": replace}}
		}
		w.wantGQLError(w.carol.Token, create, input(w.carol.ID, true, nil), "FORBIDDEN")
		w.wantGQLError(w.bob.Token, create, input(w.alice.ID, true, nil), "FORBIDDEN")
		if e := w.wantGQLError(w.bob.Token, create, input(w.bob.ID, false, nil), "BAD_USER_INPUT"); e.Extensions.Field != "alongside" {
			t.Fatalf("replacing everyone: %+v", e)
		}
		if e := w.wantGQLError(w.bob.Token, create, input(w.bob.ID, true, w.alice.ID), "BAD_USER_INPUT"); e.Extensions.Field != "alongside" {
			t.Fatalf("replacing alice: %+v", e)
		}
		if got := w.shifts(); got != "0-24:alice" {
			t.Fatalf("refused overrides changed the shifts: %s", got)
		}
		var own struct {
			Override struct{ ID string } `json:"createOverride"`
		}
		w.mustGQL(w.bob.Token, create, input(w.bob.ID, true, nil), &own)
		if got, want := w.shifts(), "0-2:alice 2-4:alice+bob 4-24:alice"; got != want {
			t.Fatalf("shifts %s, want %s", got, want)
		}
		// Admins still create any override.
		w.mustGQL(w.admin.Token, create, input(w.carol.ID, false, w.alice.ID), nil)
		if got, want := w.shifts(), "0-2:alice 2-4:bob+carol 4-24:alice"; got != want {
			t.Fatalf("shifts %s, want %s", got, want)
		}
		// Taking it back is for whoever configures the schedule.
		w.wantGQLError(w.bob.Token, `mutation($id: ID!) { deleteOverride(id: $id) }`, map[string]any{"id": own.Override.ID}, "FORBIDDEN")
	})
}

// startRefusingMailServer is startMailServer whose RCPT answers 451
// while refuse is above zero, counting it down.
func startRefusingMailServer(t *testing.T) (*mailServer, *atomic.Int32) {
	m := &mailServer{got: make(chan receivedMail, 8)}
	refuse := new(atomic.Int32)
	srv := smtp.NewServer(smtpBackendFunc(func() smtp.Session { return &refusingSession{mailSession: mailSession{m: m}, refuse: refuse} }))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	m.host, m.port = addr.IP.String(), addr.Port
	return m, refuse
}

type refusingSession struct {
	mailSession
	refuse *atomic.Int32
}

func (s *refusingSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	if s.refuse.Add(-1) >= 0 {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	return s.mailSession.Rcpt(to, opts)
}
