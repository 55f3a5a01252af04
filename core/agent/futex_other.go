//go:build !linux

package agent

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Outside Linux there is no futex: a parked runner sleeps in short steps and
// re-checks the word. For development machines only; latency is the
// sleep's.
func futexWait(addr *uint32, val uint32, ns int64) {
	end := time.Now().Add(time.Duration(ns))
	for atomic.LoadUint32(addr) == val && time.Now().Before(end) {
		time.Sleep(min(time.Until(end), 50*time.Microsecond))
	}
}

func futexWake(*uint32) {}

func osYield() { runtime.Gosched() }

func tuneThread() {}
