package agent

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Agent is one duty-cycle worker.
type Agent interface {
	// Name names the agent in errors, logs and metrics.
	Name() string
	// DoWork does the work that is ready, without blocking on a lock, a
	// channel or the network, and returns how much it did; 0 means nothing
	// was ready and lets the runner idle. ctx is not the runner's context:
	// the stop does not cancel it, so an agent that must wait for room
	// downstream mid-batch can finish; it ends Config.DrainTimeout after the
	// stop. A non-nil error stops
	// the runner; Run returns it wrapped with the agent's name.
	DoWork(ctx context.Context) (int, error)
}

// Starter is an Agent with set-up to do on its runner's thread before the
// first duty cycle. An error stops the runner before any work is done.
type Starter interface {
	OnStart(ctx context.Context) error
}

// Closer is an Agent with tear-down to do on its runner's thread after the
// last duty cycle.
type Closer interface {
	OnClose()
}

// Stopper is an Agent told, on its runner's thread, that it has done its last
// duty cycle of normal work: the runner's context ended and the drain
// begins. A producer uses it to tell its consumers that nothing more will
// come (so their drains can end).
type Stopper interface {
	OnStop()
}

// Drainer is an Agent that has work to finish after its runner's context
// ends: the runner keeps running its duty cycle until Drained reports true
// for every Drainer (Config.DrainTimeout bounds the wait). An agent that is
// not a Drainer stops doing work as soon as the context ends.
type Drainer interface {
	Drained() bool
}

// DefaultDrainTimeout bounds the drain after cancellation when
// Config.DrainTimeout is 0.
const DefaultDrainTimeout = 5 * time.Second

// ErrDrainTimeout is returned by Run when some Drainer was still not drained
// after the drain timeout. Work it held (values in rings) was not finished:
// the caller should treat the run as crashed and recover from the journal.
var ErrDrainTimeout = errors.New("agent: drain timed out")

// ErrConfig is returned for an invalid runner configuration; the message
// names the field and the fix.
var ErrConfig = errors.New("agent: invalid configuration")

// Config shapes one runner. The zero value works: no pinning, the Backoff
// idle strategy, a private doorbell, the default drain timeout.
type Config struct {
	// Name names the runner's thread in errors (default: the agents' names).
	Name string
	// Pin pins the runner's OS thread to CPU with sched_setaffinity.
	Pin bool
	CPU int
	// Idle is what the runner does after a duty cycle that found no work.
	Idle IdleStrategy
	// Doorbell is rung by whoever hands this runner's agents work (the rings
	// they consume); a parked runner wakes at once when it rings. nil: the
	// runner parks on a private doorbell and wakes only when its park period
	// ends.
	Doorbell *Doorbell
	// DrainTimeout bounds the drain after the context ends (default
	// DefaultDrainTimeout).
	DrainTimeout time.Duration
}

func (c *Config) fill(agents []Agent) error {
	if len(agents) == 0 {
		return fmt.Errorf("%w: Run needs at least one agent", ErrConfig)
	}
	for i, a := range agents {
		if a == nil {
			return fmt.Errorf("%w: agent %d is nil", ErrConfig, i)
		}
	}
	if c.Name == "" {
		for i, a := range agents {
			if i > 0 {
				c.Name += "+"
			}
			c.Name += a.Name()
		}
	}
	if c.Pin && (c.CPU < 0 || c.CPU >= runtime.NumCPU()) {
		return fmt.Errorf("%w: runner %s: CPU is %d; pin to a CPU in 0..%d or turn Pin off", ErrConfig, c.Name, c.CPU, runtime.NumCPU()-1)
	}
	if c.DrainTimeout < 0 {
		return fmt.Errorf("%w: runner %s: DrainTimeout is %v; use 0 (default %v) or more", ErrConfig, c.Name, c.DrainTimeout, DefaultDrainTimeout)
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if err := c.Idle.validate(); err != nil {
		return fmt.Errorf("runner %s: %w", c.Name, err)
	}
	if c.Doorbell == nil {
		c.Doorbell = NewDoorbell()
	}
	return nil
}

// Run runs agents on the calling goroutine, locked to its OS thread (pinned
// when configured), until ctx ends and every Drainer is drained. It calls
// OnStart of every Starter first and OnClose of every Closer last, on the
// same thread. It returns nil after a clean stop, the first agent error
// (wrapped with the agent's name), or ErrDrainTimeout.
//
// Run is meant to be called with `go`, or from a goroutine that has nothing
// else to do; use StartRunner to get a wait function, or Start to run a Plan.
func Run(ctx context.Context, cfg Config, agents ...Agent) (err error) {
	if err := cfg.fill(agents); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cfg.Pin {
		if err := PinThread(cfg.CPU); err != nil {
			return fmt.Errorf("runner %s: %w", cfg.Name, err)
		}
		defer unpin()
	}
	tuneThread()
	var closers []Closer
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i].OnClose()
		}
	}()
	for _, a := range agents {
		if s, ok := a.(Starter); ok {
			if err := s.OnStart(ctx); err != nil {
				return fmt.Errorf("agent %s: start: %w", a.Name(), err)
			}
		}
		if c, ok := a.(Closer); ok {
			closers = append(closers, c)
		}
	}
	// A parked runner must notice the end of its context: ring its doorbell.
	stop := context.AfterFunc(ctx, cfg.Doorbell.Ring)
	defer stop()
	// Agents get a context that the stop signal does not cancel: one that
	// waits for room downstream mid-batch must finish the batch, and the
	// drain that follows the stop needs it too. It ends DrainTimeout after
	// the stop, so an agent stuck behind a dead consumer still returns.
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopTimer := context.AfterFunc(ctx, func() { time.AfterFunc(cfg.DrainTimeout, cancel) })
	defer stopTimer()
	r := runner{cfg: cfg, agents: agents, idle: newIdler(cfg.Idle, cfg.Doorbell, ctx.Done())}
	err = r.work(ctx.Done(), actx)
	for _, a := range agents {
		if s, ok := a.(Stopper); ok {
			s.OnStop()
		}
	}
	if err != nil {
		return err
	}
	return r.drain(actx)
}

// StartRunner runs Run on a new goroutine and returns a function that waits for it
// to return and gives its error.
func StartRunner(ctx context.Context, cfg Config, agents ...Agent) (wait func() error) {
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, agents...) }()
	var err error
	var waited bool
	return func() error {
		if !waited {
			err, waited = <-done, true
		}
		return err
	}
}

type runner struct {
	cfg    Config
	agents []Agent
	idle   idler
}

// cycle runs one duty cycle of every agent and returns the work done.
func (r *runner) cycle(ctx context.Context) (int, error) {
	work := 0
	for _, a := range r.agents {
		n, err := a.DoWork(ctx)
		if err != nil {
			return work, fmt.Errorf("agent %s: %w", a.Name(), err)
		}
		work += n
	}
	return work, nil
}

// work runs duty cycles, handing agents actx, until done closes.
func (r *runner) work(done <-chan struct{}, ctx context.Context) error {
	recheck := func() (int, error) { return r.cycle(ctx) }
	for {
		n, err := r.cycle(ctx)
		if err != nil {
			return err
		}
		select {
		case <-done:
			return nil
		default:
		}
		if n > 0 {
			r.idle.reset()
			continue
		}
		if err := r.idle.idle(recheck); err != nil {
			return err
		}
	}
}

// drain runs the Drainers' duty cycles after ctx ended until every one is
// drained. Other agents do no more work.
func (r *runner) drain(ctx context.Context) error {
	var drainers []Drainer
	var agents []Agent
	for _, a := range r.agents {
		if d, ok := a.(Drainer); ok {
			drainers = append(drainers, d)
			agents = append(agents, a)
		}
	}
	if len(drainers) == 0 {
		return nil
	}
	r.agents = agents
	deadline := time.Now().Add(r.cfg.DrainTimeout)
	short := IdleStrategy{Mode: Backoff, MaxPark: 100 * time.Microsecond}
	r.idle = newIdler(short, r.cfg.Doorbell, nil)
	recheck := func() (int, error) { return r.cycle(ctx) }
	for {
		all := true
		for _, d := range drainers {
			if !d.Drained() {
				all = false
				break
			}
		}
		if all {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: runner %s after %v", ErrDrainTimeout, r.cfg.Name, r.cfg.DrainTimeout)
		}
		n, err := r.cycle(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			r.idle.reset()
		} else if err := r.idle.idle(recheck); err != nil {
			return err
		}
	}
}
