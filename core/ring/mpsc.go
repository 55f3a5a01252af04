package ring

import (
	"context"
	"fmt"
	"github.com/tradecore/tradecore/core/agent"
	"sync/atomic"
)

// CacheLine is the cache-line size the package pads to.
const CacheLine = 64

// MaxSize is the largest ring size the constructors accept.
const MaxSize = 1 << 30

type pad [CacheLine]byte

// checkSize reports whether size is a power of two in [2, MaxSize].
func checkSize(size int) error {
	if size < 2 || size > MaxSize || size&(size-1) != 0 {
		return fmt.Errorf("%w: size is %d; use a power of two from 2 to 2^30 (e.g. 1024)", ErrSize, size)
	}
	return nil
}

// mpscSlot is one slot of an MPSC ring: the value and its publication
// sequence. seq == pos+1 means the value for position pos is published;
// anything else means the slot still holds an older lap (or nothing).
type mpscSlot[T any] struct {
	seq atomic.Uint64
	val T
}

// MPSC is a bounded, preallocated ring carrying values of type T from many
// producer goroutines to one consumer goroutine, without locks.
//
// Any number of goroutines may call TryPush, TryPushBatch, Push and
// PushBatch concurrently. Drain and Wait must be called from one goroutine
// at a time (the consumer). See the package documentation for the layout
// and the memory-ordering argument.
type MPSC[T any] struct {
	_ pad

	// Line: producers' claim counter, CAS'd by every push.
	tail atomic.Uint64
	_    [CacheLine - 8]byte

	// Line: what the consumer has released, stored once per Drain and read
	// by producers; prodSleepers is read by the consumer right after it
	// stores head.
	head         atomic.Uint64
	prodSleepers atomic.Int32 // producers parked in Push on a full ring
	_            [CacheLine - 8 - 4]byte

	// Line: the consumer's parking flag, loaded by every producer after it
	// publishes, written only when the consumer parks.
	cons waiter
	_    [CacheLine - 16]byte

	// Line: read-only after construction, read by everybody.
	mask     uint64
	slots    []mpscSlot[T]
	prodWake chan struct{} // one token passed among parked producers
	wait     WaitStrategy
	bell     *agent.Doorbell // the consumer's runner, rung after every publication; set before producers start
	_        [CacheLine - 8 - 24 - 8 - 16 - 8]byte

	// Line: consumer-private.
	pos uint64 // next position to read; head trails it only between stores
	_   [CacheLine - 8]byte
}

// NewMPSC returns an MPSC ring of size slots, all allocated now. size must
// be a power of two from 2 to MaxSize; wait says how the consumer waits for
// values and producers wait for room.
func NewMPSC[T any](size int, wait WaitStrategy) (*MPSC[T], error) {
	if err := checkSize(size); err != nil {
		return nil, err
	}
	if err := wait.validate(); err != nil {
		return nil, err
	}
	q := &MPSC[T]{
		mask:     uint64(size - 1),
		slots:    make([]mpscSlot[T], size),
		prodWake: make(chan struct{}, 1),
		wait:     wait,
	}
	q.cons = newWaiter()
	prefault(q.slots)
	return q, nil
}

// SetDoorbell makes every publication ring d: the doorbell of the agent
// runner whose agent drains this ring (see package agent), so that runner
// may park in the kernel and still wake at once. Call it before any producer
// starts; it is not synchronised with them.
func (q *MPSC[T]) SetDoorbell(d *agent.Doorbell) { q.bell = d }

// Cap returns the number of slots.
func (q *MPSC[T]) Cap() int { return len(q.slots) }

// Len returns the number of values claimed by producers and not yet drained:
// a snapshot for metrics, stale as soon as it returns.
func (q *MPSC[T]) Len() int {
	h := q.head.Load()
	t := q.tail.Load()
	if t < h {
		return 0
	}
	return int(t - h)
}

// TryPush copies *v into the ring and reports whether there was room. It
// never blocks.
func (q *MPSC[T]) TryPush(v *T) bool {
	pos := q.tail.Load()
	for {
		// head is loaded after pos: if the ring looks full it was full when
		// head was loaded (tail >= pos then). A stale pos can make d negative;
		// the CAS then fails and we retry.
		if d := int64(pos - q.head.Load()); d > int64(q.mask) {
			return false
		}
		if q.tail.CompareAndSwap(pos, pos+1) {
			break
		}
		pos = q.tail.Load()
	}
	s := &q.slots[pos&q.mask]
	if invariants {
		q.checkFree(s, pos)
	}
	s.val = *v
	s.seq.Store(pos + 1)
	q.cons.signal()
	if q.bell != nil {
		q.bell.Ring()
	}
	return true
}

// TryPushBatch copies as many values of vs as fit, in order, claiming their
// slots with one CAS, and returns how many it copied. It never blocks.
func (q *MPSC[T]) TryPushBatch(vs []T) int {
	if len(vs) == 0 {
		return 0
	}
	var (
		pos = q.tail.Load()
		k   uint64
	)
	for {
		free := int64(q.mask+1) - int64(pos-q.head.Load())
		if free <= 0 {
			return 0
		}
		k = min(uint64(len(vs)), uint64(free))
		if q.tail.CompareAndSwap(pos, pos+k) {
			break
		}
		pos = q.tail.Load()
	}
	for i := range k {
		s := &q.slots[(pos+i)&q.mask]
		if invariants {
			q.checkFree(s, pos+i)
		}
		s.val = vs[i]
		s.seq.Store(pos + i + 1)
	}
	q.cons.signal()
	if q.bell != nil {
		q.bell.Ring()
	}
	return int(k)
}

// Push copies *v into the ring, waiting per the wait strategy while it is
// full. It returns ctx.Err() if ctx is done first (and then did not push).
//
// Under Park, a producer spins, then blocks until the consumer drains; many
// blocked producers are woken one after another.
func (q *MPSC[T]) Push(ctx context.Context, v *T) error {
	if q.TryPush(v) {
		return nil
	}
	done := ctx.Done()
	b := newBackoff(q.wait)
	for {
		checkCtx, park := b.step()
		if q.TryPush(v) {
			return nil
		}
		if checkCtx && isDone(done) {
			return ctx.Err()
		}
		if park {
			return q.parkPush(ctx, v)
		}
	}
}

// parkPush blocks until v is pushed or ctx is done. Parked producers share
// one token: the consumer sends it after a Drain when prodSleepers is
// non-zero, and a producer that used the room passes it on while room and
// sleepers remain. The consumer stores head before it loads prodSleepers and
// a producer increments prodSleepers before its TryPush loads head, so one
// of them sees the other.
func (q *MPSC[T]) parkPush(ctx context.Context, v *T) error {
	done := ctx.Done()
	q.prodSleepers.Add(1)
	for {
		if q.TryPush(v) {
			if q.prodSleepers.Add(-1) > 0 && q.Len() < len(q.slots) {
				q.wakeProducer()
			}
			return nil
		}
		select {
		case <-q.prodWake:
		case <-done:
			q.prodSleepers.Add(-1)
			return ctx.Err()
		}
	}
}

func (q *MPSC[T]) wakeProducer() {
	select {
	case q.prodWake <- struct{}{}:
	default: // a token is already pending
	}
}

// PushBatch copies every value of vs into the ring in order, waiting per the
// wait strategy while it is full. It returns how many it pushed: len(vs), or
// fewer with ctx.Err() if ctx is done first. Values of other producers may
// be interleaved between the slots of one batch.
func (q *MPSC[T]) PushBatch(ctx context.Context, vs []T) (int, error) {
	n := 0
	for n < len(vs) {
		if k := q.TryPushBatch(vs[n:]); k > 0 {
			n += k
			continue
		}
		if err := q.Push(ctx, &vs[n]); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// Front returns the i-th published value not yet released (0 = the oldest),
// in place in its slot, or nil if it is not published yet (nor, then, any
// after it: order is kept). The value may be read and written until Advance
// releases it; Front does not release anything. Consumer only: it is Drain
// without the copy, for a consumer that works on values in place.
func (q *MPSC[T]) Front(i int) *T {
	pos := q.pos + uint64(i)
	if uint64(i) > q.mask {
		return nil
	}
	s := &q.slots[pos&q.mask]
	seq := s.seq.Load()
	if seq != pos+1 {
		if invariants && seq > pos+1 {
			panic(fmt.Sprintf("ring: MPSC slot %d published for position %d ahead of the consumer at %d", pos&q.mask, seq-1, pos))
		}
		return nil
	}
	return &s.val
}

// Advance releases the n oldest values, which Front returned, to the
// producers. Consumer only.
func (q *MPSC[T]) Advance(n int) {
	if n <= 0 {
		return
	}
	if invariants {
		for i := range n {
			if s := &q.slots[(q.pos+uint64(i))&q.mask]; s.seq.Load() != q.pos+uint64(i)+1 {
				panic(fmt.Sprintf("ring: MPSC Advance(%d) past an unpublished slot at position %d", n, q.pos+uint64(i)))
			}
		}
	}
	q.pos += uint64(n)
	q.head.Store(q.pos)
	if q.prodSleepers.Load() != 0 {
		q.wakeProducer()
	}
}

// Drain copies up to len(dst) published values into dst, oldest first,
// releases their slots to producers and returns how many it copied. It
// returns 0 at once when the next value is not published yet (even if later
// ones are: order is kept). Consumer only.
func (q *MPSC[T]) Drain(dst []T) int {
	pos := q.pos
	n := 0
	for n < len(dst) {
		s := &q.slots[pos&q.mask]
		seq := s.seq.Load()
		if seq != pos+1 {
			if invariants && seq > pos+1 {
				panic(fmt.Sprintf("ring: MPSC slot %d published for position %d ahead of the consumer at %d", pos&q.mask, seq-1, pos))
			}
			break
		}
		dst[n] = s.val
		pos++
		n++
	}
	if n == 0 {
		return 0
	}
	q.pos = pos
	q.head.Store(pos)
	if q.prodSleepers.Load() != 0 {
		q.wakeProducer()
	}
	return n
}

// ready reports whether the next value is published. Consumer only.
func (q *MPSC[T]) ready() bool {
	return q.slots[q.pos&q.mask].seq.Load() == q.pos+1
}

// Wait blocks, per the wait strategy, until Drain would return at least one
// value, or returns ctx.Err() once ctx is done. Consumer only.
func (q *MPSC[T]) Wait(ctx context.Context) error {
	if q.ready() {
		return nil
	}
	done := ctx.Done()
	b := newBackoff(q.wait)
	for {
		checkCtx, park := b.step()
		if q.ready() {
			return nil
		}
		if checkCtx && isDone(done) {
			return ctx.Err()
		}
		if park {
			return q.parkConsumer(ctx)
		}
	}
}

// parkConsumer blocks until the next value is published or done is closed.
// The consumer stores cons.sleeping before it re-loads the slot's sequence; a
// producer stores the sequence before it loads cons.sleeping (in signal).
func (q *MPSC[T]) parkConsumer(ctx context.Context) error {
	var (
		err  error
		done = ctx.Done()
	)
	for {
		q.cons.sleeping.Store(1)
		if q.ready() {
			break
		}
		select {
		case <-q.cons.wake:
			continue
		case <-done:
			err = ctx.Err()
		}
		break
	}
	q.cons.sleeping.Store(0)
	return err
}

// checkFree panics if slot s, claimed for position pos, still holds a value
// the consumer has not released.
func (q *MPSC[T]) checkFree(s *mpscSlot[T], pos uint64) {
	size := q.mask + 1
	want := uint64(0)
	if pos >= size {
		want = pos - size + 1
	}
	if seq := s.seq.Load(); seq != want {
		panic(fmt.Sprintf("ring: MPSC position %d claimed over slot sequence %d (want %d)", pos, seq, want))
	}
	if h := q.head.Load(); pos >= h+size {
		panic(fmt.Sprintf("ring: MPSC position %d claimed with head %d: overwrites an undrained value", pos, h))
	}
}
