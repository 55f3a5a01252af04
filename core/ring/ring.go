package ring

import (
	"context"
	"fmt"
	"github.com/tradecore/tradecore/core/agent"
	"sync"
)

// Ring is a preallocated broadcast ring, disruptor style: one producer
// goroutine publishes values of type T, and every Consumer sees every value,
// in order, in place. A consumer may be gated on others (NewConsumer's
// after): it sees a value only once each of them has released it. The
// producer never reuses a slot before every consumer has released it.
//
// The producer's methods (TryClaim, Claim, Commit, TryPublish, Publish) must
// be called from one goroutine at a time; each Consumer's methods from one
// goroutine at a time. Create all consumers before the producer's first
// claim or publish.
type Ring[T any] struct {
	_ pad

	// Line: the producer's published count, read by ungated consumers.
	cursor sequence

	// Line: producer-private.
	next    uint64 // == cursor.v: first position not published
	claimed uint64 // slots claimed at next and not committed
	gate    uint64 // cached least released count of the leaves
	frozen  bool   // the consumer set is fixed
	_       [CacheLine - 8*3 - 1]byte

	// Line: the producer's parking spot, swapped by leaf consumers.
	prod waiter
	_    [CacheLine - 16]byte

	// Read-only once the producer starts.
	mask      uint64
	buf       []T
	wait      WaitStrategy
	leaves    []*sequence    // released counts of consumers nobody is gated on
	consumers []*Consumer[T] // every consumer, for invariant checks
	_         pad

	// Setup only.
	mu      sync.Mutex
	started bool
}

// Consumer is one reader of a Ring, with its own position. Poll returns
// values in place; Release hands them back, which is also what consumers
// gated on this one wait for. Its methods must be called from one goroutine
// at a time.
type Consumer[T any] struct {
	_ pad

	// Line: released count, read by gated consumers and (for a leaf) the
	// producer.
	seq sequence

	// Line: consumer-private.
	pos   uint64 // == seq.v: first position not released
	limit uint64 // first position not known to be readable
	r     *Ring[T]
	srcs  []*sequence // what this consumer is gated on: the cursor, or the after consumers
	_     [CacheLine - 8 - 8 - 8 - 24]byte

	// Line: parking spot, swapped by whoever publishes srcs.
	w waiter
	_ [CacheLine - 16]byte
}

// NewRing returns a broadcast ring of size slots, all allocated now. size
// must be a power of two from 2 to MaxSize; wait says how consumers wait for
// values and the producer waits for room.
func NewRing[T any](size int, wait WaitStrategy) (*Ring[T], error) {
	if err := checkSize(size); err != nil {
		return nil, err
	}
	if err := wait.validate(); err != nil {
		return nil, err
	}
	r := &Ring[T]{
		mask: uint64(size - 1),
		buf:  make([]T, size),
		wait: wait,
	}
	r.prod = newWaiter()
	prefault(r.buf)
	return r, nil
}

// NewConsumer adds a consumer that sees a value once the producer has
// published it and, if after is not empty, once every consumer in after has
// released it. Call it before the producer's first claim or publish; later it
// returns ErrStarted. A ring with no consumers never makes its producer wait.
func (r *Ring[T]) NewConsumer(after ...*Consumer[T]) (*Consumer[T], error) {
	for i, a := range after {
		switch {
		case a == nil:
			return nil, fmt.Errorf("%w: after[%d] is nil; pass consumers returned by NewConsumer", ErrConsumer, i)
		case a.r != r:
			return nil, fmt.Errorf("%w: after[%d] belongs to another ring; gate only on consumers of the same ring", ErrConsumer, i)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return nil, fmt.Errorf("%w: NewConsumer after the first claim or publish; create every consumer before starting the producer", ErrStarted)
	}
	c := &Consumer[T]{r: r, w: newWaiter()}
	if len(after) == 0 {
		c.srcs = []*sequence{&r.cursor}
		r.cursor.deps = append(r.cursor.deps, &c.w)
	}
	for _, a := range after {
		c.srcs = append(c.srcs, &a.seq)
		a.seq.deps = append(a.seq.deps, &c.w)
	}
	r.consumers = append(r.consumers, c)
	return c, nil
}

// freeze fixes the consumer set on the producer's first call: it finds the
// leaves (consumers nobody is gated on), which the producer gates on.
// SetDoorbell makes every move of what c is gated on (the producer's
// cursor, or the consumers c comes after) ring d: the doorbell of the agent
// runner that polls c (see package agent), so that runner may park in the
// kernel and still wake at once. Call it before the producer starts.
func (c *Consumer[T]) SetDoorbell(d *agent.Doorbell) error {
	r := c.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return fmt.Errorf("%w: SetDoorbell after the first claim or publish; set doorbells before starting the producer", ErrStarted)
	}
	for _, s := range c.srcs {
		s.bells = append(s.bells, d)
	}
	return nil
}

func (r *Ring[T]) freeze() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started = true
	gated := make(map[*sequence]bool)
	for _, c := range r.consumers {
		for _, s := range c.srcs {
			gated[s] = true
		}
	}
	for _, c := range r.consumers {
		if !gated[&c.seq] {
			r.leaves = append(r.leaves, &c.seq)
			c.seq.deps = append(c.seq.deps, &r.prod)
		}
	}
	r.frozen = true
}

// Cap returns the number of slots.
func (r *Ring[T]) Cap() int { return len(r.buf) }

// Published returns the number of values published so far. Any goroutine.
func (r *Ring[T]) Published() uint64 { return r.cursor.v.Load() }

// free returns the number of slots the producer may claim at next, refreshing
// its cached gate if the cache shows fewer than want.
func (r *Ring[T]) free(want uint64) uint64 {
	size := r.mask + 1
	if len(r.leaves) == 0 {
		return size
	}
	f := r.gate + size - r.next
	if f < want {
		r.gate = minSeq(r.leaves)
		f = r.gate + size - r.next
	}
	return f
}

// TryClaim returns a window of up to n free slots at the producer's position,
// for the producer to fill and then Commit; it never blocks. The window is
// shorter than n when the ring is nearly full or the window would wrap (the
// next claim continues at the start of the buffer), and empty when the ring
// is full. The slots hold stale values: overwrite every field. A new claim
// or publish replaces an uncommitted claim. Producer only.
func (r *Ring[T]) TryClaim(n int) []T {
	if !r.frozen {
		r.freeze()
	}
	r.claimed = 0
	if n <= 0 {
		return nil
	}
	start := r.next & r.mask
	k := min(uint64(n), r.mask+1-start)
	k = min(k, r.free(k))
	if k == 0 {
		return nil
	}
	if invariants {
		r.checkGate(r.next + k)
	}
	r.claimed = k
	return r.buf[start : start+k : start+k]
}

// Claim is TryClaim that waits, per the wait strategy, while the ring is
// full. It returns a non-empty window, or ctx.Err() once ctx is done.
func (r *Ring[T]) Claim(ctx context.Context, n int) ([]T, error) {
	for {
		if w := r.TryClaim(n); len(w) > 0 || n <= 0 {
			return w, nil
		}
		if err := r.waitRoom(ctx); err != nil {
			return nil, err
		}
	}
}

// Commit publishes the first n values of the claimed window, with one atomic
// store, and wakes parked consumers; window[n:] stays claimed. n beyond the
// claimed window panics. Producer only.
func (r *Ring[T]) Commit(n int) {
	if n <= 0 {
		return
	}
	if uint64(n) > r.claimed {
		panic(fmt.Sprintf("ring: Commit(%d) beyond the claimed window of %d", n, r.claimed))
	}
	r.claimed -= uint64(n)
	r.next += uint64(n)
	r.cursor.publish(r.next)
}

// TryPublish copies as many values of batch as fit (across the wrap point)
// and publishes them with one atomic store; it returns how many and never
// blocks. Producer only.
func (r *Ring[T]) TryPublish(batch []T) int {
	if !r.frozen {
		r.freeze()
	}
	r.claimed = 0
	if len(batch) == 0 {
		return 0
	}
	k := min(uint64(len(batch)), r.free(uint64(len(batch))))
	if k == 0 {
		return 0
	}
	if invariants {
		r.checkGate(r.next + k)
	}
	c := copy(r.buf[r.next&r.mask:], batch[:k])
	copy(r.buf, batch[c:k])
	r.next += k
	r.cursor.publish(r.next)
	return int(k)
}

// Publish copies batch into the ring, waiting per the wait strategy while it
// is full. It returns how many values it published: len(batch), or fewer with
// ctx.Err() if ctx is done first. Producer only.
func (r *Ring[T]) Publish(ctx context.Context, batch []T) (int, error) {
	n := 0
	for {
		n += r.TryPublish(batch[n:])
		if n == len(batch) {
			return n, nil
		}
		if err := r.waitRoom(ctx); err != nil {
			return n, err
		}
	}
}

// waitRoom waits until at least one slot is free. Only called when the ring
// was full, so next >= size.
func (r *Ring[T]) waitRoom(ctx context.Context) error {
	m, err := waitFor(ctx, r.leaves, r.next-r.mask, &r.prod, r.wait)
	if err != nil {
		return err
	}
	r.gate = m
	return nil
}

// checkGate panics if publishing up to end would overwrite a value some
// consumer has not released.
func (r *Ring[T]) checkGate(end uint64) {
	for i, c := range r.consumers {
		if rel := c.seq.v.Load(); end > rel+r.mask+1 {
			panic(fmt.Sprintf("ring: producer claims up to %d over consumer %d released at %d", end, i, rel))
		}
	}
}

// Poll returns the values this consumer may read now, oldest first, in
// place: from its position up to what its gates allowed when it last looked,
// stopping at the wrap point (the next Poll continues from the start of the
// buffer). It looks at the gates again (one atomic load each) only once
// everything it saw before is released, so a consumer that releases part of
// a window keeps getting the rest of it first. It is empty when nothing is
// ready; it never blocks. The values stay valid and unchanged until this
// consumer releases them; polling again without a Release returns the same
// values. Do not write to them.
func (c *Consumer[T]) Poll() []T {
	if c.limit == c.pos {
		c.limit = minSeq(c.srcs)
		if invariants {
			c.checkLimit()
		}
		if c.limit == c.pos {
			return nil
		}
	}
	r := c.r
	start := c.pos & r.mask
	k := min(c.limit-c.pos, r.mask+1-start)
	return r.buf[start : start+k : start+k]
}

// Readable returns how many values the consumer may read now, from the
// first it has not released, across the ring's end (Poll returns at most up
// to it). It reloads what the consumer is gated on.
func (c *Consumer[T]) Readable() uint64 {
	c.limit = minSeq(c.srcs)
	if invariants {
		c.checkLimit()
	}
	return c.limit - c.pos
}

// Release hands the first n polled values back: the producer may reuse their
// slots once every leaf consumer released them, and consumers gated on c may
// now read them. One atomic store; n beyond what Poll made readable panics.
// A consumer that must make values durable first (a journaler) polls, writes,
// syncs, and only then releases.
func (c *Consumer[T]) Release(n int) {
	if n == 0 {
		return
	}
	if uint64(n) > c.limit-c.pos {
		panic(fmt.Sprintf("ring: Release(%d) beyond the %d polled values", n, c.limit-c.pos))
	}
	c.pos += uint64(n)
	c.seq.publish(c.pos)
}

// Released returns how many values this consumer has released: a consumer
// gated on it sees exactly that many. Any goroutine.
func (c *Consumer[T]) Released() uint64 { return c.seq.v.Load() }

// Wait blocks, per the wait strategy, until Poll would return at least one
// value, or returns ctx.Err() once ctx is done.
func (c *Consumer[T]) Wait(ctx context.Context) error {
	if c.limit > c.pos {
		return nil
	}
	m, err := waitFor(ctx, c.srcs, c.pos+1, &c.w, c.r.wait)
	if err != nil {
		return err
	}
	c.limit = m
	if invariants {
		c.checkLimit()
	}
	return nil
}

// checkLimit panics if the consumer's view runs past the producer or one of
// its gates.
func (c *Consumer[T]) checkLimit() {
	if p := c.r.cursor.v.Load(); c.limit > p {
		panic(fmt.Sprintf("ring: consumer may read up to %d beyond the %d published", c.limit, p))
	}
	for _, s := range c.srcs {
		if v := s.v.Load(); c.limit > v {
			panic(fmt.Sprintf("ring: consumer may read up to %d beyond its gate at %d", c.limit, v))
		}
	}
	if c.limit < c.pos {
		panic(fmt.Sprintf("ring: consumer limit %d behind its position %d", c.limit, c.pos))
	}
}
