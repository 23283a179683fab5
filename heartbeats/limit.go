package heartbeats

import (
	"sync"
	"time"
)

// PulsesPerMinute is how many pulses a monitor takes a minute, per
// instance; a minute's worth may come at once. A heartbeat is a pulse
// every few minutes: more than this is a loop gone wrong or someone
// flooding a leaked URL, and each pulse is a write.
const PulsesPerMinute = 60

// pulseLimiter is a token bucket per monitor, per instance, as the
// webhook limiter is per integration.
type pulseLimiter struct {
	mu      sync.Mutex
	buckets map[int]*pulseBucket
}

type pulseBucket struct {
	tokens float64
	at     time.Time
}

// take spends one pulse of the monitor's allowance, or says how long until
// there is one.
func (l *pulseLimiter) take(monitorID int, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = map[int]*pulseBucket{}
	}
	b := l.buckets[monitorID]
	if b == nil {
		b = &pulseBucket{tokens: PulsesPerMinute, at: now}
		l.buckets[monitorID] = b
	}
	const perSecond = float64(PulsesPerMinute) / 60
	if elapsed := now.Sub(b.at).Seconds(); elapsed > 0 {
		b.tokens = min(PulsesPerMinute, b.tokens+elapsed*perSecond)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / perSecond * float64(time.Second))
}
