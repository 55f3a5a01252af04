package agent_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core/agent"
)

// counter is an agent that does one unit of work per duty cycle while it
// has budget, then reports idle; it records its lifecycle.
type counter struct {
	name    string
	budget  atomic.Int64
	done    atomic.Int64
	drainTo int64 // Drained once done reaches it
	events  []string
	fail    error
}

func (c *counter) Name() string { return c.name }
func (c *counter) DoWork(context.Context) (int, error) {
	if c.fail != nil && c.done.Load() == 3 {
		return 0, c.fail
	}
	if c.budget.Load() > 0 {
		c.budget.Add(-1)
		c.done.Add(1)
		return 1, nil
	}
	return 0, nil
}
func (c *counter) OnStart(context.Context) error { c.events = append(c.events, "start"); return nil }
func (c *counter) OnClose()                      { c.events = append(c.events, "close") }

type drainer struct{ *counter }

func (d drainer) Drained() bool { return d.done.Load() >= d.drainTo }

func TestRunStartsWorksAndCloses(t *testing.T) {
	c := &counter{name: "c"}
	c.budget.Store(100)
	ctx, cancel := context.WithCancel(t.Context())
	wait := agent.StartRunner(ctx, agent.Config{Idle: agent.IdleStrategy{Mode: agent.Sleep, MinPark: 50 * time.Microsecond}}, c)
	require.Eventually(t, func() bool { return c.done.Load() == 100 }, 10*time.Second, time.Millisecond)
	cancel()
	require.NoError(t, wait())
	require.Equal(t, []string{"start", "close"}, c.events)
}

// TestDrainerFinishesAfterCancel: after the context ends, a Drainer's
// runner keeps cycling until it reports drained, and its work is not cut.
func TestDrainerFinishesAfterCancel(t *testing.T) {
	c := &counter{name: "d", drainTo: 5000}
	d := drainer{c}
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // cancelled before it starts: all its work happens in the drain
	c.budget.Store(5000)
	require.NoError(t, agent.Run(ctx, agent.Config{}, d))
	require.Equal(t, int64(5000), c.done.Load())
}

func TestDrainTimeout(t *testing.T) {
	c := &counter{name: "stuck", drainTo: 1}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := agent.Run(ctx, agent.Config{DrainTimeout: 20 * time.Millisecond}, drainer{c})
	require.ErrorIs(t, err, agent.ErrDrainTimeout)
	require.ErrorContains(t, err, "stuck")
}

func TestAgentErrorStopsRunner(t *testing.T) {
	boom := errors.New("boom")
	c := &counter{name: "failing", fail: boom}
	c.budget.Store(10)
	err := agent.Run(t.Context(), agent.Config{}, c)
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "agent failing")
	require.Equal(t, []string{"start", "close"}, c.events, "OnClose runs after a failure too")
}

func TestConfigErrors(t *testing.T) {
	_, err := agent.ParseIdleStrategy("spinny")
	require.ErrorIs(t, err, agent.ErrConfig)
	require.ErrorContains(t, err, "busy-spin")
	for _, tc := range []struct {
		name string
		cfg  agent.Config
		want string
	}{
		{"bad cpu", agent.Config{Pin: true, CPU: 1 << 20}, "CPU"},
		{"negative drain", agent.Config{DrainTimeout: -1}, "DrainTimeout"},
		{"park bounds", agent.Config{Idle: agent.IdleStrategy{MinPark: time.Second, MaxPark: time.Millisecond}}, "MinPark"},
		{"bad mode", agent.Config{Idle: agent.IdleStrategy{Mode: 99}}, "Idle.Mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := agent.Run(t.Context(), tc.cfg, &counter{name: "x"})
			require.ErrorIs(t, err, agent.ErrConfig)
			require.ErrorContains(t, err, tc.want)
		})
	}
	require.ErrorIs(t, agent.Run(t.Context(), agent.Config{}), agent.ErrConfig, "no agents")
	_, err = agent.Start(t.Context(), agent.Plan{Isolate: true}, &counter{name: "x"})
	require.ErrorContains(t, err, "Isolate needs")
}

// TestParseNames: every configuration name round-trips.
func TestParseNames(t *testing.T) {
	for _, n := range []string{"backoff", "busy-spin", "yield", "sleep"} {
		s, err := agent.ParseIdleStrategy(n)
		require.NoError(t, err)
		b, err := s.MarshalText()
		require.NoError(t, err)
		require.Equal(t, n, string(b))
	}
	for _, n := range []string{"shared", "dedicated"} {
		m, err := agent.ParseMode(n)
		require.NoError(t, err)
		require.Equal(t, n, m.String())
	}
}

// waker is an agent whose work is handed over by another goroutine, which
// rings the runner's doorbell after handing it.
type waker struct {
	pending atomic.Int64
	got     atomic.Int64
	bell    *agent.Doorbell
}

func (w *waker) Name() string { return "waker" }
func (w *waker) DoWork(context.Context) (int, error) {
	n := w.pending.Swap(0)
	w.got.Add(n)
	return int(n), nil
}
func (w *waker) UseDoorbell(d *agent.Doorbell) error { w.bell = d; return nil }

// TestDoorbellWakesParkedRunner: a runner that parks for up to an hour
// between checks still takes every hand-over at once, because the giver
// rings its doorbell; none is lost between the runner's last check and its
// park (10,000 hand-overs, each waited for).
func TestDoorbellWakesParkedRunner(t *testing.T) {
	w := &waker{}
	idle := agent.IdleStrategy{Mode: agent.Backoff, Spins: 1, Yields: 1, MinPark: time.Hour, MaxPark: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	wait, err := agent.Start(ctx, agent.Plan{PrimaryIdle: idle}, w)
	require.NoError(t, err)
	for i := int64(1); i <= 10_000; i++ {
		w.pending.Add(1)
		w.bell.Ring()
		deadline := time.Now().Add(30 * time.Second)
		for w.got.Load() != i {
			require.True(t, time.Now().Before(deadline), "hand-over %d never taken: the doorbell lost a wake-up", i)
			time.Sleep(time.Microsecond)
		}
	}
	cancel() // ends the hour-long park at once
	require.NoError(t, wait())
}
