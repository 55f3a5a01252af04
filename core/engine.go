package core

// order is one open order's hot state, one cache line.
type order struct {
	id       uint64
	clOrdID  uint64
	price    int64 // limit price in ticks (0 for Market and Stop)
	shown    int64 // lots shown (for a waiting stop: its open lots)
	hidden   int64 // iceberg reserve
	account  uint32
	stpGroup uint32
	next     int32 // level FIFO links
	prev     int32
	book     uint16 // index into Engine.books
	side     Side
	tif      TIF
	typ      OrderType
	stp      STPMode
	flags    Flags
	state    orderState
}

// orderCold holds what matching rarely reads.
type orderCold struct {
	stopPrice int64
	display   int64 // iceberg peak; 0 = show all (as given: DisplayQty = Qty stays the peak across replaces)
	rp        int64 // risk layer: the price the order is valued at; Market/Stop: protective limit
	hp        int64 // risk layer: the cash held per open lot (a buy's rp x TickValue, a short sale's margin)
}

type orderState uint8

const (
	stateFree    orderState = iota
	stateTaking             // entering: matching as a taker, not in any ladder
	stateResting            // in a book ladder
	stateWaiting            // a stop in the stop ladder
	stateElected            // a stop a print reached, in the election queue until it enters
)

// book is one instrument's order book and stop book.
type book struct {
	inst      Instrument
	low       int64 // BandLow: price of level 0
	bids      ladder
	asks      ladder
	buyStops  ladder
	sellStops ladder
	last      int64 // last trade price; 0 = no trade yet
	lotCap    int64 // risk layer: the position ceiling in lots (positionCap)

	// Rule 201 (risk layer): a trade at or below ssrAt (10% under the
	// previous close) turns the short-sale price test on while the trading
	// day is below ssrUntil (docs/engine.md, "Reg SHO").
	prevClose, ssrAt, ssrUntil int64

	halted, restricted bool // risk layer: trading status and restricted list
}

func (b *book) ladder(s Side) *ladder {
	if s == Buy {
		return &b.bids
	}
	return &b.asks
}

func (b *book) stops(s Side) *ladder {
	if s == Buy {
		return &b.buyStops
	}
	return &b.sellStops
}

func (b *book) inBand(p int64) bool { return p >= b.low && p <= b.inst.BandHigh }

// Engine is the deterministic matching engine for every configured
// instrument. It is not safe for concurrent use: one goroutine (the loop)
// applies commands. See docs/engine.md for the behaviour it implements.
//
// Order slots: an open order lives in slot OrderID & slotMask of orders and
// cold, which have twice MaxOrders slots (rounded up to a power of two), so a
// cancel or replace that names an OrderID reaches its order with one direct
// access and no index. New ids are taken in increasing order, skipping ids
// whose slot is still held by an open order: the table is at most half full,
// so that takes under two probes on average, over memory read in sequence.
type Engine struct {
	cfg      Config
	books    []book
	bookOf   []uint16 // instrument id -> book index + 1
	orders   []order
	cold     []orderCold
	slotMask uint64
	open     int // open orders (resting and waiting stops)

	// Client references (docs/engine.md, "Client references"): the highest
	// ClOrdID each account has used today, by account slot. With the risk
	// layer on, the slot is the account's risk slot; off, accounts get slots
	// in dir as they first appear.
	lastRef []uint64
	dir     acctDir

	nextOrderID uint64 // the last OrderID assigned
	nextMatchID uint64

	// The election queue (docs/engine.md, "Stops"): stops that prints of the
	// current command reached, linked through order.next/prev in the order
	// they enter; -1 when empty, as it is between commands.
	electHead, electTail int32

	risk risk

	// stamp of the command being applied, copied to its events (op and
	// cause: an admin command's, else 0)
	seq   uint64
	time  int64
	tag   uint64
	inst  uint32
	op    uint32
	cause Cause

	buf  []Event // the events of the current batch: the engine's own, or a window of the outbound ring
	n    int
	sink func([]Event)

	// With an outbound window (the loop's), events are written in place in
	// the ring: commit hands the first n of the window to the consumers and
	// claim returns the next window (waiting for room).
	commit func(n int)
	claim  func() []Event
}

// New preallocates an engine for cfg. Events are delivered to sink in batches
// (on Flush, or when EventBatch events are buffered); the slice is reused and
// valid only during the call. A nil sink discards events.
func New(cfg Config, sink func([]Event)) (*Engine, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	slots := 2
	for slots < 2*cfg.MaxOrders {
		slots <<= 1
	}
	e := &Engine{
		cfg:      cfg,
		books:    make([]book, len(cfg.Instruments)),
		orders:   make([]order, slots),
		cold:     make([]orderCold, slots),
		slotMask: uint64(slots - 1),
		buf:      make([]Event, cfg.EventBatch),
		sink:     sink,

		electHead: -1,
		electTail: -1,
	}
	maxID := uint32(0)
	for _, in := range cfg.Instruments {
		maxID = max(maxID, in.ID)
	}
	e.bookOf = make([]uint16, maxID+1)
	for i, in := range cfg.Instruments {
		n := int(in.BandHigh - in.BandLow + 1)
		e.books[i] = book{
			inst:      in,
			low:       in.BandLow,
			bids:      newLadder(n, true),
			asks:      newLadder(n, false),
			buyStops:  newLadder(n, false),
			sellStops: newLadder(n, true),
			lotCap:    positionCap(&in),
		}
		e.bookOf[in.ID] = uint16(i + 1)
	}
	e.initRisk(&cfg)
	if e.risk.on {
		e.lastRef = make([]uint64, len(cfg.Accounts))
	} else {
		e.lastRef = make([]uint64, cfg.MaxAccounts)
		e.dir = newAcctDir(cfg.MaxAccounts)
	}
	for i := range e.orders {
		e.orders[i].next, e.orders[i].prev = -1, -1
	}
	// Touch every page now so the first orders do not pay page faults.
	clear(e.cold)
	clear(e.lastRef)
	clear(e.buf)
	return e, nil
}

// Flush delivers the buffered events to the sink.
func (e *Engine) Flush() {
	if e.n > 0 {
		switch {
		case e.commit != nil:
			e.commit(e.n)
			e.buf = e.buf[e.n:] // the rest of the window stays claimed
		case e.sink != nil:
			e.sink(e.buf[:e.n])
		}
		e.n = 0
	}
}

// emit returns the next event slot, stamped with the current command.
func (e *Engine) emit(k EventKind) *Event {
	if e.n == len(e.buf) {
		e.Flush()
		if e.claim != nil && len(e.buf) == 0 {
			e.buf = e.claim()
		}
	}
	ev := &e.buf[e.n]
	e.n++
	*ev = Event{Seq: e.seq, Time: e.time, Tag: e.tag, Kind: k, Operator: e.op, Cause: e.cause}
	return ev
}

// emitOrder emits an event about order oi with its identifying fields.
func (e *Engine) emitOrder(k EventKind, oi int32) *Event {
	ev := e.emit(k)
	o := &e.orders[oi]
	ev.Instrument = e.books[o.book].inst.ID
	ev.Account = o.account
	ev.OrderID = o.id
	ev.ClOrdID = o.clOrdID
	ev.Side = o.side
	ev.Type = o.typ
	ev.TIF = o.tif
	ev.Price = o.price
	ev.StopPrice = e.cold[oi].stopPrice
	ev.Mark = o.mark()
	return ev
}

// mark returns the order's sale mark, kept in flags bits 4-5.
func (o *order) mark() SaleMark { return SaleMark(o.flags>>flagMarkShift) & 3 }

// emitBook emits a public book event about order oi.
func (e *Engine) emitBook(k EventKind, oi int32, qty, leaves int64) {
	ev := e.emit(k)
	o := &e.orders[oi]
	ev.Instrument = e.books[o.book].inst.ID
	ev.OrderID = o.id
	ev.Side = o.side
	ev.Price = o.price
	ev.Qty = qty
	ev.Leaves = leaves
}

func (e *Engine) reject(c *Command, r Reason) {
	ev := e.emit(KindRejected)
	ev.Reason = r
	ev.Instrument = c.Instrument
	ev.Account = c.Account
	ev.OrderID = c.OrderID
	ev.ClOrdID = c.ClOrdID
	ev.OrigClOrdID = c.OrigClOrdID
	ev.Side = c.Side
	ev.Type = c.Type
	ev.TIF = c.TIF
	ev.Mark = c.Mark
	ev.Operator, ev.Cause = c.Operator, c.Cause
	ev.Price = c.Price
	ev.StopPrice = c.StopPrice
	ev.Qty = c.Qty
}

// Apply applies one sequenced command (Seq and Time already set). Its events
// go to the buffer; call Flush to deliver them.
func (e *Engine) Apply(c *Command) {
	e.seq, e.time, e.tag, e.inst, e.op, e.cause = c.Seq, c.Time, c.Tag, c.Instrument, 0, CauseNone
	switch c.Kind {
	case CmdNew:
		e.newOrder(c)
	case CmdCancel:
		e.cancel(c)
	case CmdCancelSize:
		e.cancelSize(c)
	case CmdReplace:
		e.replace(c)
	case CmdMassCancel:
		e.massCancel(c)
	case CmdEndOfDay:
		e.endOfDay(c)
	default:
		if c.Kind >= CmdHalt && c.Kind < cmdKinds {
			e.admin(c)
		} else {
			e.reject(c, RejectUnknownCommand)
		}
	}
	if invariants {
		e.checkCheap()
	}
}

func (e *Engine) bookFor(id uint32) (uint16, bool) {
	if int(id) >= len(e.bookOf) || e.bookOf[id] == 0 {
		return 0, false
	}
	return e.bookOf[id] - 1, true
}

// crosses reports whether a side-s order at price p would take the opposite best.
func (b *book) crosses(s Side, p int64) bool {
	if s == Buy {
		return b.asks.best >= 0 && b.low+int64(b.asks.best) <= p
	}
	return b.bids.best >= 0 && b.low+int64(b.bids.best) >= p
}

func canRest(typ OrderType, tif TIF) bool {
	return (typ == Limit || typ == StopLimit) && (tif == DAY || tif == GTC)
}

// acctSlot returns the account's slot: its risk slot when the risk layer is
// on (unknown accounts are refused), otherwise its directory slot (a new
// account gets one while there is room).
func (e *Engine) acctSlot(acct uint32) (int32, Reason) {
	if e.risk.on {
		s := e.risk.slot(acct)
		if s < 0 {
			return -1, RejectUnknownAccount
		}
		return int32(s), ReasonNone
	}
	s := e.dir.slot(acct)
	if s < 0 {
		return -1, RejectAccountCapacity
	}
	return s, ReasonNone
}

// useRef applies the client-reference rule (docs/engine.md, "Client
// references"): a reference is used once per account and trading day, in
// strictly increasing order. A reference above the account's highest is
// recorded as used, whatever then becomes of the command.
func (e *Engine) useRef(s int32, cl uint64) Reason {
	last := &e.lastRef[s]
	switch {
	case cl > *last:
		*last = cl
		return ReasonNone
	case cl == *last:
		return RejectDuplicateClOrdID
	default:
		return RejectStaleClOrdID
	}
}

// validateNew runs the checks of a new order up to the pre-trade risk
// checks, in the documented order, and returns the book and the account's
// slot.
func (e *Engine) validateNew(c *Command) (uint16, int32, Reason) {
	if c.Account == 0 {
		return 0, -1, RejectInvalidAccount
	}
	s, r := e.acctSlot(c.Account)
	if r != ReasonNone {
		return 0, -1, r
	}
	if e.risk.on && !e.risk.accts[s].ordBucket.take(e.time) {
		return 0, s, RejectOrderRate // every message counts (check 1b)
	}
	if c.ClOrdID == 0 {
		return 0, s, RejectInvalidClOrdID
	}
	if r := e.useRef(s, c.ClOrdID); r != ReasonNone {
		return 0, s, r
	}
	bi, ok := e.bookFor(c.Instrument)
	if !ok {
		return 0, s, RejectUnknownInstrument
	}
	b := &e.books[bi]
	switch {
	case c.Side != Buy && c.Side != Sell:
		return bi, s, RejectInvalidSide
	case c.Type == TypeNone || c.Type >= orderTypes:
		return bi, s, RejectInvalidType
	case c.TIF == TIFNone || c.TIF >= tifs:
		return bi, s, RejectInvalidTIF
	case c.STP >= stpModes:
		return bi, s, RejectInvalidSTP
	case c.Flags&^flagsAll != 0,
		c.Flags&PostOnly != 0 && !(c.Type == Limit && (c.TIF == DAY || c.TIF == GTC)):
		return bi, s, RejectInvalidFlags
	case c.Mark >= saleMarks || c.Mark != MarkNone && c.Side != Sell:
		return bi, s, RejectInvalidSaleMark
	case c.Qty < 1 || c.Qty > e.cfg.MaxOrderQty:
		return bi, s, RejectInvalidQty
	}
	if r := priceCheck(b, c.Type, c.Price, c.StopPrice); r != ReasonNone {
		return bi, s, r
	}
	switch {
	case c.DisplayQty < 0 || c.DisplayQty > c.Qty,
		c.DisplayQty > 0 && !canRest(c.Type, c.TIF):
		return bi, s, RejectInvalidDisplayQty
	case c.MinQty < 0 || c.MinQty > c.Qty,
		c.MinQty > 0 && c.Type != Limit && c.Type != Market:
		return bi, s, RejectInvalidMinQty
	case c.MinQty > 0 && c.Flags&PostOnly != 0:
		return bi, s, RejectPostOnlyMinQty
	case e.open >= e.cfg.MaxOrders:
		return bi, s, RejectOrderCapacity
	case c.Flags&PostOnly != 0 && b.crosses(c.Side, c.Price):
		return bi, s, RejectPostOnlyWouldTake
	}
	return bi, s, ReasonNone
}

// allocOrder takes the slot of the next OrderID: the smallest id above the
// last one assigned whose slot holds no open order (there is one within a
// few probes: at most half the slots are ever in use).
func (e *Engine) allocOrder() int32 {
	id := e.nextOrderID + 1
	for e.orders[id&e.slotMask].state != stateFree {
		id++
	}
	e.nextOrderID = id
	e.open++
	return int32(id & e.slotMask)
}

// priceCheck validates a limit price and stop price for an order type.
func priceCheck(b *book, typ OrderType, price, stop int64) Reason {
	if typ == Limit || typ == StopLimit {
		if price <= 0 {
			return RejectInvalidPrice
		}
		if !b.inBand(price) {
			return RejectPriceOutOfBand
		}
	} else if price != 0 {
		return RejectInvalidPrice
	}
	if typ == Stop || typ == StopLimit {
		if stop <= 0 || !b.inBand(stop) {
			return RejectInvalidStopPrice
		}
	} else if stop != 0 {
		return RejectInvalidStopPrice
	}
	return ReasonNone
}

func (e *Engine) newOrder(c *Command) {
	bi, as, r := e.validateNew(c)
	if r != ReasonNone {
		e.reject(c, r)
		return
	}
	group := c.STPGroup
	var t terms
	if e.risk.on {
		s := int(as)
		if t, r = e.riskCheck(s, bi, c.Side, c.Type, c.STP, c.Mark, c.Qty, c.Price, c.StopPrice); r != ReasonNone {
			e.reject(c, r)
			return
		}
		key := orderKey(c.Instrument, c.Side, c.Type, c.Price, c.StopPrice, c.Qty)
		if e.duplicative(s, key) {
			e.reject(c, RejectDuplicativeOrder)
			return
		}
		e.remember(s, key)
		group = e.risk.accts[s].group
	} else if r := e.gateOff(c.Account, &e.books[bi]); r != ReasonNone {
		e.reject(c, r)
		return
	} else {
		t.cls = Flags(c.Mark) << flagMarkShift // as given: no position to mark by
	}
	b := &e.books[bi]
	oi := e.allocOrder()
	o := &e.orders[oi]
	*o = order{
		id: e.nextOrderID, clOrdID: c.ClOrdID, price: c.Price, shown: c.Qty,
		account: c.Account, stpGroup: group, next: -1, prev: -1, book: bi,
		side: c.Side, tif: c.TIF, typ: c.Type, stp: c.STP, flags: c.Flags | t.cls, state: stateTaking,
	}
	// DisplayQty is the order's peak for its life, also when it equals Qty:
	// a later replace to a larger size shows DisplayQty lots (docs/engine.md).
	e.cold[oi] = orderCold{stopPrice: c.StopPrice, display: c.DisplayQty, rp: t.rp, hp: t.hp}
	if e.risk.on {
		e.hold(oi, c.Qty)
	}

	ev := e.emitOrder(KindAccepted, oi)
	ev.Qty, ev.Leaves = c.Qty, c.Qty

	if c.Type == Stop || c.Type == StopLimit {
		if !e.waitOrElect(b, oi) {
			e.runStops()
		}
		return
	}
	e.enter(b, oi, c.Qty, c.MinQty)
	e.runStops()
}

// enter runs an arriving (or just triggered) order oi with qty lots: a FOK
// order, or one with a minimum quantity, is first checked for what it could
// execute at once and cancelled whole if that falls short; then it takes.
func (e *Engine) enter(b *book, oi int32, qty, minQty int64) {
	need, reason := minQty, CancelMinQtyNotMet
	if e.orders[oi].tif == FOK {
		need, reason = qty, CancelFOKNotFillable
	}
	if need > 0 && !e.fillable(b, oi, qty, need) {
		e.close(oi, KindCancelled, reason, qty)
		return
	}
	e.take(b, oi, qty)
}

// take runs order oi (state taking, rem open lots) against the book, then
// disposes of its remainder per its type and TIF.
func (e *Engine) take(b *book, oi int32, rem int64) {
	rem, killed := e.match(b, oi, rem)
	if killed {
		return
	}
	o := &e.orders[oi]
	switch {
	case rem == 0:
		e.release(oi)
	case o.typ == Market || o.typ == Stop:
		e.close(oi, KindCancelled, CancelMarketRemainder, rem)
	case o.tif == IOC || o.tif == FOK:
		e.close(oi, KindCancelled, CancelIOCRemainder, rem)
	default:
		e.rest(b, oi, rem)
	}
}

// rest puts order oi with rem open lots at the back of its price level.
func (e *Engine) rest(b *book, oi int32, rem int64) {
	o := &e.orders[oi]
	o.shown, o.hidden = rem, 0
	if d := e.cold[oi].display; d > 0 && d < rem {
		o.shown, o.hidden = d, rem-d
	}
	o.state = stateResting
	l := b.ladder(o.side)
	li := int32(o.price - b.low)
	l.pushBack(e.orders, li, oi)
	l.levels[li].qty += o.shown
	e.emitBook(KindBookAdd, oi, o.shown, o.shown)
}

// unrest takes resting order oi off its price level (its shown lots leave
// the level's total); the caller emits the book event.
func (e *Engine) unrest(b *book, oi int32) {
	o := &e.orders[oi]
	l := b.ladder(o.side)
	li := int32(o.price - b.low)
	l.levels[li].qty -= o.shown
	l.unlink(e.orders, li, oi)
}

// close emits kind (Cancelled or Expired) for order oi with qty lots and frees
// it. A resting order also leaves the book (BookDelete); a waiting stop leaves
// the stop book.
func (e *Engine) close(oi int32, k EventKind, r Reason, qty int64) {
	ev := e.emitOrder(k, oi)
	ev.Reason, ev.Qty = r, qty
	e.unhold(oi, qty)
	o := &e.orders[oi]
	b := &e.books[o.book]
	switch o.state {
	case stateResting:
		e.unrest(b, oi)
		e.emitBook(KindBookDelete, oi, o.shown, 0)
	case stateWaiting:
		b.stops(o.side).unlink(e.orders, int32(e.cold[oi].stopPrice-b.low), oi)
	}
	e.release(oi)
}

func (e *Engine) release(oi int32) {
	e.orders[oi].state = stateFree
	e.open--
}

// conflicts reports whether maker m and taker t are subject to STP.
func conflicts(t, m *order) bool {
	return t.stp != STPOff && (m.account == t.account || (t.stpGroup != 0 && m.stpGroup == t.stpGroup))
}

// match executes taker oi with rem lots against the opposite side. It returns
// the lots left and whether STP cancelled the taker (events emitted, freed).
func (e *Engine) match(b *book, ti int32, rem int64) (int64, bool) {
	t := &e.orders[ti]
	opp := b.ladder(t.side.Opposite())
	market, limit := e.limitOf(ti)
	for rem > 0 && opp.best >= 0 {
		li := opp.best
		price := b.low + int64(li)
		if !market && (t.side == Buy && price > limit || t.side == Sell && price < limit) {
			break
		}
		lv := &opp.levels[li]
		for rem > 0 && lv.head >= 0 {
			mi := lv.head
			m := &e.orders[mi]
			if conflicts(t, m) {
				var killed bool
				rem, killed = e.selfTrade(b, ti, mi, rem)
				if killed {
					return 0, true
				}
				continue
			}
			q := min(rem, m.shown)
			rem -= q
			m.shown -= q
			lv.qty -= q
			e.nextMatchID++
			b.last = price
			if e.risk.on {
				e.fill(ti, q, price)
				e.fill(mi, q, price)
			}

			ev := e.emitOrder(KindExecuted, ti)
			ev.Price, ev.Qty, ev.Leaves = price, q, rem
			ev.MatchID = e.nextMatchID
			ev.ContraAccount, ev.ContraOrderID, ev.ContraClOrdID = m.account, m.id, m.clOrdID
			ev.ContraLeaves = m.shown + m.hidden
			e.emitBook(KindBookExecute, mi, q, m.shown)
			tr := e.emit(KindTrade)
			tr.Instrument, tr.Side, tr.Price, tr.Qty, tr.MatchID = b.inst.ID, t.side, price, q, e.nextMatchID
			// Every print elects the waiting stops it reaches (they enter
			// once this command's order is done).
			if bs, ss := b.buyStops.best, b.sellStops.best; bs >= 0 && bs <= li || ss >= li {
				e.elect(b, li, t.side)
			}

			if m.shown == 0 {
				if m.hidden > 0 {
					e.refill(opp, li, mi)
				} else {
					opp.unlink(e.orders, li, mi)
					e.release(mi)
				}
			}
			if e.risk.on && price <= b.ssrAt && b.ssrUntil <= e.risk.day+1 && e.shortSaleTestOn(b, ti, rem) {
				return 0, true
			}
		}
	}
	return rem, false
}

// limitOf returns whether taker ti walks the book at any price (a Market or
// triggered Stop order with the risk layer off) and otherwise its limit: the
// limit price, or with the risk layer on a Market or Stop order's protective
// limit (its risk price at the collar bound).
func (e *Engine) limitOf(ti int32) (bool, int64) {
	t := &e.orders[ti]
	if t.typ == Market || t.typ == Stop {
		if !e.risk.on {
			return true, 0
		}
		return false, e.cold[ti].rp
	}
	return false, t.price
}

// refill shows the next slice of an iceberg whose shown lots ran out and
// moves it to the back of its level.
func (e *Engine) refill(l *ladder, li, mi int32) {
	m := &e.orders[mi]
	d := e.cold[mi].display
	m.shown = min(d, m.hidden)
	m.hidden -= m.shown
	l.levels[li].qty += m.shown
	l.moveBack(e.orders, li, mi)
	e.emitBook(KindBookAdd, mi, m.shown, m.shown)
}

// selfTrade resolves an STP conflict between taker ti (rem lots) and resting
// maker mi by the taker's mode.
func (e *Engine) selfTrade(b *book, ti, mi int32, rem int64) (int64, bool) {
	t, m := &e.orders[ti], &e.orders[mi]
	mopen := m.shown + m.hidden
	switch t.stp {
	case STPCancelNewest:
		e.close(ti, KindCancelled, CancelSTPNewest, rem)
		return 0, true
	case STPCancelOldest:
		e.close(mi, KindCancelled, CancelSTPOldest, mopen)
		return rem, false
	case STPCancelBoth:
		e.close(mi, KindCancelled, CancelSTPBoth, mopen)
		e.close(ti, KindCancelled, CancelSTPBoth, rem)
		return 0, true
	default: // STPDecrement
		d := min(rem, mopen)
		if mopen == d {
			e.close(mi, KindCancelled, CancelSTPDecrement, d)
		} else {
			e.reduce(b, mi, mopen-d, CancelSTPDecrement)
		}
		if rem == d {
			e.close(ti, KindCancelled, CancelSTPDecrement, d)
			return 0, true
		}
		ev := e.emitOrder(KindReduced, ti)
		ev.Reason, ev.Qty, ev.Leaves = CancelSTPDecrement, d, rem-d
		e.unhold(ti, d)
		return rem - d, false
	}
}

// reduce lowers open order oi to newOpen lots (0 < newOpen < open), hidden
// lots first, keeping its priority: Reduced, then BookCancel if shown lots
// changed.
func (e *Engine) reduce(b *book, oi int32, newOpen int64, r Reason) {
	o := &e.orders[oi]
	ev := e.emitOrder(KindReduced, oi)
	ev.Reason, ev.Qty, ev.Leaves = r, o.shown+o.hidden-newOpen, newOpen
	e.unhold(oi, o.shown+o.hidden-newOpen)
	e.shrink(b, oi, newOpen)
}

// shrink sets open order oi to newOpen <= open lots, hidden lots first.
func (e *Engine) shrink(b *book, oi int32, newOpen int64) {
	o := &e.orders[oi]
	if newOpen >= o.shown {
		o.hidden = newOpen - o.shown
		return
	}
	d := o.shown - newOpen
	o.shown, o.hidden = newOpen, 0
	if o.state == stateResting {
		b.ladder(o.side).levels[o.price-b.low].qty -= d
		e.emitBook(KindBookCancel, oi, d, newOpen)
	}
}

// fillable reports whether taker ti with rem lots would execute at least
// need lots on arrival (docs/engine.md, "Fillable quantity"). It simulates
// the walk of match without changing anything: at each level the taker first
// meets every maker's shown lots in queue order, where self-trade prevention
// acts as it would (cancel-oldest skips the maker, decrement-and-cancel takes
// the maker's open lots off the taker, the other modes end the walk); then
// the refills of the icebergs it emptied, which went behind all of those.
func (e *Engine) fillable(b *book, ti int32, rem, need int64) bool {
	t := &e.orders[ti]
	opp := b.ladder(t.side.Opposite())
	market, limit := e.limitOf(ti)
	var done int64
	for li := opp.best; li >= 0; li = opp.worse(li) {
		price := b.low + int64(li)
		if !market && (t.side == Buy && price > limit || t.side == Sell && price < limit) {
			break
		}
		var hidden int64
		for mi := opp.levels[li].head; mi >= 0; mi = e.orders[mi].next {
			m := &e.orders[mi]
			if conflicts(t, m) {
				switch t.stp {
				case STPCancelOldest:
					continue
				case STPDecrement:
					// the maker goes (or the taker ends): its lots leave the taker
					rem -= min(rem, m.shown+m.hidden)
					if rem == 0 {
						return false // done < need, or it had returned
					}
					continue
				default:
					return false
				}
			}
			q := min(rem, m.shown)
			done += q
			rem -= q
			if done >= need {
				return true
			}
			if rem == 0 {
				return false
			}
			hidden += m.hidden
		}
		q := min(rem, hidden)
		done += q
		rem -= q
		if done >= need {
			return true
		}
		if rem == 0 {
			return false
		}
	}
	return false
}

func stopTriggered(s Side, stop, last int64) bool {
	if s == Buy {
		return last >= stop
	}
	return last <= stop
}

// waitOrElect files stop order oi (not in any ladder) in the stop book, or,
// if the last trade price already reaches its stop price, puts it in the
// election queue; it reports whether the stop waits. Waiting stops are
// therefore never reached by the last price: a print elects them first.
func (e *Engine) waitOrElect(b *book, oi int32) bool {
	o := &e.orders[oi]
	stop := e.cold[oi].stopPrice
	if b.last != 0 && stopTriggered(o.side, stop, b.last) {
		e.enqueue(oi, oi)
		return false
	}
	o.state = stateWaiting
	b.stops(o.side).pushBack(e.orders, int32(stop-b.low), oi)
	return true
}

// elect moves every waiting stop that a print at level li reaches (buy stops
// at or below it, sell stops at or above it) to the back of the election
// queue: the stop furthest through the print first, at equal distance the
// one on the aggressor's side, oldest first within a stop price. Whole stop
// levels move at once.
func (e *Engine) elect(b *book, li int32, aggressor Side) {
	for {
		bl, sl := b.buyStops.best, b.sellStops.best
		buy, sell := bl >= 0 && bl <= li, sl >= 0 && sl >= li
		if buy && sell { // only at an instrument's first print
			if d, ds := li-bl, sl-li; d < ds || d == ds && aggressor == Sell {
				buy = false
			}
		} else if !buy && !sell {
			return
		}
		l := &b.sellStops
		if buy {
			l = &b.buyStops
		}
		e.enqueue(l.takeBest())
	}
}

// enqueue appends the linked run of stops head..tail, taken out of the stop
// book, to the election queue.
func (e *Engine) enqueue(head, tail int32) {
	for oi := head; oi >= 0; oi = e.orders[oi].next {
		e.orders[oi].state = stateElected
	}
	if e.electTail >= 0 {
		e.orders[e.electTail].next = head
		e.orders[head].prev = e.electTail
	} else {
		e.electHead = head
	}
	e.electTail = tail
}

// runStops enters the elected stops in queue order, each once the one before
// it is done; the prints of each may elect more, which queue behind.
func (e *Engine) runStops() {
	for e.electHead >= 0 {
		oi := e.electHead
		o := &e.orders[oi]
		e.electHead = o.next
		if e.electHead >= 0 {
			e.orders[e.electHead].prev = -1
		} else {
			e.electTail = -1
		}
		o.next, o.prev = -1, -1
		o.state = stateTaking
		open := o.shown
		ev := e.emitOrder(KindTriggered, oi)
		ev.Qty, ev.Leaves = open, open
		b := &e.books[o.book]
		if e.risk.on && !e.triggerRisk(b, oi, open) {
			continue
		}
		e.enter(b, oi, open, 0)
	}
}

// lookup finds the open order a cancel, cancel-to-size or replace acts on:
// the order OrderID names, which must be open, belong to Account and carry
// OrigClOrdID as its current reference.
func (e *Engine) lookup(c *Command) (int32, Reason) {
	if c.Account == 0 {
		return -1, RejectInvalidAccount
	}
	oi := int32(c.OrderID & e.slotMask)
	o := &e.orders[oi]
	if c.OrderID == 0 || o.state == stateFree || o.id != c.OrderID || o.account != c.Account || o.clOrdID != c.OrigClOrdID {
		return -1, RejectUnknownOrder
	}
	if c.Instrument != 0 && c.Instrument != e.books[e.orders[oi].book].inst.ID {
		return -1, RejectInstrumentMismatch
	}
	return oi, ReasonNone
}

// lookupCancel is lookup for cancel and cancel-to-size, which also count
// against the account's cancel rate when the risk layer is on. It rejects
// the command itself and returns -1 on failure.
func (e *Engine) lookupCancel(c *Command) int32 {
	r := RejectCancelRate // every message counts, the unknown order's too
	oi := int32(-1)
	if !e.risk.on || e.cancelToken(c.Account) {
		oi, r = e.lookup(c)
	}
	if r != ReasonNone {
		e.reject(c, r)
		return -1
	}
	return oi
}

func (e *Engine) cancel(c *Command) {
	oi := e.lookupCancel(c)
	if oi < 0 {
		return
	}
	o := &e.orders[oi]
	e.close(oi, KindCancelled, CancelRequested, o.shown+o.hidden)
}

func (e *Engine) cancelSize(c *Command) {
	oi := e.lookupCancel(c)
	if oi < 0 {
		return
	}
	o := &e.orders[oi]
	if c.Qty < 1 || c.Qty >= o.shown+o.hidden {
		e.reject(c, RejectNotReduced)
		return
	}
	e.reduce(&e.books[o.book], oi, c.Qty, CancelRequested)
}

func (e *Engine) replace(c *Command) {
	r := RejectOrderRate // every message counts, the unknown order's too
	oi := int32(-1)
	if !e.risk.on || e.orderToken(c.Account) {
		oi, r = e.lookup(c)
	}
	if r == ReasonNone {
		r = e.validateReplace(c, oi)
	}
	if r == ReasonNone && e.risk.on {
		r = e.riskReplace(c, oi)
	} else if r == ReasonNone {
		r = e.gateOff(c.Account, &e.books[e.orders[oi].book])
	}
	if r != ReasonNone {
		e.reject(c, r)
		return
	}
	o := &e.orders[oi]
	b := &e.books[o.book]
	cold := &e.cold[oi]
	open := o.shown + o.hidden
	origCl := o.clOrdID
	o.clOrdID = c.ClOrdID
	keep := c.Price == o.price && c.StopPrice == cold.stopPrice && c.Qty <= open

	ev := e.emitOrder(KindReplaced, oi)
	ev.OrigClOrdID, ev.Price, ev.StopPrice, ev.Qty, ev.Leaves = origCl, c.Price, c.StopPrice, c.Qty, c.Qty

	switch {
	case keep:
		e.shrink(b, oi, c.Qty)
	case o.state == stateWaiting:
		b.stops(o.side).unlink(e.orders, int32(cold.stopPrice-b.low), oi)
		o.price, o.shown, cold.stopPrice = c.Price, c.Qty, c.StopPrice
		e.waitOrElect(b, oi)
	case !b.crosses(o.side, c.Price):
		e.unrest(b, oi)
		o.price, o.shown, o.hidden, cold.stopPrice = c.Price, c.Qty, 0, c.StopPrice
		if d := cold.display; d > 0 && d < c.Qty {
			o.shown, o.hidden = d, c.Qty-d
		}
		l := b.ladder(o.side)
		li := int32(c.Price - b.low)
		l.pushBack(e.orders, li, oi)
		l.levels[li].qty += o.shown
		e.emitBook(KindBookReplace, oi, o.shown, o.shown)
	default: // a resting order whose new price crosses: it takes, then rests
		e.unrest(b, oi)
		e.emitBook(KindBookDelete, oi, o.shown, 0)
		o.price, o.state, cold.stopPrice = c.Price, stateTaking, c.StopPrice
		e.take(b, oi, c.Qty)
	}
	e.runStops()
}

// riskReplace runs the pre-trade checks for a replace of open order oi as
// for a new order of its side and type with the new price, stop price and
// quantity, its current exposure set aside. On success the exposure is
// re-held at the new terms; on a reject nothing changes.
//
// Fast path: a replace that keeps the price and stop price and does not
// raise the quantity only lowers the order's exposure at an unchanged risk
// price, so only the gate (checks 18-20) runs (the order token was taken on
// arrival) and just the removed lots are released.
func (e *Engine) riskReplace(c *Command, oi int32) Reason {
	o := &e.orders[oi]
	s := int(e.risk.slotOf[o.account]) - 1
	open := o.shown + o.hidden
	if c.Price == o.price && c.StopPrice == e.cold[oi].stopPrice && c.Qty <= open {
		a := &e.risk.accts[s]
		if r := e.riskGate(a, &e.books[o.book]); r != ReasonNone {
			return r
		}
		e.unhold(oi, open-c.Qty)
		return ReasonNone
	}
	e.unhold(oi, open)
	typ := o.typ
	if typ == StopLimit && o.state != stateWaiting {
		typ = Limit // triggered: a limit order, checked against the reference
	}
	t, r := e.riskCheck(s, o.book, o.side, typ, o.stp, o.mark(), c.Qty, c.Price, c.StopPrice)
	if r != ReasonNone {
		e.hold(oi, open) // back as it was
		return r
	}
	e.cold[oi].rp, e.cold[oi].hp = t.rp, t.hp
	o.flags = o.flags&^flagsRisk | t.cls
	e.hold(oi, c.Qty)
	return ReasonNone
}

// validateReplace checks a replace of open order oi. Its new reference is
// checked (and used) first: every replace carries a fresh one, so a resent
// replace is refused as a reused reference and applies nothing.
func (e *Engine) validateReplace(c *Command, oi int32) Reason {
	o := &e.orders[oi]
	b := &e.books[o.book]
	if c.ClOrdID == 0 {
		return RejectInvalidClOrdID
	}
	s, r := e.acctSlot(o.account)
	if r != ReasonNone {
		return r
	}
	if r := e.useRef(s, c.ClOrdID); r != ReasonNone {
		return r
	}
	if c.Qty < 1 || c.Qty > e.cfg.MaxOrderQty {
		return RejectInvalidQty
	}
	if r := priceCheck(b, o.typ, c.Price, c.StopPrice); r != ReasonNone {
		return r
	}
	if o.flags&PostOnly != 0 && b.crosses(o.side, c.Price) {
		return RejectPostOnlyWouldTake
	}
	return ReasonNone
}

// walk calls fn for every open order of book b in traversal order (bids best
// to worst, asks best to worst, buy stops lowest first, sell stops highest
// first; oldest first within a price). fn may close the order it is given.
func (e *Engine) walk(b *book, fn func(oi int32)) {
	for _, l := range [...]*ladder{&b.bids, &b.asks, &b.buyStops, &b.sellStops} {
		for li := l.best; li >= 0; li = l.worse(li) {
			for oi := l.levels[li].head; oi >= 0; {
				next := e.orders[oi].next
				fn(oi)
				oi = next
			}
		}
	}
}

func (e *Engine) massCancel(c *Command) {
	if c.Instrument != 0 {
		if _, ok := e.bookFor(c.Instrument); !ok {
			e.reject(c, RejectUnknownInstrument)
			return
		}
	}
	for bi := range e.books {
		b := &e.books[bi]
		if c.Instrument != 0 && b.inst.ID != c.Instrument {
			continue
		}
		e.walk(b, func(oi int32) {
			o := &e.orders[oi]
			if c.Account == 0 || o.account == c.Account {
				e.close(oi, KindCancelled, CancelMass, o.shown+o.hidden)
			}
		})
	}
}

func (e *Engine) endOfDay(c *Command) {
	days, r := e.advanceDate(c.Qty)
	if r != ReasonNone {
		e.reject(c, r)
		return
	}
	e.newTradingDay(days)
	clear(e.lastRef) // references start again for the new trading day
	for bi := range e.books {
		e.walk(&e.books[bi], func(oi int32) {
			o := &e.orders[oi]
			if o.tif == DAY {
				e.close(oi, KindExpired, ExpireEndOfDay, o.shown+o.hidden)
			}
		})
	}
	ev := e.emit(KindSystem)
	ev.Reason, ev.Qty = AdminTradingDate, e.risk.date
}
