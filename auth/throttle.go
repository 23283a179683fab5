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
	// inFlight counts the attempts let through whose password is still
	// being checked; each may yet be a failure.
	inFlight int
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

// attempt is a sign-in let through the throttle. Its outcome must be
// settled with failed or succeeded, or given back with release.
type attempt struct {
	t       *loginThrottle
	now     time.Time
	keys    []string
	settled bool
}

// reserve lets an attempt through, or refuses it while any of keys is
// waiting out its back-off or already has as many attempts in flight as
// it could fail without a wait: the free failures left, or one once
// those are spent. Checking and counting in one step is what keeps
// attempts sent all at once from being checked together before any of
// them is recorded; in sequence it changes nothing.
func (t *loginThrottle) reserve(now time.Time, keys ...string) (*attempt, error) {
	if t == nil {
		return nil, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		f := t.keys[k]
		if f == nil {
			continue
		}
		if now.Before(f.until) {
			wait = max(wait, f.until.Sub(now))
		} else if f.inFlight >= max(1, t.limits.Free-t.current(now, f)) {
			// The attempts in flight decide the wait; the caller may try
			// again once they have, which bcrypt keeps well under Base.
			wait = max(wait, t.limits.Base)
		}
	}
	if wait > 0 {
		return nil, &db.RateLimitError{Wait: wait, Reason: "too many failed sign-ins"}
	}
	for _, k := range keys {
		f := t.keys[k]
		if f == nil {
			f = &failures{}
			t.keys[k] = f
		}
		f.inFlight++
	}
	return &attempt{t: t, now: now, keys: keys}, nil
}

// current is f's count of failures, or 0 once they are forgotten.
func (t *loginThrottle) current(now time.Time, f *failures) int {
	if now.Sub(f.last) >= t.limits.Forget && !now.Before(f.until) {
		return 0
	}
	return f.count
}

// failed counts the attempt as a failure against each of its keys.
func (a *attempt) failed() {
	if a == nil || a.settled {
		return
	}
	a.settled = true
	t := a.t
	t.mu.Lock()
	defer t.mu.Unlock()
	now := a.now
	t.since++
	if t.since >= throttleSweepEvery {
		t.since = 0
		for k, f := range t.keys {
			if t.stale(now, f) {
				delete(t.keys, k)
			}
		}
	}
	for _, k := range a.keys {
		f := t.entry(k)
		f.inFlight--
		f.count = t.current(now, f) + 1
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

// succeeded clears the account's count (the first key) after a good
// password, and gives back the attempt on the others.
func (a *attempt) succeeded() {
	if a == nil || a.settled {
		return
	}
	a.settled = true
	t := a.t
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, k := range a.keys {
		f := t.entry(k)
		f.inFlight--
		if i == 0 {
			f.count, f.until = 0, time.Time{}
		}
		if f.count == 0 && f.inFlight == 0 {
			delete(t.keys, k)
		}
	}
}

// release gives the attempt back uncounted, when its password could not
// be checked at all (the database failed); after failed or succeeded it
// does nothing.
func (a *attempt) release() {
	if a == nil || a.settled {
		return
	}
	a.settled = true
	t := a.t
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range a.keys {
		t.entry(k).inFlight--
	}
}

// entry is the count of a key with an attempt in flight, which the sweep
// never removes; a missing one is made again rather than trusted away.
func (t *loginThrottle) entry(k string) *failures {
	f := t.keys[k]
	if f == nil {
		f = &failures{inFlight: 1}
		t.keys[k] = f
	}
	return f
}

func (t *loginThrottle) stale(now time.Time, f *failures) bool {
	return f.inFlight == 0 && now.Sub(f.last) >= t.limits.Forget && !now.Before(f.until)
}
