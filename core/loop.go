package core

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/tradecore/tradecore/core/ring"
)

// Clock supplies the loop's nanosecond timestamps. A nil *Clock or the zero
// value reads the wall clock (Unix nanoseconds); StepClock makes a
// deterministic one for tests and replays. It is a concrete type, not an
// interface, so stamping a command costs no dynamic dispatch.
type Clock struct {
	manual     bool
	next, step int64
}

// StepClock returns a clock that reads start, start+step, start+2*step, ….
func StepClock(start, step int64) *Clock { return &Clock{manual: true, next: start, step: step} }

// Now returns the next timestamp.
func (c *Clock) Now() int64 {
	if c != nil && c.manual {
		v := c.next
		c.next += c.step
		return v
	}
	return time.Now().UnixNano()
}

// LoopConfig shapes the engine loop. The zero value works: no pinning, the
// wall clock, batches of up to 256 commands.
type LoopConfig struct {
	// CPU pins the loop's OS thread to this CPU with sched_setaffinity when
	// Pin is set. Leave Pin off on machines where the loop must share cores.
	Pin bool
	CPU int
	// Batch is the most commands taken from the inbound ring at once.
	Batch int
	// Clock stamps commands; nil reads the wall clock.
	Clock *Clock
	// FirstSeq is the sequence number of the first command (default 1); a
	// recovering engine continues from its journal's last sequence + 1.
	FirstSeq uint64
}

// ErrStopped is returned by Loop.Run when its context ended while events of
// commands already applied were still waiting for room in the outbound
// ring; those events were not published. Restart from the journal.
var ErrStopped = errors.New("core: loop stopped with unpublished events")

// Loop is the engine goroutine: it drains commands from the inbound ring,
// stamps each with a gapless sequence number and a timestamp, applies them,
// and publishes their events to the outbound ring, one batch at a time.
type Loop struct {
	eng    *Engine
	in     *ring.MPSC[Command]
	out    *ring.Ring[Event]
	cfg    LoopConfig
	seq    uint64
	batch  []Command
	ctx    context.Context
	pubErr error
}

// NewLoop builds the engine for cfg and the loop that feeds it from in and
// publishes its events to out. Create every consumer of out before Run.
func NewLoop(cfg Config, lc LoopConfig, in *ring.MPSC[Command], out *ring.Ring[Event]) (*Loop, error) {
	if lc.Batch == 0 {
		lc.Batch = 256
	}
	if lc.FirstSeq == 0 {
		lc.FirstSeq = 1
	}
	switch {
	case lc.Batch < 1:
		return nil, fmt.Errorf("%w: LoopConfig.Batch is %d; set it to at least 1", ErrConfig, lc.Batch)
	case lc.Pin && (lc.CPU < 0 || lc.CPU >= runtime.NumCPU()):
		return nil, fmt.Errorf("%w: LoopConfig.CPU is %d; pin to a CPU in 0..%d or turn Pin off", ErrConfig, lc.CPU, runtime.NumCPU()-1)
	case in == nil || out == nil:
		return nil, fmt.Errorf("%w: NewLoop needs an inbound and an outbound ring", ErrConfig)
	}
	if cfg.EventBatch == 0 {
		cfg.EventBatch = min(defaultEventBatch, out.Cap())
	}
	if cfg.EventBatch > out.Cap() {
		return nil, fmt.Errorf("%w: EventBatch %d exceeds the outbound ring's %d slots; enlarge the ring", ErrConfig, cfg.EventBatch, out.Cap())
	}
	l := &Loop{in: in, out: out, cfg: lc, seq: lc.FirstSeq - 1, batch: make([]Command, lc.Batch)}
	eng, err := New(cfg, l.publish)
	if err != nil {
		return nil, err
	}
	l.eng = eng
	return l, nil
}

// Engine returns the loop's engine. Touch it only while Run is not running.
func (l *Loop) Engine() *Engine { return l.eng }

// Seq returns the sequence number of the last command applied. Read it only
// while Run is not running.
func (l *Loop) Seq() uint64 { return l.seq }

// publish is the engine's sink: it copies a batch into the outbound ring,
// waiting (with the ring's strategy) while the consumers catch up.
func (l *Loop) publish(evs []Event) {
	if l.pubErr != nil {
		return
	}
	if _, err := l.out.Publish(l.ctx, evs); err != nil {
		l.pubErr = err
	}
}

// Run locks the loop to its OS thread (pinned when configured) and runs until
// ctx ends. It returns ctx.Err() after a clean stop, or an error wrapping
// ErrStopped if events could not be published before the stop.
func (l *Loop) Run(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if l.cfg.Pin {
		if err := pinThread(l.cfg.CPU); err != nil {
			return err
		}
	}
	l.ctx = ctx
	clock := l.cfg.Clock
	for {
		if err := l.in.Wait(ctx); err != nil {
			return err
		}
		n := l.in.Drain(l.batch)
		for i := range l.batch[:n] {
			c := &l.batch[i]
			l.seq++
			c.Seq, c.Time = l.seq, clock.Now()
			l.eng.Apply(c)
		}
		l.eng.Flush()
		if l.pubErr != nil {
			return fmt.Errorf("%w after seq %d: %w", ErrStopped, l.seq, l.pubErr)
		}
	}
}
