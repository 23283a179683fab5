package server

import (
	"sync"
	"time"
)

// sweeper runs a sweep over a set of members (open websockets) from one
// timer, which exists only while the set is not empty: a member costs a
// map entry rather than a goroutine and a ticker, and nothing runs, or
// outlives the server, once its sockets are closed.
type sweeper[T comparable] struct {
	interval time.Duration
	onTick   func()

	mu      sync.Mutex
	members map[T]struct{}
	// timer is the pending sweep, nil while the set is empty. A sweep
	// that has fired keeps its timer until it either reschedules it or,
	// finding the set empty, clears it.
	timer *time.Timer
}

func newSweeper[T comparable](interval time.Duration, onTick func()) *sweeper[T] {
	return &sweeper[T]{interval: interval, onTick: onTick, members: map[T]struct{}{}}
}

func (s *sweeper[T]) add(m T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.members[m] = struct{}{}
	if s.timer == nil {
		s.timer = time.AfterFunc(s.interval, s.tick)
	}
}

// remove forgets m; the last one out stops the timer.
func (s *sweeper[T]) remove(m T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.members, m)
	// When Stop fails the sweep is already running and will find the set
	// empty.
	if len(s.members) == 0 && s.timer != nil && s.timer.Stop() {
		s.timer = nil
	}
}

func (s *sweeper[T]) tick() {
	s.onTick()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.members) == 0 {
		s.timer = nil
		return
	}
	s.timer.Reset(s.interval)
}

// snapshot is the members now, for a sweep to go through without the lock.
func (s *sweeper[T]) snapshot() []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]T, 0, len(s.members))
	for m := range s.members {
		out = append(out, m)
	}
	return out
}

// active reports how many members there are and whether a sweep is
// scheduled.
func (s *sweeper[T]) active() (members int, scheduled bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.members), s.timer != nil
}
