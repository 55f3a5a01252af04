package ring_test

import (
	"context"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core/ring"
)

// cmd is shaped like core.Command: 104 bytes, pointer-free. P is the producer,
// N its counter; Check repeats N so a torn or overwritten value shows.
type cmd struct {
	P     uint32
	_     uint32
	N     uint64
	_     [80]byte
	Check uint64
}

// event is shaped like core.Event: 128 bytes, pointer-free.
type event struct {
	Seq   uint64
	_     [112]byte
	Check uint64
}

func mkCmd(p uint32, n uint64) cmd { return cmd{P: p, N: n, Check: ^n} }
func mkEvent(i uint64) event       { return event{Seq: i, Check: ^i} }

var strategies = []ring.WaitStrategy{
	{Mode: ring.Park},
	{Mode: ring.Park, Spins: 1}, // parks at once: exercises the wakeup protocol
	{Mode: ring.SpinYield},
	{Mode: ring.BusySpin},
}

func wsName(ws ring.WaitStrategy) string {
	if ws.Spins == 1 {
		return ws.String() + "-nospin"
	}
	return ws.String()
}

// hangGuard returns a context that ends the test's waits if it deadlocks.
// It is a guard against a hang (for example a lost wakeup), not a timing
// assertion: healthy runs finish in a fraction of it.
func hangGuard(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestValueShapes(t *testing.T) {
	require.EqualValues(t, 104, unsafe.Sizeof(cmd{}))
	require.EqualValues(t, 128, unsafe.Sizeof(event{}))
}
