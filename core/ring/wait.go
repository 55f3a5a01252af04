package ring

import (
	"context"
	"fmt"
	"github.com/tradecore/tradecore/core/agent"
	"math"
	"runtime"
	"sync/atomic"
)

// WaitMode says how a goroutine waits on a ring: a consumer for values, a
// producer for free slots.
type WaitMode uint8

const (
	// Park checks WaitStrategy.Spins times, then blocks until the other side
	// signals it. It is the zero value: an idle waiter costs no CPU, a parked
	// consumer wakes within microseconds of a publish, and the publishing
	// side pays one atomic load when nobody sleeps. Use it unless a core is
	// dedicated to the waiting goroutine.
	Park WaitMode = iota

	// SpinYield checks WaitStrategy.Spins times, then calls runtime.Gosched
	// between checks. It never blocks in the kernel and lets other goroutines
	// run, but keeps a P busy while idle.
	SpinYield

	// BusySpin checks in a tight loop and never yields. Lowest latency; it
	// burns a whole core while waiting, so use it only when GOMAXPROCS leaves
	// a P (and a CPU) for every spinning goroutine.
	BusySpin

	waitModes
)

var waitModeNames = [waitModes]string{Park: "park", SpinYield: "spin-yield", BusySpin: "busy-spin"}

// String returns the mode's configuration name ("park", "spin-yield",
// "busy-spin").
func (m WaitMode) String() string {
	if m < waitModes {
		return waitModeNames[m]
	}
	return fmt.Sprintf("WaitMode(%d)", uint8(m))
}

// MarshalText implements encoding.TextMarshaler with the configuration name.
func (m WaitMode) MarshalText() ([]byte, error) {
	if m >= waitModes {
		return nil, fmt.Errorf("%w: mode %d; use Park, SpinYield or BusySpin", ErrWaitStrategy, uint8(m))
	}
	return []byte(waitModeNames[m]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler: it accepts the names
// ParseWaitStrategy accepts.
func (m *WaitMode) UnmarshalText(b []byte) error {
	w, err := ParseWaitStrategy(string(b))
	if err != nil {
		return err
	}
	*m = w.Mode
	return nil
}

// DefaultSpins is the number of checks Park and SpinYield make before they
// park or start yielding, when WaitStrategy.Spins is 0: a few microseconds.
const DefaultSpins = 1024

// WaitStrategy configures how a ring's waiters wait. The zero value is Park
// with DefaultSpins. It is a plain value, switched on directly in the wait
// loops: no interface dispatch.
type WaitStrategy struct {
	Mode WaitMode

	// Spins is the number of busy checks before Park parks or SpinYield
	// starts yielding; BusySpin ignores it. 0 means DefaultSpins.
	Spins int
}

// ParseWaitStrategy parses a configuration name: "park", "spin-yield" or
// "busy-spin" ("" is the zero value, Park).
func ParseWaitStrategy(s string) (WaitStrategy, error) {
	switch s {
	case "", "park":
		return WaitStrategy{Mode: Park}, nil
	case "spin-yield":
		return WaitStrategy{Mode: SpinYield}, nil
	case "busy-spin":
		return WaitStrategy{Mode: BusySpin}, nil
	}
	return WaitStrategy{}, fmt.Errorf("%w: %q; use park, spin-yield or busy-spin", ErrWaitStrategy, s)
}

// String returns the mode's configuration name.
func (w WaitStrategy) String() string { return w.Mode.String() }

func (w WaitStrategy) validate() error {
	switch {
	case w.Mode >= waitModes:
		return fmt.Errorf("%w: WaitStrategy.Mode is %d; use Park, SpinYield or BusySpin", ErrWaitStrategy, uint8(w.Mode))
	case w.Spins < 0:
		return fmt.Errorf("%w: WaitStrategy.Spins is %d; use 0 (default %d) or more", ErrWaitStrategy, w.Spins, DefaultSpins)
	}
	return nil
}

// backoff is the state of one wait: the caller checks its condition, then
// calls step, which spins, yields or tells it to park.
type backoff struct {
	mode  WaitMode
	spins int
	n     int
}

func newBackoff(w WaitStrategy) backoff {
	s := w.Spins
	if s == 0 {
		s = DefaultSpins
	}
	return backoff{mode: w.Mode, spins: s}
}

// step is called after each failed check. checkCtx says the caller should
// poll its context now (every 64 spins, and before every yield or park);
// park says it should stop spinning and block.
func (b *backoff) step() (checkCtx, park bool) {
	b.n++
	switch {
	case b.mode == BusySpin || b.n <= b.spins:
		return b.n&63 == 0, false
	case b.mode == SpinYield:
		runtime.Gosched()
		return true, false
	default:
		return true, true
	}
}

// isDone reports whether done is closed, without blocking. A nil done (a
// context that is never cancelled) is never done.
func isDone(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
		return false
	}
}

// waiter is one goroutine's parking spot. sleeping is 1 while the goroutine
// is about to block or blocked on wake; a signaller that swaps it from 1 to
// 0 owes the goroutine one token on wake (buffered, so sending never blocks
// and a token sent early is not lost).
type waiter struct {
	sleeping atomic.Uint32
	wake     chan struct{}
}

func newWaiter() waiter { return waiter{wake: make(chan struct{}, 1)} }

// signal wakes w if it sleeps. When it does not, it costs one atomic load.
func (w *waiter) signal() {
	if w.sleeping.Load() != 0 && w.sleeping.Swap(0) != 0 {
		select {
		case w.wake <- struct{}{}:
		default: // a token is already pending
		}
	}
}

// sequence is a monotonically increasing position published by one
// goroutine (the Ring's producer cursor, or a consumer's released count) and
// read by others. It fills a cache line on its own: v and sleepers are
// written by different goroutines but together (the owner stores v, then
// loads sleepers), so they share the owner's line.
type sequence struct {
	v        atomic.Uint64
	sleepers atomic.Int32      // waiters parked (or parking) on this sequence
	deps     []*waiter         // who to wake when v moves; fixed once the producer starts
	bells    []*agent.Doorbell // agent runners to ring when v moves; fixed once the producer starts
}

// publish stores v and wakes parked dependants. When nobody sleeps, it costs
// one store and one load, plus one load per doorbell.
func (s *sequence) publish(v uint64) {
	s.v.Store(v)
	if s.sleepers.Load() != 0 {
		for _, w := range s.deps {
			w.signal()
		}
	}
	for _, b := range s.bells {
		b.Ring()
	}
}

// minSeq returns the least of srcs, or MaxUint64 when srcs is empty.
func minSeq(srcs []*sequence) uint64 {
	m := uint64(math.MaxUint64)
	for _, s := range srcs {
		if v := s.v.Load(); v < m {
			m = v
		}
	}
	return m
}

// waitFor waits, per ws, until every sequence in srcs has reached need, and
// returns the least of them; or returns ctx.Err() once ctx is done.
func waitFor(ctx context.Context, srcs []*sequence, need uint64, w *waiter, ws WaitStrategy) (uint64, error) {
	if m := minSeq(srcs); m >= need {
		return m, nil
	}
	done := ctx.Done()
	b := newBackoff(ws)
	for {
		checkCtx, park := b.step()
		if m := minSeq(srcs); m >= need {
			return m, nil
		}
		if checkCtx && isDone(done) {
			return 0, ctx.Err()
		}
		if park {
			return parkFor(ctx, srcs, need, w)
		}
	}
}

// parkFor blocks on w until srcs reach need or ctx is done.
//
// No wakeup is lost: the waiter increments every source's sleepers and sets
// w.sleeping before it re-checks the sources; a publisher stores its sequence
// before it loads sleepers and w.sleeping. All four are sequentially
// consistent atomics, so either the re-check sees the new value or the
// publisher sees the waiter and sends a token.
func parkFor(ctx context.Context, srcs []*sequence, need uint64, w *waiter) (uint64, error) {
	for _, s := range srcs {
		s.sleepers.Add(1)
	}
	var (
		m    uint64
		err  error
		done = ctx.Done()
	)
	for {
		w.sleeping.Store(1)
		if m = minSeq(srcs); m >= need {
			break
		}
		select {
		case <-w.wake:
			continue
		case <-done:
			err = ctx.Err()
		}
		break
	}
	w.sleeping.Store(0)
	for _, s := range srcs {
		s.sleepers.Add(-1)
	}
	return m, err
}

// prefault writes every page of a new buffer now, so the first lap of the
// ring does not take a page fault (or a huge-page clear of ~100 µs) per page
// on the producer's or consumer's critical path.
func prefault[T any](buf []T) {
	clear(buf)
}
