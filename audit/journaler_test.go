package audit_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
)

// gatedSink reads the events the journaler released and checks, for each,
// that the log was already durable past it.
type gatedSink struct {
	t       *testing.T
	cons    *ring.Consumer[core.Event]
	loop    *core.Loop
	log     *audit.Log
	events  int // journaled events seen
	seqs    int
	lastSeq uint64
	bad     atomic.Int64
	seen    atomic.Uint64
}

func (s *gatedSink) Name() string                        { return "gated-sink" }
func (s *gatedSink) UseDoorbell(d *agent.Doorbell) error { return s.cons.SetDoorbell(d) }
func (s *gatedSink) Drained() bool                       { return s.loop.Stopped() && s.cons.Readable() == 0 }
func (s *gatedSink) DoWork(context.Context) (int, error) {
	w := s.cons.Poll()
	if len(w) == 0 {
		return 0, nil
	}
	durable := s.log.Durable()
	for i := range w {
		if k := w[i].Kind; k < core.KindBookAdd || k > core.KindTrade {
			s.events++ // the journaled kinds
		}
		if w[i].Seq != s.lastSeq {
			s.lastSeq = w[i].Seq
			s.seqs++
		}
		// Every command and event up to this one is a leaf of the log.
		if durable < uint64(s.events+s.seqs) {
			s.bad.Add(1)
		}
	}
	s.seen.Store(s.lastSeq)
	s.cons.Release(len(w))
	return len(w), nil
}

// TestJournalerGatesAndReplays runs producer → engine → journaler → gated
// sink through the agents: the sink only ever sees events that are durable,
// the log holds every command before its events with times that never go
// back, and replaying its commands rebuilds the engine's state hash.
func TestJournalerGatesAndReplays(t *testing.T) {
	for _, d := range []audit.Durability{audit.DurabilityWrite, audit.DurabilityFsync} {
		t.Run(d.String(), func(t *testing.T) {
			dir := t.TempDir()
			log, closeLog, err := audit.Open(t.Context(), audit.Config{WriterConfig: audit.WriterConfig{Dir: dir, Durability: d},
				NoCheckpoints: true, ExternalCommit: true})
			require.NoError(t, err)
			cmds := bench.RandomLimits(3, 30_000, 30)
			in, _ := ring.NewMPSC[core.Command](256, ring.WaitStrategy{Mode: ring.BusySpin})
			out, _ := ring.NewRing[core.Event](1024, ring.WaitStrategy{Mode: ring.BusySpin})
			cring, _ := ring.NewRing[core.Command](512, ring.WaitStrategy{Mode: ring.BusySpin})
			prod := &bench.Producer{In: in, Cmds: cmds}
			cfg := bench.EngineConfig(1 << 16)
			loop, err := core.NewLoop(cfg, core.LoopConfig{Commands: cring, ProducersStopped: prod.Stopped}, in, out)
			require.NoError(t, err)
			j, err := audit.NewJournaler(log, cring, out, loop)
			require.NoError(t, err)
			cons, err := out.NewConsumer(j.Events())
			require.NoError(t, err)
			sink := &gatedSink{t: t, cons: cons, loop: loop, log: log}

			// A service record written during the run lands in sequence too.
			recErr := make(chan error, 1)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			idle := agent.IdleStrategy{Mode: agent.Backoff, Spins: 100, MaxPark: 100 * time.Microsecond}
			wait, err := agent.Start(ctx, agent.Plan{Mode: agent.Dedicated, PrimaryIdle: idle, OthersIdle: idle}, loop, prod, j, sink)
			require.NoError(t, err)
			go func() {
				_, err := log.Record(ctx, "test.marker", struct{ N int }{7})
				recErr <- err
			}()
			deadline := time.Now().Add(time.Minute)
			for sink.seen.Load() != uint64(len(cmds)) && ctx.Err() == nil && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			require.Equal(t, uint64(len(cmds)), sink.seen.Load(), "the sink saw every command answered (plan: %v)", ctx.Err())
			require.NoError(t, <-recErr)
			cancel()
			require.NoError(t, wait())
			require.Zero(t, sink.bad.Load(), "the sink saw events that were not yet durable")
			want := loop.Engine().StateHash()
			require.NoError(t, closeLog())

			// The log: commands before their events, times never back.
			r, err := audit.OpenReader(dir)
			require.NoError(t, err)
			var lastTime int64
			var lastCmd uint64
			var events, markers int
			require.NoError(t, r.Read(0, 0, func(e *audit.Entry) error {
				require.GreaterOrEqual(t, e.Time, lastTime, "time goes back at leaf %d", e.Index)
				lastTime = e.Time
				switch {
				case len(e.Type) > 4 && e.Type[:4] == "cmd.":
					lastCmd++
				case len(e.Type) > 6 && e.Type[:6] == "event.":
					events++
				case e.Type == "test.marker":
					markers++
				}
				return nil
			}))
			require.Equal(t, uint64(len(cmds)), lastCmd)
			require.Equal(t, sink.events, events)
			require.Equal(t, 1, markers)

			// Replay rebuilds the state.
			fresh, err := core.New(cfg, nil)
			require.NoError(t, err)
			require.NoError(t, audit.ReadCommands(r, 0, func(_ uint64, c *core.Command) error {
				fresh.Apply(c)
				return nil
			}))
			require.Equal(t, want, fresh.StateHash())
		})
	}
}
