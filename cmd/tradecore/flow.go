package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
	_ "unsafe" // for go:linkname

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tradecore/tradecore/client"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/proto"
	"github.com/tradecore/tradecore/surveil"
)

// nanotime is the runtime's monotonic clock (vDSO), the cheapest honest
// per-command timer.
//
//go:linkname nanotime runtime.nanotime
func nanotime() int64

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
// receive→event latency per command (from the gateway's receipt of the
// message to the sink reading its first durable event), samples trades and runs surveillance, whose
// Monitor submits its actions to the engine's control lane and retries them
// until their effect shows in the event stream (surveil.Config.Submit). Every period it hands a filled interval to the reporter through
// full and takes an empty one from spare; if the reporter is behind, the
// period simply runs longer.
type eventSink struct {
	cons   *ring.Consumer[core.Event]
	ctl    *ring.MPSC[core.Command]
	loop   *core.Loop
	mon    *surveil.Monitor
	alerts surveil.Output
	post   func(*surveil.Alert) // records an alert in the audit log; nil: none
	every  int64
	ticked int64 // nanotime of the last idle surveil Tick

	cur         *interval
	full, spare atomic.Pointer[interval]
	lastSeq     uint64
	totalTrades uint64
	events      uint64
	answered    atomic.Uint64
}

func newEventSink(cons *ring.Consumer[core.Event], ctl *ring.MPSC[core.Command], loop *core.Loop, mon *surveil.Monitor, every time.Duration) *eventSink {
	s := &eventSink{cons: cons, ctl: ctl, loop: loop, mon: mon, every: int64(every), cur: newInterval()}
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
			if ev.Tag != 0 { // a gateway command: its Tag is the gateway's receive time (surveillance actions carry 0)
				_ = iv.lat.RecordValue(max(now-int64(ev.Tag), 1))
			}
		}
		switch ev.Kind {
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
	for i := range s.alerts.Alerts {
		a := &s.alerts.Alerts[i]
		if s.post != nil {
			s.post(a)
		}
		iv.alerts++
		if iv.nAlerts < len(iv.alertSample) {
			iv.alertSample[iv.nAlerts] = *a
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

// flow is serve's generated order flow, now a client of the gateway over
// the real protocol: sessions of the flow keys send random limit orders
// around each instrument's mid (about 30% marketable) and cancels of their
// own recent orders, open loop at rate per second in all.
type flow struct {
	insts []core.Instrument
	rate  float64
	sent  atomic.Uint64
	acked atomic.Uint64
	errs  atomic.Uint64
}

// run runs one session until ctx ends; it returns after the server has
// logged it out (or the connection ended).
func (f *flow) run(ctx context.Context, cfg client.Config, seed uint64, share float64) error {
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	var recent [256]struct{ oid, ref uint64 }
	var nRecent atomic.Uint64
	var mu sync.Mutex
	done := make(chan struct{})
	go func() { // the receiver: remembers accepted orders to cancel later
		defer close(done)
		for {
			m, err := c.Recv(context.WithoutCancel(ctx))
			if err != nil {
				return
			}
			if a, ok := m.(*proto.Accepted); ok {
				f.acked.Add(1)
				mu.Lock()
				i := nRecent.Add(1) % uint64(len(recent))
				recent[i].oid, recent[i].ref = a.OrderID, a.ClOrdID
				mu.Unlock()
			}
		}
	}()
	r := rand.New(rand.NewPCG(seed, 7))
	interval := 1e9 / (f.rate * share)
	start, n := time.Now(), 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		due := int(float64(time.Since(start)) / interval)
		for ; n < due && ctx.Err() == nil; n++ {
			in := f.insts[r.IntN(len(f.insts))]
			mid := (in.BandLow + in.BandHigh) / 2
			if r.IntN(100) < 20 && nRecent.Load() > 0 {
				mu.Lock()
				o := recent[r.Uint64N(min(nRecent.Load(), uint64(len(recent))))]
				mu.Unlock()
				if err := c.Cancel(o.oid, o.ref, 0); err != nil {
					f.errs.Add(1)
				}
				continue
			}
			o := proto.NewOrder{ClOrdID: c.NewRef(), Instrument: in.ID, Side: core.Side(1 + r.IntN(2)), OrdType: core.Limit, TIF: core.DAY, Qty: 1 + r.Int64N(100)}
			off := 1 + r.Int64N(200)
			if r.IntN(100) < 30 {
				off = -200 // marketable
			}
			o.Price = mid - off
			if o.Side == core.Sell {
				o.Price = mid + off
			}
			if err := c.NewOrder(&o); err != nil {
				f.errs.Add(1)
				continue
			}
			f.sent.Add(1)
		}
	}
	// The server logs the session out when it stops; wait for that, so
	// every answer to what was sent is read.
	select {
	case <-done:
	case <-time.After(30 * time.Second):
	}
	return nil
}
