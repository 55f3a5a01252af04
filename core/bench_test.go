package core_test

import (
	"testing"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
)

// Workload sizes: the one million orders per pass.
const benchOrders = 1_000_000

// benchPass applies cmds one per b.Loop iteration on an engine that is
// rebuilt (untimed) whenever the stream is used up, so ns/op is per command.
func benchPass(b *testing.B, cmds []core.Command, maxOrders int) {
	var eng *core.Engine
	i := len(cmds)
	b.ReportAllocs()
	for b.Loop() {
		if i == len(cmds) {
			b.StopTimer()
			var err error
			if eng, err = core.New(bench.EngineConfig(maxOrders), nil); err != nil {
				b.Fatal(err)
			}
			for j := range cmds {
				cmds[j].Seq = uint64(j + 1)
			}
			i = 0
			b.StartTimer()
		}
		eng.Apply(&cmds[i])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
}

// benchLatency runs whole timed passes and reports per-command percentiles.
func benchLatency(b *testing.B, cmds []core.Command, maxOrders int) {
	h := bench.NewHistogram()
	for b.Loop() {
		r, err := bench.Engine(b.Name(), bench.EngineConfig(maxOrders), cmds, true)
		if err != nil {
			b.Fatal(err)
		}
		h.Merge(r.Latency)
	}
	p50, p99, p999, p9999, _ := bench.Percentiles(h)
	b.ReportMetric(float64(p50), "p50-ns")
	b.ReportMetric(float64(p99), "p99-ns")
	b.ReportMetric(float64(p999), "p99.9-ns")
	b.ReportMetric(float64(p9999), "p99.99-ns")
}

// Workload 1: one million random limit orders around a mid, ~30% crossing.
func BenchmarkRandomLimits(b *testing.B) {
	benchPass(b, bench.RandomLimits(1, benchOrders, 30), 1<<20)
}

func BenchmarkRandomLimitsLatency(b *testing.B) {
	benchLatency(b, bench.RandomLimits(1, benchOrders, 30), 1<<20)
}

// Workload 2: the move-heavy mix (9% GTC, 3% IOC, 6% cancel, 82% replace).
func BenchmarkMoveHeavy(b *testing.B) {
	benchPass(b, bench.MoveHeavy(1, benchOrders), 1<<16)
}

func BenchmarkMoveHeavyLatency(b *testing.B) {
	benchLatency(b, bench.MoveHeavy(1, benchOrders), 1<<16)
}
