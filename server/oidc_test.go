package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
	"github.com/klaxonhq/klaxon/sso"
)

// appHost is where the browser lands after single sign-on; nothing
// serves it, the browser stops there and the test reads the URL.
const appHost = "app.example"

// ssoRig is a Klaxon server with single sign-on through a real OpenID
// provider on loopback, and a clock the ID tokens are checked against.
type ssoRig struct {
	*harness
	idp   *identityProvider
	clock *testClock
}

func newSSORig(t *testing.T, d *db.DB) *ssoRig {
	t.Helper()
	idp := newIdentityProvider(t)
	clock := &testClock{now: time.Now()}
	teams, err := sso.ParseTeams("idp-sre=SRE:MANAGER,idp-dev=Payments,idp-ops=SRE:OBSERVER")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := newHarnessConfigured(t, d, io.Discard, func(authSvc *auth.Service, baseURL string) server.Config {
		svc, err := sso.New(sso.Config{
			Issuer: idp.issuer(), ClientID: idp.m.ClientID, ClientSecret: idp.m.ClientSecret,
			RedirectURL: server.OIDCRedirectURL(baseURL),
			Scopes:      []string{"openid", "email", "profile", "groups"},
			RoleClaim:   "roles", Roles: map[string]db.Role{"klaxon-admins": db.RoleAdmin, "oncall": db.RoleResponder},
			Teams: teams,
		}, d, authSvc, clock.Now, nil, log)
		if err != nil {
			t.Fatalf("single sign-on: %v", err)
		}
		return server.Config{PublicURL: baseURL, SingleSignOn: svc, SingleSignOnAppURL: "https://" + appHost + "/console"}
	})
	return &ssoRig{harness: h, idp: idp, clock: clock}
}

// browser is a person's browser: it keeps cookies and follows redirects
// until it reaches the app, or, when told to, the callback.
type browser struct {
	t              *testing.T
	client         *http.Client
	stopAtCallback bool
}

func (r *ssoRig) browser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t}
	b.client = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == appHost || (b.stopAtCallback && req.URL.Path == "/auth/oidc/callback") {
			return http.ErrUseLastResponse
		}
		if len(via) >= 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// get follows rawURL's redirects and returns the last Location.
func (b *browser) get(rawURL string) *url.URL {
	b.t.Helper()
	resp, err := b.client.Get(rawURL)
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		b.t.Fatalf("GET %s ended at HTTP %d, not a redirect: %s", rawURL, resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		b.t.Fatalf("GET %s: %v", rawURL, err)
	}
	return loc
}

// startSignIn goes to the login route and through the provider, and
// stops where the provider sends the browser back: the callback URL.
func (r *ssoRig) startSignIn(b *browser) *url.URL {
	b.t.Helper()
	b.stopAtCallback = true
	defer func() { b.stopAtCallback = false }()
	cb := b.get(r.srv.URL + "/auth/oidc/login")
	if cb.Path != "/auth/oidc/callback" || cb.Query().Get("code") == "" || cb.Query().Get("state") == "" {
		b.t.Fatalf("the provider sent the browser to %s, not the callback with a code and state", cb)
	}
	return cb
}

// landing is what the app reads from its URL after single sign-on.
func landing(t *testing.T, loc *url.URL) url.Values {
	t.Helper()
	if loc.Host != appHost || loc.Path != "/console/" {
		t.Fatalf("the browser landed at %s, not the app", loc)
	}
	if loc.RawQuery != "" {
		t.Fatalf("the app's URL carries a query %q, which servers see; everything belongs in the fragment", loc.RawQuery)
	}
	route, query, _ := strings.Cut(loc.Fragment, "?")
	if route != "/login" {
		t.Fatalf("the app's route is %q, want /login", route)
	}
	v, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signIn is a whole sign-in: the browser from the login route to the
// app, and the app's exchange of the login code over GraphQL.
func (r *ssoRig) signIn(t *testing.T, u idpUser) (token string, me ssoMe) {
	t.Helper()
	r.idp.signIn(u)
	v := landing(t, r.browser(t).get(r.srv.URL+"/auth/oidc/login"))
	if v.Get("error") != "" || v.Get("code") == "" {
		t.Fatalf("sign-in of %s: the app got %v", u.Email, v)
	}
	return r.exchange(t, v.Get("code"))
}

type ssoMe struct {
	ID    string  `json:"id"`
	Email string  `json:"email"`
	Name  string  `json:"name"`
	Role  db.Role `json:"role"`
}

const exchangeMutation = `mutation($code: String!) { exchangeLoginCode(code: $code) { token expiresAt user { id email name role } } }`

func (r *ssoRig) exchange(t *testing.T, code string) (string, ssoMe) {
	t.Helper()
	var data struct {
		ExchangeLoginCode struct {
			Token string `json:"token"`
			User  ssoMe  `json:"user"`
		} `json:"exchangeLoginCode"`
	}
	r.with(t).mustGQL("", exchangeMutation, map[string]any{"code": code}, &data)
	var me struct {
		Me ssoMe `json:"me"`
	}
	r.with(t).mustGQL(data.ExchangeLoginCode.Token, `{ me { id email name role } }`, nil, &me)
	if me.Me != data.ExchangeLoginCode.User {
		t.Fatalf("the session is %+v's, the payload names %+v", me.Me, data.ExchangeLoginCode.User)
	}
	return data.ExchangeLoginCode.Token, me.Me
}

// failedSignIn drives a sign-in that must fail and returns the app's
// error code.
func (r *ssoRig) failedSignIn(t *testing.T, b *browser, rawURL string) string {
	t.Helper()
	v := landing(t, b.get(rawURL))
	if v.Get("code") != "" || v.Get("error") == "" {
		t.Fatalf("the app got %v, want an error and no code", v)
	}
	return v.Get("error")
}

// teamsOf returns the user's teams and roles there, by team name.
func (r *ssoRig) teamsOf(t *testing.T, userID string) map[string]db.TeamRole {
	t.Helper()
	var rows []struct {
		Name string      `bun:"name"`
		Role db.TeamRole `bun:"role"`
	}
	err := r.db.NewSelect().TableExpr("group_members AS m").Join("JOIN user_groups AS g ON g.id = m.group_id").
		ColumnExpr("g.name, m.role").Where("m.user_id = ?", userID).Scan(context.Background(), &rows)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]db.TeamRole{}
	for _, row := range rows {
		out[row.Name] = row.Role
	}
	return out
}

type auditRow struct {
	Action    string `json:"action"`
	ActorName string `json:"actorName"`
	Changes   string `json:"changes"`
}

func (r *ssoRig) audit(t *testing.T, entityType, id string) []auditRow {
	t.Helper()
	var data struct {
		AuditLog struct {
			Nodes []auditRow `json:"nodes"`
		} `json:"auditLog"`
	}
	r.with(t).mustGQL(r.admin.Token, `query($type: AuditEntityType, $id: ID) { auditLog(entityType: $type, entityId: $id) { nodes { action actorName changes } } }`,
		map[string]any{"type": entityType, "id": id}, &data)
	return data.AuditLog.Nodes
}

func actions(rows []auditRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Action)
	}
	slices.Reverse(out)
	return out
}

func (r *ssoRig) userCount(t *testing.T) int64 {
	t.Helper()
	n, err := r.db.NewSelect().Model((*db.User)(nil)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func verified(b bool) *bool { return &b }

// TestOIDCSignInEndToEnd: a browser goes from GET /auth/oidc/login
// through a real provider (PKCE S256, state, nonce) to the app, which
// exchanges its login code over GraphQL: the person is created on the
// way (role from the claims, their team created), only a code ever
// appears in a URL, the audit log shows it all, and neither the
// provider's code, nor the callback, nor the login code works twice.
func TestOIDCSignInEndToEnd(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		r := newSSORig(t, d)
		alice := idpUser{Subject: "alice-1", Email: "Alice@Example.com", Name: "Alice Liddell", EmailVerified: verified(true),
			Groups: []string{"idp-sre", "unmapped"}, Roles: []string{"oncall"}}
		r.idp.signIn(alice)
		b := r.browser(t)
		login, err := b.client.Get(r.srv.URL + "/auth/oidc/login")
		if err != nil {
			t.Fatal(err)
		}
		login.Body.Close()
		authURL := login.Request.URL
		if login.StatusCode != http.StatusFound {
			t.Fatalf("login route: HTTP %d", login.StatusCode)
		}
		// The first hop went to the provider with the whole request.
		first, _ := url.Parse(r.idp.m.AuthorizationEndpoint())
		var toProvider *url.URL
		for req := login.Request; req != nil; req = req.Response.Request {
			if req.URL.Host == first.Host {
				toProvider = req.URL
			}
			if req.Response == nil {
				break
			}
		}
		if toProvider == nil {
			t.Fatalf("the browser never reached the provider (ended at %s)", authURL)
		}
		q := toProvider.Query()
		for _, p := range []string{"state", "nonce", "code_challenge"} {
			if len(q.Get(p)) < 43 {
				t.Errorf("the authorization request's %s is %q, want 32 random bytes or more", p, q.Get(p))
			}
		}
		if q.Get("code_challenge_method") != "S256" || q.Get("response_type") != "code" || q.Get("redirect_uri") != r.srv.URL+"/auth/oidc/callback" {
			t.Errorf("authorization request %s", toProvider)
		}
		loc, err := login.Location()
		if err != nil {
			t.Fatal(err)
		}
		v := landing(t, loc)
		code := v.Get("code")
		if code == "" || v.Get("token") != "" || strings.Count(loc.String(), ".") > 1 {
			t.Fatalf("the app got %s; want a login code and nothing like a token", loc)
		}
		token, me := r.exchange(t, code)
		if me.Email != "alice@example.com" || me.Name != "Alice Liddell" || me.Role != db.RoleResponder || token == "" {
			t.Fatalf("signed in as %+v", me)
		}
		if got := r.teamsOf(t, me.ID); len(got) != 1 || got["SRE"] != db.TeamManager {
			t.Fatalf("teams %v, want SRE as MANAGER (created at sign-in)", got)
		}

		// The login code worked once.
		if got := r.wantGQLError("", exchangeMutation, map[string]any{"code": code}, "UNAUTHENTICATED"); !strings.Contains(got.Message, "login code") {
			t.Errorf("second exchange: %s", got.Message)
		}
		// A just-in-time user has no password that signs in.
		if r := r.loginFrom("", me.Email, ""); errorCode(r) != "UNAUTHENTICATED" {
			t.Errorf("password sign-in of an SSO user: %s", r.Raw)
		}

		// The audit log shows the creation and the sign-in, made by sso,
		// and the team's creation and the new member.
		rows := r.audit(t, "USER", me.ID)
		if got := actions(rows); !slices.Equal(got, []string{"CREATED", "SIGNED_IN"}) {
			t.Fatalf("user's audit %v", got)
		}
		if rows[0].ActorName != "sso" || !strings.Contains(rows[0].Changes, `"method":{"to":"OIDC"}`) {
			t.Errorf("sign-in entry %+v", rows[0])
		}
		var sre struct {
			Groups []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"groups"`
		}
		r.mustGQL(token, `{ groups { id name } }`, nil, &sre)
		if len(sre.Groups) != 1 || sre.Groups[0].Name != "SRE" {
			t.Fatalf("groups %+v", sre.Groups)
		}
		if got := actions(r.audit(t, "GROUP", sre.Groups[0].ID)); !slices.Equal(got, []string{"CREATED", "MEMBER_ADDED"}) {
			t.Errorf("team's audit %v", got)
		}

		// The same person again: no second user, a second sign-in entry.
		_, again := r.signIn(t, alice)
		if again.ID != me.ID || r.userCount(t) != 2 {
			t.Fatalf("second sign-in made %+v; %d users", again, r.userCount(t))
		}

		// The callback, replayed with its state and the provider's code:
		// the sign-in it completed is gone.
		r.idp.signIn(alice)
		b = r.browser(t)
		cb := r.startSignIn(b)
		landing(t, b.get(cb.String()))
		if got := r.failedSignIn(t, b, cb.String()); got != sso.CodeStateMismatch {
			t.Errorf("replayed callback: %s, want %s", got, sso.CodeStateMismatch)
		}
		// The provider's code, used already, brought back under a fresh
		// sign-in of the same browser: the provider refuses it (and the
		// new sign-in's PKCE verifier would not match either).
		_, calls := r.idp.counts()
		fresh := r.startSignIn(b)
		replay := *fresh
		rq := replay.Query()
		rq.Set("code", cb.Query().Get("code"))
		replay.RawQuery = rq.Encode()
		if got := r.failedSignIn(t, b, replay.String()); got != sso.CodeExchangeFailed {
			t.Errorf("replayed provider code: %s, want %s", got, sso.CodeExchangeFailed)
		}
		if _, after := r.idp.counts(); after != calls+1 {
			t.Errorf("the replayed code reached the token endpoint %d times, want once", after-calls)
		}
	})
}

// TestOIDCCallbackNeedsTheBrowserThatBegan: a callback URL taken to
// another browser (no state cookie), or with another state, signs no
// one in; the provider's denial reaches the app as a code.
func TestOIDCCallbackNeedsTheBrowserThatBegan(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		r := newSSORig(t, d)
		r.idp.signIn(idpUser{Subject: "mallory", Email: "mallory@example.com"})
		cb := r.startSignIn(r.browser(t))
		if got := r.failedSignIn(t, r.browser(t), cb.String()); got != sso.CodeStateMismatch {
			t.Errorf("callback in another browser: %s", got)
		}
		b := r.browser(t)
		cb = r.startSignIn(b)
		forged := *cb
		fq := forged.Query()
		fq.Set("state", "x"+fq.Get("state"))
		forged.RawQuery = fq.Encode()
		if got := r.failedSignIn(t, b, forged.String()); got != sso.CodeStateMismatch {
			t.Errorf("callback with another state: %s", got)
		}
		b = r.browser(t)
		cb = r.startSignIn(b)
		denied := *cb
		denied.RawQuery = url.Values{"state": {cb.Query().Get("state")}, "error": {"access_denied"}}.Encode()
		if got := r.failedSignIn(t, b, denied.String()); got != sso.CodeProviderDenied {
			t.Errorf("provider's denial: %s", got)
		}
		if n := r.userCount(t); n != 1 {
			t.Errorf("%d users; only the harness's admin should exist", n)
		}
	})
}

// TestOIDCSyncsRoleAndTeams: each sign-in sets the role from the role
// claim and the mapped teams from the groups claim: a team added, a
// role in it changed, a team left, and a team the mapping does not name
// left alone.
func TestOIDCSyncsRoleAndTeams(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		r := newSSORig(t, d)
		bob := idpUser{Subject: "bob", Email: "bob@example.com", Groups: []string{"idp-sre", "idp-dev"}, Roles: []string{"klaxon-admins", "oncall"}}
		_, me := r.signIn(t, bob)
		if me.Role != db.RoleAdmin {
			t.Fatalf("role %s, want the highest mapped, ADMIN", me.Role)
		}
		if got := r.teamsOf(t, me.ID); len(got) != 2 || got["SRE"] != db.TeamManager || got["Payments"] != db.TeamResponder {
			t.Fatalf("first sign-in: teams %v", got)
		}
		// An admin adds bob to a team the mapping does not name.
		var created struct {
			CreateGroup struct {
				ID string `json:"id"`
			} `json:"createGroup"`
		}
		r.mustGQL(r.admin.Token, `mutation($m: [ID!]) { createGroup(input: {name: "Database", memberIds: $m}) { id } }`, map[string]any{"m": []string{me.ID}}, &created)

		bob.Groups, bob.Roles = []string{"idp-ops", "idp-dev"}, []string{"oncall"}
		_, me = r.signIn(t, bob)
		if me.Role != db.RoleResponder {
			t.Fatalf("role %s after the claim changed, want RESPONDER", me.Role)
		}
		if got := r.teamsOf(t, me.ID); len(got) != 3 || got["SRE"] != db.TeamObserver || got["Payments"] != db.TeamResponder || got["Database"] != db.TeamResponder {
			t.Fatalf("second sign-in: teams %v, want SRE as OBSERVER, Payments, and Database untouched", got)
		}

		bob.Groups, bob.Roles = nil, nil
		_, me = r.signIn(t, bob)
		if me.Role != db.RoleViewer {
			t.Fatalf("role %s with no mapped value, want the default VIEWER", me.Role)
		}
		if got := r.teamsOf(t, me.ID); len(got) != 1 || got["Database"] != db.TeamResponder {
			t.Fatalf("third sign-in: teams %v, want only Database", got)
		}
		var teams struct {
			Groups []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"groups"`
		}
		r.mustGQL(r.admin.Token, `{ groups { id name } }`, nil, &teams)
		ids := map[string]string{}
		for _, g := range teams.Groups {
			ids[g.Name] = g.ID
		}
		if got := actions(r.audit(t, "GROUP", ids["SRE"])); !slices.Equal(got, []string{"CREATED", "MEMBER_ADDED", "UPDATED", "MEMBER_REMOVED"}) {
			t.Errorf("SRE's audit %v", got)
		}
		if got := actions(r.audit(t, "USER", me.ID)); !slices.Equal(got, []string{"CREATED", "SIGNED_IN", "UPDATED", "SIGNED_IN", "UPDATED", "SIGNED_IN"}) {
			t.Errorf("bob's audit %v", got)
		}
	})
}

// TestOIDCRefusesBadTokens: tokens a real provider signed but that are
// not for this sign-in, not for this client, too old, or without a
// usable email sign no one in and create no one.
func TestOIDCRefusesBadTokens(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		r := newSSORig(t, d)
		other := "a-nonce-from-another-sign-in"
		for _, tc := range []struct {
			name    string
			user    idpUser
			advance time.Duration
			want    string
		}{
			{"wrong nonce", idpUser{Subject: "n", Email: "nonce@example.com", Nonce: &other}, 0, sso.CodeTokenInvalid},
			{"no nonce", idpUser{Subject: "n0", Email: "nonce0@example.com", Nonce: new(string)}, 0, sso.CodeTokenInvalid},
			{"wrong audience", idpUser{Subject: "a", Email: "aud@example.com", Audience: []string{"another-client"}}, 0, sso.CodeTokenInvalid},
			{"expired", idpUser{Subject: "e", Email: "expired@example.com"}, 2 * time.Minute, sso.CodeTokenExpired},
			{"unverified email", idpUser{Subject: "u", Email: "unverified@example.com", EmailVerified: verified(false)}, 0, sso.CodeEmailUnverified},
			{"no email", idpUser{Subject: "x"}, 0, sso.CodeEmailMissing},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r.idp.signIn(tc.user)
				b := r.browser(t)
				cb := r.startSignIn(b)
				// The provider's clock stays; ours moves on before the
				// browser comes back.
				r.clock.Advance(tc.advance)
				if got := r.failedSignIn(t, b, cb.String()); got != tc.want {
					t.Errorf("got %s, want %s", got, tc.want)
				}
				r.idp.m.FastForward(tc.advance)
				if n := r.userCount(t); n != 1 {
					t.Errorf("%d users; the refused sign-in created one", n)
				}
				if codes, _ := r.db.NewSelect().Model((*db.LoginCode)(nil)).Count(context.Background()); codes != 0 {
					t.Errorf("%d login codes issued", codes)
				}
			})
		}
		// The same provider, behaving, still signs people in.
		r.signIn(t, idpUser{Subject: "ok", Email: "ok@example.com"})
	})
}

// TestOIDCProviderKeyRotation: the provider's keys are fetched once and
// kept; a token naming a new key makes Klaxon fetch them again and is
// accepted; a token signed with a key the provider does not publish is
// refused even after that fetch.
func TestOIDCProviderKeyRotation(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		r := newSSORig(t, d)
		carol := idpUser{Subject: "carol", Email: "carol@example.com"}
		r.signIn(t, carol)
		r.signIn(t, carol)
		if fetches, _ := r.idp.counts(); fetches != 1 {
			t.Fatalf("keys fetched %d times for two sign-ins with one key, want once", fetches)
		}
		r.idp.rotate(r.idp.newKey())
		r.signIn(t, carol)
		if fetches, _ := r.idp.counts(); fetches != 2 {
			t.Fatalf("keys fetched %d times after the rotation, want twice", fetches)
		}
		r.idp.signWithUnpublished(r.idp.newKey())
		r.idp.signIn(carol)
		b := r.browser(t)
		if got := r.failedSignIn(t, b, r.srv.URL+"/auth/oidc/login"); got != sso.CodeTokenInvalid {
			t.Errorf("token signed with an unpublished key: %s", got)
		}
		if fetches, _ := r.idp.counts(); fetches != 3 {
			t.Errorf("keys fetched %d times; an unknown key should make one more fetch", fetches)
		}
	})
}

// TestPasswordLoginOff: with password sign-in off, login is refused with
// PASSWORD_LOGIN_DISABLED, for a right password and a wrong one alike,
// except for the break-glass admin's right password; single sign-on
// works as before.
func TestPasswordLoginOff(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		r := newSSORig(t, d)
		responder := r.createUser(db.RoleResponder)
		otherAdmin := r.createUser(db.RoleAdmin)
		r.auth.SetPasswordLogin(false, r.admin.Email)

		if got := r.loginFrom("", r.admin.Email, r.admin.Password); errorCode(got) != "" {
			t.Fatalf("break-glass admin refused: %s", got.Raw)
		}
		for _, tc := range []struct{ name, email, password string }{
			{"responder", responder.Email, responder.Password},
			{"another admin", otherAdmin.Email, otherAdmin.Password},
			{"break-glass admin, wrong password", r.admin.Email, "not the password"},
			{"no such user", "nobody@example.com", "whatever it is"},
		} {
			got := r.loginFrom("", tc.email, tc.password)
			if errorCode(got) != "PASSWORD_LOGIN_DISABLED" || !got.dataIsNull() {
				t.Errorf("%s: %s", tc.name, got.Raw)
			}
		}
		_, me := r.signIn(t, idpUser{Subject: "dave", Email: "dave@example.com"})
		if me.Email != "dave@example.com" {
			t.Fatalf("signed in as %+v", me)
		}
	})
}

// loginCode is a login code for u, issued as single sign-on issues one.
func (h *harness) loginCode(u session) string {
	h.t.Helper()
	signIn, err := h.auth.SignInExternal(context.Background(), auth.ExternalIdentity{Method: "OIDC", Email: u.Email, Role: u.Role})
	if err != nil {
		h.t.Fatalf("login code for %s: %v", u.Email, err)
	}
	return signIn.Code
}

// The login route is anonymous and stores each sign-in it begins, so an
// address may hold only so many unfinished ones; they count until their
// callback or LoginTTL, after which it may begin again.
func TestOIDCLoginRouteBoundsUnfinishedSignIns(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		r := newSSORig(t, d)
		noFollow := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
		begin := func() *url.URL {
			t.Helper()
			resp, err := noFollow.Get(r.srv.URL + "/auth/oidc/login")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, err := resp.Location()
			if resp.StatusCode != http.StatusFound || err != nil {
				t.Fatalf("login route answered %d, %v", resp.StatusCode, err)
			}
			return loc
		}
		stored := func() int {
			t.Helper()
			n, err := d.NewSelect().Model((*db.SSOLogin)(nil)).Count(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
		for i := range sso.MaxPendingPerAddress {
			if loc := begin(); loc.Host == appHost {
				t.Fatalf("sign-in %d refused: %s", i+1, loc)
			}
		}
		if got := landing(t, begin()).Get("error"); got != sso.CodeTooManySignIns {
			t.Fatalf("one more sign-in from the same address: error %q", got)
		}
		if n := stored(); n != sso.MaxPendingPerAddress {
			t.Fatalf("%d sign-ins stored, want %d", n, sso.MaxPendingPerAddress)
		}
		r.clock.Advance(sso.LoginTTL)
		if loc := begin(); loc.Host == appHost {
			t.Fatalf("a sign-in after the others expired was refused: %s", loc)
		}
		if n := stored(); n != 1 {
			t.Fatalf("%d sign-ins stored after the expired ones were swept, want 1", n)
		}
	})
}
