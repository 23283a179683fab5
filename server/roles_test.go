package server_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

// stateCounts adds open alerts to counts, so that an acknowledgement or
// close shows too.
type stateCounts struct {
	counts
	Open int
}

func (h *harness) stateCounts() stateCounts {
	h.t.Helper()
	var data struct {
		Open struct{ TotalCount int } `json:"alerts"`
	}
	h.mustGQL(h.admin.Token, `{ alerts(filter: {status: [OPEN]}) { totalCount } }`, nil, &data)
	return stateCounts{counts: h.counts(), Open: data.Open.TotalCount}
}

func TestUpdateUserRoles(t *testing.T) {
	t.Parallel()
	type who int
	const (
		self who = iota
		other
	)
	cases := []struct {
		name     string
		caller   string // role name
		target   who
		input    map[string]any
		wantCode string // "" for success
	}{
		{"viewer renames self", "VIEWER", self, map[string]any{"name": "New Name"}, ""},
		{"viewer changes own email", "VIEWER", self, map[string]any{"email": "renamed-viewer@example.com"}, ""},
		{"viewer changes own role", "VIEWER", self, map[string]any{"role": "ADMIN"}, "FORBIDDEN"},
		{"viewer restates own role", "VIEWER", self, map[string]any{"role": "VIEWER"}, "FORBIDDEN"},
		{"responder promotes self", "RESPONDER", self, map[string]any{"role": "ADMIN"}, "FORBIDDEN"},
		{"viewer renames someone else", "VIEWER", other, map[string]any{"name": "Hijacked"}, "FORBIDDEN"},
		{"responder renames someone else", "RESPONDER", other, map[string]any{"name": "Hijacked"}, "FORBIDDEN"},
		{"anonymous renames someone", "anonymous", other, map[string]any{"name": "Hijacked"}, "UNAUTHENTICATED"},
		{"admin changes another's role", "ADMIN", other, map[string]any{"role": "RESPONDER"}, ""},
		{"viewer sets a too short password", "VIEWER", self, map[string]any{"password": "short"}, "BAD_USER_INPUT"},
	}
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h0 := newHarness(t, d, server.Config{})
		// Callers and the other user are shared: every case states what it
		// expects relative to the state just before it.
		callers := map[string]session{
			"anonymous": {},
			"VIEWER":    h0.newUser(db.RoleViewer),
			"RESPONDER": h0.newUser(db.RoleResponder),
			"ADMIN":     h0.admin,
		}
		someoneElse := h0.createUser(db.RoleViewer)
		type userState struct{ Name, Email, Role string }
		load := func(h *harness, id string) userState {
			var data struct {
				User userState `json:"user"`
			}
			h.mustGQL(h.admin.Token, `query($id: ID!) { user(id: $id) { name email role } }`, map[string]any{"id": id}, &data)
			return data.User
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				h := h0.with(t)
				caller := callers[tc.caller]
				target := someoneElse
				if tc.target == self {
					target = caller
				}
				input := map[string]any{}
				for k, v := range tc.input {
					input[k] = v
				}
				if email, ok := input["email"].(string); ok {
					input["email"] = h.unique("x") + email
				}
				const q = `mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id name email role } }`
				vars := map[string]any{"id": target.ID, "input": input}
				before := load(h, target.ID)
				if tc.wantCode != "" {
					h.wantGQLError(caller.Token, q, vars, tc.wantCode)
					if after := load(h, target.ID); after != before {
						t.Errorf("refused update changed the user: %+v → %+v", before, after)
					}
					return
				}
				var data struct {
					User map[string]string `json:"updateUser"`
				}
				h.mustGQL(caller.Token, q, vars, &data)
				for k, v := range input {
					if data.User[k] != v {
						t.Errorf("%s = %q, want %q", k, data.User[k], v)
					}
				}
				after := load(h, target.ID)
				if after.Name != data.User["name"] || after.Email != data.User["email"] || after.Role != data.User["role"] {
					t.Errorf("stored %+v, reply %v", after, data.User)
				}
			})
		}

		t.Run("viewer changes own password and signs in with it", func(t *testing.T) {
			h := h0.with(t)
			v := h.newUser(db.RoleViewer)
			h.mustGQL(v.Token, `mutation($id: ID!) { updateUser(id: $id, input: {password: "a brand new password"}) { id } }`,
				map[string]any{"id": v.ID}, nil)
			h.login(v.Email, "a brand new password")
			e := h.wantGQLError("", `mutation($e: String!) { login(email: $e, password: "`+testPassword+`") { token } }`,
				map[string]any{"e": v.Email}, "UNAUTHENTICATED")
			if e.Message != "invalid email or password" {
				t.Errorf("message %q", e.Message)
			}
		})
	})
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h0 := newHarness(t, d, server.Config{})
		ctx := context.Background()

		t.Run("bearer tokens", func(t *testing.T) {
			h := h0.with(t)
			otherKey := make([]byte, 32)
			rand.Read(otherKey)
			viewer := h.newUser(db.RoleViewer)
			u, err := h.auth.User(ctx, mustAtoi(t, viewer.ID))
			if err != nil {
				t.Fatal(err)
			}
			issue := func(key []byte, now func() time.Time) string {
				tokens, err := auth.NewTokens(key, time.Hour, now)
				if err != nil {
					t.Fatal(err)
				}
				tok, _, err := tokens.Issue(u)
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			storedKey, err := auth.SigningKey(ctx, d, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			deleted := h.newUser(db.RoleViewer)
			h.mustGQL(h.admin.Token, `mutation($id: ID!) { deleteUser(id: $id) }`, map[string]any{"id": deleted.ID}, nil)

			cases := []struct {
				name, header string
				wantHTTP     int
			}{
				{"valid", "Bearer " + viewer.Token, http.StatusOK},
				{"scheme is case-insensitive", "bearer " + viewer.Token, http.StatusOK},
				{"garbage", "Bearer not-a-jwt", http.StatusUnauthorized},
				{"empty bearer", "Bearer ", http.StatusUnauthorized},
				{"basic scheme", "Basic dXNlcjpwYXNz", http.StatusUnauthorized},
				{"tampered signature", "Bearer " + tamper(viewer.Token), http.StatusUnauthorized},
				{"signed with another key", "Bearer " + issue(otherKey, time.Now), http.StatusUnauthorized},
				{"expired", "Bearer " + issue(storedKey, func() time.Time { return time.Now().Add(-2 * time.Hour) }), http.StatusUnauthorized},
				{"user deleted", "Bearer " + deleted.Token, http.StatusUnauthorized},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					h := h0.with(t)
					req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", strings.NewReader(`{"query":"{ me { id } }"}`))
					if err != nil {
						t.Fatal(err)
					}
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Authorization", tc.header)
					r := h.doGQL(req)
					if r.HTTPStatus != tc.wantHTTP {
						t.Fatalf("HTTP %d, want %d: %s", r.HTTPStatus, tc.wantHTTP, r.Raw)
					}
					if tc.wantHTTP == http.StatusOK {
						if len(r.Errors) > 0 || !strings.Contains(string(r.Data), `"id":"`+viewer.ID+`"`) {
							t.Errorf("want me = %s: %s", viewer.ID, r.Raw)
						}
						return
					}
					if len(r.Errors) != 1 || r.Errors[0].Extensions.Code != "UNAUTHENTICATED" || !r.dataIsNull() {
						t.Errorf("want one UNAUTHENTICATED error and no data: %s", r.Raw)
					}
				})
			}
		})

		t.Run("login", func(t *testing.T) {
			h := h0.with(t)
			v := h.createUser(db.RoleViewer)
			const q = `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token expiresAt user { id role } } }`
			cases := []struct {
				name, email, password string
				ok                    bool
			}{
				{"correct", v.Email, v.Password, true},
				{"email in other case and spaces", "  " + strings.ToUpper(v.Email) + " ", v.Password, true},
				{"wrong password", v.Email, "wrong password!", false},
				{"empty password", v.Email, "", false},
				{"unknown email", "nobody@example.com", v.Password, false},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					h := h.with(t)
					vars := map[string]any{"e": tc.email, "p": tc.password}
					if !tc.ok {
						e := h.wantGQLError("", q, vars, "UNAUTHENTICATED")
						if e.Message != "invalid email or password" {
							t.Errorf("message %q, want %q", e.Message, "invalid email or password")
						}
						return
					}
					var data struct {
						Login struct {
							Token     string `json:"token"`
							ExpiresAt string `json:"expiresAt"`
							User      struct{ ID, Role string }
						} `json:"login"`
					}
					h.mustGQL("", q, vars, &data)
					if data.Login.Token == "" || data.Login.ExpiresAt == "" || data.Login.User.ID != v.ID || data.Login.User.Role != "VIEWER" {
						t.Errorf("login: %+v", data.Login)
					}
				})
			}
		})
	})
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("id %q: %v", s, err)
	}
	return n
}

// tamper changes one character inside a JWT's signature.
func tamper(token string) string {
	b := []byte(token)
	i := len(b) - 10
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
