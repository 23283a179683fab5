package server

import (
	"sync"
	"time"
)

// sendQueue runs websocket sends on a few goroutines that take them in
// turn, instead of a goroutine for each. A webhook seen by 1,000
// subscribers means 1,000 sends at once; each on a fresh goroutine would
// grow that goroutine's stack through gqlgen's marshalling every time,
// which cost more than a tenth of the fan-out's CPU. The goroutines end
// once the queue is empty, so an idle server runs none.
//
// A send blocks while its client does not read (up to the write
// timeout), and must not hold up the others: when work has waited a
// stall and some workers are inside sends that began longer ago than
// that, a worker is added for each, so that max of them keep moving.
type sendQueue struct {
	max   int
	stall time.Duration

	mu      sync.Mutex
	jobs    []func()
	next    int
	workers map[*sendWorker]struct{}
	// watching is set while a stall check is scheduled.
	watching bool
}

type sendWorker struct {
	// since is when the current job began; zero between jobs.
	since time.Time
}

func newSendQueue(max int, stall time.Duration) *sendQueue {
	return &sendQueue{max: max, stall: stall, workers: map[*sendWorker]struct{}{}}
}

// push queues job; jobs start in the order pushed.
func (q *sendQueue) push(job func()) {
	q.mu.Lock()
	q.jobs = append(q.jobs, job)
	var w *sendWorker
	if len(q.workers) < q.max {
		w = q.addWorker()
	} else if !q.watching {
		q.watching = true
		time.AfterFunc(q.stall, func() { q.checkStalled(time.Now()) })
	}
	q.mu.Unlock()
	if w != nil {
		go q.work(w)
	}
}

func (q *sendQueue) addWorker() *sendWorker {
	w := &sendWorker{}
	q.workers[w] = struct{}{}
	return w
}

func (q *sendQueue) work(w *sendWorker) {
	for {
		q.mu.Lock()
		w.since = time.Time{}
		if q.next == len(q.jobs) {
			q.jobs, q.next = q.jobs[:0], 0
			delete(q.workers, w)
			q.mu.Unlock()
			return
		}
		job := q.jobs[q.next]
		q.jobs[q.next] = nil
		q.next++
		w.since = time.Now()
		q.mu.Unlock()
		job()
	}
}

// checkStalled adds a worker for each one whose job began a stall or more
// before now, while jobs wait; it checks again a stall later until none
// do.
func (q *sendQueue) checkStalled(now time.Time) {
	q.mu.Lock()
	q.watching = false
	waiting := len(q.jobs) - q.next
	if waiting == 0 {
		q.mu.Unlock()
		return
	}
	moving := 0
	for w := range q.workers {
		if w.since.IsZero() || now.Sub(w.since) < q.stall {
			moving++
		}
	}
	var added []*sendWorker
	for moving+len(added) < q.max && len(added) < waiting {
		added = append(added, q.addWorker())
	}
	q.watching = true
	time.AfterFunc(q.stall, func() { q.checkStalled(time.Now()) })
	q.mu.Unlock()
	for _, w := range added {
		go q.work(w)
	}
}
