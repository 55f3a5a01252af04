package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/ring"
)

// PipelineConfig shapes a run of workload 3.
type PipelineConfig struct {
	// Rate is the offered load in commands per second; 0 offers as fast as
	// the producer can push (the sustained-throughput run).
	Rate float64
	// InWait is the inbound ring's strategy: how the engine loop waits for
	// commands. OutWait is the outbound ring's: how consumers wait for events.
	// A pinned loop should busy-spin (it owns its core and must never have to
	// win back a P from the scheduler); consumers on shared cores park.
	InWait, OutWait ring.WaitStrategy
	// Loop configures the engine loop (pinning).
	Loop core.LoopConfig
	// MaxOrders sizes the engine (default 1<<20).
	MaxOrders int
}

// Pipeline runs cmds through the whole path: a producer goroutine pushes
// them into the inbound ring on an open-loop schedule (command i is due at
// start + i/Rate), the engine loop applies them and publishes events to the
// outbound ring, and a consumer records, for every command, the time from
// when it was due to when its first event arrived. Measuring from the due
// time, not the push time, corrects for coordinated omission: a stall delays
// every command queued behind it and the histogram shows it.
func Pipeline(ctx context.Context, name string, cmds []core.Command, pc PipelineConfig) (Result, error) {
	if pc.MaxOrders == 0 {
		pc.MaxOrders = 1 << 20
	}
	in, err := ring.NewMPSC[core.Command](1<<16, pc.InWait)
	if err != nil {
		return Result{}, err
	}
	out, err := ring.NewRing[core.Event](1<<18, pc.OutWait)
	if err != nil {
		return Result{}, err
	}
	cons, err := out.NewConsumer()
	if err != nil {
		return Result{}, err
	}
	loop, err := core.NewLoop(EngineConfig(pc.MaxOrders), pc.Loop, in, out)
	if err != nil {
		return Result{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)

	loopErr := make(chan error, 1)
	go func() { loopErr <- loop.Run(ctx) }()

	var interval float64
	if pc.Rate > 0 {
		interval = 1e9 / pc.Rate
	}
	start := nanotime() + int64(time.Millisecond)
	prodErr := make(chan error, 1)
	go func() {
		// Push every command already due, then yield the CPU until more are
		// due: on a 2-core machine a producer spinning on the clock would
		// starve the consumer. Latency is still counted from each command's
		// due time, so batching here hides nothing.
		for i := 0; i < len(cmds); {
			now := nanotime()
			if interval == 0 {
				now = math.MaxInt64
			}
			pushed := 0
			for ; i < len(cmds) && pushed < 256; i++ {
				due := now
				if interval > 0 {
					due = start + int64(float64(i)*interval)
					if due > now {
						break
					}
				} else {
					due = nanotime()
				}
				c := cmds[i]
				c.Tag = uint64(due)
				if err := in.Push(ctx, &c); err != nil {
					prodErr <- err
					return
				}
				pushed++
			}
			// Yield after every burst: the producer shares a core with the
			// consumer, which must keep draining the outbound ring or the
			// engine stalls behind it (a gateway session yields the same way
			// whenever it waits on its socket).
			runtime.Gosched()
		}
		prodErr <- nil
	}()

	res := Result{Name: name, Orders: len(cmds), Latency: NewHistogram()}
	h := res.Latency
	var lastSeq uint64
	t0 := time.Now()
	for lastSeq < uint64(len(cmds)) {
		if err := cons.Wait(ctx); err != nil {
			return res, fmt.Errorf("bench: pipeline consumer: %w", err)
		}
		w := cons.Poll()
		now := nanotime()
		for i := range w {
			ev := &w[i]
			if ev.Seq != lastSeq {
				lastSeq = ev.Seq
				_ = h.RecordValue(max(now-int64(ev.Tag), 1))
			}
			res.Events++
		}
		cons.Release(len(w))
	}
	res.Elapsed = time.Since(t0)
	if err := <-prodErr; err != nil {
		return res, err
	}
	cancel()
	if err := <-loopErr; err != nil && !errors.Is(err, context.Canceled) {
		return res, err
	}
	runtime.ReadMemStats(&after)
	res.Allocs = after.Mallocs - before.Mallocs
	res.GCs = after.NumGC - before.NumGC
	res.OpenAfter = loop.Engine().OpenCount()
	return res, nil
}
