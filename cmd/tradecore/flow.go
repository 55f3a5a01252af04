package main

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"
	_ "unsafe" // for go:linkname

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/surveil"
)

// nanotime is the runtime's monotonic clock (vDSO), the cheapest honest
// per-command timer.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

// generator is the agent that stands in for the order-entry gateway until it
// exists: random limit orders around each instrument's mid (its reference
// price, else the middle of its band) from the configured accounts (1,000
// made-up ones with the risk layer off), about 30% marketable, and cancels of earlier orders, offered at
// rate per second on an open-loop schedule. Each command's Tag is its due
// time (monotonic ns), so latency counts from when it should have been sent.
type generator struct {
	in       *ring.MPSC[core.Command]
	recent   *recentOrders
	insts    []core.Instrument
	accounts []uint32 // empty: 1..1000
	rnd      *rand.Rand
	interval float64
	start    int64
	n        uint64 // commands pushed
	refBase  uint64 // references continue above it (recovery)
	pending  core.Command
	has      bool // pending was built but not yet pushed (ring full)
	sent     atomic.Uint64
	stopped  atomic.Bool
}

// continueAfter makes the generator's client references continue above
// seq: they are at most the number of commands ever sequenced, so after a
// recovery they stay above every reference used today.
func (g *generator) continueAfter(seq uint64) { g.refBase = seq }

// OnStop implements agent.Stopper: the generator has pushed its last command.
func (g *generator) OnStop() { g.stopped.Store(true) }

// Stopped reports whether the generator pushes no more; the engine's drain
// waits for it.
func (g *generator) Stopped() bool { return g.stopped.Load() }

func newGenerator(in *ring.MPSC[core.Command], cfg core.Config, rate float64, recent *recentOrders) *generator {
	g := &generator{in: in, insts: cfg.Instruments, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1)),
		interval: 1e9 / rate, start: nanotime(), recent: recent}
	for _, a := range cfg.Accounts {
		g.accounts = append(g.accounts, a.ID)
	}
	return g
}

// recentOrders holds the last orders the engine accepted from the generator,
// written by the event sink and read by the generator, which cancels some of
// them as a client would: by the OrderID and reference of its Accepted event.
// Each field is atomic, so the two may run on different threads; a pair
// read while being rewritten names no order and is rejected, harmlessly.
type recentOrders struct {
	oid [4096]atomic.Uint64
	ref [4096]atomic.Uint64 // account<<40 | ClOrdID
	n   atomic.Uint64
}

func (r *recentOrders) add(acct uint32, oid, cl uint64) {
	i := r.n.Load() % uint64(len(r.oid))
	r.oid[i].Store(oid)
	r.ref[i].Store(uint64(acct)<<40 | cl&(1<<40-1))
	r.n.Add(1)
}

// pick returns a recent order, or false when there is none yet.
func (r *recentOrders) pick(rnd *rand.Rand) (acct uint32, oid, cl uint64, ok bool) {
	n := min(r.n.Load(), uint64(len(r.oid)))
	if n == 0 {
		return 0, 0, 0, false
	}
	i := rnd.Uint64N(n)
	ref := r.ref[i].Load()
	return uint32(ref >> 40), r.oid[i].Load(), ref & (1<<40 - 1), true
}

func (g *generator) Name() string { return "generator" }

// DoWork pushes the commands that are due, at most 256.
func (g *generator) DoWork(context.Context) (int, error) {
	now := nanotime()
	k := 0
	for k < 256 {
		due := g.start + int64(float64(g.n)*g.interval)
		if due > now {
			break
		}
		if !g.has {
			g.pending, g.has = g.next(uint64(due)), true
		}
		if !g.in.TryPush(&g.pending) {
			break // full: try again next cycle; the delay shows in the latency
		}
		g.has = false
		g.n++
		k++
	}
	if k > 0 {
		g.sent.Store(g.n)
	}
	return k, nil
}

func (g *generator) next(due uint64) core.Command {
	r := g.rnd
	in0 := g.insts[r.IntN(len(g.insts))]
	mid := (in0.BandLow + in0.BandHigh) / 2
	if in0.RefPrice != 0 {
		mid = in0.RefPrice
	}
	acct := 1 + uint32(r.IntN(1000))
	if len(g.accounts) > 0 {
		acct = g.accounts[r.IntN(len(g.accounts))]
	}
	c := core.Command{Kind: core.CmdNew, Instrument: in0.ID, Account: acct, ClOrdID: g.refBase + g.n + 1,
		Type: core.Limit, TIF: core.DAY, Qty: 1 + r.Int64N(100), Side: core.Side(1 + r.IntN(2)), Tag: due}
	off := 1 + r.Int64N(200)
	if r.IntN(100) < 30 {
		off = -200 // marketable
	}
	c.Price = mid - off
	if c.Side == core.Sell {
		c.Price = mid + off
	}
	if r.IntN(100) < 20 { // cancel one of our recent orders, if still open
		if acct, oid, cl, ok := g.recent.pick(r); ok {
			c = core.Command{Kind: core.CmdCancel, Account: acct, OrderID: oid, OrigClOrdID: cl, Tag: c.Tag}
		}
	}
	return c
}

// interval is one report period of the event sink, handed whole to the
// reporter goroutine (double-buffered: the sink never waits for it).
type interval struct {
	lat                          *hdrhistogram.Histogram
	cmds, trades, rejects        uint64
	alerts                       uint64
	sample                       [16]core.Event // first trades of the period
	nSample                      int
	alertSample                  [8]surveil.Alert
	nAlerts                      int
	start, end                   int64
	lastSeq, totalTrades, events uint64
}

func newInterval() *interval {
	iv := &interval{lat: hdrhistogram.New(1, int64(10*time.Second), 3)}
	iv.lat.Reset() // touch the counts now, not on the sink's path
	return iv
}

func (iv *interval) reset() {
	iv.lat.Reset()
	iv.cmds, iv.trades, iv.rejects, iv.alerts = 0, 0, 0, 0
	iv.nSample, iv.nAlerts = 0, 0
}

// eventSink is the agent that consumes the engine's events: it measures
// due→event latency per command, samples trades and runs surveillance, whose
// Monitor submits its actions to the engine's control lane and retries them
// until their effect shows in the event stream (surveil.Config.Submit). Every period it hands a filled interval to the reporter through
// full and takes an empty one from spare; if the reporter is behind, the
// period simply runs longer.
type eventSink struct {
	cons   *ring.Consumer[core.Event]
	recent *recentOrders
	ctl    *ring.MPSC[core.Command]
	loop   *core.Loop
	mon    *surveil.Monitor
	alerts surveil.Output
	every  int64
	ticked int64 // nanotime of the last idle surveil Tick

	cur         *interval
	full, spare atomic.Pointer[interval]
	lastSeq     uint64
	totalTrades uint64
	events      uint64
	answered    atomic.Uint64
}

func newEventSink(cons *ring.Consumer[core.Event], ctl *ring.MPSC[core.Command], loop *core.Loop, mon *surveil.Monitor, every time.Duration, recent *recentOrders) *eventSink {
	s := &eventSink{cons: cons, ctl: ctl, loop: loop, mon: mon, every: int64(every), cur: newInterval(), recent: recent}
	s.spare.Store(newInterval())
	s.cur.start = nanotime()
	return s
}

func (s *eventSink) Name() string                        { return "event-sink" }
func (s *eventSink) UseDoorbell(d *agent.Doorbell) error { return s.cons.SetDoorbell(d) }

func (s *eventSink) DoWork(context.Context) (int, error) {
	now := nanotime()
	work := 0
	if w := s.cons.Poll(); len(w) > 0 {
		s.consume(w, now)
		s.mon.Observe(w, &s.alerts)
		s.cons.Release(len(w))
		s.takeAlerts()
		work += len(w)
		s.answered.Store(s.lastSeq)
	} else if now-s.ticked > int64(time.Millisecond) {
		// A quiet stream: let surveillance retry actions that are due.
		s.ticked = now
		s.mon.Tick(time.Now().UnixNano(), &s.alerts)
		s.takeAlerts()
	}
	if now-s.cur.start >= s.every {
		if sp := s.spare.Swap(nil); sp != nil {
			s.cur.end, s.cur.lastSeq, s.cur.totalTrades, s.cur.events = now, s.lastSeq, s.totalTrades, s.events
			s.full.Store(s.cur)
			s.cur = sp
			s.cur.start = now
		}
	}
	return work, nil
}

func (s *eventSink) consume(w []core.Event, now int64) {
	iv := s.cur
	for i := range w {
		ev := &w[i]
		if ev.Seq != s.lastSeq {
			s.lastSeq = ev.Seq
			iv.cmds++
			if ev.Tag != 0 { // a generated command: its Tag is its due time (surveillance actions carry 0)
				_ = iv.lat.RecordValue(max(now-int64(ev.Tag), 1))
			}
		}
		switch ev.Kind {
		case core.KindAccepted:
			if ev.Tag != 0 {
				s.recent.add(ev.Account, ev.OrderID, ev.ClOrdID)
			}
		case core.KindRejected:
			iv.rejects++
		case core.KindTrade:
			s.totalTrades++
			iv.trades++
			if iv.nSample < len(iv.sample) {
				iv.sample[iv.nSample] = *ev
				iv.nSample++
			}
		}
	}
	s.events += uint64(len(w))
}

func (s *eventSink) takeAlerts() {
	iv := s.cur
	for _, a := range s.alerts.Alerts {
		iv.alerts++
		if iv.nAlerts < len(iv.alertSample) {
			iv.alertSample[iv.nAlerts] = a
			iv.nAlerts++
		}
	}
	s.alerts.Reset()
}

// Drained: the engine has stopped and every event it published was read.
func (s *eventSink) Drained() bool {
	return s.loop.Stopped() && len(s.cons.Poll()) == 0
}

// take returns a filled interval, if one is waiting; give it back with
// giveBack once reported.
func (s *eventSink) take() *interval { return s.full.Swap(nil) }

func (s *eventSink) giveBack(iv *interval) {
	iv.reset()
	s.spare.Store(iv)
}
