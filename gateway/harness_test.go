package gateway_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/gateway/internal/gwtest"
	"github.com/tradecore/tradecore/proto"
)

func TestMain(m *testing.M) { gwtest.Main(m) }

// The engine the tests trade on: two instruments, four funded accounts
// (the risk layer is on, so halts, kill switches and alerts exist).
var (
	inst1 = core.Instrument{ID: 1, Symbol: "AAA", BandLow: 100, BandHigh: 2000}
	inst2 = core.Instrument{ID: 2, Symbol: "BBB", BandLow: 100, BandHigh: 2000}
)

func engineConfig() core.Config {
	cfg := core.Config{Instruments: []core.Instrument{inst1, inst2}, MaxOrders: 1 << 12}
	for id := uint32(1); id <= 4; id++ {
		cfg.Accounts = append(cfg.Accounts, core.Account{ID: id, Cash: 1 << 50,
			Positions: []core.Position{{Instrument: 1, Lots: 1 << 30}, {Instrument: 2, Lots: 1 << 30}}})
	}
	return cfg
}

// key is a test API key with its secret.
type key struct {
	id      string
	secret  []byte
	account uint32
}

// harness is a running server: engine loop, journaler, gateway, on the
// agents of a plan, with its audit log and key store in a temp dir.
type harness struct {
	t      *testing.T
	dir    string
	store  *apikey.Store
	cfg    gateway.Config
	log    *audit.Log
	closeL func() error
	loop   *core.Loop
	ctl    *ring.MPSC[core.Command]
	g      *gateway.Gateway
	cancel context.CancelFunc
	wait   func() error
	keys   map[string]key
	oe, md string
	clock  *fakeClock
}

type fakeClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *fakeClock) shift(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// newHarness starts a server with cfg's limits (addresses and PlainTCP
// are filled in unless TLS is set).
func newHarness(t *testing.T, cfg gateway.Config) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), keys: map[string]key{}, clock: &fakeClock{}}
	v := gwtest.Vault(t)
	var err error
	h.store, err = apikey.Open(context.Background(), apikey.Config{Dir: filepath.Join(h.dir, "gateway"), Sealer: apikey.VaultSealer(v), Now: h.clock.now})
	require.NoError(t, err)
	if cfg.TLS == nil {
		cfg.PlainTCP = true
	}
	if cfg.OrderEntry == "" {
		cfg.OrderEntry = "127.0.0.1:0"
	}
	if cfg.MarketData == "" {
		cfg.MarketData = "127.0.0.1:0"
	}
	cfg.Now = h.clock.now
	h.cfg = cfg
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) start() {
	t := h.t
	var err error
	h.log, h.closeL, err = audit.Open(context.Background(), audit.Config{WriterConfig: audit.WriterConfig{Dir: filepath.Join(h.dir, "audit"),
		Instruments: []audit.InstrumentScale{{ID: 1, Symbol: "AAA", Tick: "0.01", Lot: "1"}, {ID: 2, Symbol: "BBB", Tick: "0.01", Lot: "1"}}},
		NoCheckpoints: true, ExternalCommit: true})
	require.NoError(t, err)
	spin := ring.WaitStrategy{Mode: ring.BusySpin}
	in, _ := ring.NewMPSC[core.Command](1024, spin)
	h.ctl, _ = ring.NewMPSC[core.Command](256, spin)
	out, _ := ring.NewRing[core.Event](4096, spin)
	cmds, _ := ring.NewRing[core.Command](1024, spin)
	var g *gateway.Gateway
	h.loop, err = core.NewLoop(engineConfig(), core.LoopConfig{Control: h.ctl, Commands: cmds, ProducersStopped: func() bool { return g.Stopped() }}, in, out)
	require.NoError(t, err)
	// Recovery: replay the journal (a restart).
	r, err := audit.OpenReader(filepath.Join(h.dir, "audit"))
	require.NoError(t, err)
	require.NoError(t, audit.ReadCommands(r, 0, func(_ uint64, c *core.Command) error { return h.loop.Replay(c) }))
	j, err := audit.NewJournaler(h.log, cmds, out, h.loop)
	require.NoError(t, err)
	marks := &audit.SeqMarks{Every: 8}
	j.SetMarks(marks)
	ev1, err := out.NewConsumer(j.Events())
	require.NoError(t, err)
	ev2, err := out.NewConsumer(j.Events())
	require.NoError(t, err)
	g, err = gateway.New(h.cfg, gateway.Deps{Keys: h.store, Recorder: h.log, In: in, Control: h.ctl, Events: ev1, MDEvents: ev2,
		Loop: h.loop, JournalDir: filepath.Join(h.dir, "audit"), Marks: marks})
	require.NoError(t, err)
	h.g = g
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	idle := agent.IdleStrategy{Mode: agent.Backoff, Spins: 200, Yields: 10, MaxPark: 200 * time.Microsecond}
	h.wait, err = agent.Start(ctx, agent.Plan{PrimaryIdle: idle, OthersIdle: idle}, h.loop, append([]agent.Agent{j}, g.Agents()...)...)
	require.NoError(t, err)
	require.NoError(t, g.Start(ctx))
	if a := g.Addr(true); a != nil {
		h.oe = a.String()
	}
	if a := g.Addr(false); a != nil {
		h.md = a.String()
	}
}

// stop drains the server: what it was answering is sent, then every
// session gets Logout server-shutdown.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	err := h.wait()
	assert.NoError(h.t, err, "the plan stops cleanly")
	// The journaler has stopped: the log commits the sessions' last records
	// itself while they close.
	assert.NoError(h.t, h.log.CommitDuring(h.g.Close))
	assert.NoError(h.t, h.closeL())
}

// restart stops the server and starts it again on the same journal and
// key store, on new ports.
func (h *harness) restart() {
	h.stop()
	h.start()
}

func (h *harness) addKey(name string, req apikey.CreateRequest) key {
	h.t.Helper()
	k, secret, err := h.store.Create(context.Background(), req)
	require.NoError(h.t, err)
	kk := key{id: k.ID, secret: secret, account: k.Account}
	h.keys[name] = kk
	return kk
}

func (h *harness) trader(name string, account uint32) key {
	return h.addKey(name, apikey.CreateRequest{User: "u-" + name, Account: account, Scopes: []apikey.Scope{apikey.ScopeTrade}})
}

// records returns the bodies of the audit records of type typ.
func (h *harness) records(typ string) []map[string]any {
	h.t.Helper()
	r, err := audit.OpenReader(filepath.Join(h.dir, "audit"))
	require.NoError(h.t, err)
	var out []map[string]any
	require.NoError(h.t, r.Read(0, 0, func(e *audit.Entry) error {
		if e.Type != typ {
			return nil
		}
		lh, err := audit.ParseLeaf(e.Leaf)
		if err != nil {
			return err
		}
		var m map[string]any
		if err := json.Unmarshal(lh.Body, &m); err != nil {
			return err
		}
		out = append(out, m)
		return nil
	}))
	return out
}

// waitRecord waits until an audit record of type typ with field = value
// exists.
func (h *harness) waitRecord(typ, field string, value any) map[string]any {
	h.t.Helper()
	var last []map[string]any
	for range 200 {
		last = h.records(typ)
		for _, m := range last {
			if m[field] == value {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatalf("no %s record with %s=%v; have %v", typ, field, value, last)
	return nil
}

// conn is a raw protocol client.
type conn struct {
	t  *testing.T
	c  net.Conn
	fr *proto.FrameReader
}

func dialRaw(t *testing.T, addr string, tc *tls.Config) *conn {
	t.Helper()
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.Dial("tcp", addr, tc)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &conn{t: t, c: c, fr: proto.NewFrameReader(c, 0)}
}

func (c *conn) send(m proto.Message) {
	c.t.Helper()
	_, err := c.c.Write(m.AppendFrame(nil))
	require.NoError(c.t, err)
}

// loginMsg builds a signed login for k.
func loginMsg(k key, nextSeq uint64, mutate ...func(*proto.Login)) *proto.Login {
	l := &proto.Login{Timestamp: time.Now().UnixNano(), NextSeq: nextSeq}
	copy(l.KeyID[:], k.id)
	_, _ = rand.Read(l.Nonce[:])
	for _, f := range mutate {
		f(l)
	}
	proto.SignLogin(l, k.secret)
	return l
}

// next returns the next message, skipping heartbeats, failing after 5 s.
func (c *conn) next() proto.Message {
	c.t.Helper()
	m, err := c.tryNext(5 * time.Second)
	require.NoError(c.t, err)
	return m
}

func (c *conn) tryNext(d time.Duration) (proto.Message, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	for {
		f, err := c.fr.Next()
		if err != nil {
			return nil, err
		}
		m, err := proto.Decode(f)
		if err != nil {
			return nil, err
		}
		if _, hb := m.(*proto.Heartbeat); hb {
			continue
		}
		return m, nil
	}
}

// login logs in and returns the answer.
func (c *conn) login(k key, nextSeq uint64, mutate ...func(*proto.Login)) proto.Message {
	c.t.Helper()
	c.send(loginMsg(k, nextSeq, mutate...))
	return c.next()
}

// session dials the order-entry port and logs in, expecting success.
func (h *harness) session(k key, nextSeq uint64) (*conn, *proto.LoginAccepted) {
	h.t.Helper()
	c := dialRaw(h.t, h.oe, nil)
	m := c.login(k, nextSeq)
	la, ok := m.(*proto.LoginAccepted)
	require.True(h.t, ok, "login answered %#v", m)
	return c, la
}

// closed reports whether the server closed the connection (reading only
// heartbeats and a Logout until EOF) and returns the Logout, if any.
func (c *conn) closed() *proto.Logout {
	c.t.Helper()
	var lo *proto.Logout
	for {
		m, err := c.tryNext(5 * time.Second)
		if err != nil {
			var ne net.Error
			require.False(c.t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the connection")
			return lo
		}
		if l, ok := m.(*proto.Logout); ok {
			lo = l
		}
	}
}

func isReason(m proto.Message) core.Reason {
	switch v := m.(type) {
	case *proto.LoginRejected:
		return v.Reason
	case *proto.Logout:
		return v.Reason
	case *proto.SessionReject:
		return v.Reason
	case *proto.Rejected:
		return v.Reason
	}
	return 0
}
