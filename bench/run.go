package bench

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tradecore/tradecore/core"
)

// Result is one measured pass.
type Result struct {
	Name           string
	Orders         int           // commands applied
	Elapsed        time.Duration // wall time of the pass
	Allocs         uint64        // heap allocations during the pass
	GCs            uint32        // GC cycles that ran during the pass
	Events         int           // events emitted (throughput passes)
	Takers         int           // commands whose order executed on arrival (throughput passes)
	Latency        *hdrhistogram.Histogram
	OpenAfter      int // open orders when the pass ended
	CrossedPercent float64
}

// PerSecond is the pass's throughput in commands per second.
func (r Result) PerSecond() float64 { return float64(r.Orders) / r.Elapsed.Seconds() }

// NsPerOrder is the mean cost of one command.
func (r Result) NsPerOrder() float64 { return float64(r.Elapsed.Nanoseconds()) / float64(r.Orders) }

// AllocsPerOrder is heap allocations per command.
func (r Result) AllocsPerOrder() float64 { return float64(r.Allocs) / float64(r.Orders) }

// NewHistogram returns the histogram every latency pass records into:
// 1 ns to 10 s at three significant digits.
func NewHistogram() *hdrhistogram.Histogram { return hdrhistogram.New(1, 10_000_000_000, 3) }

// counter is the pass's event sink: it counts and never allocates.
type counter struct {
	events    int
	takers    int
	lastTaker uint64
}

func (c *counter) sink(evs []core.Event) {
	c.events += len(evs)
	for i := range evs {
		if evs[i].Kind == core.KindExecuted && evs[i].OrderID != c.lastTaker {
			c.lastTaker = evs[i].OrderID
			c.takers++
		}
	}
}

// Engine runs cmds through a fresh engine built from cfg. With timed, each
// command is timed on its own into the result's histogram; without, only the
// whole pass is timed. The garbage collector is run before and disabled
// during the pass, and the number of cycles that still ran is reported (a
// pass that allocates nothing runs none).
func Engine(name string, cfg core.Config, cmds []core.Command, timed bool) (Result, error) {
	// The throughput pass counts events in its sink; the latency pass
	// discards them, so a flush of the event buffer does not charge the
	// counting (consumer work) to the order that filled it. Handing events
	// to real consumers is measured end to end by Pipeline.
	var cnt counter
	sink := cnt.sink
	if timed {
		sink = func([]core.Event) {}
	}
	eng, err := core.New(cfg, sink)
	if err != nil {
		return Result{}, err
	}
	res := Result{Name: name, Orders: len(cmds)}
	if timed {
		res.Latency = NewHistogram()
	}
	for i := range cmds { // the sequencer's job, done before timing
		cmds[i].Seq = uint64(i + 1)
	}
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	if timed {
		h := res.Latency
		for i := range cmds {
			t0 := nanotime()
			eng.Apply(&cmds[i])
			t1 := nanotime()
			_ = h.RecordValue(t1 - t0)
		}
	} else {
		for i := range cmds {
			eng.Apply(&cmds[i])
		}
	}
	eng.Flush()
	res.Elapsed = time.Since(start)
	runtime.ReadMemStats(&after)
	res.Allocs = after.Mallocs - before.Mallocs
	res.GCs = after.NumGC - before.NumGC
	res.Events, res.Takers = cnt.events, cnt.takers
	res.OpenAfter = eng.OpenCount()
	if !timed {
		res.CrossedPercent = 100 * float64(cnt.takers) / float64(len(cmds))
	}
	runtime.KeepAlive(eng)
	return res, nil
}

// Percentiles returns p50, p99, p99.9, p99.99 and max of h in nanoseconds.
func Percentiles(h *hdrhistogram.Histogram) (p50, p99, p999, p9999, maxv int64) {
	return h.ValueAtQuantile(50), h.ValueAtQuantile(99), h.ValueAtQuantile(99.9), h.ValueAtQuantile(99.99), h.Max()
}

// Summary renders a result on one line.
func (r Result) Summary() string {
	s := fmt.Sprintf("%-26s %9d cmds %8.1f ns/cmd %6.2fM cmds/s %5.2f allocs/cmd %d GCs, %.1f%% took",
		r.Name, r.Orders, r.NsPerOrder(), r.PerSecond()/1e6, r.AllocsPerOrder(), r.GCs, r.CrossedPercent)
	if r.Latency != nil {
		p50, p99, p999, p9999, mx := Percentiles(r.Latency)
		s += fmt.Sprintf(" | p50 %d p99 %d p99.9 %d ns (machine: p99.99 %d max %d ns)", p50, p99, p999, p9999, mx)
	}
	return s
}
