package bench_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
)

// TestRandomLimitsShape: about 30% of the orders execute on arrival, the
// rest rest, and a pass allocates nothing and runs no GC cycle.
func TestRandomLimitsShape(t *testing.T) {
	cmds := bench.RandomLimits(1, 100_000, 30)
	r, err := bench.Engine("random-limits", bench.EngineConfig(1<<17), cmds, false)
	require.NoError(t, err)
	require.InDelta(t, 30, r.CrossedPercent, 2, "share of orders that took liquidity")
	require.Less(t, r.AllocsPerOrder(), 1e-4)
	require.Zero(t, r.GCs)
	// Each crossing order consumes about one resting order, so of the 70%
	// that rest about 40% of all orders are still open at the end.
	require.InDelta(t, 40_000, r.OpenAfter, 5_000)
}

// TestMoveHeavyShape: exchange-core's mix — 9% GTC, 3% IOC, 6% cancel, 82%
// replace (within a point or so: GTC turns into cancels while the book holds
// more than 1,100 orders) on a book of about 1,000 orders from 1,000 accounts.
func TestMoveHeavyShape(t *testing.T) {
	cmds := bench.MoveHeavy(1, 100_000)
	var gtc, ioc, cancel, replace int
	accounts := map[uint32]bool{}
	for _, c := range cmds {
		accounts[c.Account] = true
		switch {
		case c.Kind == core.CmdNew && c.TIF == core.GTC:
			gtc++
		case c.Kind == core.CmdNew && c.TIF == core.IOC:
			ioc++
		case c.Kind == core.CmdCancel:
			cancel++
		case c.Kind == core.CmdReplace:
			replace++
		}
	}
	n := float64(len(cmds)) / 100
	require.InDelta(t, 9, float64(gtc)/n, 1.5)
	require.InDelta(t, 3, float64(ioc)/n, 0.5)
	require.InDelta(t, 6, float64(cancel)/n, 1.5)
	require.InDelta(t, 82, float64(replace)/n, 1)
	require.Len(t, accounts, 1000)

	r, err := bench.Engine("move-heavy", bench.EngineConfig(1<<16), cmds, true)
	require.NoError(t, err)
	require.InDelta(t, 1000, r.OpenAfter, 250)
	// MemStats counts every goroutine's allocations (the test runner's too);
	// core's TestNoAllocations is the per-order proof.
	require.Less(t, r.AllocsPerOrder(), 1e-4)
	require.Equal(t, int64(len(cmds)), r.Latency.TotalCount())
}

// TestPipelineAnswersEveryCommand: through the rings, paced and unpaced,
// every command gets its first event and its latency recorded, with no
// allocation in the pass.
func TestPipelineAnswersEveryCommand(t *testing.T) {
	cmds := bench.RandomLimits(1, 50_000, 30)
	for _, rate := range []float64{0, 200_000} {
		r, err := bench.Pipeline(t.Context(), "pipeline", cmds, bench.PipelineConfig{Rate: rate, MaxOrders: 1 << 17})
		require.NoError(t, err)
		require.Equal(t, int64(len(cmds)), r.Latency.TotalCount())
		require.Greater(t, r.Events, len(cmds))
		require.Zero(t, r.GCs)
	}
}
