package core

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/tradecore/tradecore/core/agent"
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
// Backoff idle strategy, the wall clock, batches of up to 256 commands, no
// control lane.
type LoopConfig struct {
	// Pin, CPU and Idle configure the runner Run starts (see package agent):
	// with Pin the loop's OS thread is pinned to CPU. A loop given to a
	// runner of the caller's (Doorbell, DoWork) ignores them.
	Pin  bool
	CPU  int
	Idle agent.IdleStrategy
	// Batch is the most commands taken from a ring per duty cycle.
	Batch int
	// Clock stamps commands; nil reads the wall clock.
	Clock *Clock
	// FirstSeq is the sequence number of the first command (default 1); a
	// recovering engine continues from its journal's last sequence + 1.
	FirstSeq uint64
	// Control, when set, is a second inbound ring for control commands
	// (operators' admin commands, surveillance actions). The loop drains it
	// before the order ring in every duty cycle, so a flood of orders can
	// neither fill it nor delay it by more than one batch.
	Control *ring.MPSC[Command]
	// ProducersStopped, when set, reports whether every producer of the
	// inbound rings has stopped pushing; the loop's drain after a stop waits
	// for it, so a command pushed while the stop spreads is still applied.
	// nil: the drain ends as soon as the rings are empty.
	ProducersStopped func() bool
}

// ErrStopped is returned by Loop.Run when its context ended while events of
// commands already applied were still waiting for room in the outbound
// ring; those events were not published. Restart from the journal.
var ErrStopped = errors.New("core: loop stopped with unpublished events")

// Loop is the engine agent (package agent): each duty cycle drains the
// control ring and then the inbound ring, stamps every command with a
// gapless sequence number and a timestamp, applies it, and publishes the
// events to the outbound ring. See docs/threading.md.
//
// Run it on a runner of its own with Run, or hand it to agent.Run with the
// loop's Doorbell.
type Loop struct {
	eng     *Engine
	in, ctl *ring.MPSC[Command]
	out     *ring.Ring[Event]
	cfg     LoopConfig
	seq     uint64
	batch   []Command
	ctx     context.Context
	pubErr  error
	bell    *agent.Doorbell
	stopped atomic.Bool
}

// NewLoop builds the engine for cfg and the loop that feeds it from in (and
// lc.Control) and publishes its events to out. It sets the loop's doorbell on
// the inbound rings. Create every consumer of out before the loop runs.
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
	case lc.Control == in:
		return nil, fmt.Errorf("%w: LoopConfig.Control is the inbound ring; give control commands a ring of their own", ErrConfig)
	}
	if cfg.EventBatch == 0 {
		cfg.EventBatch = min(defaultEventBatch, out.Cap())
	}
	if cfg.EventBatch > out.Cap() {
		return nil, fmt.Errorf("%w: EventBatch %d exceeds the outbound ring's %d slots; enlarge the ring", ErrConfig, cfg.EventBatch, out.Cap())
	}
	l := &Loop{in: in, ctl: lc.Control, out: out, cfg: lc, seq: lc.FirstSeq - 1, batch: make([]Command, lc.Batch), bell: agent.NewDoorbell()}
	eng, err := New(cfg, l.publish)
	if err != nil {
		return nil, err
	}
	l.eng = eng
	in.SetDoorbell(l.bell)
	if l.ctl != nil {
		l.ctl.SetDoorbell(l.bell)
	}
	return l, nil
}

// Engine returns the loop's engine. Touch it only while the loop is not
// running.
func (l *Loop) Engine() *Engine { return l.eng }

// Seq returns the sequence number of the last command applied. Read it only
// while the loop is not running.
func (l *Loop) Seq() uint64 { return l.seq }

// Doorbell is the doorbell the inbound rings ring; give it to the runner that
// runs the loop.
func (l *Loop) Doorbell() *agent.Doorbell { return l.bell }

// UseDoorbell implements agent.DoorbellUser: the inbound rings ring d
// instead of the loop's own doorbell. Call it before any producer starts.
func (l *Loop) UseDoorbell(d *agent.Doorbell) error {
	l.bell = d
	l.in.SetDoorbell(d)
	if l.ctl != nil {
		l.ctl.SetDoorbell(d)
	}
	return nil
}

// Name implements agent.Agent.
func (l *Loop) Name() string { return "engine" }

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

// DoWork implements agent.Agent: one batch from the control ring, then one
// from the inbound ring, applied and published.
func (l *Loop) DoWork(ctx context.Context) (int, error) {
	l.ctx = ctx
	n := 0
	if l.ctl != nil {
		n = l.apply(l.ctl.Drain(l.batch))
	}
	n += l.apply(l.in.Drain(l.batch))
	if n == 0 {
		return 0, nil
	}
	l.eng.Flush()
	if l.pubErr != nil {
		return n, fmt.Errorf("%w after seq %d: %w", ErrStopped, l.seq, l.pubErr)
	}
	return n, nil
}

func (l *Loop) apply(k int) int {
	clock := l.cfg.Clock
	for i := range l.batch[:k] {
		c := &l.batch[i]
		l.seq++
		c.Seq, c.Time = l.seq, clock.Now()
		l.eng.Apply(c)
	}
	return k
}

// Drained implements agent.Drainer: after its context ends the loop keeps
// applying until its producers have stopped (LoopConfig.ProducersStopped)
// and both inbound rings are empty.
func (l *Loop) Drained() bool {
	if p := l.cfg.ProducersStopped; p != nil && !p() {
		return false
	}
	return l.in.Len() == 0 && (l.ctl == nil || l.ctl.Len() == 0)
}

// OnClose implements agent.Closer: it marks the loop stopped.
func (l *Loop) OnClose() { l.stopped.Store(true) }

// Stopped reports whether the loop has stopped and published its last
// event; a consumer that drains after it (agent.Drainer) waits for it.
func (l *Loop) Stopped() bool { return l.stopped.Load() }

// Run runs the loop on a runner of its own (pinned when configured) until ctx
// ends and the inbound rings are drained. It returns nil after a clean stop,
// or an error wrapping ErrStopped if events could not be published.
func (l *Loop) Run(ctx context.Context) error {
	return agent.Run(ctx, agent.Config{Name: "engine", Pin: l.cfg.Pin, CPU: l.cfg.CPU, Idle: l.cfg.Idle, Doorbell: l.bell}, l)
}
