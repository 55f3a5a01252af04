package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/proto"
)

// metrics are the gateway's Prometheus metrics, every child resolved at
// start so that counting on the hot path is one atomic add.
type metrics struct {
	sessions    [2]prometheus.Gauge
	msgs        [2][2][256]prometheus.Counter // port, direction (0 in, 1 out), type
	rejects     map[core.Reason]prometheus.Counter
	logins      [2][2]prometheus.Counter // port, ok / rejected
	disconnects map[core.Reason]prometheus.Counter
	ackHist     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, depth func(name string) func() float64) *metrics {
	m := &metrics{rejects: map[core.Reason]prometheus.Counter{}, disconnects: map[core.Reason]prometheus.Counter{}}
	sessions := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tradecore_gateway_sessions", Help: "Logged-in sessions by port."}, []string{"port"})
	msgs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tradecore_gateway_messages_total", Help: "Protocol messages by port, direction and type."}, []string{"port", "direction", "type"})
	rejects := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tradecore_gateway_rejects_total", Help: "Refusals sent (engine Rejected, SessionReject, LoginRejected) by reason."}, []string{"reason"})
	logins := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tradecore_gateway_logins_total", Help: "Login attempts by port and result."}, []string{"port", "result"})
	disc := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tradecore_gateway_disconnects_total", Help: "Sessions ended by the server, by reason."}, []string{"reason"})
	m.ackHist = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tradecore_gateway_ack_seconds",
		Help:    "Gateway receive to first response queued (journaled), order-entry commands.",
		Buckets: prometheus.ExponentialBuckets(1e-6, 2, 24)})
	for p := range 2 {
		pn := port(p).String()
		m.sessions[p] = sessions.WithLabelValues(pn)
		m.logins[p][0] = logins.WithLabelValues(pn, "ok")
		m.logins[p][1] = logins.WithLabelValues(pn, "rejected")
		for d, dn := range []string{"in", "out"} {
			for _, t := range proto.Types() {
				m.msgs[p][d][t] = msgs.WithLabelValues(pn, dn, t.String())
			}
		}
	}
	all := append(append(append(core.Reasons(), core.RiskReasons()...), proto.GatewayReasons()...), proto.AttestReasons()...)
	for _, r := range all {
		name := proto.ReasonName(r) + " (" + strconv.Itoa(int(r)) + ")"
		m.rejects[r] = rejects.WithLabelValues(name)
		m.disconnects[r] = disc.WithLabelValues(name)
	}
	if reg != nil {
		reg.MustRegister(sessions, msgs, rejects, logins, disc, m.ackHist)
		for _, name := range []string{"inbound", "control"} {
			if f := depth(name); f != nil {
				reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tradecore_ring_depth",
					Help: "Commands waiting in an engine ring.", ConstLabels: prometheus.Labels{"ring": name}}, f))
			}
		}
	}
	return m
}

func (m *metrics) in(p port, t byte) {
	if c := m.msgs[p][0][t]; c != nil {
		c.Inc()
	}
}

func (m *metrics) out(p port, t byte) {
	if c := m.msgs[p][1][t]; c != nil {
		c.Inc()
	}
}

func (m *metrics) reject(r core.Reason) {
	if c := m.rejects[r]; c != nil {
		c.Inc()
	}
}

func (m *metrics) disconnect(r core.Reason) {
	if c := m.disconnects[r]; c != nil {
		c.Inc()
	}
}

func (m *metrics) ack(ns int64) { m.ackHist.Observe(float64(ns) / 1e9) }
