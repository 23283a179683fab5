package main

import (
	"math/rand/v2"
	"sync"
)

// finding is what the tool knows about one finding from the answers it
// got, which is what the server's state is checked against afterwards.
type finding struct {
	// opened: a new-finding message for it was answered 2xx.
	opened bool
	// closed: a close was answered 2xx.
	closed bool
	// appends counts repeats answered MAPPED_APPENDED.
	appends int
	// unsure: an opening or closing message about it got no 2xx, so it may
	// or may not have been stored and its alert's state is unknown.
	unsure bool
	// unsureAppends: a repeat got no 2xx, so the alert may have more
	// appends than were answered.
	unsureAppends bool
}

// findings tracks every finding the tool has sent and hands out the open
// ones for repeats and closes. A finding is handed to one request at a
// time and only after its opening message was answered 2xx, so a repeat
// or close never races with the message that opens the alert, and a
// repeat never races with the close that would make it open a new alert.
type findings struct {
	mu    sync.Mutex
	all   map[string]*finding
	ready []string       // open and not in flight
	index map[string]int // position in ready
}

func newFindings() *findings {
	return &findings{all: map[string]*finding{}, index: map[string]int{}}
}

// take removes a random ready finding from the pool; ok is false when
// none is ready.
func (f *findings) take(rng *rand.Rand) (id string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.ready) == 0 {
		return "", false
	}
	i := rng.IntN(len(f.ready))
	id = f.ready[i]
	last := len(f.ready) - 1
	f.ready[i] = f.ready[last]
	f.index[f.ready[i]] = i
	f.ready = f.ready[:last]
	delete(f.index, id)
	return id, true
}

func (f *findings) makeReady(id string) {
	f.index[id] = len(f.ready)
	f.ready = append(f.ready, id)
}

func (f *findings) get(id string) *finding {
	s := f.all[id]
	if s == nil {
		s = &finding{}
		f.all[id] = s
	}
	return s
}

// answered records the outcome of one message about id. ok is whether it
// got a 2xx; status is Klaxon's inbound status from the reply.
func (f *findings) answered(id string, k kind, ok bool, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.get(id)
	switch {
	case !ok && k == kindDuplicate:
		// A repeat of an open finding can only append, stored or not: the
		// alert stays open, only its append count is uncertain.
		s.unsureAppends = true
		f.makeReady(id)
	case !ok:
		s.unsure = true
	case k == kindNew:
		s.opened = true
		f.makeReady(id)
	case k == kindDuplicate:
		if status == statusAppended {
			s.appends++
		}
		f.makeReady(id)
	case k == kindClose:
		s.closed = true
	}
}

// snapshot copies the state for checking, once the load has stopped.
func (f *findings) snapshot() map[string]finding {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]finding, len(f.all))
	for id, s := range f.all {
		out[id] = *s
	}
	return out
}
