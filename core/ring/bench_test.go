package ring_test

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/tradecore/tradecore/core/ring"
)

var benchStrategies = []ring.WaitStrategy{{Mode: ring.Park}, {Mode: ring.SpinYield}, {Mode: ring.BusySpin}}

const stop = math.MaxUint64 // sentinel value ending a benchmark's consumer

// BenchmarkMPSC measures one producer (the benchmark goroutine) pushing
// 104-byte values to one consumer goroutine, in batches: an op is one batch
// (TryPush/Push for 1, PushBatch otherwise); values/s counts values the
// consumer drained, including its catching up after the loop.
func BenchmarkMPSC(b *testing.B) {
	for _, ws := range benchStrategies {
		for _, batch := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("wait=%s/batch=%d", ws, batch), func(b *testing.B) {
				benchMPSC(b, ws, batch)
			})
		}
	}
}

func benchMPSC(b *testing.B, ws ring.WaitStrategy, batch int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	q, err := ring.NewMPSC[cmd](1<<12, ws)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan uint64)
	go func() {
		dst := make([]cmd, 256)
		var n uint64
		for q.Wait(ctx) == nil {
			k := q.Drain(dst)
			n += uint64(k)
			if k > 0 && dst[k-1].N == stop {
				done <- n - 1
				return
			}
		}
		done <- n
	}()

	vals := make([]cmd, batch)
	for i := range vals {
		vals[i] = mkCmd(0, uint64(i))
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if batch == 1 {
			if !q.TryPush(&vals[0]) {
				_ = q.Push(ctx, &vals[0])
			}
			continue
		}
		_, _ = q.PushBatch(ctx, vals)
	}
	end := mkCmd(0, stop)
	_ = q.Push(ctx, &end)
	n := <-done
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "values/s")
}

// BenchmarkRing measures one producer (the benchmark goroutine) publishing
// 128-byte events in batches to consumer goroutines: one consumer, or a
// gated chain of two (B after A). claim writes each value into a Claim
// window and Commits; publish copies a batch with Publish. An op is one
// batch; values/s counts values the last consumer released.
func BenchmarkRing(b *testing.B) {
	for _, ws := range benchStrategies {
		for _, topo := range []string{"1", "chain"} {
			for _, how := range []string{"claim", "publish"} {
				for _, batch := range []int{1, 16, 256} {
					if topo == "chain" && how == "publish" {
						continue // keep the matrix small
					}
					b.Run(fmt.Sprintf("wait=%s/consumers=%s/%s/batch=%d", ws, topo, how, batch), func(b *testing.B) {
						if ws.Mode == ring.BusySpin && topo == "chain" && runtime.GOMAXPROCS(0) < 3 {
							b.Skip("three busy spinners need three Ps")
						}
						benchRing(b, ws, topo == "chain", how == "claim", batch)
					})
				}
			}
		}
	}
}

func benchRing(b *testing.B, ws ring.WaitStrategy, chain, claim bool, batch int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := ring.NewRing[event](1<<12, ws)
	if err != nil {
		b.Fatal(err)
	}
	cs := make([]*ring.Consumer[event], 1, 2)
	if cs[0], err = r.NewConsumer(); err != nil {
		b.Fatal(err)
	}
	if chain {
		c, err := r.NewConsumer(cs[0])
		if err != nil {
			b.Fatal(err)
		}
		cs = append(cs, c)
	}
	done := make(chan uint64, len(cs))
	for _, c := range cs {
		go func() {
			var n, sum uint64
			for c.Wait(ctx) == nil {
				w := c.Poll()
				for i := range w {
					sum += w[i].Seq
				}
				n += uint64(len(w))
				last := len(w) > 0 && w[len(w)-1].Seq == stop
				c.Release(len(w))
				if last {
					done <- n - 1
					return
				}
			}
			done <- n
		}()
	}

	vals := make([]event, batch)
	for i := range vals {
		vals[i] = mkEvent(uint64(i))
	}
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		if !claim {
			_, _ = r.Publish(ctx, vals)
			continue
		}
		for left := batch; left > 0; {
			w, err := r.Claim(ctx, left)
			if err != nil {
				break
			}
			copy(w, vals)
			r.Commit(len(w))
			left -= len(w)
		}
	}
	_, _ = r.Publish(ctx, []event{mkEvent(stop)})
	var n uint64
	for range cs {
		n = <-done
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "values/s")
}
