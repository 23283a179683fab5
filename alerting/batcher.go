package alerting

import "sync"

// batcher gathers the work of callers that arrive while a batch is being
// carried out, and carries it out together next: a commit waits for the
// disk whatever it holds. Nobody waits for a batch to fill: a lone caller
// is served at once, and batches grow only when callers queue up anyway.
// There is no background goroutine: the first caller to find no batch
// under way leads, carries out everything queued (up to max), and hands
// the lead to the oldest caller still waiting. Ingest's group commit and
// the engine's recording of send outcomes are its two users.
type batcher[T any] struct {
	max     int
	mu      sync.Mutex
	waiting []*batchWaiter[T]
	// busy is set while a leader carries out a batch.
	busy bool
}

type batchWaiter[T any] struct {
	item T
	// lead says whether the waiter must lead the next batch (true) or
	// has been carried out (false).
	lead chan bool
}

// join carries out item in a batch with whatever else is waiting and
// returns once the batch holding it is done. carryOut reports each
// item's outcome in the item itself. A waiter cannot give up early: it
// may be handed the lead, and its item is carried out whether or not its
// caller still listens.
func (b *batcher[T]) join(item T, carryOut func(batch []T)) {
	w := &batchWaiter[T]{item: item, lead: make(chan bool, 1)}
	b.mu.Lock()
	if !b.busy {
		b.busy = true
		b.mu.Unlock()
	} else {
		b.waiting = append(b.waiting, w)
		b.mu.Unlock()
		if !<-w.lead {
			return
		}
	}

	b.mu.Lock()
	n := min(len(b.waiting), b.max-1)
	served := b.waiting[:n:n]
	b.waiting = append(b.waiting[:0:0], b.waiting[n:]...)
	b.mu.Unlock()
	batch := make([]T, 0, n+1)
	batch = append(batch, item)
	for _, q := range served {
		batch = append(batch, q.item)
	}

	carryOut(batch)
	for _, q := range served {
		q.lead <- false
	}

	b.mu.Lock()
	if len(b.waiting) > 0 {
		next := b.waiting[0]
		b.waiting = b.waiting[1:]
		b.mu.Unlock()
		next.lead <- true
	} else {
		b.busy = false
		b.mu.Unlock()
	}
}
