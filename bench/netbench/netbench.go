// Package netbench measures tradecore over the network: an in-process server
// (engine, journal, gateway) on loopback, one-in-flight order round trips
// beside a bare TCP echo, and open-loop load over client sessions with
// coordinated-omission correction. cmd/tcbench's `net` mode reports it.
package netbench

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/client"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/proto"
)

// NetServerConfig shapes an in-process server for the network benchmark:
// engine loop, journaler (audit log in Dir at Durability) and gateway, on
// the agents of Plan, order entry on a loopback port.
type NetServerConfig struct {
	Dir        string
	Durability audit.Durability
	TLS        bool
	Sessions   int // API keys to make, accounts 1..Sessions
	MaxOrders  int // default 1<<20
	Plan       agent.Plan
}

// NetServer is a running benchmark server.
type NetServer struct {
	Addr string
	Keys []client.Config // one per session, ready to Dial
	stop func() error
}

// Stop drains the server and closes its log.
func (s *NetServer) Stop() error { return s.stop() }

// memKeys is an API key table in memory: the benchmark's keys live only in
// this process (never on disk, sealed or not).
type memKeys map[string]struct {
	k      apikey.Key
	secret []byte
}

func (m memKeys) Lookup(_ context.Context, id string) (apikey.Key, []byte, error) {
	e, ok := m[id]
	if !ok {
		return apikey.Key{}, nil, apikey.ErrNotFound
	}
	return e.k, e.secret, nil
}

// StartNetServer starts a benchmark server.
func StartNetServer(ctx context.Context, cfg NetServerConfig) (*NetServer, error) {
	if cfg.MaxOrders == 0 {
		cfg.MaxOrders = 1 << 20
	}
	adir := filepath.Join(cfg.Dir, "audit")
	log, closeLog, err := audit.Open(ctx, audit.Config{WriterConfig: audit.WriterConfig{Dir: adir, Durability: cfg.Durability,
		Instruments: []audit.InstrumentScale{{ID: bench.Instrument.ID, Symbol: bench.Instrument.Symbol, Tick: "0.01", Lot: "1"}}},
		NoCheckpoints: true, ExternalCommit: true})
	if err != nil {
		return nil, err
	}
	spin := ring.WaitStrategy{Mode: ring.BusySpin}
	in, _ := ring.NewMPSC[core.Command](16384, spin)
	ctl, _ := ring.NewMPSC[core.Command](256, spin)
	out, _ := ring.NewRing[core.Event](32768, spin)
	cmds, _ := ring.NewRing[core.Command](16384, spin)
	var g *gateway.Gateway
	loop, err := core.NewLoop(core.Config{Instruments: []core.Instrument{bench.Instrument}, MaxOrders: cfg.MaxOrders},
		core.LoopConfig{Control: ctl, Commands: cmds, ProducersStopped: func() bool { return g.Stopped() }}, in, out)
	if err != nil {
		closeLog()
		return nil, err
	}
	j, err := audit.NewJournaler(log, cmds, out, loop)
	if err != nil {
		closeLog()
		return nil, err
	}
	marks := &audit.SeqMarks{}
	j.SetMarks(marks)
	evs, _ := out.NewConsumer(j.Events())
	keys := memKeys{}
	var cfgs []client.Config
	now := time.Now()
	for i := range cfg.Sessions {
		secret := make([]byte, 32)
		_, _ = crand.Read(secret)
		var idb [10]byte
		_, _ = crand.Read(idb[:])
		id := fmt.Sprintf("%016x", idb[:8])
		k := apikey.Key{ID: id, User: fmt.Sprintf("bench-%d", i), Account: uint32(i + 1), Scopes: []apikey.Scope{apikey.ScopeTrade},
			Created: now, Expires: now.Add(24 * time.Hour)}
		keys[id] = struct {
			k      apikey.Key
			secret []byte
		}{k, secret}
		cfgs = append(cfgs, client.Config{KeyID: id, Secret: secret, Plain: !cfg.TLS})
	}
	gcfg := gateway.Config{OrderEntry: "127.0.0.1:0", MarketData: "-", PlainTCP: !cfg.TLS,
		SessionRate: 1 << 30, AccountRate: 1 << 30, AddressRate: 1 << 30, OutboundQueue: 16 << 20, MaxConnsPerAddr: 1024}
	var pin string
	if cfg.TLS {
		certPEM, keyPEM, err := gateway.SelfSigned([]string{"127.0.0.1"}, 24*time.Hour)
		if err != nil {
			closeLog()
			return nil, err
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			closeLog()
			return nil, err
		}
		gcfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		if pin, err = gateway.PinOf(cert.Certificate[0]); err != nil {
			closeLog()
			return nil, err
		}
	}
	g, err = gateway.New(gcfg, gateway.Deps{Keys: keys, Recorder: log, In: in, Control: ctl, Events: evs,
		Loop: loop, JournalDir: adir, Marks: marks})
	if err != nil {
		closeLog()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	wait, err := agent.Start(rctx, cfg.Plan, loop, append([]agent.Agent{j}, g.Agents()...)...)
	if err != nil {
		cancel()
		closeLog()
		return nil, err
	}
	if err := g.Start(rctx); err != nil {
		cancel()
		_ = wait()
		closeLog()
		return nil, err
	}
	addr := g.Addr(true).String()
	for i := range cfgs {
		cfgs[i].Addr, cfgs[i].PinSHA256 = addr, pin
	}
	return &NetServer{Addr: addr, Keys: cfgs, stop: func() error {
		cancel()
		err := wait()
		err = errors.Join(err, log.CommitDuring(g.Close), closeLog())
		return err
	}}, nil
}

// NetLoad is an open-loop load over sessions.
type NetLoad struct {
	// Rate is orders per second over all sessions; 0 sends as fast as the
	// window allows (the sustained rate).
	Rate float64
	// Duration of the measured part; Warmup before it is not recorded.
	Duration, Warmup time.Duration
	// CrossPct of the orders are marketable IOCs (they fill against resting
	// orders of other sessions); the rest rest, DAY, near the mid.
	CrossPct int
	// Window bounds the orders in flight per session (default 1024).
	Window int
	// Seed makes the flow repeatable.
	Seed uint64
}

// NetResult is a load's outcome.
type NetResult struct {
	Sent, Acked, Fills int64
	// Refused counts SessionRejects (engine-busy when the inbound queue is
	// deep): the gateway's load shedding.
	Refused int64
	Elapsed time.Duration
	// Ack is due time → Accepted (or Rejected) received; Fill is due time →
	// the first Executed of a marketable order; both coordinated-omission
	// corrected: an order sent late counts from when it was due.
	Ack, Fill *hdrhistogram.Histogram
}

// PerSecond is the acknowledged orders per second.
func (r NetResult) PerSecond() float64 { return float64(r.Acked) / r.Elapsed.Seconds() }

// RunNetLoad runs load against the server's sessions, each a client over
// loopback.
func RunNetLoad(ctx context.Context, srv *NetServer, load NetLoad) (NetResult, error) {
	if load.Window == 0 {
		load.Window = 1024
	}
	n := len(srv.Keys)
	type sessRes struct {
		sent, acked, fills, refused int64
		ack, fill                   *hdrhistogram.Histogram
		err                         error
	}
	res := make([]sessRes, n)
	start := time.Now().Add(50 * time.Millisecond)
	measureFrom := start.Add(load.Warmup)
	end := measureFrom.Add(load.Duration)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &res[i]
			r.ack, r.fill = bench.NewHistogram(), bench.NewHistogram()
			r.err = runSession(ctx, srv.Keys[i], load, i, n, start, measureFrom, end, r.ack, r.fill, &r.sent, &r.acked, &r.fills, &r.refused)
		}()
	}
	wg.Wait()
	out := NetResult{Ack: bench.NewHistogram(), Fill: bench.NewHistogram(), Elapsed: load.Duration}
	for _, r := range res {
		if r.err != nil {
			return out, r.err
		}
		out.Sent += r.sent
		out.Acked += r.acked
		out.Fills += r.fills
		out.Refused += r.refused
		out.Ack.Merge(r.ack)
		out.Fill.Merge(r.fill)
	}
	return out, nil
}

const dueSlots = 1 << 20

func runSession(ctx context.Context, cfg client.Config, load NetLoad, i, n int, start, from, end time.Time,
	ack, fill *hdrhistogram.Histogram, sent, acked, fills, refused *int64) error {
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	due := make([]int64, dueSlots) // due time (Unix ns) by ClOrdID
	cross := make([]bool, dueSlots)
	var inflight atomic.Int64
	space := make(chan struct{}, 1) // the receiver says the window has room again
	var recvErr error
	done := make(chan struct{})
	stopAt := end.Add(2 * time.Second).UnixNano()
	go func() {
		defer close(done)
		var lastFill uint64
		rctx, cancel := context.WithDeadline(ctx, time.Unix(0, stopAt))
		defer cancel()
		for {
			m, err := c.Recv(rctx)
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) && rctx.Err() == nil {
					recvErr = err
				}
				return
			}
			now := time.Now().UnixNano()
			switch v := m.(type) {
			case *proto.Accepted, *proto.Rejected:
				ref := refOf(v)
				if inflight.Add(-1) == int64(load.Window/2) {
					select {
					case space <- struct{}{}:
					default:
					}
				}
				d := due[ref&(dueSlots-1)]
				if d >= from.UnixNano() && d < end.UnixNano() {
					_ = ack.RecordValue(max(now-d, 1))
					*acked++
				}
			case *proto.SessionReject:
				inflight.Add(-1)
				*refused++
			case *proto.Executed:
				if v.Liquidity == 'R' && v.ClOrdID != lastFill && cross[v.ClOrdID&(dueSlots-1)] {
					lastFill = v.ClOrdID
					d := due[v.ClOrdID&(dueSlots-1)]
					if d >= from.UnixNano() && d < end.UnixNano() {
						_ = fill.RecordValue(max(now-d, 1))
						*fills++
					}
				}
			}
		}
	}()
	r := rand.New(rand.NewPCG(load.Seed, uint64(i)))
	var interval float64
	if load.Rate > 0 {
		interval = 1e9 / (load.Rate / float64(n))
	}
	mid := (bench.Instrument.BandLow + bench.Instrument.BandHigh) / 2
	k := 0
	s0 := start.UnixNano()
	for time.Now().Before(start) {
		time.Sleep(time.Millisecond)
	}
	var o proto.NewOrder
	for ctx.Err() == nil {
		now := time.Now().UnixNano()
		if now >= end.UnixNano() {
			break
		}
		batch := 0
		for batch < 256 && inflight.Load() < int64(load.Window) {
			d := now
			if interval > 0 {
				d = s0 + int64(float64(k)*interval)
				if d > now {
					break
				}
			}
			ref := c.NewRef()
			o = proto.NewOrder{ClOrdID: ref, Instrument: bench.Instrument.ID, Side: core.Side(1 + r.IntN(2)), OrdType: core.Limit, TIF: core.DAY, Qty: 1 + r.Int64N(10)}
			x := r.IntN(100) < load.CrossPct
			off := 1 + r.Int64N(50)
			if x {
				o.TIF, off = core.IOC, -1000
			}
			o.Price = mid - off
			if o.Side == core.Sell {
				o.Price = mid + off
			}
			due[ref&(dueSlots-1)], cross[ref&(dueSlots-1)] = d, x
			c.Queue(&o)
			inflight.Add(1)
			k++
			batch++
		}
		if batch > 0 {
			if err := c.Flush(); err != nil {
				return err
			}
			*sent += int64(batch)
			continue
		}
		if inflight.Load() >= int64(load.Window) {
			select { // wait for the window, not on the CPU
			case <-space:
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		// Open loop: sleep a little and send every order that fell due
		// meanwhile (each still counts from its due time).
		time.Sleep(time.Duration(min(max(interval/2, 50_000), 1_000_000)))
	}
	<-done
	return recvErr
}

func refOf(m proto.Message) uint64 {
	switch v := m.(type) {
	case *proto.Accepted:
		return v.ClOrdID
	case *proto.Rejected:
		return v.ClOrdID
	}
	return 0
}

// PingPong measures order → acknowledgement with one order in flight: an
// IOC far from the book (acknowledged, then its remainder cancelled), the
// next sent once both came back. n samples.
func PingPong(ctx context.Context, cfg client.Config, n int) (*hdrhistogram.Histogram, error) {
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	h := bench.NewHistogram()
	o := proto.NewOrder{Instrument: bench.Instrument.ID, Side: core.Buy, OrdType: core.Limit, TIF: core.IOC, Price: bench.Instrument.BandLow, Qty: 1}
	for range n {
		o.ClOrdID = c.NewRef()
		t0 := time.Now()
		if err := c.NewOrder(&o); err != nil {
			return nil, err
		}
		for got := 0; got < 2; {
			m, err := c.Recv(ctx)
			if err != nil {
				return nil, err
			}
			switch m.(type) {
			case *proto.Accepted:
				_ = h.RecordValue(max(time.Since(t0).Nanoseconds(), 1))
				got++
			case *proto.Cancelled, *proto.Rejected:
				got++
			}
		}
	}
	return h, nil
}

// Echo is a bare TCP echo server on loopback: the floor an order's round
// trip is compared with.
type Echo struct {
	ln net.Listener
	wg sync.WaitGroup
}

// StartEcho starts it.
func StartEcho() (*Echo, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &Echo{ln: ln}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return e, nil
}

// Close stops it.
func (e *Echo) Close() { e.ln.Close(); e.wg.Wait() }

// PingPong measures n round trips of a size-byte message (give the size
// of a NewOrder frame), one in flight, over plain TCP.
func (e *Echo) PingPong(n, size int) (*hdrhistogram.Histogram, error) {
	c, err := net.Dial("tcp", e.ln.Addr().String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, size)
	h := bench.NewHistogram()
	for range n {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
		_ = h.RecordValue(max(time.Since(t0).Nanoseconds(), 1))
	}
	return h, nil
}

// TempDir makes a folder for a benchmark server's journal.
func TempDir() (string, func(), error) {
	d, err := os.MkdirTemp("", "tcbench-net-")
	return d, func() { os.RemoveAll(d) }, err
}
