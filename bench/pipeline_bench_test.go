package bench_test

import (
	"testing"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core/agent"
)

// BenchmarkPipelineSustained runs the unpaced pipeline (producer agent →
// inbound ring → engine agent → outbound ring → latency-sink agent) in the
// shared threading mode with the engine pinned and busy-spinning, as
// tcbench's sustained row. Profile it to see where the rings cost.
func BenchmarkPipelineSustained(b *testing.B) {
	cmds := bench.RandomLimits(1, 1_000_000, 30)
	plan := agent.Plan{Pin: true, Isolate: true, PrimaryIdle: agent.IdleStrategy{Mode: agent.BusySpin}}
	b.ReportAllocs()
	for b.Loop() {
		r, err := bench.Pipeline(b.Context(), "pipeline", cmds, bench.PipelineConfig{Plan: plan})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.PerSecond(), "cmds/s")
	}
}
