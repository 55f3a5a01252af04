package netseg

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descEnforced = prometheus.NewDesc("tradecore_netseg_enforced",
		"1 when a segmentation policy is in force and intact, 0 otherwise (off, not applied, or damaged: see `tradecore netseg status`).", nil, nil)
	descSegment = prometheus.NewDesc("tradecore_netseg_segment_enforced",
		"1 when the segment's programs are attached to its cgroup as it is now.", []string{"segment"}, nil)
	descDenied = prometheus.NewDesc("tradecore_netseg_denied_total",
		"Connections, datagrams and packets the segment's policy refused, by hook.", []string{"segment", "hook"}, nil)
	descAllowed = prometheus.NewDesc("tradecore_netseg_allowed_total",
		"Connections, datagrams and packets the segment's policy let through, by hook.", []string{"segment", "hook"}, nil)
)

// Collector exports segmentation state and counters to Prometheus. It
// reads the pinned maps on every scrape, so it reports what the kernel
// enforces whichever process applied the policy. Register it with the
// daemon's registry.
type Collector struct {
	e       *Enforcer
	timeout time.Duration
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector for e; with e nil (segmentation off) it
// reports tradecore_netseg_enforced 0 and nothing else.
func NewCollector(e *Enforcer) *Collector {
	return &Collector{e: e, timeout: 5 * time.Second}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEnforced, descSegment, descDenied, descAllowed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. A failure to read the kernel
// state is reported as an invalid metric, which fails the scrape visibly.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.e == nil {
		ch <- prometheus.MustNewConstMetric(descEnforced, prometheus.GaugeValue, 0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	st, err := c.e.Status(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descEnforced, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descEnforced, prometheus.GaugeValue, boolValue(st.Enforced))
	for _, s := range st.Segments {
		ch <- prometheus.MustNewConstMetric(descSegment, prometheus.GaugeValue, boolValue(s.Enforced), s.Name)
	}
	stats, err := c.e.Stats(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descDenied, err)
		return
	}
	for _, s := range stats.Segments {
		for _, h := range s.Hooks {
			ch <- prometheus.MustNewConstMetric(descDenied, prometheus.CounterValue, float64(h.Denied), s.Name, h.Hook)
			ch <- prometheus.MustNewConstMetric(descAllowed, prometheus.CounterValue, float64(h.Allowed), s.Name, h.Hook)
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
