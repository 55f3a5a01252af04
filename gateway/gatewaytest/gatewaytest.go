// Package gatewaytest runs a complete tradecore server for tests: engine
// loop, journaler and audit log, an API key store on a SoftHSM-backed data
// vault, and the gateway, on the agents of a plan, listening on loopback
// ports the kernel chooses. The gateway's tests, the client library's and
// the tools' use it. Tests skip without SoftHSM2 (fail when the environment
// is required). WithAttestation adds a TPM attestor (package tpm) on the
// server's audit log, for device-bound keys.
package gatewaytest

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
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
	"github.com/tradecore/tradecore/tpm"
)

// Main runs a package's tests, then removes the SoftHSM folder of the key
// stores. Call it from TestMain.
func Main(m *testing.M) { gwtest.Main(m) }

// EngineConfig is the engine the tests trade on: two instruments (ids 1 and
// 2, band 100..2000 ticks), four funded accounts (1..4) holding positions;
// the risk layer is on, so halts, kill switches and alerts exist.
func EngineConfig() core.Config {
	cfg := core.Config{Instruments: []core.Instrument{
		{ID: 1, Symbol: "AAA", BandLow: 100, BandHigh: 2000},
		{ID: 2, Symbol: "BBB", BandLow: 100, BandHigh: 2000},
	}, MaxOrders: 1 << 12}
	for id := uint32(1); id <= 4; id++ {
		cfg.Accounts = append(cfg.Accounts, core.Account{ID: id, Cash: 1 << 50,
			Positions: []core.Position{{Instrument: 1, Lots: 1 << 30}, {Instrument: 2, Lots: 1 << 30}}})
	}
	return cfg
}

// Key is a test API key with its secret.
type Key struct {
	ID      string
	Secret  []byte
	Account uint32
}

// Server is a running server.
type Server struct {
	T     testing.TB
	Dir   string
	Store *apikey.Store
	Cfg   gateway.Config
	Log   *audit.Log
	Loop  *core.Loop
	// Control is the engine's control lane (admin commands: halts).
	Control *ring.MPSC[core.Command]
	G       *gateway.Gateway
	// OE and MD are the ports' addresses.
	OE, MD string
	Clock  *Clock
	// Attestor is the server's TPM attestor (WithAttestation), on the
	// audit log and Clock; nil without.
	Attestor *tpm.Attestor

	attestCfg   *tpm.Config
	closeAttest func() error
	closeLog    func() error
	cancel      context.CancelFunc
	wait        func() error
}

// Clock is the login checks' clock, shiftable to test expiry and skew.
type Clock struct {
	mu  sync.Mutex
	off time.Duration
}

// Now returns the shifted time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Shift moves the clock by d.
func (c *Clock) Shift(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// Option changes what Start runs.
type Option func(*Server)

// WithAttestation gives the gateway a tpm.Attestor opened with cfg, whose
// Dir defaults to <server dir>/tpm, Recorder is the server's audit log and
// Now (when nil) the server's Clock. Enrol devices with Server.Attestor
// (its EKRoots must then hold the EK CA).
func WithAttestation(cfg tpm.Config) Option {
	return func(s *Server) { s.attestCfg = &cfg }
}

// Start starts a server with cfg's settings; addresses default to
// 127.0.0.1:0 and, without cfg.TLS, plain TCP. It stops at the end of t.
func Start(t testing.TB, cfg gateway.Config, opts ...Option) *Server {
	t.Helper()
	s := &Server{T: t, Dir: t.TempDir(), Clock: &Clock{}}
	for _, o := range opts {
		o(s)
	}
	v := gwtest.Vault(t)
	var err error
	s.Store, err = apikey.Open(context.Background(), apikey.Config{Dir: filepath.Join(s.Dir, "gateway"), Sealer: apikey.VaultSealer(v), Now: s.Clock.Now})
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
	cfg.Now = s.Clock.Now
	s.Cfg = cfg
	s.start()
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start() {
	t := s.T
	var err error
	s.Log, s.closeLog, err = audit.Open(context.Background(), audit.Config{WriterConfig: audit.WriterConfig{Dir: filepath.Join(s.Dir, "audit"),
		Instruments: []audit.InstrumentScale{{ID: 1, Symbol: "AAA", Tick: "0.01", Lot: "1"}, {ID: 2, Symbol: "BBB", Tick: "0.01", Lot: "1"}}},
		NoCheckpoints: true, ExternalCommit: true})
	require.NoError(t, err)
	spin := ring.WaitStrategy{Mode: ring.BusySpin}
	in, _ := ring.NewMPSC[core.Command](1024, spin)
	s.Control, _ = ring.NewMPSC[core.Command](256, spin)
	out, _ := ring.NewRing[core.Event](4096, spin)
	cmds, _ := ring.NewRing[core.Command](1024, spin)
	var g *gateway.Gateway
	s.Loop, err = core.NewLoop(EngineConfig(), core.LoopConfig{Control: s.Control, Commands: cmds, ProducersStopped: func() bool { return g.Stopped() }}, in, out)
	require.NoError(t, err)
	// Recovery: replay the journal (after a Restart).
	r, err := audit.OpenReader(filepath.Join(s.Dir, "audit"))
	require.NoError(t, err)
	require.NoError(t, audit.ReadCommands(r, 0, func(_ uint64, c *core.Command) error { return s.Loop.Replay(c) }))
	j, err := audit.NewJournaler(s.Log, cmds, out, s.Loop)
	require.NoError(t, err)
	marks := &audit.SeqMarks{Every: 8}
	j.SetMarks(marks)
	ev1, err := out.NewConsumer(j.Events())
	require.NoError(t, err)
	ev2, err := out.NewConsumer(j.Events())
	require.NoError(t, err)
	var logger *slog.Logger
	if os.Getenv("TRADECORE_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	deps := gateway.Deps{Keys: s.Store, Recorder: s.Log, In: in, Control: s.Control, Events: ev1, MDEvents: ev2,
		Loop: s.Loop, JournalDir: filepath.Join(s.Dir, "audit"), Marks: marks, Logger: logger}
	if s.attestCfg != nil {
		tc := *s.attestCfg
		if tc.Dir == "" {
			tc.Dir = filepath.Join(s.Dir, "tpm")
		}
		if tc.Now == nil {
			tc.Now = s.Clock.Now
		}
		tc.Recorder = s.Log
		if tc.Logger == nil {
			tc.Logger = logger
			if tc.Logger == nil {
				tc.Logger = slog.New(slog.DiscardHandler)
			}
		}
		s.Attestor, s.closeAttest, err = tpm.Open(context.Background(), tc)
		require.NoError(t, err)
		deps.Attestor = s.Attestor
	}
	g, err = gateway.New(s.Cfg, deps)
	require.NoError(t, err)
	s.G = g
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	idle := agent.IdleStrategy{Mode: agent.Backoff, Spins: 200, Yields: 10, MaxPark: 200 * time.Microsecond}
	s.wait, err = agent.Start(ctx, agent.Plan{PrimaryIdle: idle, OthersIdle: idle}, s.Loop, append([]agent.Agent{j}, g.Agents()...)...)
	require.NoError(t, err)
	require.NoError(t, g.Start(ctx))
	if a := g.Addr(true); a != nil {
		s.OE = a.String()
	}
	if a := g.Addr(false); a != nil {
		s.MD = a.String()
	}
}

// Stop drains the server: what it was answering is sent, then every
// session gets Logout server-shutdown. Safe to call twice.
func (s *Server) Stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	assert.NoError(s.T, s.wait(), "the plan stops cleanly")
	// The journaler has stopped: the log commits the sessions' last records
	// itself while they close.
	assert.NoError(s.T, s.Log.CommitDuring(s.G.Close))
	if s.closeAttest != nil {
		assert.NoError(s.T, s.closeAttest())
		s.closeAttest = nil
	}
	assert.NoError(s.T, s.closeLog())
}

// Restart stops the server and starts it again on the same journal and key
// store (recovering the engine from the journal), on new ports.
func (s *Server) Restart() {
	s.Stop()
	s.start()
}

// AddKey creates an API key.
func (s *Server) AddKey(req apikey.CreateRequest) Key {
	s.T.Helper()
	k, secret, err := s.Store.Create(context.Background(), req)
	require.NoError(s.T, err)
	return Key{ID: k.ID, Secret: secret, Account: k.Account}
}

// Trader creates a trading key of user "u-"+name for account.
func (s *Server) Trader(name string, account uint32) Key {
	return s.AddKey(apikey.CreateRequest{User: "u-" + name, Account: account, Scopes: []apikey.Scope{apikey.ScopeTrade}})
}

// Reader creates a market-data key of user "u-"+name.
func (s *Server) Reader(name string) Key {
	return s.AddKey(apikey.CreateRequest{User: "u-" + name, Scopes: []apikey.Scope{apikey.ScopeData}})
}

// Records returns the bodies of the audit records of type typ.
func (s *Server) Records(typ string) []map[string]any {
	s.T.Helper()
	r, err := audit.OpenReader(filepath.Join(s.Dir, "audit"))
	require.NoError(s.T, err)
	var out []map[string]any
	require.NoError(s.T, r.Read(0, 0, func(e *audit.Entry) error {
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

// WaitRecord waits until an audit record of type typ has field = value
// (numbers compare as float64) and returns it.
func (s *Server) WaitRecord(typ, field string, value any) map[string]any {
	s.T.Helper()
	var last []map[string]any
	for range 300 {
		last = s.Records(typ)
		for _, m := range last {
			if m[field] == value {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.T.Fatalf("no %s record with %s=%v; have %v", typ, field, value, last)
	return nil
}
