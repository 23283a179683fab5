package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"
)

// kind is what one message is meant to do to its finding.
type kind int

const (
	kindNew kind = iota
	kindDuplicate
	kindClose
)

func (k kind) String() string {
	return [...]string{"new", "duplicate", "close"}[k]
}

// The inbound statuses each kind of message must get from the DETECTIFY
// preset.
const (
	statusOpened   = "MAPPED_OPENED"
	statusAppended = "MAPPED_APPENDED"
	statusClosed   = "MAPPED_CLOSED"
)

var expectedStatus = [...]string{kindNew: statusOpened, kindDuplicate: statusAppended, kindClose: statusClosed}

// mix is the share of each kind of message, in percent.
type mix struct {
	New, Duplicate, Close int
}

func (m mix) pick(rng *rand.Rand) kind {
	n := rng.IntN(m.New + m.Duplicate + m.Close)
	switch {
	case n < m.New:
		return kindNew
	case n < m.New+m.Duplicate:
		return kindDuplicate
	default:
		return kindClose
	}
}

// load is one run of senders against one webhook; with more than one
// URL (instances sharing one database), senders take them in turn.
type load struct {
	client      *http.Client
	urls        []string
	concurrency int
	duration    time.Duration
	mix         mix
	// klaxon is set when the target is Klaxon: replies are decoded and
	// checked. The baseline's replies are only counted.
	klaxon   bool
	findings *findings
}

// sample is one request as the sender saw it.
type sample struct {
	kind    kind
	latency time.Duration
	code    int // 0 when no HTTP answer came
}

// accepted is one message Klaxon answered 2xx, with what it said.
type accepted struct {
	messageID string
	status    string
	finding   string
	kind      kind
}

type sender struct {
	samples   []sample
	accepted  []accepted
	bodyBytes int64
	// unexpected are replies whose status is not what the preset gives
	// that kind of message: a duplicate that opened a second alert, a
	// close that found nothing open.
	unexpected []string
	errors     []string
}

// outcome is everything one load run observed.
type outcome struct {
	elapsed  time.Duration
	samples  []sample
	accepted []accepted
	// unsure counts requests without a 2xx: each may or may not be stored.
	unsure     int
	bodyBytes  int64
	unexpected []string
	errors     []string
}

// run sends until the duration is over, then waits for the requests in
// flight. Requests are not cut off at the deadline, so every one sent has
// an answer to check.
func (l *load) run(ctx context.Context) (*outcome, error) {
	senders := make([]*sender, l.concurrency)
	seeds := make([]byte, 32*l.concurrency)
	if _, err := crand.Read(seeds); err != nil {
		return nil, fmt.Errorf("seed senders: %w", err)
	}
	start := time.Now()
	deadline := start.Add(l.duration)
	var wg sync.WaitGroup
	for i := range senders {
		s := &sender{}
		senders[i] = s
		rng := rand.New(rand.NewChaCha8([32]byte(seeds[32*i : 32*(i+1)])))
		url := l.urls[i%len(l.urls)]
		wg.Go(func() { l.send(ctx, s, rng, deadline, url) })
	}
	wg.Wait()
	out := &outcome{elapsed: time.Since(start)}
	for _, s := range senders {
		out.samples = append(out.samples, s.samples...)
		out.accepted = append(out.accepted, s.accepted...)
		out.bodyBytes += s.bodyBytes
		out.unexpected = append(out.unexpected, s.unexpected...)
		out.errors = append(out.errors, s.errors...)
	}
	for _, sm := range out.samples {
		if !is2xx(sm.code) {
			out.unsure++
		}
	}
	return out, nil
}

func (l *load) send(ctx context.Context, s *sender, rng *rand.Rand, deadline time.Time, url string) {
	for ctx.Err() == nil && time.Now().Before(deadline) {
		k := l.mix.pick(rng)
		var id string
		if k != kindNew {
			var ok bool
			if id, ok = l.findings.take(rng); !ok {
				// Nothing is open and answered yet (the first moments of a
				// run): open one instead.
				k = kindNew
			}
		}
		severity, eventType := "high", "finding_updated"
		switch k {
		case kindNew:
			id = newFindingID(rng)
			severity, eventType = openSeverities[rng.IntN(len(openSeverities))], "finding"
		case kindClose:
			severity = "low"
		}
		body, err := detectifyBody(id, severity, eventType, time.Now())
		if err != nil {
			s.errors = append(s.errors, err.Error())
			return
		}
		s.bodyBytes += int64(len(body))
		begin := time.Now()
		code, reply, err := l.post(ctx, url, body)
		s.samples = append(s.samples, sample{kind: k, latency: time.Since(begin), code: code})
		if err != nil && len(s.errors) < 10 {
			s.errors = append(s.errors, err.Error())
		}
		if !l.klaxon {
			// The baseline only stores bodies, so its answer says nothing
			// of a finding; tracking what Klaxon would have done keeps the
			// repeats and closes it is sent in the same shares as Klaxon's.
			l.findings.answered(id, k, is2xx(code), expectedStatus[k])
			continue
		}
		ok := is2xx(code)
		var r webhookReply
		if ok {
			if err := json.Unmarshal(reply, &r); err != nil || r.MessageID == "" {
				// Stored, but which message it was is unknown, so it
				// cannot be found in the inbound log: a failure of the
				// contract in its own right.
				s.unexpected = append(s.unexpected, fmt.Sprintf("%s for finding %s: 2xx with an unreadable reply %q", k, id, reply))
			} else {
				s.accepted = append(s.accepted, accepted{messageID: r.MessageID, status: r.Status, finding: id, kind: k})
				if r.Status != expectedStatus[k] {
					s.unexpected = append(s.unexpected, fmt.Sprintf("%s for finding %s: message %s got %s, want %s", k, id, r.MessageID, r.Status, expectedStatus[k]))
				}
			}
		}
		l.findings.answered(id, k, ok, r.Status)
	}
}

// webhookReply is Klaxon's answer to a webhook.
type webhookReply struct {
	MessageID string  `json:"messageId"`
	Status    string  `json:"status"`
	AlertID   *string `json:"alertId"`
}

func (l *load) post(ctx context.Context, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, fmt.Errorf("build webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "klaxon-bench")
	resp, err := l.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		// The status line arrived, so the server decided; only the reply
		// body is incomplete.
		return resp.StatusCode, reply, fmt.Errorf("read webhook reply: %w", err)
	}
	if !is2xx(resp.StatusCode) {
		return resp.StatusCode, reply, fmt.Errorf("webhook answered %d: %s", resp.StatusCode, bytes.TrimSpace(reply))
	}
	return resp.StatusCode, reply, nil
}

func is2xx(code int) bool { return code >= 200 && code < 300 }

// Result is one target's figures.
type Result struct {
	Target      string         `json:"target"`
	Requests    int            `json:"requests"`
	OK          int            `json:"ok"`
	Non2xx      int            `json:"non2xx"`
	Failed      int            `json:"failed"`
	ByKind      map[string]int `json:"byKind"`
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"perSecond"`
	MeanBodyB   int64          `json:"meanBodyBytes"`
	P50ms       float64        `json:"p50ms"`
	P95ms       float64        `json:"p95ms"`
	P99ms       float64        `json:"p99ms"`
	MaxMs       float64        `json:"maxMs"`
	Concurrency int            `json:"concurrency"`
	Errors      []string       `json:"errors,omitempty"`
}

// result summarises an outcome; throughput counts 2xx answers only, since
// anything else is work the server did not accept.
func (o *outcome) result(target string, concurrency int) Result {
	r := Result{Target: target, Requests: len(o.samples), ByKind: map[string]int{}, Seconds: o.elapsed.Seconds(), Concurrency: concurrency}
	lat := make([]time.Duration, 0, len(o.samples))
	for _, s := range o.samples {
		lat = append(lat, s.latency)
		r.ByKind[s.kind.String()]++
		switch {
		case is2xx(s.code):
			r.OK++
		case s.code == 0:
			r.Failed++
		default:
			r.Non2xx++
		}
	}
	if r.Seconds > 0 {
		r.PerSecond = float64(r.OK) / r.Seconds
	}
	if r.Requests > 0 {
		r.MeanBodyB = o.bodyBytes / int64(r.Requests)
	}
	slices.Sort(lat)
	r.P50ms, r.P95ms, r.P99ms = ms(quantile(lat, 0.50)), ms(quantile(lat, 0.95)), ms(quantile(lat, 0.99))
	if len(lat) > 0 {
		r.MaxMs = ms(lat[len(lat)-1])
	}
	// A failing server tends to fail every request the same way; a few
	// examples say enough.
	r.Errors = o.errors[:min(len(o.errors), 10)]
	return r
}

// quantile is the nearest-rank quantile of sorted latencies.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)/10) / 100
}
