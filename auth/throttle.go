package auth

import (
	"sync"
	"time"

	"github.com/klaxonhq/klaxon/db"
)

// LoginLimits is how failed sign-ins slow down whoever repeats them. The
// first Free failures of an account or of an address cost nothing (people
// mistype); each one after that doubles the wait before the next attempt,
// from Base up to Max. An address's failures count across every account
// it tries, which stops one client guessing many passwords; an account's
// count across every address, which stops many clients guessing one.
// A quiet Forget period clears a count; a successful sign-in clears the
// account's count but not the address's.
type LoginLimits struct {
	Free   int
	Base   time.Duration
	Max    time.Duration
	Forget time.Duration
}

// DefaultLoginLimits: five free failures, then 1 s, 2 s, 4 s … up to 15
// minutes, forgotten after an hour without failures.
func DefaultLoginLimits() LoginLimits {
	return LoginLimits{Free: 5, Base: time.Second, Max: 15 * time.Minute, Forget: time.Hour}
}

// throttleSweepEvery bounds how many failures go by between sweeps of
// stale entries, so a flood from many addresses cannot grow memory
// without end.
const throttleSweepEvery = 1024

type failures struct {
	count int
	last  time.Time
	until time.Time
}

// loginThrottle keeps the failure counts in memory, per instance: behind
// a load balancer each instance slows a guesser down on its own, which
// multiplies the allowed rate by the number of instances and no more.
type loginThrottle struct {
	limits LoginLimits
	mu     sync.Mutex
	keys   map[string]*failures
	since  int
}

func newLoginThrottle(limits LoginLimits) *loginThrottle {
	return &loginThrottle{limits: limits, keys: map[string]*failures{}}
}

// check refuses an attempt while any of keys is waiting out its back-off.
func (t *loginThrottle) check(now time.Time, keys ...string) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if f := t.keys[k]; f != nil && now.Before(f.until) {
			wait = max(wait, f.until.Sub(now))
		}
	}
	if wait > 0 {
		return &db.RateLimitError{Wait: wait, Reason: "too many failed sign-ins"}
	}
	return nil
}

// fail counts a failed attempt against each key.
func (t *loginThrottle) fail(now time.Time, keys ...string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.since++
	if t.since >= throttleSweepEvery {
		t.since = 0
		for k, f := range t.keys {
			if t.stale(now, f) {
				delete(t.keys, k)
			}
		}
	}
	for _, k := range keys {
		f := t.keys[k]
		if f == nil || t.stale(now, f) {
			f = &failures{}
			t.keys[k] = f
		}
		f.count++
		f.last = now
		if over := f.count - t.limits.Free; over > 0 {
			wait := t.limits.Base
			for i := 1; i < over && wait < t.limits.Max; i++ {
				wait *= 2
			}
			f.until = now.Add(min(wait, t.limits.Max))
		}
	}
}

// succeed clears the account's count after a good password.
func (t *loginThrottle) succeed(key string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.keys, key)
}

func (t *loginThrottle) stale(now time.Time, f *failures) bool {
	return now.Sub(f.last) >= t.limits.Forget && !now.Before(f.until)
}
