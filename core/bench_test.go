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
	benchPassCfg(b, cmds, func() core.Config { return bench.EngineConfig(maxOrders) })
}

func benchPassCfg(b *testing.B, cmds []core.Command, config func() core.Config) {
	var eng *core.Engine
	i := len(cmds)
	b.ReportAllocs()
	for b.Loop() {
		if i == len(cmds) {
			b.StopTimer()
			var err error
			if eng, err = core.New(config(), nil); err != nil {
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
	benchLatencyCfg(b, cmds, bench.EngineConfig(maxOrders))
}

func benchLatencyCfg(b *testing.B, cmds []core.Command, cfg core.Config) {
	h := bench.NewHistogram()
	for b.Loop() {
		r, err := bench.Engine(b.Name(), cfg, cmds, true)
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
	benchPass(b, bench.RandomLimits(1, benchOrders, 30), bench.ProductionMaxOrders)
}

func BenchmarkRandomLimitsLatency(b *testing.B) {
	benchLatency(b, bench.RandomLimits(1, benchOrders, 30), bench.ProductionMaxOrders)
}

// Workload 2: the move-heavy mix (9% GTC, 3% IOC, 6% cancel, 82% replace).
func BenchmarkMoveHeavy(b *testing.B) {
	benchPass(b, bench.MoveHeavy(1, benchOrders), bench.ProductionMaxOrders)
}

func BenchmarkMoveHeavyLatency(b *testing.B) {
	benchLatency(b, bench.MoveHeavy(1, benchOrders), bench.ProductionMaxOrders)
}

// Risk off and on, side by side in one run: the same streams, the second with
// 1,000 configured accounts and every pre-trade check running (none binding).
func BenchmarkRisk(b *testing.B) {
	workloads := []struct {
		name      string
		cmds      []core.Command
		maxOrders int
	}{
		{"RandomLimits", bench.RandomLimits(1, benchOrders, 30), bench.ProductionMaxOrders},
		{"MoveHeavy", bench.MoveHeavy(1, benchOrders), bench.ProductionMaxOrders},
	}
	for _, w := range workloads {
		for _, on := range []bool{false, true} {
			cfg := func() core.Config { return bench.EngineConfig(w.maxOrders) }
			name := w.name + "/risk=off"
			if on {
				cfg = func() core.Config { return bench.RiskEngineConfig(w.maxOrders) }
				name = w.name + "/risk=on"
			}
			b.Run(name, func(b *testing.B) { benchPassCfg(b, w.cmds, cfg) })
			b.Run(name+"-latency", func(b *testing.B) { benchLatencyCfg(b, w.cmds, cfg()) })
		}
	}
}

// BenchmarkRiskReplaceKeep: replaces that keep the price and quantity of
// resting orders (the keep-priority case, the risk layer's fast path), risk
// off and on, over 1,000 resting buys of 1,000 accounts.
func BenchmarkRiskReplaceKeep(b *testing.B) {
	for _, on := range []bool{false, true} {
		cfg, name := bench.EngineConfig(1<<12), "risk=off"
		if on {
			cfg, name = bench.RiskEngineConfig(1<<12), "risk=on"
		}
		b.Run(name, func(b *testing.B) {
			eng, err := core.New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			const n = 1000
			cmds := make([]core.Command, n)
			for i := range cmds {
				cmds[i] = core.Command{Kind: core.CmdNew, Instrument: bench.Instrument.ID, Account: uint32(i + 1), ClOrdID: 1,
					Side: core.Buy, Type: core.Limit, TIF: core.GTC, Price: bench.Mid - 1 - int64(i%100), Qty: 10}
				eng.Apply(&cmds[i])
				// order i is the i+1-th accepted: OrderID i+1
				cmds[i].Kind, cmds[i].OrderID, cmds[i].OrigClOrdID, cmds[i].ClOrdID = core.CmdReplace, uint64(i+1), 1, 2
			}
			eng.Flush()
			i, seq := 0, uint64(n)
			b.ReportAllocs()
			for b.Loop() {
				c := &cmds[i]
				seq++
				c.Seq = seq
				eng.Apply(c)
				c.OrigClOrdID, c.ClOrdID = c.ClOrdID, c.ClOrdID+1 // each replace takes a fresh reference
				if i++; i == n {
					i = 0
					eng.Flush()
				}
			}
		})
	}
}
