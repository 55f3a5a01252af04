package gateway

import (
	"context"
	"time"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/proto"
)

// ctlOp is what a session goroutine asks of its publisher.
type ctlOp uint8

const (
	opAttach   ctlOp = iota + 1 // the session logged in: number it in, answer on s.attached
	opLive                      // the replay is sent: start draining the outbox
	opSend                      // queue frame (an unsequenced message)
	opClose                     // end the session with reason (0: the peer went away)
	opQueryRef                  // answer a ReferenceQuery
	opDetach                    // the goroutine closed the session itself: forget it
)

// ctlMsg travels from session goroutines to a publisher on its control
// ring. Fixed size, so the ring is preallocated; frame holds the largest
// unsequenced message the session side sends in a session (an
// AttestChallenge).
type ctlMsg struct {
	op     ctlOp
	n      uint8
	reason core.Reason
	s      *session
	frame  [72]byte
}

// ctlRing is the size of a publisher's control ring.
const ctlRing = 4096

// pubBase is what the two publishers share: their control ring, their live
// sessions, the outbox flush, heartbeats and closes. Owned by the
// publisher's runner.
type pubBase struct {
	g      *Gateway
	port   port
	name   string
	cons   *ring.Consumer[core.Event]
	ctl    *ring.MPSC[ctlMsg]
	live   []*session
	dirty  []*session
	buf    []byte
	swept  int64
	hbNs   int64
	drainT int64 // nanotime the drain began
}

func newPubBase(g *Gateway, p port, name string, cons *ring.Consumer[core.Event]) (pubBase, error) {
	ctl, err := ring.NewMPSC[ctlMsg](ctlRing, ring.WaitStrategy{Mode: ring.BusySpin})
	if err != nil {
		return pubBase{}, err
	}
	return pubBase{g: g, port: p, name: name, cons: cons, ctl: ctl, buf: make([]byte, 0, 256), hbNs: int64(g.cfg.HeartbeatInterval)}, nil
}

// Name implements agent.Agent.
func (p *pubBase) Name() string { return p.name }

// UseDoorbell implements agent.DoorbellUser: events and control messages
// wake the publisher's runner.
func (p *pubBase) UseDoorbell(d *agent.Doorbell) error {
	p.ctl.SetDoorbell(d)
	return p.cons.SetDoorbell(d)
}

// send asks the publisher to queue frame for s, from a session goroutine.
// It reports false when the control ring stayed full.
func (p *pubBase) send(m *ctlMsg) bool {
	for range 1000 {
		if p.ctl.TryPush(m) {
			return true
		}
		time.Sleep(10 * time.Microsecond)
	}
	return false
}

// queue appends a frame to s's outbox; an overflow ends the session
// (slow-reader). It reports whether the frame was queued.
func (p *pubBase) queue(s *session, frame []byte, now int64) bool {
	st := s.state.Load()
	if st != stReplay && st != stLive {
		return false
	}
	if !s.out.put(frame, false) {
		p.g.m.disconnect(proto.ReasonSlowReader)
		p.close(s, proto.ReasonSlowReader, now)
		return false
	}
	p.g.m.out(p.port, frame[2])
	s.lastSent = now
	p.markDirty(s)
	return true
}

func (p *pubBase) markDirty(s *session) {
	if !s.dirty {
		s.dirty = true
		p.dirty = append(p.dirty, s)
	}
}

// close ends s with reason: a final Logout is queued and the conn closes once
// it is sent (or after a second). A session still replaying is only marked:
// its goroutine owns the conn and finishes the close.
func (p *pubBase) close(s *session, reason core.Reason, now int64) {
	s.reason.CompareAndSwap(0, uint32(reason))
	switch s.state.Load() {
	case stReplay:
		s.overflow.Store(true)
		return
	case stLive:
	default:
		return
	}
	if reason != 0 {
		lo := proto.Logout{Reason: reason, NextSeq: p.nextSeqOf(s)}
		p.buf = lo.AppendFrame(p.buf[:0])
		s.out.put(p.buf, true)
	}
	s.closeAt = now + int64(time.Second)
	s.state.Store(stClosing)
	p.markDirty(s)
}

// nextSeqOf is overridden per port through the hook below.
func (p *pubBase) nextSeqOf(s *session) uint64 {
	if p.g.pub != nil && p.port == portOE {
		return p.g.pub.nextSeq(s)
	}
	if p.g.md != nil && p.port == portMD {
		return p.g.md.seq + 1
	}
	return 0
}

// drainCtl handles up to a batch of control messages; handle gets the
// port-specific ones (attach, query).
func (p *pubBase) drainCtl(now int64, handle func(m *ctlMsg, now int64)) int {
	k := 0
	for ; k < 256; k++ {
		m := p.ctl.Front(k)
		if m == nil {
			break
		}
		s := m.s
		switch m.op {
		case opSend:
			p.queue(s, m.frame[:m.n], now)
		case opLive:
			p.live = append(p.live, s)
			p.markDirty(s)
		case opClose:
			if m.reason == 0 { // the peer went away: nothing to say
				if s.state.Load() == stLive {
					s.state.Store(stClosing)
					s.closeAt = now
					p.markDirty(s)
				}
			} else {
				p.close(s, m.reason, now)
			}
			handle(m, now)
		default:
			handle(m, now)
		}
		m.s = nil // let the session go
	}
	p.ctl.Advance(k)
	return k
}

// flush sends what the dirty sessions hold: plain TCP sessions by a
// non-blocking write here, TLS sessions by ringing their writer. Sessions
// with bytes the socket did not take stay dirty.
func (p *pubBase) flush(now int64) {
	keep := p.dirty[:0]
	for _, s := range p.dirty {
		st := s.state.Load()
		if st != stLive && st != stClosing {
			if st == stReplay {
				keep = append(keep, s) // not yet: the replay is being sent
			} else {
				s.dirty = false
			}
			continue
		}
		if !s.direct() {
			s.bell.Ring()
			s.dirty = false
			continue
		}
		done := s.flushDirect()
		if s.failed || (st == stClosing && (done || now >= s.closeAt)) {
			s.closeConn(0)
			s.dirty = false
			continue
		}
		if done {
			s.dirty = false
		} else {
			keep = append(keep, s)
		}
	}
	p.dirty = keep
}

// sweep sends heartbeats to sessions that were quiet for the interval and
// forgets closed sessions; onClosed tells the port.
func (p *pubBase) sweep(now int64, onClosed func(s *session)) {
	if now-p.swept < int64(50*time.Millisecond) {
		return
	}
	p.swept = now
	keep := p.live[:0]
	for _, s := range p.live {
		switch s.state.Load() {
		case stClosed:
			onClosed(s)
			continue
		case stClosing:
			if now >= s.closeAt {
				if s.direct() {
					s.closeConn(0)
				} else {
					s.bell.Ring()
				}
			} else {
				p.markDirty(s)
			}
		case stLive:
			if now-s.lastSent >= p.hbNs {
				var hb proto.Heartbeat
				p.buf = hb.AppendFrame(p.buf[:0])
				p.queue(s, p.buf, now)
			}
		}
		keep = append(keep, s)
	}
	clear(p.live[len(keep):])
	p.live = keep
}

// flushed reports whether every live session's outbox is empty.
func (p *pubBase) flushed() bool {
	for _, s := range p.live {
		if st := s.state.Load(); (st == stLive || st == stClosing) && !s.out.empty() {
			return false
		}
	}
	return true
}

// publisher is the order-entry publisher agent: it reads the engine's
// events behind the durability gate, numbers every account's messages, and
// queues each to the account's logged-in session.
type publisher struct {
	pubBase
	ss       *streams
	sessions map[uint32]*session // logged-in order-entry session by account
	ackSeq   uint64
}

func newPublisher(g *Gateway, cons *ring.Consumer[core.Event], ss *streams) (*publisher, error) {
	b, err := newPubBase(g, portOE, "gateway-publisher", cons)
	if err != nil {
		return nil, err
	}
	return &publisher{pubBase: b, ss: ss, sessions: map[uint32]*session{}}, nil
}

func (p *publisher) nextSeq(s *session) uint64 {
	if st := p.ss.byAcct[s.account]; st != nil {
		return st.next
	}
	return 1
}

// DoWork implements agent.Agent.
func (p *publisher) DoWork(context.Context) (int, error) {
	now := nanotime()
	n := p.drainCtl(now, p.handle)
	w := p.cons.Poll()
	if len(w) > 1024 {
		w = w[:1024]
	}
	for i := range w {
		p.route(&w[i], now)
	}
	p.cons.Release(len(w))
	n += len(w)
	p.flush(now)
	p.sweep(now, p.forget)
	return n, nil
}

func (p *publisher) forget(s *session) {
	if p.sessions[s.account] == s {
		delete(p.sessions, s.account)
	}
}

// route numbers ev's messages and queues them to logged-in sessions.
func (p *publisher) route(ev *core.Event, now int64) {
	if ev.Kind.Public() && ev.Kind != core.KindSystem || ev.Kind == core.KindRegulatory {
		return
	}
	p.ss.apply(ev, func(st *stream, n uint64, maker bool) {
		s := p.sessions[st.account]
		if s == nil {
			return
		}
		if !maker && ev.Tag != 0 && ev.Seq != p.ackSeq && ev.Account == s.account {
			p.ackSeq = ev.Seq
			p.g.m.ack(now - int64(ev.Tag))
		}
		if ev.Kind == core.KindRejected {
			p.g.m.reject(ev.Reason)
		}
		p.buf = appendOE(p.buf[:0], ev, n, maker)
		p.queue(s, p.buf, now)
	})
}

// handle answers attaches and reference queries, and forgets sessions.
func (p *publisher) handle(m *ctlMsg, now int64) {
	s := m.s
	switch m.op {
	case opAttach:
		res := attachResult{}
		if old := p.sessions[s.account]; old != nil && !old.ending() {
			res.reason = proto.ReasonSessionActive
		} else {
			res.nextSeq = 1
			var maxRef uint64
			st := p.ss.byAcct[s.account]
			if st != nil {
				res.nextSeq, maxRef = st.next, st.maxRef
			}
			res.replayFrom = res.nextSeq
			switch {
			case s.wantSeq > res.nextSeq:
				res.reason = proto.ReasonReplayUnavailable
			case s.wantSeq > 0 && s.wantSeq < res.nextSeq:
				res.replayFrom, res.mark = s.wantSeq, st.markFor(s.wantSeq)
			}
			res.nextRef = max(maxRef, s.acct.pushedRef.Load()) + 1
			if res.reason == 0 {
				s.state.Store(stReplay)
				s.lastSent = now
				p.sessions[s.account] = s
			}
		}
		s.attached <- res // buffered: never blocks
	case opQueryRef:
		var maxRef uint64
		if st := p.ss.byAcct[s.account]; st != nil {
			maxRef = st.maxRef
		}
		nr := proto.NextReference{NextClOrdID: max(maxRef, s.acct.pushedRef.Load()) + 1, Account: s.account}
		p.buf = nr.AppendFrame(p.buf[:0])
		p.queue(s, p.buf, now)
	case opDetach, opClose:
		if m.op == opDetach || s.state.Load() >= stClosing {
			p.forget(s)
		}
	}
}

// Drained implements agent.Drainer: the engine has stopped, every event
// is routed, and the outboxes are sent (or a second has passed).
func (p *publisher) Drained() bool {
	now := nanotime()
	if p.drainT == 0 {
		p.drainT = now
	}
	if !p.g.deps.Loop.Stopped() || p.cons.Readable() != 0 || p.ctl.Len() != 0 {
		return false
	}
	return p.flushed() || now-p.drainT > int64(DefaultDrainFlushTimeout)
}
