package gateway

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	_ "unsafe" // for go:linkname
)

// nanotime is the runtime's monotonic clock.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// limiter is a token bucket in GCRA form (the generic cell rate algorithm):
// one atomic word, the theoretical arrival time of the next message. It
// allows rate messages per second with a burst of as many. Safe for
// concurrent use; a zero rate allows everything.
type limiter struct {
	tat      atomic.Int64
	interval int64 // ns per message
	tau      int64 // burst tolerance, ns
}

func newLimiter(rate int) *limiter {
	l := &limiter{}
	l.set(rate)
	return l
}

func (l *limiter) set(rate int) {
	if rate <= 0 {
		l.interval = 0
		return
	}
	l.interval = int64(time.Second) / int64(rate)
	l.tau = int64(time.Second) - l.interval
}

// allow takes one token at now (nanotime), reporting whether there was one.
func (l *limiter) allow(now int64) bool {
	if l.interval == 0 {
		return true
	}
	for {
		tat := l.tat.Load()
		t := max(tat, now)
		if t-now > l.tau {
			return false
		}
		if l.tat.CompareAndSwap(tat, t+l.interval) {
			return true
		}
	}
}

// addrState is what the gateway keeps per source address.
type addrState struct {
	conns  int // guarded by the gateway's mutex
	rate   *limiter
	logins *limiter
	logged *limiter // audit records of throttled connections
}

// acctState is what the gateway keeps per account across its sessions.
type acctState struct {
	rate *limiter
	// pushedRef is the highest ClOrdID a session of the account pushed to
	// the engine: with the published events it bounds the next reference.
	pushedRef atomic.Uint64
}

func (a *acctState) notePushed(ref uint64) {
	for {
		cur := a.pushedRef.Load()
		if ref <= cur || a.pushedRef.CompareAndSwap(cur, ref) {
			return
		}
	}
}

// nonces remembers the login nonces of each key for the replay window.
type nonces struct {
	mu     sync.Mutex
	seen   map[nonceKey]int64 // expiry, Unix ns
	pruned int64
}

type nonceKey struct {
	key   string
	nonce [16]byte
}

// use records nonce for key until exp, reporting false when it was already
// recorded and unexpired at now.
func (n *nonces) use(key string, nonce [16]byte, now, exp int64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.seen == nil {
		n.seen = map[nonceKey]int64{}
	}
	k := nonceKey{key, nonce}
	if e, ok := n.seen[k]; ok && e > now {
		return false
	}
	n.seen[k] = exp
	if now-n.pruned > int64(time.Second) {
		n.pruned = now
		for k, e := range n.seen {
			if e <= now {
				delete(n.seen, k)
			}
		}
	}
	return true
}

// addrOf returns the address of a "host:port" network address.
func addrOf(s string) netip.Addr {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
