package retention

import "github.com/prometheus/client_golang/prometheus"

// metrics are the pruner's progress, shown on GET /metrics.
type metrics struct {
	pruned  *prometheus.CounterVec
	backlog *prometheus.GaugeVec
	batches *prometheus.HistogramVec
	lastRun prometheus.Gauge
}

func newMetrics(kinds []string) *metrics {
	m := &metrics{
		pruned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "klaxon_retention_pruned_total",
			Help: "Rows pruned by this instance, by kind (bodies emptied, closed alerts removed with their timelines, events, audit entries).",
		}, []string{"kind"}),
		backlog: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "klaxon_retention_backlog",
			Help: "Estimate of what is due for pruning, by kind, as of this instance's last run (counts stop at 100,000; events are estimated from their sequence numbers).",
		}, []string{"kind"}),
		batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "klaxon_retention_batch_duration_seconds",
			Help:    "Time one pruning batch took, by kind.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"kind"}),
		lastRun: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "klaxon_retention_last_run_timestamp_seconds",
			Help: "When this instance last finished a pruning run (Unix time); 0 if it never had the turn.",
		}),
	}
	for _, k := range kinds {
		m.pruned.WithLabelValues(k)
		m.backlog.WithLabelValues(k)
	}
	return m
}

// Collectors are the pruner's metrics, for the server's registry.
func (p *Pruner) Collectors() []prometheus.Collector {
	return []prometheus.Collector{p.metrics.pruned, p.metrics.backlog, p.metrics.batches, p.metrics.lastRun}
}
