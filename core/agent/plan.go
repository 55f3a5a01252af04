package agent

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

// Mode says how a Plan maps agents to runners (threads), after Aeron's
// threading modes.
type Mode uint8

const (
	// Shared gives the primary agent (the engine) a runner and a CPU of its
	// own and runs every other agent on one shared runner. It is the zero
	// value and fits a 2-CPU machine: the engine never shares its CPU, and
	// the agents around it share the other.
	Shared Mode = iota
	// Dedicated gives every agent a runner of its own, pinned to successive
	// CPUs while there are CPUs to give: for bigger hosts.
	Dedicated
	modes
)

var modeNames = [modes]string{Shared: "shared", Dedicated: "dedicated"}

// String returns the mode's configuration name.
func (m Mode) String() string {
	if m < modes {
		return modeNames[m]
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode parses "shared" or "dedicated" ("" is Shared).
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "shared":
		return Shared, nil
	case "dedicated":
		return Dedicated, nil
	}
	return 0, fmt.Errorf("%w: threading mode %q; use shared or dedicated", ErrConfig, s)
}

// DoorbellUser is an Agent whose work arrives on rings: the plan hands it
// its runner's doorbell before any runner starts, and the agent sets it on
// those rings (ring.MPSC.SetDoorbell, ring.Consumer.SetDoorbell).
type DoorbellUser interface {
	UseDoorbell(*Doorbell) error
}

// Plan places agents on runners. The zero value works: Shared mode, no
// pinning, Backoff everywhere.
type Plan struct {
	Mode Mode
	// Pin pins the runners to CPUs: to CPUs[i] for the i-th runner (the
	// primary's first), or, with CPUs empty, the primary's to the last CPU
	// and the others to the CPUs before it, cycling. Runners beyond the CPUs
	// given are not pinned.
	Pin  bool
	CPUs []int
	// Isolate keeps every other thread of the process off the primary's CPU
	// (Isolate) while the plan runs, so the engine's CPU runs the engine
	// alone; the CPU is given back when the runners stop. Needs Pin.
	Isolate bool
	// PrimaryIdle is the primary runner's idle strategy; OthersIdle every
	// other runner's.
	PrimaryIdle, OthersIdle IdleStrategy
}

// runnerCPU returns the CPU the i-th runner of n is pinned to, or -1.
func (p *Plan) runnerCPU(i int) int {
	if !p.Pin {
		return -1
	}
	if len(p.CPUs) > 0 {
		if i < len(p.CPUs) {
			return p.CPUs[i]
		}
		return -1
	}
	n := runtime.NumCPU()
	if i == 0 {
		return n - 1
	}
	if n == 1 {
		return -1
	}
	return (i - 1) % (n - 1)
}

// Start starts the plan's runners: primary (the engine) on its own runner,
// the others per p.Mode. Each runner gets a doorbell, handed to its agents
// that are DoorbellUsers before any runner starts. Start raises GOMAXPROCS
// (EnsureProcs) so two Ps stay free beside the runners. The returned wait
// blocks until every runner has returned and joins their errors.
func Start(ctx context.Context, p Plan, primary Agent, others ...Agent) (wait func() error, err error) {
	if p.Mode >= modes {
		return nil, fmt.Errorf("%w: Plan.Mode is %d; use Shared or Dedicated", ErrConfig, uint8(p.Mode))
	}
	if p.Isolate && !p.Pin {
		return nil, fmt.Errorf("%w: Plan.Isolate needs Plan.Pin", ErrConfig)
	}
	groups := [][]Agent{{primary}}
	switch {
	case len(others) == 0:
	case p.Mode == Shared:
		groups = append(groups, others)
	default:
		for _, a := range others {
			groups = append(groups, []Agent{a})
		}
	}
	cfgs := make([]Config, len(groups))
	for i, g := range groups {
		idle := p.OthersIdle
		if i == 0 {
			idle = p.PrimaryIdle
		}
		cpu := p.runnerCPU(i)
		cfgs[i] = Config{Pin: cpu >= 0, CPU: max(cpu, 0), Idle: idle, Doorbell: NewDoorbell()}
		for _, a := range g {
			if a == nil {
				return nil, fmt.Errorf("%w: a nil agent in the plan", ErrConfig)
			}
			if u, ok := a.(DoorbellUser); ok {
				if err := u.UseDoorbell(cfgs[i].Doorbell); err != nil {
					return nil, fmt.Errorf("agent %s: %w", a.Name(), err)
				}
			}
		}
		if err := cfgs[i].fill(g); err != nil {
			return nil, err
		}
	}
	isolated := p.Isolate && cfgs[0].Pin
	if isolated {
		if err := Isolate(cfgs[0].CPU); err != nil {
			return nil, err
		}
	}
	EnsureProcs(len(groups), 2)
	// A runner that fails stops the others: the plan is one pipeline.
	ctx, stopAll := context.WithCancel(ctx)
	waits := make([]func() error, len(groups))
	for i, g := range groups {
		w := StartRunner(ctx, cfgs[i], g...)
		waits[i] = func() error {
			err := w()
			if err != nil {
				stopAll()
			}
			return err
		}
	}
	return func() error {
		var errs []error
		for _, w := range waits {
			errs = append(errs, w())
		}
		stopAll()
		if isolated {
			errs = append(errs, Unisolate(cfgs[0].CPU))
		}
		return errors.Join(errs...)
	}, nil
}
