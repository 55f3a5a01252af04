package netbench_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/bench/netbench"
	"github.com/tradecore/tradecore/core/agent"
)

// TestNetworkBenchmarkRuns: the network benchmark's machinery works end to
// end (server, one-in-flight orders, echo, load over sessions, plot) on
// plain TCP and TLS. No timing is asserted: figures come from tcbench net.
func TestNetworkBenchmarkRuns(t *testing.T) {
	echo, err := netbench.StartEcho()
	require.NoError(t, err)
	defer echo.Close()
	idle := agent.IdleStrategy{Mode: agent.Backoff, Spins: 200, MaxPark: 200 * time.Microsecond}
	for _, tls := range []bool{false, true} {
		srv, err := netbench.StartNetServer(t.Context(), netbench.NetServerConfig{Dir: t.TempDir(), Durability: audit.DurabilityWrite, TLS: tls,
			Sessions: 2, MaxOrders: 1 << 14, Plan: agent.Plan{PrimaryIdle: idle, OthersIdle: idle}})
		require.NoError(t, err)
		h, err := netbench.PingPong(t.Context(), srv.Keys[0], 50)
		require.NoError(t, err)
		require.Equal(t, int64(50), h.TotalCount())
		e, err := echo.PingPong(50, 72)
		require.NoError(t, err)
		require.Equal(t, int64(50), e.TotalCount())
		res, err := netbench.RunNetLoad(t.Context(), srv, netbench.NetLoad{Rate: 2000, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond, CrossPct: 30, Seed: 1})
		require.NoError(t, err)
		require.Positive(t, res.Acked)
		require.Equal(t, res.Acked, res.Ack.TotalCount())
		require.NoError(t, srv.Stop())
		var svg bytes.Buffer
		require.NoError(t, bench.WriteSVG(&svg, "test", []bench.Series{{Name: "ack", H: res.Ack}, {Name: "echo", H: e}}))
		require.Contains(t, svg.String(), "<polyline")
	}
}
