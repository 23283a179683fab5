package notifiers

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/klaxonhq/klaxon/egress"
)

// WebPushConfig is the application server identity (RFC 8292 VAPID) used
// to push to browsers.
type WebPushConfig struct {
	// VAPIDPublicKey and VAPIDPrivateKey are base64url strings as
	// GenerateVAPIDKeys returns them. The public key is also what the
	// frontend passes to pushManager.subscribe as applicationServerKey.
	VAPIDPublicKey  string
	VAPIDPrivateKey string
	// Subscriber is how push services reach the operator:
	// "mailto:ops@example.com" or an https URL.
	Subscriber string
	// TTL is how long a push service keeps a message for an offline
	// device; zero means one hour. An older page is noise: by then
	// escalation has moved on.
	TTL time.Duration
	// Guard decides which addresses subscription endpoints may be on;
	// nil means public addresses only.
	Guard *egress.Guard
	// Client overrides the HTTP client and its guard; nil means a guarded
	// one with a 10 s timeout.
	Client *http.Client
}

// WebPush sends notifications to browser push subscriptions; the
// contact method's value is the subscription as JSON:
// {"endpoint":"…","keys":{"p256dh":"…","auth":"…"}}.
type WebPush struct {
	cfg        WebPushConfig
	subscriber string
	client     *http.Client
}

// ErrPushSubscriptionGone means the push service no longer knows the
// subscription (unsubscribed or expired); it is permanent, and the
// subscription should be deleted.
var ErrPushSubscriptionGone = errors.New("notifiers: push subscription is gone")

// GenerateVAPIDKeys makes a new VAPID key pair: the public key as an
// uncompressed P-256 point and the private key as its 32-byte scalar,
// both unpadded base64url.
func GenerateVAPIDKeys() (public, private string, err error) {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("generate VAPID keys: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()),
		base64.RawURLEncoding.EncodeToString(key.Bytes()), nil
}

// decodeB64 accepts both base64url and standard base64, padded or not:
// browsers and key tools disagree on which they emit.
func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	s = strings.NewReplacer("+", "-", "/", "_").Replace(s)
	return base64.RawURLEncoding.DecodeString(s)
}

// NewWebPush checks cfg and returns a web push sender.
func NewWebPush(cfg WebPushConfig) (*WebPush, error) {
	pubBytes, err := decodeB64(cfg.VAPIDPublicKey)
	if err != nil {
		return nil, fmt.Errorf("web push config: VAPID public key: %w", err)
	}
	pub, err := ecdh.P256().NewPublicKey(pubBytes)
	if err != nil {
		return nil, fmt.Errorf("web push config: VAPID public key: %w", err)
	}
	privBytes, err := decodeB64(cfg.VAPIDPrivateKey)
	if err != nil {
		return nil, fmt.Errorf("web push config: VAPID private key: %w", err)
	}
	priv, err := ecdh.P256().NewPrivateKey(privBytes)
	if err != nil {
		return nil, fmt.Errorf("web push config: VAPID private key: %w", err)
	}
	// Swapped or mismatched keys would only show up as every push
	// service refusing every message.
	if !priv.PublicKey().Equal(pub) {
		return nil, errors.New("web push config: VAPID public key does not belong to the private key")
	}
	// Normalised so the library, which accepts only base64url, reads them.
	cfg.VAPIDPublicKey = base64.RawURLEncoding.EncodeToString(pubBytes)
	cfg.VAPIDPrivateKey = base64.RawURLEncoding.EncodeToString(privBytes)

	// The library prefixes "mailto:" to anything not https.
	var subscriber string
	switch {
	case strings.HasPrefix(cfg.Subscriber, "mailto:") && len(cfg.Subscriber) > len("mailto:"):
		subscriber = strings.TrimPrefix(cfg.Subscriber, "mailto:")
	case strings.HasPrefix(cfg.Subscriber, "https://"):
		subscriber = cfg.Subscriber
	default:
		return nil, fmt.Errorf("web push config: subscriber %q must be a mailto: or https: URL", cfg.Subscriber)
	}
	if cfg.TTL <= 0 {
		cfg.TTL = time.Hour
	}
	client := cfg.Client
	if client == nil {
		client = outboundClient(cfg.Guard)
	}
	return &WebPush{cfg: cfg, subscriber: subscriber, client: client}, nil
}

// pushPayload is what the service worker receives.
type pushPayload struct {
	Title       string `json:"title"`
	Body        string `json:"body,omitempty"`
	Tag         string `json:"tag"`
	AlertID     int    `json:"alertId"`
	AlertNumber int    `json:"alertNumber"`
	Severity    string `json:"severity,omitempty"`
	URL         string `json:"url,omitempty"`
	AckURL      string `json:"ackUrl,omitempty"`
	CloseURL    string `json:"closeUrl,omitempty"`
}

// maxPushPayload is the largest plaintext that fits one 4096-byte
// aes128gcm record (RFC 8291 section 4) after the 86-byte header, the
// 16-byte tag and the padding delimiter.
const maxPushPayload = 4096 - 86 - 16 - 1

func pushBody(msg Message) ([]byte, error) {
	msg = links(msg)
	p := pushPayload{
		Title: title(msg), Body: strings.TrimSpace(msg.Details), Tag: fmt.Sprintf("klaxon-alert-%d", msg.AlertID),
		AlertID: msg.AlertID, AlertNumber: msg.AlertNumber, Severity: oneLine(msg.Severity),
		URL: msg.URL, AckURL: msg.AckURL, CloseURL: msg.CloseURL,
	}
	p.Title = clip(p.Title, 300)
	for {
		b, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		if len(b) <= maxPushPayload {
			return b, nil
		}
		if p.Body == "" {
			return nil, fmt.Errorf("push payload is %d bytes, over %d", len(b), maxPushPayload)
		}
		// JSON escaping can make the body longer on the wire than in
		// memory, hence the loop rather than one cut.
		p.Body = clip(p.Body, max(len(p.Body)-(len(b)-maxPushPayload)-16, 0))
	}
}

// Send encrypts msg for the subscription in msg.Destination and hands it
// to the subscription's push service; the id is the service's message URL.
func (w *WebPush) Send(ctx context.Context, msg Message) (string, error) {
	sub, err := parseSubscription(msg.Destination)
	if err != nil {
		return "", Permanent(fmt.Errorf("send push: %w", err))
	}
	payload, err := pushBody(msg)
	if err != nil {
		return "", Permanent(fmt.Errorf("send push: %w", err))
	}
	urgency := webpush.UrgencyNormal
	if p := ntfyPriority(msg.Severity); p == "5" || p == "4" {
		urgency = webpush.UrgencyHigh
	}
	resp, err := webpush.SendNotificationWithContext(ctx, payload, sub, &webpush.Options{
		HTTPClient:      w.client,
		Subscriber:      w.subscriber,
		TTL:             int(w.cfg.TTL / time.Second),
		Urgency:         urgency,
		Topic:           fmt.Sprintf("klaxon-alert-%d", msg.AlertID),
		VAPIDPublicKey:  w.cfg.VAPIDPublicKey,
		VAPIDPrivateKey: w.cfg.VAPIDPrivateKey,
	})
	if err != nil {
		var urlErr *url.Error
		var netErr net.Error
		if errors.As(err, &urlErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("send push: %w", noAnswer(err))
		}
		// Everything else fails before the request is made, on input
		// that has already been validated: retrying cannot change it.
		return "", Permanent(fmt.Errorf("send push: %w", err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return "", Permanent(fmt.Errorf("send push: %w (push service answered %s)", ErrPushSubscriptionGone, resp.Status))
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return "", fmt.Errorf("send push: %w", statusError("push service", resp, string(readErrorBody(resp))))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return resp.Header.Get("Location"), nil
}

// PublicKey is the VAPID public key browsers pass to
// PushManager.subscribe() as applicationServerKey.
func (w *WebPush) PublicKey() string { return w.cfg.VAPIDPublicKey }

// PushSubscription is what a browser's PushManager.subscribe() returns:
// the push service endpoint and the keys its messages are encrypted to.
type PushSubscription struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// NormalizePushSubscription checks a subscription's JSON and returns it in
// one canonical form (unpadded base64url keys), so that the same browser
// registering twice is recognised as one contact method.
func NormalizePushSubscription(raw string) (PushSubscription, string, error) {
	sub, err := parseSubscription(raw)
	if err != nil {
		return PushSubscription{}, "", err
	}
	var out PushSubscription
	out.Endpoint, out.Keys.P256dh, out.Keys.Auth = sub.Endpoint, sub.Keys.P256dh, sub.Keys.Auth
	b, err := json.Marshal(out)
	if err != nil {
		return PushSubscription{}, "", fmt.Errorf("encode push subscription: %w", err)
	}
	return out, string(b), nil
}

// parseSubscription reads and checks a PushSubscription's JSON so that
// the library only ever sees well-formed keys.
func parseSubscription(raw string) (*webpush.Subscription, error) {
	var sub webpush.Subscription
	if err := json.Unmarshal([]byte(raw), &sub); err != nil {
		return nil, fmt.Errorf("push subscription is not JSON: %w", err)
	}
	if linkURL(sub.Endpoint) == "" {
		return nil, fmt.Errorf("push subscription endpoint %q is not an http(s) URL", sub.Endpoint)
	}
	p256dh, err := decodeB64(sub.Keys.P256dh)
	if err != nil {
		return nil, fmt.Errorf("push subscription p256dh key: %w", err)
	}
	if _, err := ecdh.P256().NewPublicKey(p256dh); err != nil {
		return nil, fmt.Errorf("push subscription p256dh key: %w", err)
	}
	auth, err := decodeB64(sub.Keys.Auth)
	if err != nil || len(auth) != 16 {
		return nil, errors.New("push subscription auth secret must be 16 bytes of base64url")
	}
	sub.Keys.P256dh = base64.RawURLEncoding.EncodeToString(p256dh)
	sub.Keys.Auth = base64.RawURLEncoding.EncodeToString(auth)
	return &sub, nil
}
