package ring

import (
	"context"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type val struct{ a, b uint64 }

// TestMPSCPreemptedProducer claims a slot without publishing it, as a
// producer preempted between its CAS and its publish would: the consumer must
// stop there, even though a later slot is published, and resume in order
// once the slow producer publishes.
func TestMPSCPreemptedProducer(t *testing.T) {
	for _, ws := range []WaitStrategy{{Mode: Park, Spins: 1}, {Mode: SpinYield}, {Mode: BusySpin}} {
		t.Run(ws.String(), func(t *testing.T) {
			q, err := NewMPSC[val](4, ws)
			require.NoError(t, err)
			slow := q.tail.Add(1) - 1 // claimed, not published
			require.True(t, q.TryPush(&val{1, 1}))
			require.Equal(t, 2, q.Len())

			dst := make([]val, 4)
			require.Zero(t, q.Drain(dst), "must not read past the unpublished slot")
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			require.ErrorIs(t, q.Wait(ctx), context.DeadlineExceeded, "nothing is ready in order")

			// The slow producer publishes from another goroutine while the
			// consumer waits.
			waited := make(chan error, 1)
			go func() { waited <- q.Wait(context.Background()) }()
			time.Sleep(time.Millisecond)
			s := &q.slots[slow&q.mask]
			s.val = val{0, 0}
			s.seq.Store(slow + 1)
			q.cons.signal()
			require.NoError(t, <-waited)

			require.Equal(t, 2, q.Drain(dst))
			assert.Equal(t, []val{{0, 0}, {1, 1}}, dst[:2])
		})
	}
}

// TestLayout checks that every cross-goroutine counter sits on a cache line
// of its own: hot fields at least CacheLine apart, with a CacheLine of
// padding before the first and after the last.
func TestLayout(t *testing.T) {
	require.EqualValues(t, CacheLine, unsafe.Sizeof(sequence{}))

	var q MPSC[val]
	checkLines(t, "MPSC", unsafe.Sizeof(q), []uintptr{
		unsafe.Offsetof(q.tail),
		unsafe.Offsetof(q.head),
		unsafe.Offsetof(q.cons),
		unsafe.Offsetof(q.mask),
		unsafe.Offsetof(q.pos),
	})
	assert.Equal(t, unsafe.Offsetof(q.head)+8, unsafe.Offsetof(q.prodSleepers), "prodSleepers shares head's line")

	var r Ring[val]
	// The setup-only mutex ends the struct; padding after the read-only
	// fields keeps it off their lines.
	checkLines(t, "Ring", 0, []uintptr{
		unsafe.Offsetof(r.cursor),
		unsafe.Offsetof(r.next),
		unsafe.Offsetof(r.prod),
		unsafe.Offsetof(r.mask),
		unsafe.Offsetof(r.mu),
	})
	assert.Less(t, unsafe.Offsetof(r.frozen), unsafe.Offsetof(r.next)+CacheLine)

	var c Consumer[val]
	checkLines(t, "Consumer", unsafe.Sizeof(c), []uintptr{
		unsafe.Offsetof(c.seq),
		unsafe.Offsetof(c.pos),
		unsafe.Offsetof(c.w),
	})
	assert.Less(t, unsafe.Offsetof(c.srcs), unsafe.Offsetof(c.pos)+CacheLine)
}

func checkLines(t *testing.T, name string, size uintptr, offs []uintptr) {
	t.Helper()
	require.GreaterOrEqual(t, offs[0], uintptr(CacheLine), "%s: padding before the first line", name)
	for i := 1; i < len(offs); i++ {
		require.GreaterOrEqual(t, offs[i]-offs[i-1], uintptr(CacheLine), "%s: line %d too close to line %d", name, i, i-1)
	}
	if size != 0 {
		require.GreaterOrEqual(t, size-offs[len(offs)-1], uintptr(CacheLine), "%s: padding after the last line", name)
	}
}
