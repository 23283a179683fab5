package notifiers

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// browser is a push subscriber: the user agent's key pair and auth
// secret, as pushManager.subscribe would create them.
type browser struct {
	key  *ecdh.PrivateKey
	auth []byte
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	if _, err := rand.Read(auth); err != nil {
		t.Fatal(err)
	}
	return &browser{key: key, auth: auth}
}

func (b *browser) subscription(endpoint string) string {
	s, _ := json.Marshal(map[string]any{
		"endpoint": endpoint,
		"keys": map[string]string{
			"p256dh": base64.RawURLEncoding.EncodeToString(b.key.PublicKey().Bytes()),
			"auth":   base64.RawURLEncoding.EncodeToString(b.auth),
		},
	})
	return string(s)
}

// decrypt undoes RFC 8291 message encryption: the aes128gcm content
// coding of RFC 8188 with keys derived from ECDH and the auth secret.
func (b *browser) decrypt(body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt, rs, idLen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idLen != 65 || len(body) < 21+idLen {
		return nil, fmt.Errorf("keyid length %d, want a 65-byte P-256 point", idLen)
	}
	asPublicBytes, ciphertext := body[21:21+idLen], body[21+idLen:]
	if uint32(len(body)) > rs {
		return nil, fmt.Errorf("body of %d bytes spans more than one %d-byte record", len(body), rs)
	}
	asPublic, err := ecdh.P256().NewPublicKey(asPublicBytes)
	if err != nil {
		return nil, err
	}
	ecdhSecret, err := b.key.ECDH(asPublic)
	if err != nil {
		return nil, err
	}
	keyInfo := append(append([]byte("WebPush: info\x00"), b.key.PublicKey().Bytes()...), asPublicBytes...)
	ikm, err := hkdf.Key(sha256.New, ecdhSecret, b.auth, string(keyInfo), 32)
	if err != nil {
		return nil, err
	}
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, ciphertext, nil)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	// The last record ends with 0x02 followed by zero padding.
	end := bytes.LastIndexFunc(plain, func(r rune) bool { return r != 0 })
	if end < 0 || plain[end] != 0x02 {
		return nil, errors.New("no last-record padding delimiter")
	}
	return plain[:end], nil
}

type pushRequest struct {
	headers http.Header
	claims  jwt.MapClaims
	payload pushPayload
}

// fakePushService checks VAPID and decrypts like a real push service
// delivering to b would.
func fakePushService(t *testing.T, b *browser, vapidPublic string, status int) (*httptest.Server, chan pushRequest) {
	t.Helper()
	got := make(chan pushRequest, 4)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail := func(format string, args ...any) {
			t.Errorf(format, args...)
			http.Error(w, "bad request", http.StatusBadRequest)
		}
		claims, err := checkVAPID(r.Header.Get("Authorization"), vapidPublic, srv.URL)
		if err != nil {
			t.Errorf("VAPID: %v", err)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Content-Encoding") != "aes128gcm" {
			fail("Content-Encoding = %q", r.Header.Get("Content-Encoding"))
			return
		}
		body, _ := io.ReadAll(r.Body)
		plain, err := b.decrypt(body)
		if err != nil {
			fail("decrypt: %v", err)
			return
		}
		var p pushPayload
		if err := json.Unmarshal(plain, &p); err != nil {
			fail("payload %q: %v", plain, err)
			return
		}
		got <- pushRequest{headers: r.Header.Clone(), claims: claims, payload: p}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "20")
		}
		w.Header().Set("Location", srv.URL+"/messages/m-1")
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// checkVAPID verifies an RFC 8292 Authorization header: "vapid t=<JWT>,
// k=<public key>", the JWT signed ES256 by that key, aud the push
// service's origin, exp at most 24 hours ahead.
func checkVAPID(header, wantKey, origin string) (jwt.MapClaims, error) {
	rest, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		return nil, fmt.Errorf("scheme in %q", header)
	}
	params := map[string]string{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		params[k] = v
	}
	if params["k"] != wantKey {
		return nil, fmt.Errorf("k = %q, want %q", params["k"], wantKey)
	}
	raw, err := base64.RawURLEncoding.DecodeString(params["k"])
	if err != nil {
		return nil, err
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, err
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(params["t"], claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(origin), jwt.WithExpirationRequired())
	if err != nil {
		return nil, err
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || time.Until(exp.Time) > 24*time.Hour {
		return nil, fmt.Errorf("exp %v more than 24h ahead", exp)
	}
	return claims, nil
}

func newTestWebPush(t *testing.T) (*WebPush, string) {
	t.Helper()
	public, private, err := GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWebPush(WebPushConfig{VAPIDPublicKey: public, VAPIDPrivateKey: private, Subscriber: "mailto:ops@example.com", Guard: localSinks})
	if err != nil {
		t.Fatal(err)
	}
	return w, public
}

func TestWebPush(t *testing.T) {
	sender, public := newTestWebPush(t)
	b := newBrowser(t)
	srv, got := fakePushService(t, b, public, http.StatusCreated)
	msg := testMessage(b.subscription(srv.URL + "/push/v2/abc"))

	id, err := sender.Send(context.Background(), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if id != srv.URL+"/messages/m-1" {
		t.Errorf("provider id = %q", id)
	}
	r := <-got
	if sub, _ := r.claims.GetSubject(); sub != "mailto:ops@example.com" {
		t.Errorf("sub = %q", sub)
	}
	if r.headers.Get("TTL") != "3600" || r.headers.Get("Urgency") != "high" || r.headers.Get("Topic") != "klaxon-alert-42" {
		t.Errorf("TTL %q Urgency %q Topic %q", r.headers.Get("TTL"), r.headers.Get("Urgency"), r.headers.Get("Topic"))
	}
	want := pushPayload{
		Title: "[Klaxon #42] HIGH: Disk full on db-1", Body: msg.Details, Tag: "klaxon-alert-42", AlertID: 42, AlertNumber: 42,
		Severity: "high", URL: msg.URL, AckURL: msg.AckURL, CloseURL: msg.CloseURL,
	}
	if r.payload != want {
		t.Errorf("payload = %+v\nwant      %+v", r.payload, want)
	}
}

func TestWebPushLongDetailsFit(t *testing.T) {
	sender, public := newTestWebPush(t)
	b := newBrowser(t)
	srv, got := fakePushService(t, b, public, http.StatusCreated)
	msg := testMessage(b.subscription(srv.URL))
	msg.Details = strings.Repeat(`"quoted" <tag> `, 1000)
	if _, err := sender.Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	r := <-got
	if r.payload.Body == "" || r.payload.AckURL != msg.AckURL {
		t.Errorf("payload lost its body or links: %+v", r.payload)
	}
}

func TestWebPushErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		permanent bool
		gone      bool
		wait      time.Duration
	}{
		{name: "gone", status: http.StatusGone, permanent: true, gone: true},
		{name: "not found", status: http.StatusNotFound, permanent: true, gone: true},
		{name: "too large", status: http.StatusRequestEntityTooLarge, permanent: true},
		{name: "rate limited", status: http.StatusTooManyRequests, wait: 20 * time.Second},
		{name: "outage", status: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sender, public := newTestWebPush(t)
			b := newBrowser(t)
			srv, _ := fakePushService(t, b, public, tt.status)
			_, err := sender.Send(context.Background(), testMessage(b.subscription(srv.URL)))
			if err == nil {
				t.Fatal("want error")
			}
			if IsPermanent(err) != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v: %v", IsPermanent(err), tt.permanent, err)
			}
			if errors.Is(err, ErrPushSubscriptionGone) != tt.gone {
				t.Errorf("gone = %v, want %v: %v", !tt.gone, tt.gone, err)
			}
			if wait, ok := RetryAfter(err); ok != (tt.wait > 0) || wait != tt.wait {
				t.Errorf("RetryAfter = %v, %v; want %v", wait, ok, tt.wait)
			}
		})
	}
}

func TestWebPushBadSubscriptions(t *testing.T) {
	sender, _ := newTestWebPush(t)
	b := newBrowser(t)
	good := map[string]any{}
	_ = json.Unmarshal([]byte(b.subscription("https://push.example/x")), &good)
	with := func(mutate func(m map[string]any)) string {
		raw, _ := json.Marshal(good)
		m := map[string]any{}
		_ = json.Unmarshal(raw, &m)
		mutate(m)
		out, _ := json.Marshal(m)
		return string(out)
	}
	for name, dest := range map[string]string{
		"not json":       "https://push.example/x",
		"no endpoint":    with(func(m map[string]any) { delete(m, "endpoint") }),
		"bad endpoint":   with(func(m map[string]any) { m["endpoint"] = "javascript:alert(1)" }),
		"short auth":     with(func(m map[string]any) { m["keys"].(map[string]any)["auth"] = "AAAA" }),
		"bad p256dh":     with(func(m map[string]any) { m["keys"].(map[string]any)["p256dh"] = "AAAA" }),
		"p256dh not b64": with(func(m map[string]any) { m["keys"].(map[string]any)["p256dh"] = "!!!" }),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := sender.Send(context.Background(), testMessage(dest))
			if err == nil || !IsPermanent(err) {
				t.Fatalf("want permanent error, got %v", err)
			}
		})
	}
	t.Run("unreachable push service is temporary", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		endpoint := srv.URL
		srv.Close()
		_, err := sender.Send(context.Background(), testMessage(b.subscription(endpoint)))
		if err == nil || IsPermanent(err) {
			t.Fatalf("want temporary error, got %v", err)
		}
	})
}

func TestNewWebPushValidates(t *testing.T) {
	public, private, err := GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	otherPublic, _, err := GenerateVAPIDKeys()
	if err != nil {
		t.Fatal(err)
	}
	for name, cfg := range map[string]WebPushConfig{
		"swapped keys":      {VAPIDPublicKey: private, VAPIDPrivateKey: public, Subscriber: "mailto:a@example.com"},
		"mismatched keys":   {VAPIDPublicKey: otherPublic, VAPIDPrivateKey: private, Subscriber: "mailto:a@example.com"},
		"no subscriber":     {VAPIDPublicKey: public, VAPIDPrivateKey: private},
		"http subscriber":   {VAPIDPublicKey: public, VAPIDPrivateKey: private, Subscriber: "http://example.com"},
		"garbage key":       {VAPIDPublicKey: "%%%", VAPIDPrivateKey: private, Subscriber: "mailto:a@example.com"},
		"empty private key": {VAPIDPublicKey: public, Subscriber: "mailto:a@example.com"},
	} {
		if _, err := NewWebPush(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Standard base64 with padding, as some key tools print them, works too.
	pub, _ := decodeB64(public)
	priv, _ := decodeB64(private)
	if _, err := NewWebPush(WebPushConfig{
		VAPIDPublicKey: base64.StdEncoding.EncodeToString(pub), VAPIDPrivateKey: base64.StdEncoding.EncodeToString(priv),
		Subscriber: "https://klaxon.example/contact",
	}); err != nil {
		t.Errorf("standard base64 keys rejected: %v", err)
	}
}
