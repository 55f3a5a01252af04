package agent

import (
	"fmt"
	"time"
)

// IdleMode says what a runner does after a duty cycle that found no work.
type IdleMode uint8

const (
	// Backoff spins for Spins idle cycles, then yields the CPU for Yields
	// more, then parks on the runner's doorbell for MinPark, doubling up to
	// MaxPark while nothing arrives. A ring of the doorbell ends a park at
	// once. It is the zero value: it fits a thread that shares a CPU.
	Backoff IdleMode = iota

	// BusySpin checks again at once (with a CPU pause hint), forever. The
	// lowest latency; it burns its CPU whether or not there is work, so use
	// it only on a CPU given to this runner alone.
	BusySpin

	// Yield gives the CPU to other runnable threads (sched_yield) between
	// checks. The runner stays runnable and keeps its P.
	Yield

	// Sleep parks on the doorbell for MinPark between checks.
	Sleep

	idleModes
)

var idleModeNames = [idleModes]string{Backoff: "backoff", BusySpin: "busy-spin", Yield: "yield", Sleep: "sleep"}

// String returns the mode's configuration name.
func (m IdleMode) String() string {
	if m < idleModes {
		return idleModeNames[m]
	}
	return fmt.Sprintf("IdleMode(%d)", uint8(m))
}

// Defaults of IdleStrategy's zero fields.
const (
	DefaultSpins   = 20_000
	DefaultYields  = 50
	DefaultMinPark = time.Microsecond
	DefaultMaxPark = time.Millisecond
)

// IdleStrategy configures a runner's idling. The zero value is Backoff with
// the defaults above. It is a plain value switched on in the runner: no
// interface dispatch.
type IdleStrategy struct {
	Mode IdleMode
	// Spins and Yields are the idle cycles Backoff spins and yields before
	// it parks (0: the defaults).
	Spins, Yields int
	// MinPark and MaxPark bound Backoff's park period, which doubles from
	// MinPark to MaxPark; Sleep parks for MinPark (0: the defaults).
	MinPark, MaxPark time.Duration
}

// ParseIdleStrategy parses a configuration name: "backoff", "busy-spin",
// "yield" or "sleep" ("" is the zero value, Backoff).
func ParseIdleStrategy(s string) (IdleStrategy, error) {
	for m, name := range idleModeNames {
		if s == name {
			return IdleStrategy{Mode: IdleMode(m)}, nil
		}
	}
	if s == "" {
		return IdleStrategy{}, nil
	}
	return IdleStrategy{}, fmt.Errorf("%w: idle strategy %q; use backoff, busy-spin, yield or sleep", ErrConfig, s)
}

// String returns the mode's configuration name.
func (s IdleStrategy) String() string { return s.Mode.String() }

// MarshalText implements encoding.TextMarshaler with the configuration name.
func (s IdleStrategy) MarshalText() ([]byte, error) {
	if s.Mode >= idleModes {
		return nil, fmt.Errorf("%w: idle mode %d", ErrConfig, uint8(s.Mode))
	}
	return []byte(s.Mode.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with the names
// ParseIdleStrategy accepts.
func (s *IdleStrategy) UnmarshalText(b []byte) error {
	v, err := ParseIdleStrategy(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

func (s IdleStrategy) validate() error {
	switch {
	case s.Mode >= idleModes:
		return fmt.Errorf("%w: Idle.Mode is %d; use Backoff, BusySpin, Yield or Sleep", ErrConfig, uint8(s.Mode))
	case s.Spins < 0 || s.Yields < 0:
		return fmt.Errorf("%w: Idle.Spins and Idle.Yields must not be negative", ErrConfig)
	case s.MinPark < 0 || s.MaxPark < 0:
		return fmt.Errorf("%w: Idle.MinPark and Idle.MaxPark must not be negative", ErrConfig)
	case s.MaxPark != 0 && s.MinPark > s.MaxPark:
		return fmt.Errorf("%w: Idle.MinPark %v exceeds Idle.MaxPark %v", ErrConfig, s.MinPark, s.MaxPark)
	}
	return nil
}

// idler is one runner's idle state.
type idler struct {
	mode             IdleMode
	spins, yields    int
	minPark, maxPark int64
	db               *Doorbell
	done             <-chan struct{} // the runner's context; a park ends when it closes

	n    int   // idle cycles since the last work
	park int64 // current park period
}

func newIdler(s IdleStrategy, db *Doorbell, done <-chan struct{}) idler {
	i := idler{mode: s.Mode, spins: s.Spins, yields: s.Yields, minPark: int64(s.MinPark), maxPark: int64(s.MaxPark), db: db, done: done}
	if i.spins == 0 {
		i.spins = DefaultSpins
	}
	if i.yields == 0 {
		i.yields = DefaultYields
	}
	if i.minPark == 0 {
		i.minPark = int64(DefaultMinPark)
	}
	if i.maxPark == 0 {
		i.maxPark = max(int64(DefaultMaxPark), i.minPark)
	}
	i.park = i.minPark
	return i
}

func (i *idler) reset() {
	i.n = 0
	i.park = i.minPark
}

// idle runs one idle step after a cycle with no work. Before parking it arms
// the doorbell and runs recheck (one more duty cycle), so work handed over
// while it was arming is never slept through.
func (i *idler) idle(recheck func() (int, error)) error {
	switch i.mode {
	case BusySpin:
		pause()
		return nil
	case Yield:
		osYield()
		return nil
	case Sleep:
		return i.sleep(recheck, i.minPark)
	}
	i.n++
	switch {
	case i.n <= i.spins:
		pause()
		return nil
	case i.n <= i.spins+i.yields:
		osYield()
		return nil
	}
	err := i.sleep(recheck, i.park)
	i.park = min(2*i.park, i.maxPark)
	return err
}

// sleep parks for up to ns. The runner's context ending rings the doorbell
// (Run registers that), and the check of done after arming closes the race
// with a cancellation that rang before the doorbell was armed.
func (i *idler) sleep(recheck func() (int, error), ns int64) error {
	gen := i.db.arm()
	n, err := recheck()
	if err != nil || n > 0 {
		i.db.disarm()
		if n > 0 {
			i.reset()
		}
		return err
	}
	select {
	case <-i.done:
		i.db.disarm()
		return nil
	default:
	}
	i.db.wait(gen, ns)
	return nil
}
