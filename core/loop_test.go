package core_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/ring"
)

// TestLoopSequencesAndPublishes: four producers fan in through the MPSC ring;
// the loop stamps gapless sequence numbers and clock readings, and a consumer
// of the outbound ring sees every event of every command, in order, exactly
// as a directly driven engine produces them for the same sequenced commands.
func TestLoopSequencesAndPublishes(t *testing.T) {
	const producers, perProducer = 4, 5000
	in, err := ring.NewMPSC[core.Command](1024, ring.WaitStrategy{Mode: ring.SpinYield})
	require.NoError(t, err)
	out, err := ring.NewRing[core.Event](1<<14, ring.WaitStrategy{Mode: ring.SpinYield})
	require.NoError(t, err)
	cons, err := out.NewConsumer()
	require.NoError(t, err)
	loop, err := core.NewLoop(bench.EngineConfig(1<<16), core.LoopConfig{Clock: core.StepClock(1000, 10), Pin: true, CPU: 0}, in, out)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- loop.Run(ctx) }()

	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range bench.RandomLimits(uint64(p+1), perProducer, 30) {
				c.Account = uint32(p + 1) // ids are unique per account
				if err := in.Push(ctx, &c); err != nil {
					t.Errorf("push: %v", err)
					return
				}
			}
		}()
	}

	// After every producer is done, a sentinel (an unknown command kind,
	// rejected) marks the end of the stream. The main goroutine consumes all
	// along: the loop waits for room in the outbound ring (backpressure).
	sentinel := core.Command{Kind: 99, Tag: 1 << 62}
	go func() {
		wg.Wait()
		if err := in.Push(ctx, &sentinel); err != nil {
			t.Errorf("push sentinel: %v", err)
		}
	}()
	var got []core.Event
	for len(got) == 0 || got[len(got)-1].Tag != sentinel.Tag {
		require.NoError(t, cons.Wait(ctx))
		w := cons.Poll()
		got = append(got, w...)
		cons.Release(len(w))
	}
	require.Equal(t, core.RejectUnknownCommand, got[len(got)-1].Reason)
	got = got[:len(got)-1]
	cancel()
	require.NoError(t, <-runErr, "a loop stopped by its context after draining returns nil")

	// Gapless sequence, step-clock stamps, and commands recovered from the
	// Accepted/Rejected events replay to the same events on a fresh engine.
	var cmds []core.Command
	seen := map[uint64]bool{}
	for _, ev := range got {
		require.Equal(t, int64(1000+10*(ev.Seq-1)), ev.Time, "seq %d stamped with the wrong clock reading", ev.Seq)
		if !seen[ev.Seq] {
			seen[ev.Seq] = true
			require.Len(t, seen, int(ev.Seq), "sequence numbers must be gapless and in order")
			require.Contains(t, []core.EventKind{core.KindAccepted, core.KindRejected}, ev.Kind)
			cmds = append(cmds, core.Command{Seq: ev.Seq, Time: ev.Time, Kind: core.CmdNew, Instrument: ev.Instrument,
				Account: ev.Account, ClOrdID: ev.ClOrdID, Side: ev.Side, Type: ev.Type, TIF: ev.TIF, Mark: ev.Mark, Price: ev.Price,
				Qty: ev.Qty, STP: core.STPOff, Tag: ev.Tag})
		}
	}
	require.Len(t, cmds, producers*perProducer)
	var direct []core.Event
	eng, err := core.New(bench.EngineConfig(1<<16), func(b []core.Event) { direct = append(direct, b...) })
	require.NoError(t, err)
	for i := range cmds {
		eng.Apply(&cmds[i])
	}
	eng.Flush()
	require.Equal(t, direct, got)
	require.Equal(t, eng.StateHash(), loop.Engine().StateHash())
	require.Equal(t, uint64(producers*perProducer+1), loop.Seq())
}

func TestLoopConfigErrors(t *testing.T) {
	in, _ := ring.NewMPSC[core.Command](16, ring.WaitStrategy{})
	out, _ := ring.NewRing[core.Event](16, ring.WaitStrategy{})
	_, err := core.NewLoop(bench.EngineConfig(16), core.LoopConfig{Pin: true, CPU: 4096}, in, out)
	require.ErrorIs(t, err, core.ErrConfig)
	require.ErrorContains(t, err, "CPU")
	_, err = core.NewLoop(bench.EngineConfig(16), core.LoopConfig{}, nil, out)
	require.ErrorIs(t, err, core.ErrConfig)
	_, err = core.NewLoop(core.Config{Instruments: bench.EngineConfig(16).Instruments, EventBatch: 64}, core.LoopConfig{}, in, out)
	require.ErrorContains(t, err, "enlarge the ring")
	require.False(t, errors.Is(err, core.ErrStopped))
}

// TestWallClockNeverGoesBack: the wall clock's stamps strictly increase and,
// through several re-anchors of its counter, stay close to time.Now (the
// bound is loose: this checks the scaling, not the machine's speed).
func TestWallClockNeverGoesBack(t *testing.T) {
	var c core.Clock
	last := int64(0)
	end := time.Now().Add(350 * time.Millisecond)
	for i := 0; time.Now().Before(end); i++ {
		v := c.Now()
		require.Greater(t, v, last, "stamp %d", i)
		last = v
		if i%1000 == 0 {
			require.InDelta(t, float64(time.Now().UnixNano()), float64(v), float64(20*time.Millisecond), "stamp %d", i)
		}
	}
}

func BenchmarkWallClock(b *testing.B) {
	var c core.Clock
	for b.Loop() {
		c.Now()
	}
}
