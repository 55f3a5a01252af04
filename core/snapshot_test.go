package core_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
)

// TestSnapshotRestoresTheEngine: an engine loaded from a snapshot taken
// mid-stream has the same state hash and then answers the rest of the
// stream exactly as the engine that never stopped, risk layer on and off.
func TestSnapshotRestoresTheEngine(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func() core.Config
	}{{"risk-off", func() core.Config { return bench.EngineConfig(1 << 14) }}, {"risk-on", func() core.Config { return bench.RiskEngineConfig(1 << 14) }}} {
		t.Run(tc.name, func(t *testing.T) {
			cmds := bench.MoveHeavy(3, 40_000)
			for i := range cmds {
				cmds[i].Seq = uint64(i + 1)
			}
			var liveEvents, restoredEvents []core.Event
			live, err := core.New(tc.cfg(), func(b []core.Event) { liveEvents = append(liveEvents, b...) })
			require.NoError(t, err)
			half := len(cmds) / 2
			for i := range cmds[:half] {
				live.Apply(&cmds[i])
			}
			live.Flush()
			var snap bytes.Buffer
			require.NoError(t, live.WriteSnapshot(&snap))

			restored, err := core.New(tc.cfg(), func(b []core.Event) { restoredEvents = append(restoredEvents, b...) })
			require.NoError(t, err)
			require.NoError(t, restored.ReadSnapshot(bytes.NewReader(snap.Bytes())))
			require.Equal(t, live.StateHash(), restored.StateHash())
			require.NoError(t, restored.CheckInvariants())

			liveEvents = liveEvents[:0]
			for i := half; i < len(cmds); i++ {
				live.Apply(&cmds[i])
				restored.Apply(&cmds[i])
			}
			live.Flush()
			restored.Flush()
			require.Equal(t, len(liveEvents), len(restoredEvents))
			for i := range liveEvents {
				require.Equal(t, liveEvents[i], restoredEvents[i], "event %d", i)
			}
			require.Equal(t, live.StateHash(), restored.StateHash())
		})
	}
}

// TestSnapshotRefusals: a damaged, truncated or foreign snapshot is refused
// and leaves the engine as it was.
func TestSnapshotRefusals(t *testing.T) {
	eng, err := core.New(bench.EngineConfig(1<<12), nil)
	require.NoError(t, err)
	for i, c := range bench.RandomLimits(1, 2000, 30) {
		c.Seq = uint64(i + 1)
		eng.Apply(&c)
	}
	var snap bytes.Buffer
	require.NoError(t, eng.WriteSnapshot(&snap))
	b := snap.Bytes()
	fresh := func(cfg core.Config) *core.Engine {
		e, err := core.New(cfg, nil)
		require.NoError(t, err)
		return e
	}
	flip := bytes.Clone(b)
	flip[len(flip)/2] ^= 1
	for name, tc := range map[string]struct {
		data []byte
		cfg  core.Config
	}{
		"flipped byte":   {flip, bench.EngineConfig(1 << 12)},
		"truncated":      {b[:len(b)-40], bench.EngineConfig(1 << 12)},
		"empty":          {nil, bench.EngineConfig(1 << 12)},
		"another config": {b, bench.EngineConfig(1 << 13)},
	} {
		t.Run(name, func(t *testing.T) {
			e := fresh(tc.cfg)
			before := e.StateHash()
			require.ErrorIs(t, e.ReadSnapshot(bytes.NewReader(tc.data)), core.ErrSnapshot)
			require.Equal(t, before, e.StateHash(), "a refused snapshot changed the engine")
		})
	}
}
