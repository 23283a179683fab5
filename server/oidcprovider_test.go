package server_test

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
)

// identityProvider is a real OpenID provider (mockoidc) on loopback:
// discovery, authorization with PKCE, token and JWKS endpoints. Two
// things are wrapped around it, for the cases it cannot make itself: the
// key it signs ID tokens with and the keys its JWKS endpoint publishes
// can be changed (a rotation, or a key it does not publish), in which
// case the ID token it issued is signed again with that key.
type identityProvider struct {
	t *testing.T
	m *mockoidc.MockOIDC

	mu sync.Mutex
	// signing, when set, signs the ID tokens instead of mockoidc's key.
	signing *mockoidc.Keypair
	// published, when set, is the JWKS instead of mockoidc's key.
	published   []*mockoidc.Keypair
	jwksFetches int
	tokenCalls  int
}

func newIdentityProvider(t *testing.T) *identityProvider {
	t.Helper()
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatalf("identity provider: %v", err)
	}
	// The key id is worked out on first use and kept; work it out here,
	// before the provider's handlers share the key.
	if _, err := m.Keypair.KeyID(); err != nil {
		t.Fatal(err)
	}
	// ID tokens live a minute, so a test moves Klaxon's clock past one
	// with a short step.
	m.AccessTTL = time.Minute
	p := &identityProvider{t: t, m: m}
	if err := m.AddMiddleware(p.wrap); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ln, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return p
}

func (p *identityProvider) issuer() string { return p.m.Issuer() }

// signIn queues the person the next authorization signs in.
func (p *identityProvider) signIn(u idpUser) { p.m.QueueUser(u) }

// newKey makes a signing key with its key id worked out.
func (p *identityProvider) newKey() *mockoidc.Keypair {
	p.t.Helper()
	k, err := mockoidc.RandomKeypair(2048)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := k.KeyID(); err != nil {
		p.t.Fatal(err)
	}
	return k
}

// rotate signs with key from now on and publishes only it, as a provider
// that has rotated its key does.
func (p *identityProvider) rotate(key *mockoidc.Keypair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signing, p.published = key, []*mockoidc.Keypair{key}
}

// signWithUnpublished signs with key but keeps publishing what it did.
func (p *identityProvider) signWithUnpublished(key *mockoidc.Keypair) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.published == nil {
		p.published = []*mockoidc.Keypair{p.m.Keypair}
	}
	p.signing = key
}

func (p *identityProvider) counts() (jwksFetches, tokenCalls int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jwksFetches, p.tokenCalls
}

func (p *identityProvider) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		signing, published := p.signing, p.published
		switch r.URL.Path {
		case mockoidc.JWKSEndpoint:
			p.jwksFetches++
		case mockoidc.TokenEndpoint:
			p.tokenCalls++
		}
		p.mu.Unlock()
		switch {
		case r.URL.Path == mockoidc.JWKSEndpoint && published != nil:
			set := jose.JSONWebKeySet{}
			for _, k := range published {
				kid, _ := k.KeyID()
				set.Keys = append(set.Keys, jose.JSONWebKey{Use: "sig", Algorithm: string(jose.RS256), Key: k.PublicKey, KeyID: kid})
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(set)
		case r.URL.Path == mockoidc.TokenEndpoint && signing != nil:
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			body := rec.Body.Bytes()
			if rec.Code == http.StatusOK {
				body = p.resign(body, signing)
			}
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(body)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// resign signs the ID token of a token response again with key, claims
// unchanged.
func (p *identityProvider) resign(body []byte, key *mockoidc.Keypair) []byte {
	var resp map[string]any
	if err := json.Unmarshal(body, &resp); err != nil {
		p.t.Errorf("token response: %v", err)
		return body
	}
	raw, _ := resp["id_token"].(string)
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(raw, claims); err != nil {
		p.t.Errorf("ID token: %v", err)
		return body
	}
	signed, err := key.SignJWT(claims)
	if err != nil {
		p.t.Errorf("sign ID token: %v", err)
		return body
	}
	resp["id_token"] = signed
	var out bytes.Buffer
	json.NewEncoder(&out).Encode(resp)
	return out.Bytes()
}

// idpUser is a person at the provider. The provider builds and signs
// their ID token; nonce and audience, when set, replace what it would
// have put there, for the tokens a misbehaving provider would send.
type idpUser struct {
	Subject string
	Email   string
	Name    string
	// EmailVerified is sent as email_verified when set.
	EmailVerified *bool
	Groups        []string
	Roles         []string
	Nonce         *string
	Audience      []string
}

func (u idpUser) ID() string { return u.Subject }

func (u idpUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]any{"sub": u.Subject, "email": u.Email})
}

func (u idpUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	raw, err := json.Marshal(base)
	if err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, err
	}
	claims["email"] = u.Email
	if u.Name != "" {
		claims["name"] = u.Name
	}
	if u.EmailVerified != nil {
		claims["email_verified"] = *u.EmailVerified
	}
	if u.Groups != nil {
		claims["groups"] = u.Groups
	}
	if u.Roles != nil {
		claims["roles"] = u.Roles
	}
	if u.Nonce != nil {
		claims["nonce"] = *u.Nonce
	}
	if u.Audience != nil {
		claims["aud"] = u.Audience
	}
	return claims, nil
}
