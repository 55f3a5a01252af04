package ring_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core/ring"
)

func seqs(vs []event) []uint64 {
	out := make([]uint64, len(vs))
	for i, v := range vs {
		out[i] = v.Seq
	}
	return out
}

func events(from, n uint64) []event {
	out := make([]event, n)
	for i := range out {
		out[i] = mkEvent(from + uint64(i))
	}
	return out
}

func TestNewConsumerErrors(t *testing.T) {
	r, err := ring.NewRing[event](8, ring.WaitStrategy{})
	require.NoError(t, err)
	other, err := ring.NewRing[event](8, ring.WaitStrategy{})
	require.NoError(t, err)
	a, err := r.NewConsumer()
	require.NoError(t, err)
	foreign, err := other.NewConsumer()
	require.NoError(t, err)

	_, err = r.NewConsumer(a, nil)
	require.ErrorIs(t, err, ring.ErrConsumer)
	assert.Contains(t, err.Error(), "after[1] is nil")
	_, err = r.NewConsumer(foreign)
	require.ErrorIs(t, err, ring.ErrConsumer)
	assert.Contains(t, err.Error(), "after[0] belongs to another ring")

	for name, start := range map[string]func(*ring.Ring[event]){
		"TryClaim":   func(r *ring.Ring[event]) { r.TryClaim(0) },
		"TryPublish": func(r *ring.Ring[event]) { r.TryPublish(nil) },
	} {
		t.Run(name, func(t *testing.T) {
			r, err := ring.NewRing[event](8, ring.WaitStrategy{})
			require.NoError(t, err)
			a, err := r.NewConsumer()
			require.NoError(t, err)
			start(r)
			_, err = r.NewConsumer()
			require.ErrorIs(t, err, ring.ErrStarted)
			_, err = r.NewConsumer(a)
			require.ErrorIs(t, err, ring.ErrStarted)
			assert.Contains(t, err.Error(), "create every consumer before starting the producer")
		})
	}
}

func TestRingNoConsumers(t *testing.T) {
	r, err := ring.NewRing[event](4, ring.WaitStrategy{})
	require.NoError(t, err)
	for i := range uint64(10) {
		require.Equal(t, 3, r.TryPublish(events(3*i, 3)), "a ring nobody reads never fills")
	}
	require.EqualValues(t, 30, r.Published())
}

func TestRingFullEmpty(t *testing.T) {
	r, err := ring.NewRing[event](4, ring.WaitStrategy{})
	require.NoError(t, err)
	c, err := r.NewConsumer()
	require.NoError(t, err)

	require.Empty(t, c.Poll(), "empty ring")
	require.Equal(t, 4, r.TryPublish(events(0, 6)), "publishes what fits")
	require.Zero(t, r.TryPublish(events(4, 1)), "full")
	require.Empty(t, r.TryClaim(1), "full")
	require.EqualValues(t, 4, r.Published())

	w := c.Poll()
	require.Equal(t, []uint64{0, 1, 2, 3}, seqs(w))
	require.Equal(t, []uint64{0, 1, 2, 3}, seqs(c.Poll()), "polling again without release returns the same values")
	c.Release(0)
	require.Empty(t, r.TryClaim(1), "nothing released yet")

	c.Release(1)
	require.EqualValues(t, 1, c.Released())
	claim := r.TryClaim(4)
	require.Len(t, claim, 1, "one slot released")
	claim[0] = mkEvent(4)
	r.Commit(1)
	require.Equal(t, []uint64{1, 2, 3}, seqs(c.Poll()), "window stops at the wrap point")
	c.Release(3)
	require.Equal(t, []uint64{4}, seqs(c.Poll()))
	c.Release(1)
	require.Empty(t, c.Poll())
	require.EqualValues(t, 5, c.Released())
}

func TestRingMisusePanics(t *testing.T) {
	r, err := ring.NewRing[event](8, ring.WaitStrategy{})
	require.NoError(t, err)
	c, err := r.NewConsumer()
	require.NoError(t, err)

	w := r.TryClaim(4)
	require.Len(t, w, 4)
	copy(w, events(0, 4))
	r.Commit(2)
	require.EqualValues(t, 2, r.Published())
	r.Commit(2) // the rest of the window stays claimed
	require.EqualValues(t, 4, r.Published())
	assert.PanicsWithValue(t, "ring: Commit(1) beyond the claimed window of 0", func() { r.Commit(1) })

	require.Len(t, c.Poll(), 4)
	assert.PanicsWithValue(t, "ring: Release(5) beyond the 4 polled values", func() { c.Release(5) })
	assert.Panics(t, func() { c.Release(-1) })
	c.Release(4)
	assert.PanicsWithValue(t, "ring: Release(1) beyond the 0 polled values", func() { c.Release(1) })
}

// TestRingWrapWindows checks claim and poll windows at the wrap point and a
// copying publish across it.
func TestRingWrapWindows(t *testing.T) {
	r, err := ring.NewRing[event](8, ring.WaitStrategy{})
	require.NoError(t, err)
	c, err := r.NewConsumer()
	require.NoError(t, err)

	require.Equal(t, 6, r.TryPublish(events(0, 6)))
	require.Len(t, c.Poll(), 6)
	c.Release(6)

	w := r.TryClaim(5)
	require.Len(t, w, 2, "claim stops at the wrap point")
	copy(w, events(6, 2))
	r.Commit(2)
	w = r.TryClaim(7)
	require.Len(t, w, 6, "then continues at slot 0, up to the 2 slots not yet released")
	copy(w, events(8, 6))
	r.Commit(6)
	require.Empty(t, r.TryClaim(1))

	require.Equal(t, []uint64{6, 7}, seqs(c.Poll()))
	c.Release(2)
	require.Equal(t, []uint64{8, 9, 10, 11, 12, 13}, seqs(c.Poll()))
	c.Release(3)

	// A copying publish across the wrap: 11 released, 14 published, so 5
	// slots are free; positions 14..18 are slots 6, 7, 0, 1, 2.
	require.Equal(t, 5, r.TryPublish(events(14, 7)))
	require.Equal(t, []uint64{11, 12, 13}, seqs(c.Poll()), "Poll re-reads the cursor only once it used up what it saw")
	c.Release(3)
	require.Equal(t, []uint64{14, 15}, seqs(c.Poll()), "up to the wrap point")
	c.Release(2)
	require.Equal(t, []uint64{16, 17, 18}, seqs(c.Poll()))
	c.Release(3)
	require.Empty(t, c.Poll())
}

// TestRingGating checks a chain in one goroutine: B after A, C alone. B sees
// only what A released; the producer reuses a slot only when B and C (the
// leaves) released it.
func TestRingGating(t *testing.T) {
	r, err := ring.NewRing[event](4, ring.WaitStrategy{})
	require.NoError(t, err)
	a, err := r.NewConsumer()
	require.NoError(t, err)
	b, err := r.NewConsumer(a)
	require.NoError(t, err)
	c, err := r.NewConsumer()
	require.NoError(t, err)
	d, err := r.NewConsumer(b, c)
	require.NoError(t, err)

	require.Equal(t, 4, r.TryPublish(events(0, 4)))
	require.Empty(t, b.Poll(), "A has released nothing")
	require.Empty(t, d.Poll())
	require.Len(t, a.Poll(), 4)
	require.Len(t, c.Poll(), 4)

	a.Release(2)
	require.Equal(t, []uint64{0, 1}, seqs(b.Poll()), "B sees what A released")
	require.Zero(t, r.TryPublish(events(4, 1)), "nobody downstream released")
	b.Release(2)
	require.Empty(t, d.Poll(), "D waits for C too")
	c.Release(1)
	require.Equal(t, []uint64{0}, seqs(d.Poll()), "D sees the least of B and C")
	require.Zero(t, r.TryPublish(events(4, 1)), "D, the only leaf, released nothing")
	d.Release(1)
	require.Equal(t, 1, r.TryPublish(events(4, 3)), "one slot free")

	a.Release(2)
	c.Release(3)
	require.Equal(t, []uint64{2, 3}, seqs(b.Poll()))
	b.Release(2)
	require.Equal(t, []uint64{1, 2, 3}, seqs(d.Poll()))
	d.Release(3)
	require.Equal(t, 3, r.TryPublish(events(5, 3)))
	require.Equal(t, []uint64{4, 5, 6, 7}, seqs(a.Poll()))
	a.Release(1)
	require.Equal(t, []uint64{5, 6, 7}, seqs(a.Poll()))
}

// TestRingWrapMany runs the producer and a chain of consumers in one
// goroutine, many times around small rings, with random claim, publish,
// poll and release sizes.
func TestRingWrapMany(t *testing.T) {
	for _, size := range []int{2, 4, 16} {
		t.Run(fmt.Sprint("size=", size), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(size), 3))
			r, err := ring.NewRing[event](size, ring.WaitStrategy{})
			require.NoError(t, err)
			a, err := r.NewConsumer()
			require.NoError(t, err)
			b, err := r.NewConsumer(a)
			require.NoError(t, err)
			cs := []*ring.Consumer[event]{a, b}
			next := []uint64{0, 0}
			var in uint64
			for round := range 2000 {
				if rng.IntN(2) == 0 {
					w := r.TryClaim(1 + rng.IntN(size+1))
					for i := range w {
						w[i] = mkEvent(in + uint64(i))
					}
					k := rng.IntN(len(w) + 1)
					r.Commit(k)
					in += uint64(k)
				} else {
					in += uint64(r.TryPublish(events(in, uint64(1+rng.IntN(size+1)))))
				}
				for i, c := range cs {
					w := c.Poll()
					for _, v := range w {
						require.Equal(t, next[i], v.Seq, "round %d consumer %d", round, i)
						require.Equal(t, ^v.Seq, v.Check)
						next[i]++
					}
					k := rng.IntN(len(w) + 1)
					next[i] -= uint64(len(w) - k)
					c.Release(k)
				}
				require.LessOrEqual(t, next[1], next[0])
			}
			require.Greater(t, in, uint64(100*size))
		})
	}
}

// TestRingConcurrent runs one producer and the journaler/publisher topology
// plus extras, under each wait strategy: A (journaler) marks each value
// durable before it releases it, B (publisher, after A) checks every value
// it sees is durable, C reads on its own, D comes after both B and C. Every
// consumer checks it sees every value once, in order, untorn.
func TestRingConcurrent(t *testing.T) {
	for _, ws := range strategies {
		for _, size := range []int{4, 256} {
			n, full := uint64(2000), true
			if size == 4 {
				n = 500 // the ring is full most of the time: hundreds of hand-offs
			}
			if ws.Mode == ring.BusySpin {
				// A busy spinner needs a CPU of its own: with more spinners
				// than Ps (or a loaded machine) every hand-off can wait for
				// a preemption (10ms), so keep to the A->B chain, a ring
				// that rarely fills, and few values.
				if size == 4 {
					continue
				}
				n, full = 1000, runtime.GOMAXPROCS(0) >= 5
			}
			t.Run(fmt.Sprintf("wait=%s/size=%d", wsName(ws), size), func(t *testing.T) {
				runRing(t, ws, size, n, full)
			})
		}
	}
}

// TestRingParkBursts publishes many short bursts with pauses so consumers
// and the producer park again and again; a lost wakeup hangs the test (the
// hang guard then fails it).
func TestRingParkBursts(t *testing.T) {
	runRing(t, ring.WaitStrategy{Mode: ring.Park, Spins: 1}, 4, 1500, true, withBursts())
}

type ringOpt struct{ bursts bool }

func withBursts() ringOpt { return ringOpt{bursts: true} }

func runRing(t *testing.T, ws ring.WaitStrategy, size int, n uint64, full bool, opts ...ringOpt) {
	bursts := len(opts) > 0 && opts[0].bursts
	ctx := hangGuard(t)
	r, err := ring.NewRing[event](size, ws)
	require.NoError(t, err)
	a, err := r.NewConsumer()
	require.NoError(t, err)
	b, err := r.NewConsumer(a)
	require.NoError(t, err)
	consumers := []*ring.Consumer[event]{a, b}
	if full {
		c, err := r.NewConsumer()
		require.NoError(t, err)
		d, err := r.NewConsumer(b, c)
		require.NoError(t, err)
		consumers = append(consumers, c, d)
	}
	durable := make([]atomic.Bool, n)

	var wg sync.WaitGroup
	for i, c := range consumers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 5))
			var next uint64
			for next < n {
				if err := c.Wait(ctx); !assert.NoError(t, err, "consumer %d at %d", i, next) {
					return
				}
				w := c.Poll()
				if !assert.NotEmpty(t, w, "Wait returned but Poll found nothing") {
					return
				}
				for j, v := range w {
					if v.Seq != next+uint64(j) || v.Check != ^v.Seq {
						assert.Fail(t, "wrong value", "consumer %d: got %d (check %x), want %d", i, v.Seq, v.Check, next+uint64(j))
						return
					}
					if c == b && !durable[v.Seq].Load() {
						assert.Fail(t, "gating", "B saw %d before A released it (A released %d)", v.Seq, a.Released())
						return
					}
				}
				k := len(w)
				if c == a {
					// The journaler: make durable (mark), maybe dawdle, and
					// release in one or two steps.
					for _, v := range w {
						durable[v.Seq].Store(true)
					}
					if rng.IntN(8) == 0 {
						runtime.Gosched()
					}
					if k > 1 && rng.IntN(2) == 0 {
						c.Release(k / 2)
						k -= k / 2
					}
				}
				c.Release(k)
				next += uint64(len(w))
			}
		})
	}

	rng := rand.New(rand.NewPCG(9, 9))
	batch := events(0, uint64(size))
	for in := uint64(0); in < n; {
		if bursts && rng.IntN(3) == 0 {
			time.Sleep(time.Duration(rng.IntN(30)) * time.Microsecond)
		}
		k := min(n-in, uint64(1+rng.IntN(size)))
		if rng.IntN(2) == 0 {
			w, err := r.Claim(ctx, int(k))
			require.NoError(t, err, "producer at %d", in)
			require.NotEmpty(t, w)
			for i := range w {
				w[i] = mkEvent(in + uint64(i))
			}
			r.Commit(len(w))
			in += uint64(len(w))
			continue
		}
		for i := range batch[:k] {
			batch[i] = mkEvent(in + uint64(i))
		}
		got, err := r.Publish(ctx, batch[:k])
		require.NoError(t, err, "producer at %d", in)
		require.EqualValues(t, k, got)
		in += k
	}
	wg.Wait()
	require.Equal(t, n, r.Published())
	for i, c := range consumers {
		require.Equal(t, n, c.Released(), "consumer %d", i)
	}
}

// TestRingCancel checks that a cancelled context unblocks Claim and Publish
// on a full ring and Wait on an empty one (or behind its gate), under every
// strategy.
func TestRingCancel(t *testing.T) {
	for _, ws := range strategies {
		t.Run("wait="+wsName(ws), func(t *testing.T) {
			r, err := ring.NewRing[event](2, ws)
			require.NoError(t, err)
			a, err := r.NewConsumer()
			require.NoError(t, err)
			b, err := r.NewConsumer(a)
			require.NoError(t, err)

			dead, cancel := context.WithCancel(context.Background())
			cancel()
			require.ErrorIs(t, a.Wait(dead), context.Canceled, "Wait on empty ring")

			n, err := r.Publish(dead, events(0, 3))
			require.ErrorIs(t, err, context.Canceled, "Publish beyond room")
			require.Equal(t, 2, n, "published what fit")
			_, err = r.Claim(dead, 1)
			require.ErrorIs(t, err, context.Canceled, "Claim on full ring")
			require.ErrorIs(t, b.Wait(dead), context.Canceled, "Wait behind the gate")

			// Cancel while blocked.
			for name, block := range map[string]func(context.Context) error{
				"Claim":   func(ctx context.Context) error { _, err := r.Claim(ctx, 1); return err },
				"Publish": func(ctx context.Context) error { _, err := r.Publish(ctx, events(2, 1)); return err },
				"B.Wait":  b.Wait,
			} {
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- block(ctx) }()
				time.Sleep(time.Millisecond) // let it reach its wait (either way is correct)
				cancel()
				require.ErrorIs(t, <-done, context.Canceled, name)
			}

			// Unblock everything and check the ring still works.
			require.NoError(t, a.Wait(context.Background()))
			a.Release(len(a.Poll()))
			require.NoError(t, b.Wait(context.Background()))
			b.Release(len(b.Poll()))
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			require.ErrorIs(t, b.Wait(ctx), context.DeadlineExceeded, "blocked Wait with a deadline")
			n, err = r.Publish(context.Background(), events(2, 1))
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.NoError(t, a.Wait(context.Background()))
			require.Equal(t, []uint64{2}, seqs(a.Poll()))
		})
	}
}

func TestRingNoAllocs(t *testing.T) {
	for _, ws := range strategies {
		t.Run("wait="+wsName(ws), func(t *testing.T) {
			r, err := ring.NewRing[event](64, ws)
			require.NoError(t, err)
			a, err := r.NewConsumer()
			require.NoError(t, err)
			b, err := r.NewConsumer(a)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			batch := events(0, 5)
			allocs := testing.AllocsPerRun(1000, func() {
				w := r.TryClaim(3)
				copy(w, batch)
				r.Commit(len(w))
				w, _ = r.Claim(ctx, 2)
				r.Commit(len(w))
				r.TryPublish(batch[:2])
				_, _ = r.Publish(ctx, batch[:3])
				for _, c := range []*ring.Consumer[event]{a, b} {
					for c.Wait(ctx) == nil {
						w := c.Poll()
						if len(w) == 0 {
							break
						}
						c.Release(len(w))
						if c.Released() == r.Published() {
							break
						}
					}
				}
			})
			require.Zero(t, allocs)
		})
	}
}
