package surveil_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/surveil"
)

// stream runs bench.RandomLimits (20% marketable) through a real engine, one
// command per 10µs of event Time, and returns the events in engine order.
func stream(tb testing.TB, n int) []core.Event {
	tb.Helper()
	var evs []core.Event
	eng, err := core.New(bench.EngineConfig(n), func(b []core.Event) { evs = append(evs, b...) })
	require.NoError(tb, err)
	for i, c := range bench.RandomLimits(1, n, 20) {
		c.Seq, c.Time = uint64(i+1), int64(i)*10_000
		eng.Apply(&c)
	}
	eng.Flush()
	return evs
}

// benchRefs watches the workload's 1,000 accounts; pairs share an owner, so
// some fills are wash trades and the alert path is exercised too.
func benchRefs() []surveil.Ref {
	refs := make([]surveil.Ref, 1000)
	for i := range refs {
		id := uint32(i + 1)
		refs[i] = surveil.Ref{ID: id, Firm: id % 7, Owner: (id + 1) / 2, Proprietary: id%10 == 0}
	}
	return refs
}

// BenchmarkObserve feeds the captured stream to one Monitor in batches of
// 4,096 events (the engine's default EventBatch), cycling; one op is one batch.
func BenchmarkObserve(b *testing.B) {
	evs := stream(b, 200_000)
	m, err := surveil.New(surveil.Config{Accounts: benchRefs()})
	require.NoError(b, err)
	var out surveil.Output
	const batch = 4096
	b.ReportAllocs()
	var events, alerts int
	pos := 0
	for b.Loop() {
		if pos+batch > len(evs) {
			pos = 0
		}
		m.Observe(evs[pos:pos+batch], &out)
		alerts += len(out.Alerts)
		out.Reset()
		pos += batch
		events += batch
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(events), "ns/event")
	b.ReportMetric(float64(alerts)/float64(events)*1e6, "alerts/Mevent")
}

// TestObserveAllocs: after warm-up, Observe allocates nothing on the
// benchmark stream, with the default config and with every detector killing
// through a lane that refuses every other submission (so retries run too).
func TestObserveAllocs(t *testing.T) {
	evs := stream(t, 20_000)
	n := 0
	for name, cfg := range map[string]surveil.Config{
		"default": {Accounts: benchRefs()},
		"kill": {Accounts: benchRefs(), Submit: func(*core.Command) bool { n++; return n%2 == 0 },
			Wash: surveil.Wash{Action: surveil.ActionKill}, Layering: surveil.Layering{Action: surveil.ActionKill},
			Spoofing: surveil.Spoofing{Action: surveil.ActionKill}, Rapid: surveil.Rapid{Action: surveil.ActionKill},
			Ramp: surveil.Ramp{Action: surveil.ActionKill}, FrontRun: surveil.FrontRun{Action: surveil.ActionKill},
			PumpDump: surveil.PumpDump{Action: surveil.ActionKill}, MarkClose: surveil.MarkClose{Action: surveil.ActionKill}},
	} {
		t.Run(name, func(t *testing.T) {
			m, err := surveil.New(cfg)
			require.NoError(t, err)
			// Output at its working size: replaying the stream with time
			// going back makes the alert count vary from pass to pass.
			out := surveil.Output{Alerts: make([]surveil.Alert, 0, 1024), Commands: make([]core.Command, 0, 1024)}
			m.Observe(evs, &out) // warm-up
			out.Reset()
			allocs := testing.AllocsPerRun(5, func() {
				m.Observe(evs, &out)
				m.Tick(evs[len(evs)-1].Time+1e9, &out)
				out.Reset()
			})
			require.Zero(t, allocs)
		})
	}
}
