package gateway

import (
	"math/bits"
	"sync/atomic"
)

// outbox is a session's bounded outbound queue: a single-producer,
// single-consumer byte ring. The producer is the session's publisher; the
// consumer is the publisher too (plain TCP: it writes to the socket itself)
// or the session's writer goroutine (TLS). Frames are copied in whole or not
// at all; the last reserve bytes are kept for the final Logout frame.
type outbox struct {
	buf  []byte
	mask uint64
	_    [64]byte
	head atomic.Uint64 // bytes consumed
	_    [56]byte
	tail atomic.Uint64 // bytes produced
}

// reserve is the room kept for the final Logout.
const reserve = 64

func newOutbox(size int) *outbox {
	n := uint64(1) << bits.Len64(uint64(size-1))
	return &outbox{buf: make([]byte, n), mask: n - 1}
}

// put appends frame, reporting false (and appending nothing) when it does
// not fit; final frames may use the reserve.
func (o *outbox) put(frame []byte, final bool) bool {
	t := o.tail.Load()
	free := uint64(len(o.buf)) - (t - o.head.Load())
	need := uint64(len(frame))
	if !final {
		need += reserve
	}
	if need > free {
		return false
	}
	i := t & o.mask
	n := copy(o.buf[i:], frame)
	copy(o.buf, frame[n:])
	o.tail.Store(t + uint64(len(frame)))
	return true
}

// pending returns the bytes waiting, in up to two pieces.
func (o *outbox) pending() (a, b []byte) {
	h, t := o.head.Load(), o.tail.Load()
	if h == t {
		return nil, nil
	}
	i, j := h&o.mask, t&o.mask
	if i < j {
		return o.buf[i:j], nil
	}
	return o.buf[i:], o.buf[:j]
}

// consume marks n pending bytes sent.
func (o *outbox) consume(n int) { o.head.Add(uint64(n)) }

// empty reports whether nothing is waiting.
func (o *outbox) empty() bool { return o.head.Load() == o.tail.Load() }
