package server

import (
	"sync"
	"testing"
	"time"
)

// waitFor fails the test when ch stays silent; the timeout only keeps a
// broken test from hanging.
func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never happened", what)
	}
}

func TestSendQueueRunsEveryJobOnFewGoroutines(t *testing.T) {
	q := newSendQueue(2, time.Hour)
	var mu sync.Mutex
	var order []int
	running, most := 0, 0
	done := make(chan struct{})
	const jobs = 500
	for i := range jobs {
		q.push(func() {
			mu.Lock()
			running++
			most = max(most, running)
			order = append(order, i)
			finished := len(order) == jobs
			running--
			mu.Unlock()
			if finished {
				close(done)
			}
		})
	}
	waitFor(t, done, "all jobs")
	if most > 2 {
		t.Errorf("%d jobs ran at once, want at most 2", most)
	}
	seen := make([]bool, jobs)
	for _, v := range order {
		if seen[v] {
			t.Fatalf("job %d ran twice", v)
		}
		seen[v] = true
	}
}

// Jobs stuck in their sends get company: once work has waited a stall,
// a worker joins for each stuck one, and the queue moves on.
func TestSendQueueAddsWorkersPastStuckJobs(t *testing.T) {
	stall := time.Hour // checks are made by hand, at chosen times
	q := newSendQueue(2, stall)
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	for range 2 {
		q.push(func() {
			started <- struct{}{}
			<-release
		})
	}
	waitFor(t, started, "first stuck job")
	waitFor(t, started, "second stuck job")
	ran := make(chan struct{})
	q.push(func() { close(ran) })

	// Not stuck yet: the workers' jobs began less than a stall ago.
	q.checkStalled(time.Now())
	select {
	case <-ran:
		t.Fatal("a job ran while both workers were busy and none had stalled")
	default:
	}
	q.checkStalled(time.Now().Add(stall + time.Second))
	waitFor(t, ran, "the waiting job")

	close(release)
	// Every worker ends once the queue is empty.
	for range 1000 {
		q.mu.Lock()
		n := len(q.workers)
		q.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatal("workers outlived their queue")
}
