package gateway

import (
	"cmp"
	"context"
	"math/bits"
	"slices"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/proto"
)

// mdOrder is a shown order of the feed's book.
type mdOrder struct {
	inst    uint32
	side    core.Side
	price   int64
	qty     int64
	arrival uint64
}

// mdFrame is the longest market-data frame.
const mdFrame = 72

// mdPublisher is the market-data publisher agent: it numbers the engine's
// public events into the feed (behind the durability gate, like the
// order-entry publisher), keeps the feed's book for snapshots and the most
// recent frames for replays, and queues every frame to every subscriber.
type mdPublisher struct {
	pubBase
	seq     uint64
	book    map[uint64]mdOrder
	arrival uint64
	halted  map[uint32]bool
	frames  []byte // replay ring: mdFrame bytes per message
	lens    []uint8
	mask    uint64
	subs    []*session
}

func newMDPublisher(g *Gateway, cons *ring.Consumer[core.Event]) (*mdPublisher, error) {
	b, err := newPubBase(g, portMD, "market-data-publisher", cons)
	if err != nil {
		return nil, err
	}
	n := uint64(1) << bits.Len64(uint64(g.cfg.MDReplay-1))
	return &mdPublisher{pubBase: b, book: make(map[uint64]mdOrder, 1<<14), halted: map[uint32]bool{},
		frames: make([]byte, n*mdFrame), lens: make([]uint8, n), mask: n - 1}, nil
}

// DoWork implements agent.Agent.
func (p *mdPublisher) DoWork(context.Context) (int, error) {
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

func (p *mdPublisher) forget(s *session) {
	if i := slices.Index(p.subs, s); i >= 0 {
		p.subs[i] = p.subs[len(p.subs)-1]
		p.subs[len(p.subs)-1] = nil
		p.subs = p.subs[:len(p.subs)-1]
	}
}

func (p *mdPublisher) route(ev *core.Event, now int64) {
	if !ev.Kind.Public() {
		return
	}
	p.seq++
	p.buf = appendMD(p.buf[:0], ev, p.seq)
	i := p.seq & p.mask
	copy(p.frames[i*mdFrame:], p.buf)
	p.lens[i] = uint8(len(p.buf))
	p.apply(ev)
	for _, s := range p.subs {
		p.queue(s, p.buf, now)
	}
}

// apply keeps the feed's book.
func (p *mdPublisher) apply(ev *core.Event) {
	switch ev.Kind {
	case core.KindBookAdd:
		p.arrival++
		p.book[ev.OrderID] = mdOrder{inst: ev.Instrument, side: ev.Side, price: ev.Price, qty: ev.Qty, arrival: p.arrival}
	case core.KindBookExecute, core.KindBookCancel:
		if o, ok := p.book[ev.OrderID]; ok {
			if o.qty = ev.Leaves; o.qty <= 0 {
				delete(p.book, ev.OrderID)
			} else {
				p.book[ev.OrderID] = o
			}
		}
	case core.KindBookDelete:
		delete(p.book, ev.OrderID)
	case core.KindBookReplace:
		if o, ok := p.book[ev.OrderID]; ok {
			p.arrival++
			o.price, o.qty, o.arrival = ev.Price, ev.Leaves, p.arrival
			p.book[ev.OrderID] = o
		}
	case core.KindSystem:
		switch ev.Reason {
		case core.AdminInstrumentHalt:
			p.halted[ev.Instrument] = true
		case core.AdminInstrumentResume:
			delete(p.halted, ev.Instrument)
		case core.AdminMarketHalt:
			p.halted[0] = true
		case core.AdminMarketResume:
			delete(p.halted, 0)
		}
	}
}

// snapshot encodes the feed's book as of p.seq (docs/protocol.md).
func (p *mdPublisher) snapshot() []byte {
	type entry struct {
		id uint64
		o  mdOrder
	}
	es := make([]entry, 0, len(p.book))
	for id, o := range p.book {
		es = append(es, entry{id, o})
	}
	slices.SortFunc(es, func(a, b entry) int {
		if c := cmp.Compare(a.o.inst, b.o.inst); c != 0 {
			return c
		}
		if c := cmp.Compare(a.o.side, b.o.side); c != 0 {
			return c
		}
		c := cmp.Compare(a.o.price, b.o.price)
		if a.o.side == core.Buy {
			c = -c
		}
		if c != 0 {
			return c
		}
		return cmp.Compare(a.o.arrival, b.o.arrival)
	})
	out := make([]byte, 0, (len(es)+8)*64)
	out = (&proto.SnapshotBegin{Seq: p.seq, Orders: uint64(len(es))}).AppendFrame(out)
	for _, e := range es {
		out = (&proto.MDAdd{OrderID: e.id, Instrument: e.o.inst, Side: e.o.side, Price: e.o.price, Qty: e.o.qty}).AppendFrame(out)
	}
	halts := make([]uint32, 0, len(p.halted))
	for inst := range p.halted {
		halts = append(halts, inst)
	}
	slices.Sort(halts)
	for _, inst := range halts {
		r := core.AdminInstrumentHalt
		if inst == 0 {
			r = core.AdminMarketHalt
		}
		out = (&proto.MDSystem{Reason: r, Instrument: inst}).AppendFrame(out)
	}
	return (&proto.SnapshotEnd{Seq: p.seq}).AppendFrame(out)
}

func (p *mdPublisher) handle(m *ctlMsg, now int64) {
	s := m.s
	switch m.op {
	case opAttach:
		res := attachResult{nextSeq: p.seq + 1, replayFrom: p.seq + 1}
		switch {
		case s.snapshot:
			res.snap = p.snapshot()
		case s.wantSeq > p.seq+1:
			res.reason = proto.ReasonReplayUnavailable
		case s.wantSeq > 0 && s.wantSeq <= p.seq:
			if p.seq-s.wantSeq+1 > uint64(len(p.lens)) {
				res.reason = proto.ReasonReplayUnavailable
				break
			}
			res.replayFrom = s.wantSeq
			res.snap = make([]byte, 0, (p.seq-s.wantSeq+1)*mdFrame)
			for q := s.wantSeq; q <= p.seq; q++ {
				i := q & p.mask
				res.snap = append(res.snap, p.frames[i*mdFrame:i*mdFrame+uint64(p.lens[i])]...)
			}
		}
		if res.reason == 0 {
			s.state.Store(stReplay)
			s.lastSent = now
			p.subs = append(p.subs, s)
		}
		s.attached <- res
	case opDetach:
		p.forget(s)
	case opClose:
		if s.state.Load() >= stClosing {
			p.forget(s)
		}
	}
}

// Drained implements agent.Drainer.
func (p *mdPublisher) Drained() bool {
	now := nanotime()
	if p.drainT == 0 {
		p.drainT = now
	}
	if !p.g.deps.Loop.Stopped() || p.cons.Readable() != 0 || p.ctl.Len() != 0 {
		return false
	}
	return p.flushed() || now-p.drainT > int64(DefaultDrainFlushTimeout)
}
