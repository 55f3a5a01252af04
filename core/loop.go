package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"
	_ "unsafe" // for go:linkname

	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
)

// Clock supplies the loop's nanosecond timestamps. A nil *Clock reads
// time.Now; the zero value is the loop's wall clock; StepClock makes a
// deterministic one for tests and replays. It is a concrete type, not an
// interface, so stamping a command costs no dynamic dispatch.
//
// The wall clock costs a few nanoseconds a stamp: it reads the CPU's
// time-stamp counter and scales it by the rate measured against the
// runtime's monotonic clock, re-anchoring on that clock, and on Unix time
// from time.Now, every 100 ms (machines without a usable counter read the
// monotonic clock each time). Its stamps strictly increase — never equal to
// or below the one before, even when the system clock steps back (they then
// advance by 1 ns until the wall clock catches up) — so the journal's
// timestamps never go backwards.
type Clock struct {
	manual     bool
	next, step int64

	last      int64   // the last stamp given
	offset    int64   // Unix time minus the monotonic clock at the anchor
	mono      int64   // monotonic time of the anchor; 0 = not yet
	tsc       uint64  // time-stamp counter at the anchor
	nsPerTick float64 // measured over the last interval; 0 = not yet
	due       uint64  // counter value of the next re-anchor
}

// StepClock returns a clock that reads start, start+step, start+2*step, ….
func StepClock(start, step int64) *Clock { return &Clock{manual: true, next: start, step: step} }

// reanchor is how often the wall clock re-reads the monotonic clock and Unix
// time.
const reanchor = 100 * int64(time.Millisecond)

// Now returns the next timestamp.
func (c *Clock) Now() int64 {
	if c == nil {
		return time.Now().UnixNano()
	}
	if c.manual {
		v := c.next
		c.next += c.step
		return v
	}
	var t int64
	if tsc := rdtsc(); haveTSC && c.nsPerTick > 0 && tsc < c.due && tsc >= c.tsc {
		t = c.mono + int64(float64(tsc-c.tsc)*c.nsPerTick) + c.offset
	} else {
		t = c.anchor(tsc)
	}
	if t <= c.last {
		t = c.last + 1
	}
	c.last = t
	return t
}

// calibrate measures the counter's rate over about a millisecond and anchors
// the clock, so that its first stamps already come from the counter. NewLoop
// calls it; a Clock that is not calibrated reads the monotonic clock until it
// has measured the rate over its first re-anchor interval.
func (c *Clock) calibrate() {
	if c == nil || c.manual || !haveTSC {
		return
	}
	m0, t0 := nanotime(), rdtsc()
	for nanotime()-m0 < int64(time.Millisecond) {
	}
	m1, t1 := nanotime(), rdtsc()
	if t1 <= t0 {
		return
	}
	c.nsPerTick = float64(m1-m0) / float64(t1-t0)
	c.offset = time.Now().UnixNano() - m1
	c.mono, c.tsc = m1, t1
	c.due = t1 + uint64(float64(reanchor)/c.nsPerTick)
}

// anchor re-reads the monotonic clock and Unix time, measures the counter's
// rate over the interval since the last anchor, and returns the time now.
func (c *Clock) anchor(tsc uint64) int64 {
	m := nanotime()
	if c.mono != 0 && tsc > c.tsc && m > c.mono {
		c.nsPerTick = float64(m-c.mono) / float64(tsc-c.tsc)
	}
	if c.mono == 0 || m-c.mono >= reanchor || c.nsPerTick == 0 {
		c.offset = time.Now().UnixNano() - m
		c.mono, c.tsc = m, tsc
		if c.nsPerTick > 0 {
			c.due = tsc + uint64(float64(reanchor)/c.nsPerTick)
		}
	}
	return m + c.offset
}

// nanotime is the runtime's monotonic clock.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

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
	// Clock stamps commands; nil: the wall clock (a zero Clock of its own).
	Clock *Clock
	// FirstSeq is the sequence number of the first command (default 1); a
	// recovering engine continues from its journal's last sequence + 1.
	FirstSeq uint64
	// Control, when set, is a second inbound ring for control commands
	// (operators' admin commands, surveillance actions). The loop drains it
	// before the order ring in every duty cycle, so a flood of orders can
	// neither fill it nor delay it by more than one batch.
	Control *ring.MPSC[Command]
	// Commands, when set, receives every command in sequence, stamped, before
	// its events are published: the journal's input (what replay feeds).
	// Create its consumers before the loop runs.
	Commands *ring.Ring[Command]
	// NotBefore is a time (Unix ns) the wall clock's stamps stay above: a
	// recovering engine gives the last journaled time, so the journal's
	// times never go back across a restart.
	NotBefore int64
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
	ctx     context.Context
	scratch []Event   // where events go once publishing has failed
	cmdWin  []Command // claimed window of LoopConfig.Commands
	cmdN    int
	pubErr  error
	bell    *agent.Doorbell
	stopped atomic.Bool
	stamped atomic.Int64 // the last stamp given, once its command and events are published
	idleAt  int64        // nanotime of the last idle clock refresh
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
	if lc.Clock == nil {
		lc.Clock = new(Clock) // the wall clock, with its own counter state
	}
	lc.Clock.calibrate()
	if !lc.Clock.manual {
		lc.Clock.last = max(lc.Clock.last, lc.NotBefore)
	}
	l := &Loop{in: in, ctl: lc.Control, out: out, cfg: lc, seq: lc.FirstSeq - 1, bell: agent.NewDoorbell(),
		scratch: make([]Event, cfg.EventBatch)}
	eng, err := New(cfg, nil)
	if err != nil {
		return nil, err
	}
	// The engine writes its events straight into claimed windows of the
	// outbound ring: no copy between the engine and its consumers.
	eng.buf = eng.buf[:0]
	eng.commit, eng.claim = l.commit, l.claim
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

// commit publishes the first n events of the engine's window to the
// consumers.
func (l *Loop) commit(n int) {
	if l.pubErr == nil {
		l.out.Commit(n)
	}
}

// claim returns the engine's next window of the outbound ring, waiting (with
// the ring's strategy) while the consumers catch up. Once that has failed
// (the context ended during a stop) events go to a scratch buffer and the
// loop reports ErrStopped.
func (l *Loop) claim() []Event {
	// The journal appends a command's events only after the command: hand on
	// the commands of this batch before waiting for the journal to make room.
	if l.cmdN > 0 && l.pubErr == nil {
		l.cfg.Commands.Commit(l.cmdN)
		l.cmdWin, l.cmdN = l.cmdWin[l.cmdN:], 0
	}
	if l.pubErr == nil {
		w, err := l.out.Claim(l.ctx, len(l.scratch))
		if err == nil {
			return w
		}
		l.pubErr = err
	}
	return l.scratch
}

// DoWork implements agent.Agent: one batch from the control ring, then one
// from the inbound ring, applied in place and published.
func (l *Loop) DoWork(ctx context.Context) (int, error) {
	l.ctx = ctx
	n := 0
	if l.ctl != nil {
		n = l.apply(l.ctl)
	}
	n += l.apply(l.in)
	if n == 0 {
		// Idle: keep Time fresh, so records stamped with it (the journal's
		// service records) stay within a fraction of a millisecond of now.
		if m := nanotime(); m-l.idleAt > idleRefresh && !l.cfg.Clock.manual {
			l.idleAt = m
			l.stamped.Store(l.cfg.Clock.Now())
		}
		return 0, nil
	}
	if l.cmdN > 0 {
		l.cfg.Commands.Commit(l.cmdN)
		l.cmdWin, l.cmdN = l.cmdWin[l.cmdN:], 0
	}
	l.eng.Flush()
	if l.pubErr != nil {
		return n, fmt.Errorf("%w after seq %d: %w", ErrStopped, l.seq, l.pubErr)
	}
	l.stamped.Store(l.eng.time)
	return n, nil
}

// idleRefresh is how often an idle loop refreshes Time.
const idleRefresh = 100 * int64(time.Microsecond)

// Time returns the loop's last stamp (Unix ns) whose command and events have
// all been published: every later command will carry a later time. Safe from
// any goroutine. A journal stamps records that do not come from the engine
// with it, so that the log's times never go backwards.
func (l *Loop) Time() int64 { return l.stamped.Load() }

// journal copies sequenced command c into the commands ring (when there is
// one), waiting for room; the window is committed with the batch.
func (l *Loop) journal(c *Command) {
	r := l.cfg.Commands
	if r == nil || l.pubErr != nil {
		return
	}
	if l.cmdN == len(l.cmdWin) {
		if l.cmdN > 0 {
			r.Commit(l.cmdN)
			l.cmdN = 0
		}
		// The journal releases commands once their events are in: hand on
		// the events so far before waiting for room.
		l.eng.Flush()
		w, err := r.Claim(l.ctx, l.cfg.Batch)
		if err != nil {
			l.pubErr = err
			return
		}
		l.cmdWin = w
	}
	l.cmdWin[l.cmdN] = *c
	l.cmdN++
	if l.cmdN == len(l.cmdWin) { // the window is used up: hand it on at once
		r.Commit(l.cmdN)
		l.cmdWin, l.cmdN = l.cmdWin[:0], 0
	}
}

// LoadSnapshot loads the engine's state from a snapshot (Engine.WriteSnapshot)
// taken after command seq, stamped t, before the loop runs; replay then
// continues with command seq+1.
func (l *Loop) LoadSnapshot(r io.Reader, seq uint64, t int64) error {
	if l.seq != l.cfg.FirstSeq-1 {
		return fmt.Errorf("%w: LoadSnapshot after commands were applied; load the snapshot first", ErrConfig)
	}
	if err := l.eng.ReadSnapshot(r); err != nil {
		return err
	}
	l.seq = seq
	if !l.cfg.Clock.manual {
		l.cfg.Clock.last = max(l.cfg.Clock.last, t)
	}
	l.stamped.Store(t)
	return nil
}

// Replay applies a journaled command (Seq and Time as journaled) to the
// engine before the loop runs, discarding its events (they are in the
// journal already), and continues the sequence after it. Commands must come
// in sequence, gapless from LoopConfig.FirstSeq.
func (l *Loop) Replay(c *Command) error {
	if c.Seq != l.seq+1 {
		return fmt.Errorf("%w: replayed command seq %d after %d; the journal has a gap or is out of order (verify it with auditverify)", ErrConfig, c.Seq, l.seq)
	}
	e := l.eng
	commit, claim, buf := e.commit, e.claim, e.buf
	e.commit, e.claim, e.buf, e.n = nil, nil, l.scratch, 0
	e.Apply(c)
	e.n = 0 // discard
	e.commit, e.claim, e.buf = commit, claim, buf
	l.seq = c.Seq
	if !l.cfg.Clock.manual {
		l.cfg.Clock.last = max(l.cfg.Clock.last, c.Time)
	}
	l.stamped.Store(c.Time)
	return nil
}

// apply sequences, stamps and applies up to a batch of q's commands in place
// in their slots, then releases them.
func (l *Loop) apply(q *ring.MPSC[Command]) int {
	clock := l.cfg.Clock
	k := 0
	for ; k < l.cfg.Batch; k++ {
		c := q.Front(k)
		if c == nil {
			break
		}
		l.seq++
		c.Seq, c.Time = l.seq, clock.Now()
		l.journal(c)
		l.eng.Apply(c)
	}
	q.Advance(k)
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
