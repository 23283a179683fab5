package alerting

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/klaxonhq/klaxon/db"
	"github.com/klaxonhq/klaxon/rules"
)

// signatureProblem checks the body's signature against the integration's
// secret and says what is wrong with it, or "" when it matches. The
// signature may be hex or base64, with or without a "sha256=" prefix.
func signatureProblem(integ *db.Integration, body []byte, headers map[string]string) string {
	names := rules.SignatureHeaders(integ.Type)
	var given string
	for _, name := range names {
		if v := strings.TrimSpace(headers[name]); v != "" {
			given = v
			break
		}
	}
	if given == "" {
		return "refused: no signature; this integration requires an HMAC-SHA256 of the body in " + strings.Join(names, " or ")
	}
	if len(given) > 7 && strings.EqualFold(given[:7], "sha256=") {
		given = given[7:]
	}
	mac := hmac.New(sha256.New, []byte(integ.SignatureSecret))
	mac.Write(body)
	want := mac.Sum(nil)
	for _, decode := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		// hmac.Equal takes the same time wherever the first wrong byte
		// is, so a guesser learns nothing from how fast a refusal comes.
		if got, err := decode(given); err == nil && hmac.Equal(got, want) {
			return ""
		}
	}
	return "refused: the signature does not match the body"
}

// webhookLimiter is a token bucket per integration, per instance: a
// minute's worth of webhooks may come at once, then they are taken at the
// configured rate. Several instances each allow the full rate.
type webhookLimiter struct {
	mu      sync.Mutex
	buckets map[int]*webhookBucket
}

type webhookBucket struct {
	perMinute int
	tokens    float64
	at        time.Time
}

// take spends one webhook of integrationID's allowance, or says how long
// until there is one.
func (l *webhookLimiter) take(integrationID, perMinute int, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[int]*webhookBucket{}
	}
	b := l.buckets[integrationID]
	if b == nil || b.perMinute != perMinute {
		b = &webhookBucket{perMinute: perMinute, tokens: float64(perMinute), at: now}
		l.buckets[integrationID] = b
	}
	perSecond := float64(perMinute) / 60
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = min(float64(perMinute), b.tokens+elapsed*perSecond)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	wait := time.Duration((1 - b.tokens) / perSecond * float64(time.Second))
	return max(wait, time.Millisecond)
}
