package ring_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core/ring"
)

func TestNewSize(t *testing.T) {
	for _, tc := range []struct {
		size int
		ok   bool
	}{
		{-4, false}, {0, false}, {1, false}, {3, false}, {6, false}, {1000, false},
		{ring.MaxSize * 2, false},
		{2, true}, {4, true}, {1024, true},
	} {
		t.Run(fmt.Sprint("size=", tc.size), func(t *testing.T) {
			q, err := ring.NewMPSC[cmd](tc.size, ring.WaitStrategy{})
			r, rerr := ring.NewRing[event](tc.size, ring.WaitStrategy{})
			if !tc.ok {
				for _, err := range []error{err, rerr} {
					require.ErrorIs(t, err, ring.ErrSize)
					assert.Contains(t, err.Error(), fmt.Sprintf("size is %d; use a power of two", tc.size))
				}
				return
			}
			require.NoError(t, err)
			require.NoError(t, rerr)
			assert.Equal(t, tc.size, q.Cap())
			assert.Equal(t, tc.size, r.Cap())
		})
	}
}

func TestMPSCFullEmpty(t *testing.T) {
	q, err := ring.NewMPSC[cmd](4, ring.WaitStrategy{})
	require.NoError(t, err)
	dst := make([]cmd, 8)

	require.Zero(t, q.Drain(dst), "empty ring drains nothing")
	require.Zero(t, q.Len())
	require.Zero(t, q.TryPushBatch(nil))

	for i := range uint64(4) {
		v := mkCmd(0, i)
		require.True(t, q.TryPush(&v), "push %d of 4", i)
	}
	v := mkCmd(0, 99)
	require.False(t, q.TryPush(&v), "full ring refuses TryPush")
	require.Zero(t, q.TryPushBatch([]cmd{v}), "full ring refuses TryPushBatch")
	require.Equal(t, 4, q.Len())

	require.Equal(t, 3, q.Drain(dst[:3]), "drain stops at len(dst)")
	for i := range 3 {
		assert.Equal(t, mkCmd(0, uint64(i)), dst[i])
	}
	require.Equal(t, 1, q.Len())

	require.Equal(t, 3, q.TryPushBatch([]cmd{mkCmd(0, 4), mkCmd(0, 5), mkCmd(0, 6), mkCmd(0, 7)}), "batch fills the 3 free slots")
	require.False(t, q.TryPush(&v))
	require.Equal(t, 4, q.Drain(dst))
	for i := range 4 {
		assert.Equal(t, mkCmd(0, uint64(3+i)), dst[i])
	}
	require.Zero(t, q.Drain(dst))
	require.Zero(t, q.Drain(nil))
}

// TestMPSCWrap pushes and drains in rounds many times around small rings and
// checks that every value comes out once and in order.
func TestMPSCWrap(t *testing.T) {
	for _, tc := range []struct {
		size, push, dst int
	}{
		{2, 1, 1}, {2, 2, 1}, {2, 3, 2},
		{4, 3, 2}, {4, 4, 4}, {4, 5, 3},
		{8, 7, 1}, {16, 16, 16}, {16, 40, 5},
	} {
		t.Run(fmt.Sprintf("size=%d/push=%d/dst=%d", tc.size, tc.push, tc.dst), func(t *testing.T) {
			q, err := ring.NewMPSC[cmd](tc.size, ring.WaitStrategy{})
			require.NoError(t, err)
			var in, out uint64
			dst := make([]cmd, tc.dst)
			batch := make([]cmd, 3)
			for round := range 300 {
				for k := 0; k < tc.push; {
					if round%2 == 0 {
						v := mkCmd(0, in)
						if !q.TryPush(&v) {
							break
						}
						in++
						k++
						continue
					}
					for i := range batch {
						batch[i] = mkCmd(0, in+uint64(i))
					}
					n := q.TryPushBatch(batch[:min(len(batch), tc.push-k)])
					if n == 0 {
						break
					}
					in += uint64(n)
					k += n
				}
				require.LessOrEqual(t, q.Len(), tc.size)
				for {
					n := q.Drain(dst)
					if n == 0 {
						break
					}
					for _, v := range dst[:n] {
						if v != mkCmd(0, out) {
							require.Equal(t, mkCmd(0, out), v, "round %d", round)
						}
						out++
					}
				}
				require.Equal(t, in, out, "round %d: everything pushed came out", round)
			}
			require.Greater(t, in, uint64(100*tc.size), "wrapped many times")
		})
	}
}

// TestMPSCConcurrent fans 4 producers into one consumer under each wait
// strategy: every value arrives exactly once and each producer's values
// arrive in its order.
func TestMPSCConcurrent(t *testing.T) {
	for _, ws := range strategies {
		for _, size := range []int{2, 64} {
			producers, n := 4, 5000
			if size == 2 {
				n = 300 // every push meets a full ring: hundreds of hand-offs
			}
			if ws.Mode == ring.BusySpin {
				// A busy spinner needs a CPU of its own: with more spinners
				// than Ps (or a loaded machine) every hand-off can wait for
				// a preemption (10ms), so use few producers, a ring that
				// rarely fills, and few values.
				if size == 2 {
					continue
				}
				producers, n = max(1, min(producers, runtime.GOMAXPROCS(0)-1)), 2000
			}
			t.Run(fmt.Sprintf("wait=%s/size=%d/producers=%d", wsName(ws), size, producers), func(t *testing.T) {
				runMPSC(t, ws, size, producers, n, false)
			})
		}
	}
}

// TestMPSCParkBursts sends many short bursts with pauses between them, so the
// consumer parks again and again: a lost wakeup hangs the test (until the
// hang guard ends it with an error).
func TestMPSCParkBursts(t *testing.T) {
	for _, ws := range []ring.WaitStrategy{{Mode: ring.Park, Spins: 1}, {Mode: ring.Park, Spins: 50}} {
		t.Run("spins="+fmt.Sprint(ws.Spins), func(t *testing.T) {
			runMPSC(t, ws, 8, 2, 500, true)
		})
	}
}

func runMPSC(t *testing.T, ws ring.WaitStrategy, size, producers, n int, bursts bool) {
	ctx := hangGuard(t)
	q, err := ring.NewMPSC[cmd](size, ws)
	require.NoError(t, err)

	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			batch := make([]cmd, 8)
			for i := 0; i < n; {
				if bursts && rng.IntN(6) == 0 {
					time.Sleep(time.Duration(rng.IntN(30)) * time.Microsecond)
				}
				k := min(n-i, 1+rng.IntN(len(batch)))
				if p%2 == 0 || bursts && k == 1 {
					v := mkCmd(uint32(p), uint64(i))
					if !assert.NoError(t, q.Push(ctx, &v), "producer %d value %d", p, i) {
						return
					}
					i++
					continue
				}
				for j := range k {
					batch[j] = mkCmd(uint32(p), uint64(i+j))
				}
				got, err := q.PushBatch(ctx, batch[:k])
				if !assert.NoError(t, err, "producer %d batch at %d", p, i) {
					return
				}
				assert.Equal(t, k, got)
				i += k
			}
		})
	}

	next := make([]uint64, producers)
	dst := make([]cmd, 16)
	rng := rand.New(rand.NewPCG(7, 7))
	for total := 0; total < producers*n; {
		if err := q.Wait(ctx); err != nil {
			require.NoError(t, err, "consumer waiting after %d of %d values (per producer: %v)", total, producers*n, next)
		}
		got := q.Drain(dst[:1+rng.IntN(len(dst))])
		require.NotZero(t, got, "Wait returned but Drain found nothing")
		for _, v := range dst[:got] {
			if int(v.P) >= producers || v.N != next[v.P] || v.Check != ^v.N {
				require.Less(t, int(v.P), producers)
				require.Equal(t, next[v.P], v.N, "producer %d out of order or duplicated", v.P)
				require.Equal(t, ^v.N, v.Check, "torn value")
			}
			next[v.P]++
		}
		total += got
	}
	wg.Wait()
	require.Zero(t, q.Drain(dst), "nothing beyond what was pushed")
	for p := range producers {
		require.EqualValues(t, n, next[p], "producer %d", p)
	}
}

// TestMPSCProducersPark keeps a tiny ring full with a slow consumer, so
// producers block in Push under Park and must be woken by the consumer and
// by each other.
func TestMPSCProducersPark(t *testing.T) {
	ctx := hangGuard(t)
	q, err := ring.NewMPSC[cmd](2, ring.WaitStrategy{Mode: ring.Park, Spins: 1})
	require.NoError(t, err)
	const producers, n = 4, 500
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range n {
				v := mkCmd(uint32(p), uint64(i))
				if !assert.NoError(t, q.Push(ctx, &v)) {
					return
				}
			}
		})
	}
	next := make([]uint64, producers)
	dst := make([]cmd, 1)
	for total := 0; total < producers*n; total++ {
		require.NoError(t, q.Wait(ctx), "after %d values", total)
		if total%3 == 0 {
			runtime.Gosched()
		}
		require.Equal(t, 1, q.Drain(dst))
		require.Equal(t, next[dst[0].P], dst[0].N)
		next[dst[0].P]++
	}
	wg.Wait()
}

// TestMPSCCancel checks that a cancelled context unblocks Push on a full ring
// and Wait on an empty one, under every strategy, whether it is cancelled
// before the call or while the call waits.
func TestMPSCCancel(t *testing.T) {
	for _, ws := range strategies {
		t.Run("wait="+wsName(ws), func(t *testing.T) {
			q, err := ring.NewMPSC[cmd](2, ws)
			require.NoError(t, err)

			dead, cancel := context.WithCancel(context.Background())
			cancel()
			require.ErrorIs(t, q.Wait(dead), context.Canceled, "Wait on empty ring")

			v := mkCmd(0, 0)
			require.NoError(t, q.Push(dead, &v), "room available: pushes despite the dead context")
			require.NoError(t, q.Push(context.Background(), &v))
			require.ErrorIs(t, q.Push(dead, &v), context.Canceled, "Push on full ring")
			n, err := q.PushBatch(dead, []cmd{v, v})
			require.ErrorIs(t, err, context.Canceled)
			require.Zero(t, n)

			// Cancel while blocked.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- q.Push(ctx, &v) }()
			time.Sleep(time.Millisecond) // let it reach its wait (either way is correct)
			cancel()
			require.ErrorIs(t, <-done, context.Canceled, "blocked Push")

			dst := make([]cmd, 4)
			require.Equal(t, 2, q.Drain(dst))
			ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			require.ErrorIs(t, q.Wait(ctx), context.DeadlineExceeded, "blocked Wait")

			// The ring still works after cancelled waits.
			require.NoError(t, q.Push(context.Background(), &v))
			require.NoError(t, q.Wait(context.Background()))
			require.Equal(t, 1, q.Drain(dst))
		})
	}
}

func TestMPSCNoAllocs(t *testing.T) {
	for _, ws := range strategies {
		t.Run("wait="+wsName(ws), func(t *testing.T) {
			q, err := ring.NewMPSC[cmd](64, ws)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			v := mkCmd(1, 2)
			batch := []cmd{v, v, v}
			dst := make([]cmd, 16)
			allocs := testing.AllocsPerRun(1000, func() {
				q.TryPush(&v)
				_ = q.Push(ctx, &v)
				q.TryPushBatch(batch)
				_, _ = q.PushBatch(ctx, batch)
				_ = q.Wait(ctx)
				q.Drain(dst)
			})
			require.Zero(t, allocs)
		})
	}
}

// TestMPSCFrontAdvance: a consumer that works on values in place (Front,
// Advance) sees every value of four producers exactly once, each producer's
// in order, through a small ring that wraps thousands of times; Front past
// the published values is nil.
func TestMPSCFrontAdvance(t *testing.T) {
	q, err := ring.NewMPSC[[2]uint64](16, ring.WaitStrategy{Mode: ring.SpinYield})
	require.NoError(t, err)
	require.Nil(t, q.Front(0))
	const producers, n = 4, 20000
	for p := range producers {
		go func() {
			for i := range uint64(n) {
				v := [2]uint64{uint64(p), i}
				if q.Push(t.Context(), &v) != nil {
					return
				}
			}
		}()
	}
	next := make([]uint64, producers)
	for got := 0; got < producers*n; {
		k := 0
		for v := q.Front(k); v != nil; v = q.Front(k) {
			require.Equal(t, next[v[0]], v[1], "producer %d out of order", v[0])
			next[v[0]]++
			v[1] = 1 << 63 // in place: the slot is the consumer's until Advance
			k++
		}
		q.Advance(k)
		got += k
		if k == 0 {
			runtime.Gosched()
		}
	}
	require.Equal(t, 0, q.Len())
}
