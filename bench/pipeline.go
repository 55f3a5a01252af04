package bench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
)

// PipelineConfig shapes a run of the pipeline workload.
type PipelineConfig struct {
	// Rate is the offered load in commands per second; 0 offers as fast as
	// the producer can push (the sustained-throughput run).
	Rate float64
	// Plan places the engine and the producer and consumer agents on
	// threads, as tradecore serve does (docs/threading.md). The zero value is
	// the shared mode, unpinned, backing off when idle.
	Plan agent.Plan
	// MaxOrders sizes the engine (default 1<<20, production capacity).
	MaxOrders int
	// InboundRing and OutboundRing are the ring sizes (defaults 1<<14 and
	// 1<<15, as serve's).
	InboundRing, OutboundRing int
	// Journal, when set, puts a journal in the path as serve does: it is
	// given the loop's commands ring, the outbound ring and the loop, and
	// returns the journaler agent, the consumer the latency sink is gated
	// after (so it reads only what the journal made durable; nil: the sink
	// reads beside the journaler) and a close function. (cmd/tcbench builds
	// it with package audit.)
	Journal func(cmds *ring.Ring[core.Command], out *ring.Ring[core.Event], loop *core.Loop) (agent.Agent, *ring.Consumer[core.Event], func() error, error)
}

// Pipeline runs cmds through the whole path the way tradecore serve runs
// its agents: a producer agent pushes them into the inbound ring on an
// open-loop schedule (command i is due at start + i/Rate), the engine agent
// applies them and publishes events to the outbound ring, and a consumer
// agent records, for every command, the time from when it was due to when
// its first event arrived. Measuring from the due time, not the push time,
// corrects for coordinated omission: a stall delays every command queued
// behind it and the histogram shows it.
func Pipeline(ctx context.Context, name string, cmds []core.Command, pc PipelineConfig) (Result, error) {
	if pc.MaxOrders == 0 {
		pc.MaxOrders = 1 << 20
	}
	if pc.InboundRing == 0 {
		pc.InboundRing = 1 << 14
	}
	if pc.OutboundRing == 0 {
		pc.OutboundRing = 1 << 15
	}
	// Waits inside a duty cycle (the engine facing a full outbound ring, the
	// producer never waits) spin: a runner must not park on a channel.
	in, err := ring.NewMPSC[core.Command](pc.InboundRing, ring.WaitStrategy{Mode: ring.BusySpin})
	if err != nil {
		return Result{}, err
	}
	out, err := ring.NewRing[core.Event](pc.OutboundRing, ring.WaitStrategy{Mode: ring.BusySpin})
	if err != nil {
		return Result{}, err
	}
	var cons *ring.Consumer[core.Event]
	if pc.Journal == nil {
		if cons, err = out.NewConsumer(); err != nil {
			return Result{}, err
		}
	}
	prod := &Producer{In: in, Cmds: cmds, Rate: pc.Rate}
	lc := core.LoopConfig{ProducersStopped: prod.Stopped}
	var cmdRing *ring.Ring[core.Command]
	if pc.Journal != nil {
		if cmdRing, err = ring.NewRing[core.Command](pc.InboundRing, ring.WaitStrategy{Mode: ring.BusySpin}); err != nil {
			return Result{}, err
		}
		lc.Commands = cmdRing
	}
	loop, err := core.NewLoop(EngineConfig(pc.MaxOrders), lc, in, out)
	if err != nil {
		return Result{}, err
	}
	agents := []agent.Agent{prod}
	if pc.Journal != nil {
		j, after, closeJournal, err := pc.Journal(cmdRing, out, loop)
		if err != nil {
			return Result{}, err
		}
		defer closeJournal()
		// The sink reads what the journaler made durable (after nil: beside
		// the journaler, ungated).
		var gates []*ring.Consumer[core.Event]
		if after != nil {
			gates = append(gates, after)
		}
		if cons, err = out.NewConsumer(gates...); err != nil {
			return Result{}, err
		}
		agents = append(agents, j)
	}
	res := Result{Name: name, Orders: len(cmds), Latency: NewHistogram()}
	sink := &LatencySink{Cons: cons, Upstream: loop, Want: uint64(len(cmds)), Hist: res.Latency}
	agents = append(agents, sink)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	prod.Start = nanotime() + int64(time.Millisecond)
	wait, err := agent.Start(ctx, pc.Plan, loop, agents...)
	if err != nil {
		return res, err
	}
	for !sink.Done() {
		if ctx.Err() != nil {
			break
		}
		time.Sleep(200 * time.Microsecond)
	}
	cancel()
	if err := wait(); err != nil {
		return res, fmt.Errorf("bench: pipeline: %w", err)
	}
	if !sink.Done() {
		return res, fmt.Errorf("bench: pipeline stopped after %d of %d commands: %w", sink.Seen(), len(cmds), context.Cause(ctx))
	}
	res.Elapsed = time.Duration(sink.last - prod.first)
	res.Events = sink.events
	runtime.ReadMemStats(&after)
	res.Allocs = after.Mallocs - before.Mallocs
	res.GCs = after.NumGC - before.NumGC
	res.OpenAfter = loop.Engine().OpenCount()
	return res, nil
}

// Producer is an agent that pushes Cmds into In on an open-loop schedule:
// command i is due at Start + i/Rate (Rate 0: as fast as the ring takes
// them, each due when pushed). It sets the Tag of each command it pushes (a
// copy; Cmds is not changed) to the command's due time, so a consumer can
// measure from it. It never waits: when the ring is
// full it tries again in its next duty cycle, and the delay shows in the
// latency of every command behind.
type Producer struct {
	In    *ring.MPSC[core.Command]
	Cmds  []core.Command
	Rate  float64
	Start int64 // nanotime of command 0's due time

	i       int
	first   int64
	stopped atomic.Bool
}

// OnStop implements agent.Stopper.
func (p *Producer) OnStop() { p.stopped.Store(true) }

// Pushed returns how many commands the producer has pushed; read it after
// its runner returned.
func (p *Producer) Pushed() int { return p.i }

// Stopped reports whether the producer has pushed its last command (it ran
// out of commands, or its runner stopped): the engine's drain waits for it.
func (p *Producer) Stopped() bool { return p.stopped.Load() }

// Name implements agent.Agent.
func (p *Producer) Name() string { return "producer" }

// DoWork implements agent.Agent: it pushes what is due, at most 256.
func (p *Producer) DoWork(context.Context) (int, error) {
	if p.i == len(p.Cmds) {
		p.stopped.Store(true)
		return 0, nil
	}
	now := nanotime()
	if p.i == 0 {
		if now < p.Start {
			return 0, nil
		}
		p.first = now
	}
	var interval float64
	if p.Rate > 0 {
		interval = 1e9 / p.Rate
	}
	n := 0
	for p.i < len(p.Cmds) && n < 256 {
		due := now
		if interval > 0 {
			if due = p.Start + int64(float64(p.i)*interval); due > now {
				break
			}
		}
		c := p.Cmds[p.i]
		c.Tag = uint64(due)
		if !p.In.TryPush(&c) {
			break
		}
		p.i++
		n++
	}
	return n, nil
}

// Upstream is what a sink waits for before it may stop: the engine loop.
type Upstream interface{ Stopped() bool }

// LatencySink is an agent that consumes the outbound ring and records, for
// the first event of every command, now minus the command's Tag (its due
// time) into Hist. It is done after Want commands.
type LatencySink struct {
	Cons     *ring.Consumer[core.Event]
	Upstream Upstream
	Want     uint64
	Hist     *hdrhistogram.Histogram

	lastSeq uint64
	events  int
	last    int64
	done    atomic.Bool
	seen    atomic.Uint64
}

// Name implements agent.Agent.
func (s *LatencySink) Name() string { return "latency-sink" }

// UseDoorbell implements agent.DoorbellUser.
func (s *LatencySink) UseDoorbell(d *agent.Doorbell) error { return s.Cons.SetDoorbell(d) }

// DoWork implements agent.Agent.
func (s *LatencySink) DoWork(context.Context) (int, error) {
	w := s.Cons.Poll()
	if len(w) == 0 {
		return 0, nil
	}
	now := nanotime()
	for i := range w {
		ev := &w[i]
		if ev.Seq != s.lastSeq {
			s.lastSeq = ev.Seq
			_ = s.Hist.RecordValue(max(now-int64(ev.Tag), 1))
		}
	}
	s.events += len(w)
	s.Cons.Release(len(w))
	s.seen.Store(s.lastSeq)
	if s.lastSeq >= s.Want && !s.done.Load() {
		s.last = now
		s.done.Store(true)
	}
	return len(w), nil
}

// Drained implements agent.Drainer: the engine has stopped and every event
// it published has been read.
func (s *LatencySink) Drained() bool {
	return s.Upstream.Stopped() && len(s.Cons.Poll()) == 0
}

// Done reports whether Want commands have been answered.
func (s *LatencySink) Done() bool { return s.done.Load() }

// Seen returns the sequence number of the last command answered.
func (s *LatencySink) Seen() uint64 { return s.seen.Load() }
