// Package gateway is tradecore's network edge: the order-entry and
// market-data ports of docs/protocol.md.
//
// Each connection has a session goroutine that reads frames, checks the
// login (API key, MAC, scope, allow-list, clock skew, nonce), applies the
// rate limits and pushes commands into the engine's inbound ring with
// TryPush (docs/threading.md, "The gateway"). Two publisher agents, on the
// runners of the engine's plan, read the engine's events behind the
// journaler's durability gate: the order-entry publisher numbers each
// account's messages and queues them to its session, the market-data
// publisher numbers the feed and queues it to every subscriber. On plain TCP
// the publisher writes to the socket itself with non-blocking writes, so an
// acknowledgement never waits for the Go scheduler; on TLS a writer
// goroutine per session drains the queue, woken through a futex doorbell.
// A client that logs in with NextSeq gets the messages it missed again,
// read from the journal. A key or account that requires an attested device
// is admitted only after the device's TPM quote verifies (Deps.Attestor),
// and a keeper goroutine per attested session renews and revalidates the
// attestation, ending the session when it fails; the order path never
// looks at it (attest.go).
//
// Use: New (it scans the journal), add Agents to the engine's plan, Start
// (listens), cancel the context to stop taking orders, wait for the plan,
// then Close (logs every session out).
package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/proto"
)

// Gateway is the order-entry and market-data server.
type Gateway struct {
	cfg  Config
	deps Deps
	m    *metrics
	jr   *journal
	pub  *publisher
	md   *mdPublisher

	mu       sync.Mutex
	addrs    map[netip.Addr]*addrState
	accts    map[uint32]*acctState
	active   map[string]*session // logged-in session by "oe:<account>" / "md:<key id>"
	all      map[*session]struct{}
	conns    int
	nonces   nonces
	lns      [2]net.Listener
	stopping atomic.Bool
	pushing  atomic.Int64
	nextID   atomic.Uint64
	wg       sync.WaitGroup
	closed   bool
}

// New builds the gateway: it scans the journal in deps.JournalDir to number
// every account's messages (and adds the journal's sequence marks to
// deps.Marks), so call it before the engine's plan runs.
func New(cfg Config, deps Deps) (*Gateway, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	if err := deps.check(&cfg); err != nil {
		return nil, err
	}
	g := &Gateway{cfg: cfg, deps: deps, addrs: map[netip.Addr]*addrState{}, accts: map[uint32]*acctState{},
		active: map[string]*session{}, all: map[*session]struct{}{}}
	g.m = newMetrics(deps.Registry, func(name string) func() float64 {
		switch {
		case name == "inbound":
			return func() float64 { return float64(deps.In.Len()) }
		case name == "control" && deps.Control != nil:
			return func() float64 { return float64(deps.Control.Len()) }
		}
		return nil
	})
	g.jr = &journal{dir: deps.JournalDir, marks: deps.Marks}
	ss := newStreams()
	start := time.Now()
	n, err := g.jr.scan(ss)
	if err != nil {
		return nil, fmt.Errorf("gateway: scan the journal: %w", err)
	}
	deps.Logger.Info("gateway: journal scanned", "events", n, "accounts", len(ss.all), "marks", deps.Marks.Len(), "took", time.Since(start))
	if cfg.OrderEntry != "-" {
		if g.pub, err = newPublisher(g, deps.Events, ss); err != nil {
			return nil, err
		}
	}
	if cfg.MarketData != "-" {
		if g.md, err = newMDPublisher(g, deps.MDEvents); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Agents returns the publisher agents to add to the engine's plan.
func (g *Gateway) Agents() []agent.Agent {
	var out []agent.Agent
	if g.pub != nil {
		out = append(out, g.pub)
	}
	if g.md != nil {
		out = append(out, g.md)
	}
	return out
}

// Start listens on the configured ports and serves connections until ctx
// ends; then it stops taking orders (Stopped reports when no session
// goroutine pushes any more) and stops accepting.
func (g *Gateway) Start(ctx context.Context) error {
	for p, addr := range [2]string{g.cfg.OrderEntry, g.cfg.MarketData} {
		if addr == "-" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			g.closeListeners()
			return fmt.Errorf("gateway: listen on %s for %s: %w (choose another address)", addr, port(p), err)
		}
		g.lns[p] = ln
	}
	for p, ln := range g.lns {
		if ln == nil {
			continue
		}
		g.wg.Add(1)
		go g.accept(ctx, port(p), ln)
	}
	context.AfterFunc(ctx, func() {
		g.stopping.Store(true)
		g.closeListeners()
	})
	return nil
}

func (g *Gateway) closeListeners() {
	for _, ln := range g.lns {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// Addr returns the address the order-entry (oe true) or market-data port
// listens on, once started.
func (g *Gateway) Addr(oe bool) net.Addr {
	p := portMD
	if oe {
		p = portOE
	}
	if g.lns[p] == nil {
		return nil
	}
	return g.lns[p].Addr()
}

// Stopped reports whether the gateway pushes no more commands: its context
// ended and no session goroutine is inside a push. The engine loop's
// ProducersStopped includes it.
func (g *Gateway) Stopped() bool { return g.stopping.Load() && g.pushing.Load() == 0 }

// Close ends every session after the plan has stopped: what is queued is
// sent, then a Logout (server-shutdown) with the next sequence number; it
// waits for the session goroutines, which write their gateway.session_closed
// audit records: with the journaler stopped, run it inside the log's
// CommitDuring.
func (g *Gateway) Close() error {
	g.stopping.Store(true)
	g.closeListeners()
	g.mu.Lock()
	g.closed = true
	sessions := make([]*session, 0, len(g.all))
	for s := range g.all {
		sessions = append(sessions, s)
	}
	g.mu.Unlock()
	for _, s := range sessions {
		g.logout(s)
	}
	g.wg.Wait()
	return nil
}

// logout sends s what it has queued and a final Logout, from a goroutine,
// once the publishers have stopped (so the outbox has no producer but us).
func (g *Gateway) logout(s *session) {
	st := s.state.Load()
	switch st {
	case stClosed:
		return
	case stLogin:
		s.closeConn(proto.ReasonShutdown)
		return
	}
	if st != stClosing {
		var next uint64
		if s.port == portOE && g.pub != nil {
			next = g.pub.nextSeq(s)
		} else if g.md != nil {
			next = g.md.seq + 1
		}
		lo := proto.Logout{Reason: proto.ReasonShutdown, NextSeq: next}
		s.out.put(lo.AppendFrame(nil), true)
		s.reason.CompareAndSwap(0, uint32(proto.ReasonShutdown))
	}
	if !s.direct() {
		// The writer goroutine sends the queue, Logout included, then closes.
		s.state.Store(stClosing)
		s.bell.Ring()
		for range 200 {
			if s.state.Load() == stClosed {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		s.closeConn(proto.ReasonShutdown)
		return
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	for !s.out.empty() {
		a, _ := s.out.pending()
		n, err := s.conn.Write(a)
		s.out.consume(n)
		if err != nil {
			break
		}
	}
	s.closeConn(proto.ReasonShutdown)
}

// accept takes connections until the listener closes.
func (g *Gateway) accept(ctx context.Context, p port, ln net.Listener) {
	defer g.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				g.deps.Logger.Warn("gateway: accept", "port", p.String(), "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return
		}
		g.wg.Add(1)
		go g.serve(ctx, p, c)
	}
}

// serve runs one connection: TLS, login, replay, then the read loop.
func (g *Gateway) serve(ctx context.Context, p port, c net.Conn) {
	defer g.wg.Done()
	addr := addrOf(c.RemoteAddr().String())
	g.mu.Lock()
	as := g.addrs[addr]
	if as == nil {
		as = &addrState{rate: newLimiter(g.cfg.AddressRate), logins: newLimiter(g.cfg.LoginsPerAddr), logged: newLimiter(1)}
		g.addrs[addr] = as
	}
	as.conns++
	g.conns++
	over := as.conns > g.cfg.MaxConnsPerAddr || g.conns > g.cfg.MaxSessions || g.closed
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		as.conns--
		g.conns--
		g.mu.Unlock()
	}()
	deadline := time.Now().Add(g.cfg.LoginTimeout)
	_ = c.SetDeadline(deadline)
	if g.cfg.TLS != nil {
		tc := tls.Server(c, g.cfg.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			g.deps.Logger.Info("gateway: TLS handshake failed", "port", p.String(), "addr", addr.String(), "err", err)
			_ = c.Close()
			return
		}
		c = tc
	}
	s := newSession(g, p, c)
	s.addrSt = as
	reject := func(r core.Reason, keyID string) {
		g.m.logins[p][1].Inc()
		g.m.reject(r)
		lr := proto.LoginRejected{Reason: r}
		_ = c.SetWriteDeadline(time.Now().Add(time.Second)) // the login deadline may have passed (login-timeout)
		_, _ = c.Write(lr.AppendFrame(nil))
		lingerClose(c)
		g.deps.Logger.Info("gateway: login refused", "port", p.String(), "addr", addr.String(), "key_id", keyID, "reason", proto.ReasonName(r))
	}
	var limit core.Reason
	switch {
	case over:
		limit = proto.ReasonTooManyConnections
	case !as.logins.allow(nanotime()):
		limit = proto.ReasonLoginRate
	}
	if limit != 0 {
		// Throttled: one audit record per address and second at most, so a
		// flood cannot flood the log.
		if as.logged.allow(nanotime()) {
			g.record(ctx, "gateway.login_rejected", loginRecord{Port: p.String(), Addr: addr.String(), Reason: proto.ReasonName(limit), Code: int(limit)})
		}
		reject(limit, "")
		return
	}
	fr := proto.NewFrameReader(c, 0)
	frame, err := fr.Next()
	if err != nil {
		r := proto.ReasonLoginTimeout
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, io.EOF) {
			r = proto.ReasonOf(err)
		}
		g.record(ctx, "gateway.login_rejected", loginRecord{Port: p.String(), Addr: addr.String(), Reason: proto.ReasonName(r), Code: int(r)})
		reject(r, "")
		return
	}
	var login proto.Login
	if err := proto.ParseLogin(frame, &login); err != nil {
		r := proto.ReasonOf(err)
		g.record(ctx, "gateway.login_rejected", loginRecord{Port: p.String(), Addr: addr.String(), Reason: proto.ReasonName(r), Code: int(r)})
		reject(r, "")
		return
	}
	keyID := string(login.KeyID[:])
	r, key := g.checkLogin(ctx, p, frame, &login, addr)
	var deviceID string
	if r == 0 {
		req, conflict := g.deviceRequirement(&key)
		if announced := login.Flags&proto.FlagDevice != 0; req != "" || conflict || announced {
			s.attest, deviceID, r = g.attestLogin(ctx, s, fr, announced, req, conflict, deadline)
		}
	}
	if r == 0 {
		s.keyID, s.user, s.account = keyID, key.User, key.Account
		s.wantSeq, s.snapshot = login.NextSeq, login.Flags&proto.FlagSnapshot != 0
		r = g.admit(s)
	}
	if r != 0 {
		g.record(ctx, "gateway.login_rejected", loginRecord{Port: p.String(), Addr: addr.String(), KeyID: keyID, Device: deviceID,
			Reason: proto.ReasonName(r), Code: int(r)})
		reject(r, keyID)
		return
	}
	defer g.release(s)
	res, ok := g.attach(s)
	if !ok || res.reason != 0 {
		if res.reason == 0 {
			res.reason = proto.ReasonShutdown
		}
		g.record(ctx, "gateway.login_rejected", loginRecord{Port: p.String(), Addr: addr.String(), KeyID: keyID, Device: deviceID,
			Reason: proto.ReasonName(res.reason), Code: int(res.reason)})
		reject(res.reason, keyID)
		s.state.Store(stClosed)
		g.detach(s)
		return
	}
	if _, err := g.deps.Recorder.Record(ctx, "gateway.login", loginRecord{Port: p.String(), Addr: addr.String(), KeyID: keyID,
		User: s.user, Account: s.account, Device: deviceID, NextSeq: res.nextSeq, ReplayFrom: res.replayFrom}); err != nil {
		g.deps.Logger.Error("gateway: the login could not be recorded; refused", "err", err)
		reject(proto.ReasonShutdown, keyID)
		s.state.Store(stClosed)
		g.detach(s)
		return
	}
	g.m.logins[p][0].Inc()
	g.m.sessions[p].Inc()
	defer g.m.sessions[p].Dec()
	g.deps.Logger.Info("gateway: logged in", "port", p.String(), "addr", addr.String(), "key_id", keyID, "account", s.account,
		"device_id", deviceID, "next_seq", res.nextSeq, "replay_from", res.replayFrom)
	if !g.sendLogin(s, res) {
		return
	}
	if s.attest != nil {
		g.wg.Add(1)
		go g.keepAttested(ctx, s)
		defer close(s.attest.stop)
	}
	g.read(ctx, s, fr)
}

// loginRecord is the body of the gateway.login and gateway.login_rejected
// audit records: never the MAC, the nonce or the secret.
type loginRecord struct {
	Port       string `json:"port"`
	Addr       string `json:"addr"`
	KeyID      string `json:"key_id,omitempty"`
	Device     string `json:"device_id,omitempty"`
	User       string `json:"user,omitempty"`
	Account    uint32 `json:"account,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Code       int    `json:"code,omitempty"`
	NextSeq    uint64 `json:"next_seq,omitempty"`
	ReplayFrom uint64 `json:"replay_from,omitempty"`
}

// record writes an audit record, logging a failure.
func (g *Gateway) record(ctx context.Context, typ string, body any) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := g.deps.Recorder.Record(ctx, typ, body); err != nil {
		g.deps.Logger.Error("gateway: audit record failed", "type", typ, "err", err)
	}
}

// checkLogin runs the login checks in the documented order and returns the
// first refusal's reason (0: accepted) and the key.
func (g *Gateway) checkLogin(ctx context.Context, p port, frame []byte, l *proto.Login, addr netip.Addr) (core.Reason, apikey.Key) {
	key, secret, err := g.deps.Keys.Lookup(ctx, string(l.KeyID[:]))
	if err != nil {
		if !errors.Is(err, apikey.ErrNotFound) {
			g.deps.Logger.Error("gateway: key store", "err", err)
		}
		return proto.ReasonUnknownKey, key
	}
	now := g.cfg.Now()
	switch {
	case secret == nil || !proto.VerifyLogin(frame, secret):
		return proto.ReasonBadMAC, key
	case errors.Is(key.State(now), apikey.ErrRevoked):
		return proto.ReasonRevokedKey, key
	case key.State(now) != nil:
		return proto.ReasonExpiredKey, key
	case p == portOE && !key.Has(apikey.ScopeTrade), p == portMD && !key.Has(apikey.ScopeData):
		return proto.ReasonNoScope, key
	case !key.Allows(addr):
		return proto.ReasonSourceNotAllowed, key
	}
	skew := now.UnixNano() - l.Timestamp
	if skew < 0 {
		skew = -skew
	}
	if skew > int64(g.cfg.MaxClockSkew) {
		return proto.ReasonClockSkew, key
	}
	if !g.nonces.use(key.ID, l.Nonce, now.UnixNano(), now.UnixNano()+2*int64(g.cfg.MaxClockSkew)) {
		return proto.ReasonNonceReplay, key
	}
	return 0, key
}

// admit registers s as its account's (market data: its key's) session on
// the port, refusing a second one.
func (g *Gateway) admit(s *session) core.Reason {
	id := fmt.Sprintf("oe:%d", s.account)
	if s.port == portMD {
		id = "md:" + s.keyID
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return proto.ReasonShutdown
	}
	if old := g.active[id]; old != nil && !old.ending() {
		return proto.ReasonSessionActive
	}
	g.active[id] = s
	g.all[s] = struct{}{}
	a := g.accts[s.account]
	if a == nil {
		a = &acctState{rate: newLimiter(g.cfg.AccountRate)}
		g.accts[s.account] = a
	}
	s.acct = a
	return 0
}

// release forgets s once its goroutine ends.
func (g *Gateway) release(s *session) {
	id := fmt.Sprintf("oe:%d", s.account)
	if s.port == portMD {
		id = "md:" + s.keyID
	}
	g.mu.Lock()
	if g.active[id] == s {
		delete(g.active, id)
	}
	delete(g.all, s)
	g.mu.Unlock()
}

func (g *Gateway) pubOf(s *session) *pubBase {
	if s.port == portOE {
		return &g.pub.pubBase
	}
	return &g.md.pubBase
}

// attach asks the session's publisher to number it in and waits for the
// answer.
func (g *Gateway) attach(s *session) (attachResult, bool) {
	pb := g.pubOf(s)
	if !pb.send(&ctlMsg{op: opAttach, s: s}) {
		return attachResult{}, false
	}
	select {
	case res := <-s.attached:
		return res, true
	case <-time.After(5 * time.Second):
		// The publisher is not running (stopping): it may still answer
		// later; the session is closed either way.
		return attachResult{}, false
	}
}

// detach tells the publisher to forget a session its goroutine closed.
func (g *Gateway) detach(s *session) { g.pubOf(s).send(&ctlMsg{op: opDetach, s: s}) }

// sendLogin writes LoginAccepted and the replay (order entry: from the
// journal; market data: the snapshot or the replayed frames), then hands
// the conn to the publisher. It reports false when the session ended.
func (g *Gateway) sendLogin(s *session, res attachResult) bool {
	c := s.conn
	_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	w := bufio.NewWriterSize(c, 64<<10)
	la := proto.LoginAccepted{SessionID: g.cfg.ID, NextSeq: res.nextSeq, ReplayFrom: res.replayFrom,
		NextClOrdID: res.nextRef, Account: s.account, HeartbeatMs: uint32(g.cfg.HeartbeatInterval / time.Millisecond),
		ServerTime: g.cfg.Now().UnixNano()}
	if s.port == portMD {
		la.NextClOrdID, la.Account = 0, 0
	}
	_, err := w.Write(la.AppendFrame(nil))
	if err == nil && s.attest != nil {
		_, err = w.Write(s.attest.acceptedFrame(nil))
	}
	if err == nil {
		if s.port == portOE {
			err = g.jr.replay(s.account, res.mark, res.replayFrom, res.nextSeq, func(f []byte) error {
				if s.overflow.Load() {
					return errOverflow
				}
				_, err := w.Write(f)
				return err
			})
		} else {
			_, err = w.Write(res.snap)
		}
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil && s.overflow.Load() {
		err = errOverflow
	}
	if err != nil {
		r := proto.ReasonSlowReader
		if !errors.Is(err, errOverflow) && !errors.Is(err, os.ErrDeadlineExceeded) {
			g.deps.Logger.Error("gateway: replay failed", "account", s.account, "err", err)
			r = proto.ReasonShutdown
		}
		g.m.disconnect(r)
		lo := proto.Logout{Reason: r, NextSeq: res.nextSeq}
		_, _ = c.Write(lo.AppendFrame(nil))
		s.closeConn(r)
		g.detach(s)
		g.recordClose(s)
		return false
	}
	_ = c.SetWriteDeadline(time.Time{})
	s.state.Store(stLive)
	if !s.direct() {
		g.wg.Add(1)
		go s.writer()
	}
	g.pubOf(s).send(&ctlMsg{op: opLive, s: s})
	return true
}

var errOverflow = errors.New("gateway: outbound queue overflowed")

// reasonPeerGone marks a session whose client went away (not a protocol
// code: it is never sent).
const reasonPeerGone core.Reason = 1

// recordClose writes the gateway.session_closed audit record of s.
func (g *Gateway) recordClose(s *session) {
	r := core.Reason(s.reason.Load())
	name := "peer-closed"
	if r == reasonPeerGone {
		r = 0
	} else if r != 0 {
		name = proto.ReasonName(r)
	}
	rec := loginRecord{Port: s.port.String(), Addr: s.addr.String(), KeyID: s.keyID, Account: s.account, Reason: name, Code: int(r)}
	if s.attest != nil {
		rec.Device = s.attest.id
	}
	g.record(context.Background(), "gateway.session_closed", rec)
}

// read is the session's read loop: heartbeats, logout, orders.
func (g *Gateway) read(ctx context.Context, s *session, fr *proto.FrameReader) {
	defer g.recordClose(s)
	c := s.conn
	pb := g.pubOf(s)
	hbTimeout := g.cfg.HeartbeatTimeout
	var deadlineAt time.Time
	var cmd core.Command
	for {
		if now := time.Now(); now.Sub(deadlineAt) > time.Second {
			deadlineAt = now
			_ = c.SetReadDeadline(now.Add(hbTimeout))
		}
		f, err := fr.Next()
		if err != nil {
			st := s.state.Load()
			if st >= stClosing {
				return // closed by the server
			}
			var r core.Reason
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				r = proto.ReasonHBTimeout
			case errors.Is(err, proto.ErrMalformed), errors.Is(err, proto.ErrOversized), errors.Is(err, proto.ErrVersion):
				r = proto.ReasonOf(err)
			}
			g.end(s, pb, r)
			return
		}
		t := proto.Type(f[2])
		g.m.in(s.port, byte(t))
		switch {
		case t == proto.THeartbeat:
			continue
		case t == proto.TLogoutRequest:
			g.end(s, pb, proto.ReasonLogoutByUser)
			continue // read until the server closes
		case s.port == portOE && t == proto.TReferenceQuery:
			pb.send(&ctlMsg{op: opQueryRef, s: s})
			continue
		case s.port == portOE && command(t, f, s.account, 0, &cmd):
			g.order(s, pb, t, &cmd)
			continue
		case t == proto.TAttestQuote && s.attest != nil:
			if r := g.takeQuote(s, f); r != 0 {
				g.end(s, pb, r)
				return
			}
			continue
		}
		g.end(s, pb, proto.ReasonMalformed) // a message not allowed here
		return
	}
}

// end asks the publisher to end s with reason (0: the peer went away).
func (g *Gateway) end(s *session, pb *pubBase, r core.Reason) {
	if r == 0 {
		s.reason.CompareAndSwap(0, uint32(reasonPeerGone))
	} else {
		s.reason.CompareAndSwap(0, uint32(r))
		if r != proto.ReasonLogoutByUser {
			g.m.disconnect(r)
		}
	}
	if !pb.send(&ctlMsg{op: opClose, reason: r, s: s}) {
		s.closeConn(r)
	}
}

// order applies the rate limits and pushes an order message's command.
func (g *Gateway) order(s *session, pb *pubBase, t proto.Type, c *core.Command) {
	now := nanotime()
	var r core.Reason
	switch {
	case !s.rate.allow(now):
		r = proto.ReasonSessionRate
	case !s.acct.rate.allow(now):
		r = proto.ReasonAccountRate
	case !s.addrSt.rate.allow(now):
		r = proto.ReasonAddressRate
	}
	in := g.deps.In
	if r == 0 && (t == proto.TNewOrder || t == proto.TReplace) && in.Len() > in.Cap()*3/4 {
		r = proto.ReasonEngineBusy // shed new orders while the engine's queue is deep; cancels still pass
	}
	if r == 0 {
		c.Tag = uint64(now)
		q := in
		if t == proto.TKillSwitch && g.deps.Control != nil {
			q = g.deps.Control
		}
		g.pushing.Add(1)
		switch {
		case g.stopping.Load():
			r = proto.ReasonShutdown
		case !q.TryPush(c):
			r = proto.ReasonEngineBusy
		}
		g.pushing.Add(-1)
		if r == 0 {
			if c.ClOrdID != 0 {
				s.acct.notePushed(c.ClOrdID)
			}
			return
		}
	}
	g.m.reject(r)
	sr := proto.SessionReject{Reason: r, MsgType: t, ClOrdID: c.ClOrdID, OrderID: c.OrderID}
	m := ctlMsg{op: opSend, s: s}
	m.n = uint8(len(sr.AppendFrame(m.frame[:0])))
	pb.send(&m)
}

// lingerClose closes c after the peer has had a moment to read what was
// written: a close with unread input would reset the connection and lose
// the last frame (the refusal).
func lingerClose(c net.Conn) {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.(closeWriter); ok && cw.CloseWrite() == nil {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var buf [512]byte
		for {
			if _, err := c.Read(buf[:]); err != nil {
				break
			}
		}
	}
	_ = c.Close()
}
