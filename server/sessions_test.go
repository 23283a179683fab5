package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/klaxonhq/klaxon/auth"
	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/db/dbtest"
	"github.com/klaxonhq/klaxon/server"
)

const loginMutation = `mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }`

// loginFrom signs in with X-Forwarded-For set to xff ("" for none).
func (h *harness) loginFrom(xff, email, password string) *gqlResponse {
	h.t.Helper()
	payload, _ := json.Marshal(map[string]any{"query": loginMutation, "variables": map[string]any{"email": email, "password": password}})
	req, err := http.NewRequest(http.MethodPost, h.srv.URL+"/graphql", strings.NewReader(string(payload)))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	return h.doGQL(req)
}

func errorCode(r *gqlResponse) string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].Extensions.Code
}

// hourLongBackoff makes the first wait an hour, so that no test depends on
// how fast the machine signs in.
var hourLongBackoff = auth.LoginLimits{Free: 5, Base: time.Hour, Max: time.Hour, Forget: 2 * time.Hour}

func TestFailedSignInsAreSlowedDown(t *testing.T) {
	t.Run("direct", func(t *testing.T) {
		h := newHarness(t, dbtest.SQLite(t), server.Config{})
		h.auth.SetLoginLimits(&hourLongBackoff)
		a, b := h.createUser(db.RoleViewer), h.createUser(db.RoleViewer)
		for i := range 6 {
			if code := errorCode(h.loginFrom("", a.Email, "wrong password")); code != "UNAUTHENTICATED" {
				t.Fatalf("failure %d: %s", i+1, code)
			}
		}
		r := h.loginFrom("", a.Email, a.Password)
		var reply struct {
			Errors []struct {
				Extensions struct{ RetryAfterSeconds int }
			}
		}
		if errorCode(r) != "RATE_LIMITED" || json.Unmarshal(r.Raw, &reply) != nil || reply.Errors[0].Extensions.RetryAfterSeconds < 3000 {
			t.Fatalf("right password during the back-off: %s", r.Raw)
		}
		// Without a trusted proxy, X-Forwarded-For is the client's own
		// word and changes nothing: the address is still held.
		if code := errorCode(h.loginFrom("198.51.100.1", b.Email, b.Password)); code != "RATE_LIMITED" {
			t.Fatalf("a forged X-Forwarded-For escaped the back-off: %s", code)
		}
	})
	t.Run("behind a trusted proxy", func(t *testing.T) {
		h := newHarness(t, dbtest.SQLite(t), server.Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
		h.auth.SetLoginLimits(&hourLongBackoff)
		a, b := h.createUser(db.RoleViewer), h.createUser(db.RoleViewer)
		for range 6 {
			h.loginFrom("forged, 203.0.113.5", a.Email, "wrong password")
		}
		if code := errorCode(h.loginFrom("203.0.113.5", b.Email, b.Password)); code != "RATE_LIMITED" {
			t.Fatalf("the guessing client, another account: %s", code)
		}
		if r := h.loginFrom("203.0.113.6", b.Email, b.Password); len(r.Errors) > 0 {
			t.Fatalf("another client behind the same proxy: %s", r.Raw)
		}
	})
}

func TestSignOutOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		u := h.newUser(db.RoleResponder)
		other := h.login(u.Email, u.Password)
		h.mustGQL(u.Token, `mutation { signOut }`, nil, nil)
		for _, token := range []string{u.Token, other} {
			if r := h.gql(token, `{ me { id } }`, nil); r.HTTPStatus != http.StatusUnauthorized || errorCode(r) != "UNAUTHENTICATED" {
				t.Fatalf("token after sign-out: HTTP %d %s", r.HTTPStatus, r.Raw)
			}
		}
		fresh := h.login(u.Email, u.Password)
		h.wantGQLError(fresh, `mutation($id: ID!) { signOutUser(userId: $id) }`, map[string]any{"id": h.admin.ID}, "FORBIDDEN")
		h.mustGQL(h.admin.Token, `mutation($id: ID!) { signOutUser(userId: $id) }`, map[string]any{"id": u.ID}, nil)
		if r := h.gql(fresh, `{ me { id } }`, nil); errorCode(r) != "UNAUTHENTICATED" {
			t.Fatalf("token after an admin signed the user out: %s", r.Raw)
		}
	})
}

func TestAPIKeysOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		owner := h.newUser(db.RoleResponder)
		var created struct {
			CreateAPIKey struct {
				APIKey struct {
					ID     string `json:"id"`
					Prefix string `json:"prefix"`
					Role   string `json:"role"`
				} `json:"apiKey"`
				Secret string `json:"secret"`
			} `json:"createApiKey"`
		}
		h.mustGQL(owner.Token, `mutation { createApiKey(input: {name: "dashboard", role: VIEWER}) { apiKey { id prefix role } secret } }`, nil, &created)
		key := created.CreateAPIKey
		if !strings.HasPrefix(key.Secret, key.APIKey.Prefix) || key.APIKey.Role != "VIEWER" {
			t.Fatalf("created %+v", key)
		}
		h.wantGQLError(owner.Token, `mutation { createApiKey(input: {name: "root", role: ADMIN}) { secret } }`, nil, "BAD_USER_INPUT")

		var me struct {
			Me struct {
				ID   string `json:"id"`
				Role string `json:"role"`
			} `json:"me"`
		}
		h.mustGQL(key.Secret, `{ me { id role } }`, nil, &me)
		if me.Me.ID != owner.ID || me.Me.Role != "VIEWER" {
			t.Fatalf("the key acts as %+v, want its owner as VIEWER", me.Me)
		}
		integ := h.createIntegration("DETECTIFY")
		h.wantGQLError(key.Secret, `mutation($id: ID!) { rotateIntegrationToken(id: $id) { id } }`, map[string]any{"id": integ.ID}, "FORBIDDEN")

		// Others see neither the key nor a way to revoke it.
		stranger := h.newUser(db.RoleResponder)
		var listed struct {
			APIKeys []struct {
				ID    string `json:"id"`
				Owner struct {
					ID string `json:"id"`
				} `json:"owner"`
			} `json:"apiKeys"`
		}
		h.mustGQL(stranger.Token, `{ apiKeys { id owner { id } } }`, nil, &listed)
		if len(listed.APIKeys) != 0 {
			t.Fatalf("a stranger lists %+v", listed.APIKeys)
		}
		h.wantGQLError(stranger.Token, `mutation($id: ID!) { revokeApiKey(id: $id) }`, map[string]any{"id": key.APIKey.ID}, "FORBIDDEN")
		h.mustGQL(h.admin.Token, `{ apiKeys { id owner { id } } }`, nil, &listed)
		if len(listed.APIKeys) != 1 || listed.APIKeys[0].Owner.ID != owner.ID {
			t.Fatalf("the admin lists %+v", listed.APIKeys)
		}
		if r := h.gql(h.admin.Token, `{ apiKeys { secret } }`, nil); errorCode(r) != "GRAPHQL_VALIDATION_FAILED" {
			t.Fatalf("a key's secret can be read back: %s", r.Raw)
		}

		h.mustGQL(owner.Token, `mutation($id: ID!) { revokeApiKey(id: $id) }`, map[string]any{"id": key.APIKey.ID}, nil)
		if r := h.gql(key.Secret, `{ me { id } }`, nil); r.HTTPStatus != http.StatusUnauthorized || errorCode(r) != "UNAUTHENTICATED" {
			t.Fatalf("revoked key: HTTP %d %s", r.HTTPStatus, r.Raw)
		}
		h.wantGQLError(owner.Token, `mutation($id: ID!) { revokeApiKey(id: $id) }`, map[string]any{"id": key.APIKey.ID}, "NOT_FOUND")
	})
}

// TestSimultaneousSignInsOverGraphQL: thirty sign-ins for one account
// sent at once over HTTP get no more passwords checked than the back-off
// lets through one after another; the rest are RATE_LIMITED.
func TestSimultaneousSignInsOverGraphQL(t *testing.T) {
	h := newHarness(t, dbtest.SQLite(t), server.Config{})
	h.auth.SetLoginLimits(&hourLongBackoff)
	// Checked at the production cost, the attempts are truly in flight
	// together.
	h.auth.SetPasswordCost(bcrypt.DefaultCost)
	victim := h.createUser(db.RoleAdmin)
	const attempts = 30
	codes := make([]string, attempts)
	errs := make([]error, attempts)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range attempts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			password := "a wrong guess"
			if i == attempts-1 {
				password = victim.Password
			}
			payload, _ := json.Marshal(map[string]any{"query": loginMutation, "variables": map[string]any{"email": victim.Email, "password": password}})
			<-start
			resp, err := h.client.Post(h.srv.URL+"/graphql", "application/json", strings.NewReader(string(payload)))
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var r gqlResponse
			if errs[i] = json.Unmarshal(raw, &r); errs[i] == nil {
				codes[i] = errorCode(&r)
			}
		}()
	}
	close(start)
	wg.Wait()
	checked := 0
	for i, code := range codes {
		switch {
		case errs[i] != nil:
			t.Fatalf("attempt %d: %v", i, errs[i])
		case code == "" || code == "UNAUTHENTICATED":
			checked++
		case code != "RATE_LIMITED":
			t.Fatalf("attempt %d: %s", i, code)
		}
	}
	if checked > hourLongBackoff.Free+1 {
		t.Fatalf("%d of %d simultaneous sign-ins had their password checked, want at most %d", checked, attempts, hourLongBackoff.Free+1)
	}
}

// TestNewPasswordEndsSessionsOverGraphQL: a password changed by its
// owner ends every session of theirs, the one that changed it included;
// one changed by an admin ends the user's sessions, not the admin's.
func TestNewPasswordEndsSessionsOverGraphQL(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		const update = `mutation($id: ID!, $password: String) { updateUser(id: $id, input: {password: $password}) { id } }`
		u := h.newUser(db.RoleResponder)
		phone := h.login(u.Email, u.Password)
		h.mustGQL(u.Token, update, map[string]any{"id": u.ID, "password": "a new password"}, nil)
		for _, token := range []string{u.Token, phone} {
			if r := h.gql(token, `{ me { id } }`, nil); errorCode(r) != "UNAUTHENTICATED" {
				t.Fatalf("session after its user set a new password: %s", r.Raw)
			}
		}
		fresh := h.login(u.Email, "a new password")
		h.mustGQL(h.admin.Token, update, map[string]any{"id": u.ID, "password": "set by the admin"}, nil)
		if r := h.gql(fresh, `{ me { id } }`, nil); errorCode(r) != "UNAUTHENTICATED" {
			t.Fatalf("session after an admin set a new password: %s", r.Raw)
		}
		h.mustGQL(h.admin.Token, `{ me { id } }`, nil, nil)
		h.login(u.Email, "set by the admin")
	})
}

// TestKeyBelowItsOwnerCannotEndTheOwnersAccess: an API key with less than
// its owner's role may not sign the owner out nor revoke the owner's
// other keys (FORBIDDEN, nothing changed); it may revoke itself. A key
// with the owner's full role may do both.
func TestKeyBelowItsOwnerCannotEndTheOwnersAccess(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		h := newHarness(t, d, server.Config{})
		owner := h.newUser(db.RoleResponder)
		type key struct{ id, secret string }
		keyOf := func(role string) key {
			var data struct {
				Key struct {
					APIKey struct{ ID string } `json:"apiKey"`
					Secret string
				} `json:"createApiKey"`
			}
			h.mustGQL(owner.Token, `mutation($role: Role!) { createApiKey(input: {name: "key", role: $role}) { apiKey { id } secret } }`,
				map[string]any{"role": role}, &data)
			return key{data.Key.APIKey.ID, data.Key.Secret}
		}
		const revoke = `mutation($id: ID!) { revokeApiKey(id: $id) }`
		works := func(token, what string) {
			t.Helper()
			if r := h.gql(token, `{ me { id } }`, nil); len(r.Errors) > 0 {
				t.Fatalf("%s: %s", what, r.Raw)
			}
		}
		ended := func(token, what string) {
			t.Helper()
			if r := h.gql(token, `{ me { id } }`, nil); errorCode(r) != "UNAUTHENTICATED" {
				t.Fatalf("%s still works: %s", what, r.Raw)
			}
		}
		low, other, full := keyOf("VIEWER"), keyOf("VIEWER"), keyOf("RESPONDER")

		h.wantGQLError(low.secret, `mutation { signOut }`, nil, "FORBIDDEN")
		works(owner.Token, "the owner's session after a lower key tried to sign them out")
		h.wantGQLError(low.secret, revoke, map[string]any{"id": other.id}, "FORBIDDEN")
		h.wantGQLError(low.secret, revoke, map[string]any{"id": full.id}, "FORBIDDEN")
		works(other.secret, "the owner's key after a lower key tried to revoke it")
		works(full.secret, "the owner's full key after a lower key tried to revoke it")
		h.mustGQL(low.secret, revoke, map[string]any{"id": low.id}, nil)
		ended(low.secret, "a key that revoked itself")

		h.mustGQL(full.secret, revoke, map[string]any{"id": other.id}, nil)
		ended(other.secret, "a key revoked by the owner's full key")
		h.mustGQL(full.secret, `mutation { signOut }`, nil, nil)
		ended(owner.Token, "the owner's session after their full key signed them out")
	})
}
