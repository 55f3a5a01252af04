package audit

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
)

// TestReplayRebuildsState replays the journaled commands into a fresh engine
// and gets the state hash of the engine that wrote the log — the log is the
// recovery journal.
func TestReplayRebuildsState(t *testing.T) {
	dir := t.TempDir()
	el := writeEngineLog(t, dir, 2000, 100)
	el.close(t)
	orig, err := core.New(bench.EngineConfig(1<<16), func([]core.Event) {})
	require.NoError(t, err)
	for i := range el.cmds {
		orig.Apply(&el.cmds[i])
	}
	orig.Flush()
	r, err := OpenReader(dir)
	require.NoError(t, err)
	var evs []core.Event
	eng, err := core.New(bench.EngineConfig(1<<16), func(e []core.Event) { evs = append(evs, e...) })
	require.NoError(t, err)
	n := 0
	require.NoError(t, ReadCommands(r, 0, func(_ uint64, c *core.Command) error {
		eng.Apply(c)
		n++
		return nil
	}))
	eng.Flush()
	require.Equal(t, len(el.cmds), n)
	require.Equal(t, orig.StateHash(), eng.StateHash())
	require.Len(t, evs, el.evs, "replay yields exactly the journaled events")
	m := 0
	require.NoError(t, ReadCommands(r, 1500, func(_ uint64, c *core.Command) error { m++; return nil }))
	require.Equal(t, 500, m)
}
