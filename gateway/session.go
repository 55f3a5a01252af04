package gateway

import (
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
)

// port says which port a session is on.
type port uint8

const (
	portOE port = iota // order entry
	portMD             // market data
)

var portNames = [2]string{"order-entry", "market-data"}

func (p port) String() string { return portNames[p] }

// Session states. A session's conn is written by its goroutine while
// logging in and replaying, and from then on only by the side that drains
// its outbox: the publisher itself (plain TCP) or its writer goroutine (TLS).
const (
	stLogin   uint32 = iota // the session goroutine owns the conn
	stReplay                // attached: the publisher queues live messages; the goroutine replays
	stLive                  // the outbox's consumer writes
	stClosing               // a final Logout is queued; the conn closes once it is sent
	stClosed
)

// session is one client connection.
type session struct {
	g       *Gateway
	port    port
	id      uint64
	conn    net.Conn
	raw     syscall.RawConn // plain TCP: the publisher writes to it directly
	addr    netip.Addr
	addrSt  *addrState
	acct    *acctState
	keyID   string
	user    string
	account uint32
	attest  *attestState // the device, when the session is attested

	state    atomic.Uint32
	overflow atomic.Bool   // the outbox overflowed while replaying
	reason   atomic.Uint32 // why it closed (a core.Reason), for the audit record
	out      *outbox
	bell     *agent.Doorbell   // TLS: the writer goroutine's
	attached chan attachResult // the publisher's answer to the attach

	// Login request.
	wantSeq  uint64
	snapshot bool
	rate     *limiter

	// Publisher-owned.
	lastSent int64
	closeAt  int64
	dirty    bool
	failed   bool

	// Direct writes (publisher).
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
}

// attachResult is the publisher's answer to a session's attach.
type attachResult struct {
	reason     core.Reason // non-zero: refused
	nextSeq    uint64
	replayFrom uint64
	nextRef    uint64
	mark       mark   // order entry: where the replay starts reading
	snap       []byte // market data: the snapshot or replayed frames to send first
}

func newSession(g *Gateway, p port, c net.Conn) *session {
	s := &session{g: g, port: p, id: g.nextID.Add(1), conn: c, addr: addrOf(c.RemoteAddr().String()),
		attached: make(chan attachResult, 1), out: newOutbox(g.cfg.OutboundQueue), rate: newLimiter(g.cfg.SessionRate)}
	if tc, ok := c.(*net.TCPConn); ok {
		if raw, err := tc.SyscallConn(); err == nil {
			s.raw = raw
			s.writeFn = func(fd uintptr) bool {
				s.wn, s.werr = unix.Write(int(fd), s.wbuf)
				if s.wn < 0 {
					s.wn = 0
				}
				return true
			}
		}
	} else {
		s.bell = agent.NewDoorbell()
	}
	return s
}

// ending reports whether the session is closing, or has been asked to
// (a logout request, a protocol error, a lost connection): a new login of
// its account may take over.
func (s *session) ending() bool { return s.state.Load() >= stClosing || s.reason.Load() != 0 }

// direct reports whether the publisher writes to the socket itself.
func (s *session) direct() bool { return s.raw != nil }

// flushDirect writes what the outbox holds with non-blocking write(2)s on
// the publisher's thread; what the socket does not take stays queued. It
// reports whether the outbox is empty afterwards.
func (s *session) flushDirect() bool {
	for range 2 {
		a, _ := s.out.pending()
		if len(a) == 0 {
			return true
		}
		s.wbuf = a
		err := s.raw.Write(s.writeFn)
		s.wbuf = nil
		if s.wn > 0 {
			s.out.consume(s.wn)
		}
		if err == nil {
			err = s.werr
		}
		if errors.Is(err, unix.EAGAIN) {
			return false
		}
		if err != nil {
			s.failed = true
			return false
		}
		if s.wn < len(a) {
			return false
		}
	}
	return s.out.empty()
}

// writer is a TLS session's writer goroutine: it drains the outbox into the
// TLS connection, waiting on the session's doorbell (a futex, not the Go
// scheduler's queues) when there is nothing to send.
func (s *session) writer() {
	defer s.g.wg.Done()
	for {
		st := s.state.Load()
		if st == stClosed {
			return
		}
		if a, _ := s.out.pending(); len(a) > 0 {
			_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
			n, err := s.conn.Write(a)
			s.out.consume(n)
			if err != nil {
				s.closeConn(0)
				return
			}
			continue
		}
		if st == stClosing {
			s.closeConn(0)
			return
		}
		gen := s.bell.Arm()
		if !s.out.empty() || s.state.Load() != st {
			s.bell.Disarm()
			continue
		}
		s.bell.Wait(gen, int64(100*time.Millisecond))
	}
}

// closeConn closes the connection once, recording why (first reason wins).
func (s *session) closeConn(reason core.Reason) {
	if reason != 0 {
		s.reason.CompareAndSwap(0, uint32(reason))
	}
	if s.state.Swap(stClosed) != stClosed {
		_ = s.conn.Close()
		if s.bell != nil {
			s.bell.Ring()
		}
	}
}
