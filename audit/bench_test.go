package audit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/internal/audittest"
)

// benchEvents runs the engine on random limit orders and returns the
// commands and events in journal order.
func benchEvents(b *testing.B, n int) []core.Event {
	var evs []core.Event
	eng, err := core.New(bench.EngineConfig(1<<20), func(e []core.Event) { evs = append(evs, e...) })
	if err != nil {
		b.Fatal(err)
	}
	for i, c := range bench.RandomLimits(1, n, 30) {
		c.Seq, c.Time = uint64(i+1), int64(i)
		eng.Apply(&c)
	}
	eng.Flush()
	return evs
}

// BenchmarkAppend measures events appended per second at each durability
// level, committing (one write, plus one fdatasync at fsync) every batch
// events — the journaler's group commit.
func BenchmarkAppend(b *testing.B) {
	evs := benchEvents(b, 200_000)
	for _, tc := range []struct {
		name  string
		d     Durability
		batch int
	}{{"write/batch=256", DurabilityWrite, 256}, {"fsync/batch=256", DurabilityFsync, 256}, {"fsync/batch=4096", DurabilityFsync, 4096}} {
		b.Run(tc.name, func(b *testing.B) {
			w, err := OpenWriter(WriterConfig{Dir: b.TempDir(), Durability: tc.d, Instruments: testInstruments, Logger: quiet(), Now: func() time.Time { return time.Unix(0, 0) }})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			b.ReportAllocs()
			b.SetBytes(230)
			i := 0
			t0 := time.Now()
			for b.Loop() {
				ev := &evs[i%len(evs)] // a copy would escape: one allocation per event in the benchmark, none in the writer
				ev.Time = int64(i)
				if _, err := w.AppendEvent(ev); err != nil {
					b.Fatal(err)
				}
				i++
				if i%tc.batch == 0 {
					if err := w.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(i)/time.Since(t0).Seconds(), "events/s")
		})
	}
}

// BenchmarkVerify measures the verifier over a whole folder.
func BenchmarkVerify(b *testing.B) {
	evs := benchEvents(b, 100_000)
	dir := b.TempDir()
	keys := audittest.New("tradecore", time.Now().Add(-time.Hour))
	l, cls, err := Open(context.Background(), Config{WriterConfig: WriterConfig{Dir: dir, Instruments: testInstruments, Logger: quiet()}, Signer: keys.Signer(), ExternalCommit: true, CheckpointInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	w := l.Writer()
	t0 := time.Now().UnixNano()
	var seq uint64
	for i := range evs {
		ev := evs[i]
		if ev.Seq != seq {
			seq = ev.Seq
			c := core.Command{Kind: core.CmdEndOfDay, Seq: seq, Time: t0 + int64(seq)}
			w.AppendCommand(&c)
		}
		ev.Time = t0 + int64(seq)
		if _, err := w.AppendEvent(&ev); err != nil {
			b.Fatal(err)
		}
		if i%4096 == 0 {
			w.Commit()
		}
	}
	if err := cls(); err != nil {
		b.Fatal(err)
	}
	opts := VerifyOptions{Manifest: keys.JSON(), PinnedFirstKey: keys.FirstID()}
	for _, par := range []bool{false, true, false, true} {
		b.Run(fmt.Sprintf("parallel=%v", par), func(b *testing.B) {
			parallelVerify = par
			defer func() { parallelVerify = true }()
			var leaves uint64
			var took time.Duration
			b.ReportAllocs()
			for b.Loop() {
				s := time.Now()
				rep, err := VerifyDir(context.Background(), dir, opts)
				if err != nil {
					b.Fatal(err)
				}
				took += time.Since(s)
				leaves += rep.Leaves
			}
			b.ReportMetric(float64(leaves)/took.Seconds(), "leaves/s")
		})
	}
}

// BenchmarkReplay measures recovery: reading a journal of commands and
// their events from the segment files, decoding the commands and applying
// them to a fresh engine (apply=on), or reading and decoding alone
// (apply=off). The journal is random limit orders through the real engine
// (about 2.4 leaves per command).
func BenchmarkReplay(b *testing.B) {
	const n = 500_000
	dir := b.TempDir()
	cfg := bench.EngineConfig(1 << 20)
	w, err := OpenWriter(WriterConfig{Dir: dir, Instruments: testInstruments, Logger: quiet(), Now: func() time.Time { return time.Unix(0, 0) }})
	if err != nil {
		b.Fatal(err)
	}
	var out []core.Event
	eng, err := core.New(cfg, func(e []core.Event) { out = append(out, e...) })
	if err != nil {
		b.Fatal(err)
	}
	cmds := bench.RandomLimits(1, n, 30)
	for i := range cmds {
		c := &cmds[i]
		c.Seq, c.Time = uint64(i+1), int64(i+1)
		if _, err := w.AppendCommand(c); err != nil {
			b.Fatal(err)
		}
		out = out[:0]
		eng.Apply(c)
		eng.Flush()
		for j := range out {
			if _, err := w.AppendEvent(&out[j]); err != nil {
				b.Fatal(err)
			}
		}
		if i%1024 == 0 {
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	want := eng.StateHash()
	for _, apply := range []bool{true, false, true, false} {
		b.Run(fmt.Sprintf("apply=%v", apply), func(b *testing.B) {
			var cmds uint64
			var took time.Duration
			for b.Loop() {
				b.StopTimer()
				fresh, err := core.New(cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				r, err := OpenReader(dir)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				s := time.Now()
				err = ReadCommands(r, 0, func(_ uint64, c *core.Command) error {
					if apply {
						fresh.Apply(c)
					}
					cmds++
					return nil
				})
				took += time.Since(s)
				if err != nil {
					b.Fatal(err)
				}
				if apply && fresh.StateHash() != want {
					b.Fatal("replay gave another state hash")
				}
			}
			b.ReportMetric(float64(cmds)/took.Seconds(), "commands/s")
		})
	}
}
