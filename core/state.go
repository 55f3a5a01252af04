package core

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrInvariant is wrapped by CheckInvariants when the engine's state is
// inconsistent: a bug in the engine. Stop trading and report it.
var ErrInvariant = errors.New("core: invariant violated")

// OrderState is a read-only view of one open order, for snapshots, tests and
// reports (not for the hot path: OpenOrders allocates).
type OrderState struct {
	OrderID, ClOrdID              uint64
	Account, STPGroup, Instrument uint32
	Side                          Side
	Type                          OrderType
	TIF                           TIF
	STP                           STPMode
	Flags                         Flags
	Price, StopPrice              int64
	Shown, Hidden                 int64    // open lots = Shown + Hidden; a waiting stop shows all its open lots
	DisplayQty                    int64    // iceberg peak, as entered; 0 = show all
	RiskPrice                     int64    // risk layer on: the price the order is valued at (0 when off)
	HoldPerLot                    int64    // risk layer on: the cash held per open lot (a buy's value at RiskPrice, a short sale's margin; 0 when off)
	Waiting                       bool     // a stop order not yet triggered
	Mark                          SaleMark // a sell's Reg SHO mark (with the risk layer on, the effective one)
}

// OpenOrders lists every open order in traversal order (docs/engine.md).
func (e *Engine) OpenOrders() []OrderState {
	var out []OrderState
	for bi := range e.books {
		e.walk(&e.books[bi], func(oi int32) { out = append(out, e.orderState(oi)) })
	}
	return out
}

func (e *Engine) orderState(oi int32) OrderState {
	o, c := &e.orders[oi], &e.cold[oi]
	return OrderState{
		OrderID: o.id, ClOrdID: o.clOrdID, Account: o.account, STPGroup: o.stpGroup,
		Instrument: e.books[o.book].inst.ID, Side: o.side, Type: o.typ, TIF: o.tif, STP: o.stp, Flags: o.flags & flagsAll,
		Price: o.price, StopPrice: c.stopPrice, Shown: o.shown, Hidden: o.hidden, DisplayQty: c.display, RiskPrice: c.rp, HoldPerLot: c.hp,
		Waiting: o.state == stateWaiting, Mark: o.mark(),
	}
}

// LastPrice returns the instrument's last trade price in ticks (0 before the
// first trade) and whether the instrument is configured.
func (e *Engine) LastPrice(instrument uint32) (int64, bool) {
	bi, ok := e.bookFor(instrument)
	if !ok {
		return 0, false
	}
	return e.books[bi].last, true
}

// OpenCount returns the number of open orders (resting and waiting stops).
func (e *Engine) OpenCount() int { return e.open }

// LastClOrdID returns the highest client reference the account has used
// this trading day (0: none yet, or the account is unknown). A client that
// lost track after a reconnect continues above it.
func (e *Engine) LastClOrdID(acct uint32) uint64 {
	if e.risk.on {
		if s := e.risk.slot(acct); s >= 0 {
			return e.lastRef[s]
		}
		return 0
	}
	for i, k := range e.dir.keys {
		if k == acct {
			return e.lastRef[e.dir.slots[i]]
		}
	}
	return 0
}

// StateHash is a SHA-256 over the engine's complete observable state: its
// counters and, per instrument in configuration order, the last price and
// every open order in traversal order; the halts, restricted list and kill
// switches; with the risk layer on, every account's risk state. Two engines fed the same commands have
// equal hashes.
func (e *Engine) StateHash() [32]byte {
	h := sha256.New()
	buf := make([]byte, 0, 128)
	u := func(v uint64) { buf = binary.LittleEndian.AppendUint64(buf, v) }
	u(e.nextOrderID)
	u(e.nextMatchID)
	// client references: by slot; directory slots are given in order of first
	// sight, so equal command streams give equal layouts
	if !e.risk.on {
		for i, k := range e.dir.keys {
			if k != 0 {
				u(uint64(k)<<32 | uint64(e.dir.slots[i]))
			}
		}
	}
	for _, v := range e.lastRef {
		if v != 0 {
			u(v)
		}
	}
	h.Write(buf)
	buf = buf[:0]
	for bi := range e.books {
		b := &e.books[bi]
		u(uint64(b.inst.ID))
		u(uint64(b.last))
		e.walk(b, func(oi int32) {
			s := e.orderState(oi)
			u(s.OrderID)
			u(s.ClOrdID)
			u(uint64(s.Account)<<32 | uint64(s.STPGroup))
			u(uint64(s.Side) | uint64(s.Type)<<8 | uint64(s.TIF)<<16 | uint64(s.STP)<<24 | uint64(e.orders[oi].flags)<<32)
			u(uint64(s.Price))
			u(uint64(s.StopPrice))
			u(uint64(s.Shown))
			u(uint64(s.Hidden))
			u(uint64(s.DisplayQty))
			u(uint64(s.RiskPrice))
			u(uint64(s.HoldPerLot))
			h.Write(buf)
			buf = buf[:0]
		})
		h.Write(buf)
		buf = buf[:0]
	}
	// trading status: halts and the restricted list, then (risk layer off)
	// the kill switches by directory slot
	r := &e.risk
	u(uint64(r.date))
	u(boolBit(r.halted))
	for bi := range e.books {
		b := &e.books[bi]
		u(boolBit(b.halted) | boolBit(b.restricted)<<1)
		u(uint64(b.prevClose))
		u(uint64(b.ssrUntil))
	}
	for s, k := range r.offKilled {
		if k {
			u(uint64(s))
		}
	}
	h.Write(buf)
	buf = buf[:0]
	if e.risk.on { // risk state: every account in configuration order
		u(uint64(r.day))
		for s := range r.accts {
			a := &r.accts[s]
			for _, v := range [...]int64{a.cash, a.held, a.openBuy, a.openSell, a.credit, a.shortNet, a.mpct, a.maxQty, a.maxNotional, a.maxPos,
				a.creditLimit, a.ordersPerSec, a.cancelsPerSec, a.ordBucket.tat, a.ordBucket.t, a.ordBucket.tau,
				a.cxlBucket.tat, a.cxlBucket.t, a.cxlBucket.tau} {
				u(uint64(v))
			}
			u(uint64(a.status) | boolBit(a.killed)<<8 | boolBit(a.pdt)<<9)
			for _, d := range a.dayTrades {
				u(uint64(d))
			}
			u(uint64(a.dupWindow))
			rc := &r.recent[s]
			u(uint64(rc.next))
			for i := range rc.key {
				u(rc.key[i])
				u(uint64(rc.time[i]))
			}
			for bi := range e.books {
				u(boolBit(r.dayOpen[s*r.nb+bi]))
				p := &r.pos[s*r.nb+bi]
				u(uint64(p.pos))
				u(uint64(p.buyOpen))
				u(uint64(p.sellOpen))
				u(uint64(p.locate))
				u(uint64(p.shortReq))
				u(uint64(p.coverOpen))
				u(uint64(p.shortOpen))
				u(uint64(p.shortNet))
			}
			h.Write(buf)
			buf = buf[:0]
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// checkCheap runs the per-command invariant checks (invariants build tag):
// no book is crossed at rest.
func (e *Engine) checkCheap() {
	b := &e.books[0]
	if bi, ok := e.bookFor(e.inst); ok {
		b = &e.books[bi]
	}
	if b.bids.best >= 0 && b.asks.best >= 0 && b.bids.best >= b.asks.best {
		panic(fmt.Sprintf("core: book %d crossed after command seq %d: bid level %d >= ask level %d",
			b.inst.ID, e.seq, b.bids.best, b.asks.best))
	}
}

// CheckInvariants verifies the engine's whole state: every ladder's links,
// counts, totals, bitmaps and best level; every order in its id's slot; the
// open count;
// books not crossed. It is O(open orders + levels): for tests and audits.
func (e *Engine) CheckInvariants() error {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvariant}, args...)...)
	}
	seen := 0
	for bi := range e.books {
		b := &e.books[bi]
		if b.bids.best >= 0 && b.asks.best >= 0 && b.bids.best >= b.asks.best {
			return fail("book %d crossed: bid %d >= ask %d", b.inst.ID, b.low+int64(b.bids.best), b.low+int64(b.asks.best))
		}
		ladders := [...]struct {
			l       *ladder
			side    Side
			waiting bool
		}{{&b.bids, Buy, false}, {&b.asks, Sell, false}, {&b.buyStops, Buy, true}, {&b.sellStops, Sell, true}}
		for _, x := range ladders {
			l := x.l
			best := int32(-1)
			for li := range l.levels {
				lv := &l.levels[li]
				if (lv.n > 0) != (l.bits.l0[li>>6]&(1<<(li&63)) != 0) {
					return fail("book %d: level %d bitmap disagrees with count %d", b.inst.ID, li, lv.n)
				}
				var n int32
				var qty int64
				prev := int32(-1)
				for oi := lv.head; oi >= 0; oi = e.orders[oi].next {
					o := &e.orders[oi]
					if o.prev != prev {
						return fail("book %d: order %d has a broken back link", b.inst.ID, o.id)
					}
					wantState, price := stateResting, o.price
					if x.waiting {
						wantState, price = stateWaiting, e.cold[oi].stopPrice
					}
					switch {
					case o.state != wantState || o.side != x.side || int(o.book) != bi:
						return fail("book %d: order %d misfiled (state %d side %d)", b.inst.ID, o.id, o.state, o.side)
					case price-b.low != int64(li):
						return fail("book %d: order %d at price %d filed at level %d", b.inst.ID, o.id, price, li)
					case o.shown <= 0 || o.hidden < 0:
						return fail("book %d: order %d shows %d hidden %d", b.inst.ID, o.id, o.shown, o.hidden)
					case o.hidden > 0 && e.cold[oi].display == 0:
						return fail("book %d: order %d hides lots without a display size", b.inst.ID, o.id)
					case o.id&e.slotMask != uint64(oi):
						return fail("book %d: order %d sits in slot %d, not its id's", b.inst.ID, o.id, oi)
					case o.id > e.nextOrderID:
						return fail("book %d: order %d is above the last id assigned, %d", b.inst.ID, o.id, e.nextOrderID)
					}
					qty += o.shown
					n++
					prev = oi
					if int(n) > len(e.orders) {
						return fail("book %d: level %d loops", b.inst.ID, li)
					}
				}
				if prev != lv.tail || n != lv.n || (!x.waiting && qty != lv.qty) {
					return fail("book %d: level %d tail/count/qty mismatch", b.inst.ID, li)
				}
				if n > 0 && (best < 0 || l.better(int32(li), best)) {
					best = int32(li)
				}
				seen += int(n)
			}
			if best != l.best {
				return fail("book %d: best level %d, cached %d", b.inst.ID, best, l.best)
			}
		}
	}
	if e.electHead != -1 || e.electTail != -1 {
		return fail("election queue not empty between commands (%d..%d)", e.electHead, e.electTail)
	}
	if seen != e.OpenCount() {
		return fail("%d orders in books, %d slots in use", seen, e.OpenCount())
	}
	used := 0
	for i := range e.orders {
		if e.orders[i].state != stateFree {
			used++
		}
	}
	if used != seen {
		return fail("%d orders in books, %d slots in use", seen, used)
	}
	return e.checkRisk(fail)
}
