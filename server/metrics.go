package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/klaxonhq/klaxon/db"
)

// metrics live in a registry of their own, so two servers in one process
// (as in tests) never collide.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.HistogramVec
	messages *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

// newMetrics registers the server's metrics; inFlight is its count of
// requests being served, which a stop waits to reach zero.
func newMetrics(inFlight *atomic.Int64) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "klaxon_http_request_duration_seconds",
			Help:    "HTTP requests by route pattern and status code.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "code"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "klaxon_inbound_messages_total",
			Help: "Webhook messages stored, by final status.",
		}, []string{"status"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "klaxon_webhooks_refused_total",
			Help: "Webhook requests refused without storing anything, by reason.",
		}, []string{"reason"}),
	}
	inFlightGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "klaxon_http_requests_in_flight",
		Help: "HTTP requests being served, this one included; websockets count only while upgrading.",
	}, func() float64 { return float64(inFlight.Load()) })
	m.registry.MustRegister(m.requests, m.messages, m.refused, inFlightGauge,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *metrics) webhookStored(status db.InboundStatus) {
	m.messages.WithLabelValues(string(status)).Inc()
}

func (m *metrics) webhookRefused(reason string) {
	m.refused.WithLabelValues(reason).Inc()
}

// requireToken lets through only requests carrying token as their bearer
// token; an empty token lets every request through. The comparison is of
// SHA-256 sums, in constant time, so neither the token's bytes nor its
// length can be learnt from how fast a refusal comes.
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		given, _ := parseBearer(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(given))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			writeError(w, http.StatusUnauthorized, "metrics need Authorization: Bearer <KLAXON_METRICS_TOKEN>")
			return
		}
		next.ServeHTTP(w, r)
	})
}
