package core_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
)

// collector is a consumer agent that copies every event it reads.
type collector struct {
	cons *ring.Consumer[core.Event]
	loop *core.Loop
	got  []core.Event
	seen atomic.Uint64
}

func (c *collector) Name() string                        { return "collector" }
func (c *collector) UseDoorbell(d *agent.Doorbell) error { return c.cons.SetDoorbell(d) }
func (c *collector) DoWork(context.Context) (int, error) {
	w := c.cons.Poll()
	if len(w) == 0 {
		return 0, nil
	}
	c.got = append(c.got, w...)
	seq := w[len(w)-1].Seq // read before Release: the slots are the producer's after it
	c.cons.Release(len(w))
	c.seen.Store(seq)
	return len(w), nil
}
func (c *collector) Drained() bool { return c.loop.Stopped() && len(c.cons.Poll()) == 0 }

// pipeline builds producer → inbound ring → engine → outbound ring →
// collector on small rings, so every ring wraps many times and both
// back-pressure paths (inbound full, outbound full) are taken.
func pipeline(t *testing.T, cmds []core.Command, rate float64) (*bench.Producer, *core.Loop, *collector) {
	t.Helper()
	in, err := ring.NewMPSC[core.Command](64, ring.WaitStrategy{Mode: ring.BusySpin})
	require.NoError(t, err)
	out, err := ring.NewRing[core.Event](256, ring.WaitStrategy{Mode: ring.BusySpin})
	require.NoError(t, err)
	cons, err := out.NewConsumer()
	require.NoError(t, err)
	prod := &bench.Producer{In: in, Cmds: cmds, Rate: rate}
	loop, err := core.NewLoop(bench.EngineConfig(1<<14), core.LoopConfig{Clock: core.StepClock(1, 1), Batch: 32, ProducersStopped: prod.Stopped}, in, out)
	require.NoError(t, err)
	return prod, loop, &collector{cons: cons, loop: loop}
}

// direct applies the first n commands to a fresh engine, sequenced and
// stamped as the loop does, and returns its events.
func direct(t *testing.T, cmds []core.Command, n int) []core.Event {
	t.Helper()
	var evs []core.Event
	eng, err := core.New(bench.EngineConfig(1<<14), func(b []core.Event) { evs = append(evs, b...) })
	require.NoError(t, err)
	clock := core.StepClock(1, 1)
	for i := range cmds[:n] {
		c := cmds[i]
		c.Seq, c.Time = uint64(i+1), clock.Now()
		eng.Apply(&c)
	}
	eng.Flush()
	return evs
}

// TestEveryIdleStrategyDeliversInOrder: in both threading modes and with
// every idle strategy on both runners, every event of every command
// arrives, once, in order, exactly as a directly driven engine emits them.
func TestEveryIdleStrategyDeliversInOrder(t *testing.T) {
	cmds := bench.RandomLimits(7, 4000, 30)
	want := direct(t, cmds, len(cmds))
	modes := []agent.IdleMode{agent.Backoff, agent.BusySpin, agent.Yield, agent.Sleep}
	for _, mode := range []agent.Mode{agent.Shared, agent.Dedicated} {
		for _, ei := range modes {
			for _, oi := range modes {
				t.Run(fmt.Sprintf("%s/engine=%s/others=%s", mode, ei, oi), func(t *testing.T) {
					prod, loop, col := pipeline(t, cmds, 0)
					plan := agent.Plan{Mode: mode,
						PrimaryIdle: agent.IdleStrategy{Mode: ei, Spins: 64, Yields: 4, MinPark: 20 * time.Microsecond, MaxPark: 200 * time.Microsecond},
						OthersIdle:  agent.IdleStrategy{Mode: oi, Spins: 64, Yields: 4, MinPark: 20 * time.Microsecond, MaxPark: 200 * time.Microsecond}}
					ctx, cancel := context.WithCancel(t.Context())
					defer cancel()
					wait, err := agent.Start(ctx, plan, loop, prod, col)
					require.NoError(t, err)
					require.Eventually(t, func() bool { return col.seen.Load() == uint64(len(cmds)) }, 60*time.Second, time.Millisecond)
					cancel()
					require.NoError(t, wait())
					sameEvents(t, want, col.got)
				})
			}
		}
	}
}

// TestStopMidStreamLosesNothing: cancelling the plan while commands are
// still flowing stops every agent cleanly; every command the producer
// pushed is applied (the engine's drain waits for the producer to stop), and
// the collector holds exactly their events, none lost, none twice, matching
// a direct replay of those commands.
func TestStopMidStreamLosesNothing(t *testing.T) {
	cmds := bench.RandomLimits(8, 200_000, 30)
	for _, mode := range []agent.Mode{agent.Shared, agent.Dedicated} {
		t.Run(mode.String(), func(t *testing.T) {
			prod, loop, col := pipeline(t, cmds, 0)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			wait, err := agent.Start(ctx, agent.Plan{Mode: mode, PrimaryIdle: agent.IdleStrategy{Mode: agent.Yield}, OthersIdle: agent.IdleStrategy{Mode: agent.Yield}}, loop, prod, col)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return col.seen.Load() > 1000 }, 60*time.Second, time.Millisecond)
			cancel()
			require.NoError(t, wait())
			applied := int(loop.Seq())
			require.Less(t, applied, len(cmds), "the stop must fall mid-stream for this test to mean anything")
			require.Equal(t, prod.Pushed(), applied, "every command pushed before the producer stopped is applied")
			sameEvents(t, direct(t, cmds, applied), col.got)
		})
	}
}

// sameEvents requires got to be want, ignoring Tag (the producer's due
// times), and names the first difference.
func sameEvents(t *testing.T, want, got []core.Event) {
	t.Helper()
	for i := range min(len(want), len(got)) {
		w, g := want[i], got[i]
		w.Tag, g.Tag = 0, 0
		require.Equal(t, w, g, "event %d of %d", i, len(want))
	}
	require.Len(t, got, len(want), "events delivered")
}
