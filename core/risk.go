package core

import (
	"math"
	"math/bits"
)

// Pre-trade risk: accounts, holds, positions, limits and the admin commands
// (docs/engine.md, "Pre-trade risk" and "Admin commands"). The layer is on
// when Config.Accounts is non-empty; when it is off none of this runs and
// the engine's events are those of the pure matcher.

// acct is one account's hot risk state: everything an order's checks read
// or write except the per-instrument position, in two cache lines.
type acct struct {
	cash     int64 // minor units
	held     int64 // cash held by open orders: sum of open lots x hold per lot (orderCold.hp)
	openBuy  int64 // notional of open buy orders, at their risk prices
	openSell int64 // notional of open sell orders, at their risk prices
	credit   int64 // notional executed today (both sides), reset by CmdEndOfDay
	// shortNet is what the account's short positions hold back from buying
	// power: the sum of apos.shortNet. Buying power = cash - held - shortNet.
	shortNet int64
	mpct     int64 // short margin beyond the proceeds, in percent (ShortMarginPct - 100)

	maxQty, maxNotional, maxPos, creditLimit int64
	ordersPerSec, cancelsPerSec              int64
	dupWindow                                int64 // DuplicateWindow, ns

	// The message throttles: token buckets in GCRA form (docs/engine.md,
	// "Throttles"), one for new orders and replaces, one for cancels.
	ordBucket, cxlBucket bucket
	group                uint32 // STP group, overriding the command's
	status               AccountStatus
	killed, prop         bool
	stpOff               bool // AllowSTPOff: orders may opt out of self-trade prevention
	// pdt: the pattern-day-trader rule applies (flagged PDT with Equity below
	// Config.PDTMinEquity).
	pdt bool
	// dayTrades counts the day trades of the last five trading days, one
	// entry per day at risk.day % 5 (docs/engine.md, "Day trades").
	dayTrades [5]int32
}

// bucket is a token bucket of perSec tokens a second and a burst of perSec,
// as a generic cell rate algorithm over Command.Time: a message is allowed
// while tat - now <= tau, and then tat = max(tat, now) + t.
type bucket struct {
	tat int64 // theoretical arrival time, ns
	t   int64 // ns per token: ceil(1e9 / perSec); 0 = no limit
	tau int64 // burst tolerance: (perSec - 1) x t
}

func newBucket(perSec int64) bucket {
	if perSec == 0 {
		return bucket{}
	}
	t := (1_000_000_000 + perSec - 1) / perSec
	return bucket{t: t, tau: (perSec - 1) * t}
}

// take takes a token at time now, and reports false when there is none.
func (b *bucket) take(now int64) bool {
	if b.t == 0 {
		return true
	}
	x := max(b.tat, now)
	if uint64(x-now) > uint64(b.tau) {
		return false
	}
	if x > math.MaxInt64-b.t {
		x = math.MaxInt64 - b.t
	}
	b.tat = x + b.t
	return true
}

// dayTradesWindow is the number of trading days the PDT rule looks back
// over, and pdtMaxDayTrades the day trades allowed in that window.
const (
	dayTradesWindow = 5
	pdtMaxDayTrades = 3
)

// dayTradeCount returns the account's day trades in the rolling window.
func (a *acct) dayTradeCount() int64 {
	var n int64
	for _, d := range a.dayTrades {
		n += int64(d)
	}
	return n
}

// apos is one account's state in one instrument, one cache line.
type apos struct {
	pos      int64 // lots; negative = short
	buyOpen  int64 // open lots of buy orders
	sellOpen int64 // open lots of sell orders
	locate   int64 // lots the account may be short
	// shortReq is the short position's requirement: the proceeds of its
	// short sales at their trade prices plus their margin at the orders'
	// margin per lot, released in proportion as the short is bought back
	// (docs/engine.md, "Short sales").
	shortReq int64
	// coverOpen is the open lots of buys to cover that use the short's
	// collateral (flagCover); shortOpen the open lots of short sales
	// (flagShort).
	coverOpen, shortOpen int64
	// shortNet is the part of shortReq not backing open cover lots:
	// ceil(shortReq x (short lots - coverOpen) / short lots), at least 0.
	shortNet int64
}

// Internal order flags (order.flags above flagsAll): the risk layer's
// classification of an order at acceptance.
const (
	flagMarkShift       = 4      // bits 4-5: the order's SaleMark (effective, with the risk layer on)
	flagShort     Flags = 1 << 6 // a sell not covered by the position: holds its margin, may open a short
	flagCover     Flags = 1 << 7 // a buy to cover that uses the short's collateral
	flagsRisk           = flagShort | flagCover | 3<<flagMarkShift
)

// acctCold is reference data the checks do not read.
type acctCold struct {
	id     uint32
	firm   uint32
	owner  uint32
	pdt    bool
	equity int64
}

// risk is the engine's risk state, preallocated by New.
type risk struct {
	on     bool
	halted bool    // market-wide halt
	slotOf []int32 // account id -> slot + 1; 0 = unknown
	accts  []acct  // by slot
	cold   []acctCold
	pos    []apos // slot * len(books) + book index
	nb     int    // len(books)

	// date is the current trading date (YYYYMMDD; 0 = not known yet), moved
	// by CmdEndOfDay to the next business day of the calendar.
	date int64
	// day is the trading day, advanced by CmdEndOfDay; dayOpen, indexed like
	// pos, marks a position opened (or extended) today and not yet reduced
	// since: a reducing fill then completes a day trade.
	day     int64
	dayOpen []bool

	// recent holds each account's last accepted new orders, by slot, for
	// the duplicative-order check.
	recent []recentOrders

	// With the layer off, kill switches still work: offKilled marks killed
	// accounts by directory slot, kills counts them (0: nothing to look up).
	offKilled []bool
	kills     int
}

func (e *Engine) initRisk(cfg *Config) {
	r := &e.risk
	r.date = cfg.Calendar.TradingDate
	for bi := range e.books { // halts and the restricted list apply with the layer off too
		b := &e.books[bi]
		b.halted, b.restricted = b.inst.Halted, b.inst.Restricted
		b.prevClose, b.ssrAt = b.inst.PrevClose, ssrTrigger(b.inst.PrevClose)
		if b.inst.ShortSaleTest {
			b.ssrUntil = 1 // on for trading day 0
		}
	}
	if len(cfg.Accounts) == 0 {
		r.offKilled = make([]bool, cfg.MaxAccounts)
		return
	}
	r.on = true
	maxID := uint32(0)
	for _, a := range cfg.Accounts {
		maxID = max(maxID, a.ID)
	}
	r.nb = len(e.books)
	r.slotOf = make([]int32, maxID+1)
	r.accts = make([]acct, len(cfg.Accounts))
	r.cold = make([]acctCold, len(cfg.Accounts))
	r.pos = make([]apos, len(cfg.Accounts)*r.nb)
	r.recent = make([]recentOrders, len(cfg.Accounts))
	r.dayOpen = make([]bool, len(r.pos))
	for s, a := range cfg.Accounts {
		r.slotOf[a.ID] = int32(s + 1)
		l := a.Limits
		group := a.STPGroup
		if group == 0 && a.Owner != 0 {
			group = ownerGroup | a.Owner // the accounts of one beneficial owner are one STP group
		}
		mp := a.ShortMarginPct
		if mp == 0 {
			mp = cfg.ShortMarginPct
		}
		r.accts[s] = acct{
			mpct: mp - 100, cash: a.Cash, maxQty: l.MaxOrderQty, maxNotional: l.MaxOrderNotional, maxPos: l.MaxPosition,
			creditLimit: l.DailyCredit, ordersPerSec: l.OrdersPerSec, cancelsPerSec: l.CancelsPerSec,
			ordBucket: newBucket(l.OrdersPerSec), cxlBucket: newBucket(l.CancelsPerSec), dupWindow: l.DuplicateWindow,
			group: group, status: a.Status, prop: a.Proprietary, stpOff: a.AllowSTPOff,
			pdt: a.PDT && a.Equity < cfg.PDTMinEquity,
		}
		r.cold[s] = acctCold{id: a.ID, firm: a.Firm, owner: a.Owner, pdt: a.PDT, equity: a.Equity}
		for _, p := range a.Positions {
			bi, _ := e.bookFor(p.Instrument)
			r.pos[s*r.nb+int(bi)].pos += p.Lots
		}
		for _, l := range a.Locates {
			bi, _ := e.bookFor(l.Instrument)
			r.pos[s*r.nb+int(bi)].locate = l.Qty
		}
	}
}

// gateOff runs, with the risk layer off, the trading-status checks that
// still apply to a new order or replace of account acct in book b: the
// account's kill switch, the market and instrument halts, the restricted
// list.
func (e *Engine) gateOff(acct uint32, b *book) Reason {
	switch {
	case e.risk.kills > 0 && e.offKilled(acct):
		return RejectAccountKilled
	case e.risk.halted:
		return RejectMarketHalted
	case b.halted:
		return RejectInstrumentHalted
	case b.restricted:
		return RejectRestricted
	}
	return ReasonNone
}

// offKilled reports whether account acct's kill switch is on (risk layer off).
func (e *Engine) offKilled(acct uint32) bool {
	s := e.dir.slot(acct)
	return s >= 0 && e.risk.offKilled[s]
}

// ownerGroup marks the STP group the engine forms from a beneficial owner
// id for accounts without a configured STPGroup; configured groups and owner
// ids stay below it.
const ownerGroup = 1 << 31

// slot returns the account's slot, or -1 if it is not configured.
func (r *risk) slot(id uint32) int {
	if int(id) >= len(r.slotOf) {
		return -1
	}
	return int(r.slotOf[id]) - 1
}

// addSat returns a+b for a, b >= 0, saturating at maxNotional.
func addSat(a, b int64) int64 {
	if s := uint64(a) + uint64(b); s <= maxNotional {
		return int64(s)
	}
	return maxNotional
}

// mulSat returns a*b for a, b >= 0, saturating at maxNotional.
func mulSat(a, b int64) int64 {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > maxNotional {
		return maxNotional
	}
	return int64(lo)
}

// ref returns the collar's reference price: the last sale, else the
// configured reference, else 0 (none).
func (b *book) ref() int64 {
	if b.last != 0 {
		return b.last
	}
	return b.inst.RefPrice
}

// collar returns the price collar around ref, clipped to the band. With no
// reference or no collar configured it is the band.
func (b *book) collar(ref int64) (lo, hi int64) {
	lo, hi = b.low, b.inst.BandHigh
	w := b.inst.CollarTicks
	if ref == 0 || (w == 0 && b.inst.CollarBps == 0) {
		return lo, hi
	}
	// ref x bps / 10000 in 128 bits: ref is at most 2^62, bps 10000
	ph, pl := bits.Mul64(uint64(ref), uint64(b.inst.CollarBps))
	q, _ := bits.Div64(ph, pl, 10_000)
	w = max(w, int64(q))
	if w < ref-lo {
		lo = ref - w
	}
	if w < hi-ref {
		hi = ref + w
	}
	return lo, hi
}

// riskPrice returns the price an order is held and valued at, and whether a
// limit price lies outside the collar. Buys: the highest price the order can
// execute at (its limit; for Market the collar's upper bound around the
// reference; for Stop the upper bound around its stop price). Sells: the
// lowest (limit; the lower bounds). For Market and Stop orders this price is
// also the protective limit the order never executes beyond.
func (b *book) riskPrice(side Side, typ OrderType, price, stop int64) (int64, bool) {
	ref := b.ref()
	if typ == Stop || typ == StopLimit {
		ref = stop
	}
	lo, hi := b.collar(ref)
	if typ == Limit || typ == StopLimit {
		return price, price < lo || price > hi
	}
	if side == Buy {
		return hi, false
	}
	return lo, false
}

// triggerRisk runs the collar check of waiting stop order oi (open lots)
// as it triggers: a StopLimit's limit price must lie inside the collar
// around the reference, the last sale that triggered it. Outside, the order
// is cancelled collar-cancel and triggerRisk reports false.
func (e *Engine) triggerRisk(b *book, oi int32, open int64) bool {
	o := &e.orders[oi]
	typ := Market
	if o.typ == StopLimit {
		typ = Limit
		if lo, hi := b.collar(b.ref()); o.price < lo || o.price > hi {
			e.close(oi, KindCancelled, CancelOutsideCollar, open)
			return false
		}
	}
	if o.side == Sell && o.mark() == MarkShort && b.ssrUntil > e.risk.day && !b.aboveBid(typ, o.price) {
		e.close(oi, KindCancelled, CancelShortSalePriceTest, open)
		return false
	}
	return true
}

// terms are an order's risk terms, fixed at acceptance (and at a replace):
// its risk price, notional, hold per lot and classification.
type terms struct {
	rp, notional, hp int64
	cls              Flags // flagShort, flagCover or 0
}

// riskCheck runs the pre-trade checks for an order of account slot s in book
// bi (docs/engine.md, "Pre-trade risk"), in their documented order. It
// returns the order's terms. Nothing changes.
func (e *Engine) riskCheck(s int, bi uint16, side Side, typ OrderType, stp STPMode, mark SaleMark, qty, price, stop int64) (terms, Reason) {
	a := &e.risk.accts[s]
	b := &e.books[bi]
	if r := e.riskGate(a, b); r != ReasonNone {
		return terms{}, r
	}
	switch {
	case stp == STPOff && !a.stpOff:
		return terms{}, RejectSTPOffNotAllowed
	case a.maxQty != 0 && qty > a.maxQty:
		return terms{}, RejectOrderQtyLimit
	}
	rp, outside := b.riskPrice(side, typ, price, stop)
	t := terms{rp: rp, notional: mulSat(qty, rp*b.inst.TickValue)}
	switch {
	case a.maxNotional != 0 && t.notional > a.maxNotional:
		return terms{}, RejectOrderNotionalLimit
	case outside:
		return terms{}, RejectOutsideCollar
	}
	p := &e.risk.pos[s*e.risk.nb+int(bi)]
	maxPos := b.lotCap // the engine's own position ceiling, below which MaxPosition applies
	if a.maxPos != 0 && a.maxPos < maxPos {
		maxPos = a.maxPos
	}
	bp := a.cash - a.held - a.shortNet
	if side == Buy {
		t.hp = rp * b.inst.TickValue
		if t.notional > bp {
			// A buy to cover may use the short's collateral: all its lots
			// must cover (with the other open buys), no short sale may be
			// open, and it holds at least the collateral it frees.
			if p.pos >= 0 || qty > -p.pos-p.buyOpen || p.shortOpen > 0 {
				return terms{}, RejectInsufficientFunds
			}
			freed := p.shortNet - shortNet(p.shortReq, -p.pos, p.coverOpen+qty)
			t.hp = max(t.hp, ceilDiv(p.shortReq, -p.pos))
			if mulSat(qty, t.hp) > bp+freed {
				return terms{}, RejectInsufficientFunds
			}
			t.cls = flagCover
		}
		if qty > maxPos-p.pos-p.buyOpen {
			return terms{}, RejectPositionLimit
		}
	} else {
		short := qty - (p.pos - p.sellOpen) // lots beyond the position less open sells
		switch {
		case mark == MarkLong && short > 0:
			return terms{}, RejectLongSaleNotOwned
		case mark == MarkNone && short > 0:
			mark = MarkShort
		case mark == MarkNone:
			mark = MarkLong
		}
		t.cls = Flags(mark) << flagMarkShift
		if e.cfg.LocatePolicy == LocateConsume {
			short += min(p.pos, 0) // the short already sold used its locate up
		}
		if short > 0 {
			if short > p.locate {
				if b.inst.Threshold {
					return terms{}, RejectThresholdShort
				}
				if !a.prop {
					return terms{}, RejectShortNoLocate
				}
			}
		}
		if mark == MarkShort && b.ssrUntil > e.risk.day && !b.aboveBid(typ, price) {
			return terms{}, RejectShortSalePriceTest
		}
		if qty > p.pos-p.sellOpen { // not covered: it holds its margin
			if p.coverOpen > 0 {
				return terms{}, RejectShortWhileCovering
			}
			t.cls |= flagShort
			t.hp = marginPerLot(rp*b.inst.TickValue, a.mpct)
			if mulSat(qty, t.hp) > bp {
				return terms{}, RejectInsufficientFunds
			}
		}
		if qty > maxPos+p.pos-p.sellOpen {
			return terms{}, RejectPositionLimit
		}
	}
	creditLimit := a.creditLimit // without one, the engine's 2^62 ceiling bounds the open and executed notional
	if creditLimit == 0 {
		creditLimit = maxNotional
	}
	if addSat(addSat(a.credit, a.openBuy), addSat(a.openSell, t.notional)) > creditLimit {
		return terms{}, RejectCreditLimit
	}
	if a.pdt && e.wouldDayTrade(s, bi, side) && a.dayTradeCount() >= pdtMaxDayTrades {
		return terms{}, RejectPatternDayTrader
	}
	return t, ReasonNone
}

// recentOrders is a ring of an account's last accepted new orders: a hash
// of each one's terms and its Command.Time.
type recentOrders struct {
	key  [recentN]uint64
	time [recentN]int64
	next uint32
}

const recentN = 16

// orderKey hashes an order's terms (instrument, side, type, price, stop
// price, quantity) to a non-zero key.
func orderKey(inst uint32, side Side, typ OrderType, price, stop, qty int64) uint64 {
	h := uint64(inst)<<16 | uint64(side)<<8 | uint64(typ)
	for _, v := range [...]uint64{uint64(price), uint64(stop), uint64(qty)} {
		h = (h ^ v) * 0x9e3779b97f4a7c15
		h ^= h >> 29
	}
	return h | 1
}

// duplicative reports whether key matches one of account slot s's recent
// new orders entered within its window before now (check 28).
func (e *Engine) duplicative(s int, key uint64) bool {
	w := e.risk.accts[s].dupWindow
	if w == 0 {
		return false
	}
	r := &e.risk.recent[s]
	for i := range r.key {
		if r.key[i] == key && uint64(e.time-r.time[i]) < uint64(w) {
			return true
		}
	}
	return false
}

// remember records an accepted new order of account slot s.
func (e *Engine) remember(s int, key uint64) {
	if e.risk.accts[s].dupWindow == 0 {
		return
	}
	r := &e.risk.recent[s]
	r.key[r.next], r.time[r.next] = key, e.time
	r.next = (r.next + 1) % recentN
}

// aboveBid reports whether an order of type typ at limit price would stay
// above the best bid, as a short sale must while the Rule 201 price test is
// on: a Limit order priced above it (or with no bid), a StopLimit or Stop,
// which are tested when they trigger; never a Market order.
func (b *book) aboveBid(typ OrderType, price int64) bool {
	switch typ {
	case Market:
		return false
	case Limit:
		return b.bids.best < 0 || price > b.low+int64(b.bids.best)
	}
	return true
}

// shortSaleTestOn is called after a trade at price <= ssrAt (10% or more
// below the previous close) when the Rule 201 price test was not yet
// triggered today: it turns the test on for the rest of the day and the
// next (System and Regulatory short-sale-price-test-on events) and stops a
// short-sale taker, whose next fills would be at the bid: its remainder rem
// is cancelled short-sale-price-test-cancel and shortSaleTestOn reports true.
func (e *Engine) shortSaleTestOn(b *book, ti int32, rem int64) bool {
	b.ssrUntil = e.risk.day + 2
	ev := e.emit(KindSystem)
	ev.Instrument, ev.Reason, ev.Price = b.inst.ID, AdminShortSaleTest, b.last
	ev = e.emit(KindRegulatory)
	ev.Instrument, ev.Reason, ev.Price = b.inst.ID, AdminShortSaleTest, b.last
	if t := &e.orders[ti]; rem > 0 && t.side == Sell && t.mark() == MarkShort {
		e.close(ti, KindCancelled, CancelShortSalePriceTest, rem)
		return true
	}
	return false
}

// ssrTrigger returns the Rule 201 trigger price for a previous close pc:
// the highest price at least 10% below it (0: none).
func ssrTrigger(pc int64) int64 { return pc - (pc+9)/10 }

// marginPerLot returns the margin a short sale holds per lot beyond its
// proceeds: mpct percent of v, one lot's value at the risk price, rounded up.
func marginPerLot(v, mpct int64) int64 {
	hi, lo := bits.Mul64(uint64(v), uint64(mpct))
	lo, c := bits.Add64(lo, 99, 0)
	q, _ := bits.Div64(hi+c, lo, 100)
	return min(int64(q), maxNotional)
}

// ceilDiv returns ceil(a / b) for a >= 0, b > 0.
func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// shortNet returns ceil(req x max(0, short-cover) / short): the part of a
// short position's requirement req (short lots short) that does not back
// cover lots of open buys to cover.
func shortNet(req, short, cover int64) int64 {
	if short <= 0 || cover >= short {
		return 0
	}
	hi, lo := bits.Mul64(uint64(req), uint64(short-cover))
	lo, c := bits.Add64(lo, uint64(short-1), 0)
	q, _ := bits.Div64(hi+c, lo, uint64(short))
	return int64(q)
}

// shortUpdate recomputes position p's shortNet after its short, requirement
// or cover lots changed, and the account's total.
func shortUpdate(a *acct, p *apos) {
	if p.shortReq == 0 && p.shortNet == 0 {
		return
	}
	n := shortNet(p.shortReq, -p.pos, p.coverOpen)
	a.shortNet += n - p.shortNet
	p.shortNet = n
}

// riskGate runs checks 18-20: the account may trade and the instrument is
// open and not restricted.
func (e *Engine) riskGate(a *acct, b *book) Reason {
	switch {
	case a.status == AccountSuspended:
		return RejectAccountSuspended
	case a.status == AccountClosed:
		return RejectAccountClosed
	case a.killed:
		return RejectAccountKilled
	case e.risk.halted:
		return RejectMarketHalted
	case b.halted:
		return RejectInstrumentHalted
	case b.restricted:
		return RejectRestricted
	}
	return ReasonNone
}

// orderToken takes a token from the order bucket of account id for a new
// order or replace message, whatever becomes of it (check 1b); it reports
// false when the account has none left. Unknown accounts are not throttled
// here (they are rejected unknown-account).
func (e *Engine) orderToken(id uint32) bool {
	s := e.risk.slot(id)
	return s < 0 || e.risk.accts[s].ordBucket.take(e.time)
}

// cancelToken is orderToken for cancel and cancel-to-size messages.
func (e *Engine) cancelToken(id uint32) bool {
	s := e.risk.slot(id)
	return s < 0 || e.risk.accts[s].cxlBucket.take(e.time)
}

// wouldDayTrade reports whether a side order of account slot s in book bi
// could, if it executed, complete a day trade: it reduces a position opened
// today and not reduced since, or the account has orders open on the other
// side, which could open a position today before this one fills.
func (e *Engine) wouldDayTrade(s int, bi uint16, side Side) bool {
	i := s*e.risk.nb + int(bi)
	p := &e.risk.pos[i]
	if side == Sell {
		return p.buyOpen > 0 || e.risk.dayOpen[i] && p.pos > 0
	}
	return p.sellOpen > 0 || e.risk.dayOpen[i] && p.pos < 0
}

// hold commits lots of open order oi at its terms (cold.rp, cold.hp,
// flags): the hold, the open notional and lots, the cover and short lots.
func (e *Engine) hold(oi int32, lots int64) { e.exposure(oi, lots, 1) }

// unhold releases lots of open order oi that left (filled, cancelled,
// reduced, expired): the reverse of hold.
func (e *Engine) unhold(oi int32, lots int64) {
	if e.risk.on {
		e.exposure(oi, lots, -1)
	}
}

func (e *Engine) exposure(oi int32, lots, sign int64) {
	o := &e.orders[oi]
	c := &e.cold[oi]
	s := int(e.risk.slotOf[o.account]) - 1
	a := &e.risk.accts[s]
	p := &e.risk.pos[s*e.risk.nb+int(o.book)]
	a.held += sign * lots * c.hp
	n := sign * lots * c.rp * e.books[o.book].inst.TickValue
	if o.side == Buy {
		a.openBuy += n
		p.buyOpen += sign * lots
		if o.flags&flagCover != 0 {
			p.coverOpen += sign * lots
			shortUpdate(a, p)
		}
		return
	}
	a.openSell += n
	p.sellOpen += sign * lots
	if o.flags&flagShort != 0 {
		p.shortOpen += sign * lots
	}
}

// fill settles q lots of order oi traded at price px: the hold is released,
// the cash at the trade price moves, and a short opened or bought back
// moves the short requirement (docs/engine.md, "Short sales").
func (e *Engine) fill(oi int32, q, px int64) {
	o := &e.orders[oi]
	s := int(e.risk.slotOf[o.account]) - 1
	tv := e.books[o.book].inst.TickValue
	n := q * px * tv
	a := &e.risk.accts[s]
	i := s*e.risk.nb + int(o.book)
	p := &e.risk.pos[i]
	e.dayTrade(a, i, o.side, p.pos, q)
	e.unhold(oi, q) // the filled lots no longer hold cash or open exposure
	if o.side == Buy {
		if p.pos < 0 { // buys back c lots of the short: release their share, rounded up
			c := min(q, -p.pos)
			hi, lo := bits.Mul64(uint64(p.shortReq), uint64(c))
			lo, cy := bits.Add64(lo, uint64(-p.pos-1), 0)
			rel, _ := bits.Div64(hi+cy, lo, uint64(-p.pos))
			p.shortReq -= int64(rel)
		}
		a.cash -= n
		p.pos += q
	} else {
		if short := q - max(p.pos, 0); short > 0 { // opens (or extends) a short
			p.shortReq = addSat(p.shortReq, addSat(short*px*tv, mulSat(short, e.cold[oi].hp)))
			if e.cfg.LocatePolicy == LocateConsume {
				p.locate = max(p.locate-short, 0)
			}
		}
		a.cash += n
		p.pos -= q
	}
	shortUpdate(a, p)
	a.credit = addSat(a.credit, n)
}

// dayTrade updates the day-trade state of account a at position index i for
// a fill of q lots on side from position pos (docs/engine.md, "Day trades"):
// a fill that reduces a position opened today completes a day trade; a fill
// that opens or extends a position marks it opened today.
func (e *Engine) dayTrade(a *acct, i int, side Side, pos, q int64) {
	d := &e.risk.dayOpen[i]
	reduces := side == Sell && pos > 0 || side == Buy && pos < 0
	opens := side == Buy && pos+q > 0 || side == Sell && pos-q < 0
	if reduces && *d {
		if t := &a.dayTrades[e.risk.day%dayTradesWindow]; *t < math.MaxInt32 {
			*t++
		}
		*d = false
	}
	if opens {
		*d = true
	}
}

// newTradingDay advances the trading day (CmdEndOfDay): executed notional
// resets, the oldest day leaves the day-trade window and no position counts
// as opened today.
func (e *Engine) newTradingDay(days int64) {
	r := &e.risk
	if !r.on {
		return
	}
	for bi := range e.books { // the last sale is the close the next day's Rule 201 trigger is based on
		if b := &e.books[bi]; b.last != 0 {
			b.prevClose, b.ssrAt = b.last, ssrTrigger(b.last)
		}
	}
	for s := range r.accts {
		a := &r.accts[s]
		a.credit = 0
		for d := int64(1); d <= min(days, dayTradesWindow); d++ { // the business days passed leave the window
			a.dayTrades[(r.day+d)%dayTradesWindow] = 0
		}
	}
	r.day += days
	clear(r.dayOpen)
}

// advanceDate checks the date an end of day names (YYYYMMDD) and moves the
// trading date to the next business day after it. It returns the business
// days that passed (1 unless the end of day skipped days), and a reject:
// the date is not a business day, or is before the current trading date.
func (e *Engine) advanceDate(d int64) (int64, Reason) {
	cal := &e.cfg.Calendar
	cur := e.risk.date
	switch {
	case !cal.businessDay(d):
		return 0, RejectInvalidTradingDay
	case cur != 0 && d < cur:
		return 0, RejectStaleTradingDay
	}
	if cur == 0 {
		cur = d
	}
	next := cal.nextBusinessDay(d)
	e.risk.date = next
	return cal.businessIndex(next) - cal.businessIndex(cur), ReasonNone
}

// admin applies an admin command. The instrument and market commands and
// the kill switch work with the risk layer off too; the account commands
// (status, limits, locates) need configured accounts.
func (e *Engine) admin(c *Command) {
	if c.Operator == 0 || c.Cause == CauseNone || c.Cause >= causes {
		e.reject(c, RejectAdminUnattributed)
		return
	}
	e.op, e.cause = c.Operator, c.Cause // every event of the command names who gave it and why
	e.admin1(c)
}

// admin1 applies an attributed admin command.
func (e *Engine) admin1(c *Command) {
	r := &e.risk
	var bi uint16
	needInst := c.Kind == CmdHalt || c.Kind == CmdResume || c.Kind == CmdLocate || c.Kind == CmdRestrict
	needAcct := c.Kind >= CmdKill && c.Kind <= CmdLocate
	if needInst {
		var ok bool
		if bi, ok = e.bookFor(c.Instrument); !ok {
			e.reject(c, RejectUnknownInstrument)
			return
		}
	}
	s := -1
	switch {
	case needAcct && r.on:
		if s = r.slot(c.Account); s < 0 {
			e.reject(c, RejectUnknownAccount)
			return
		}
	case needAcct && (c.Kind == CmdKill || c.Kind == CmdKillRelease):
		if c.Account == 0 {
			e.reject(c, RejectInvalidAccount)
			return
		}
		if s = int(e.dir.slot(c.Account)); s < 0 {
			e.reject(c, RejectAccountCapacity)
			return
		}
	case needAcct:
		e.reject(c, RejectUnknownAccount) // no accounts are configured
		return
	}
	switch {
	case c.Kind == CmdAccountStatus && (c.Qty < 0 || c.Qty >= int64(accountStatuses)),
		c.Kind == CmdSetLimit && (c.OrigClOrdID == 0 || c.OrigClOrdID >= uint64(limitIDs) || !limitOK(c.Qty)),
		c.Kind == CmdLocate && (c.Qty < 0 || c.Qty > e.books[bi].lotCap),
		c.Kind == CmdRestrict && c.Qty != 0 && c.Qty != 1:
		e.reject(c, RejectInvalidAdmin)
		return
	}
	switch c.Kind {
	case CmdHalt, CmdResume:
		e.books[bi].halted = c.Kind == CmdHalt
		rsn := AdminInstrumentHalt
		if c.Kind == CmdResume {
			rsn = AdminInstrumentResume
		}
		ev := e.emit(KindSystem)
		ev.Instrument, ev.Reason = c.Instrument, rsn
		ev = e.emit(KindRegulatory)
		ev.Instrument, ev.Reason = c.Instrument, rsn
	case CmdMarketHalt:
		r.halted = true
		n := e.cancelWhere(0, CancelMarketHalt)
		ev := e.emit(KindSystem)
		ev.Reason, ev.Qty = AdminMarketHalt, n
		ev = e.emit(KindRegulatory)
		ev.Reason, ev.Qty = AdminMarketHalt, n
	case CmdMarketResume:
		r.halted = false
		e.emit(KindSystem).Reason = AdminMarketResume
		e.emit(KindRegulatory).Reason = AdminMarketResume
	case CmdKill:
		r.setKill(s, true)
		n := e.cancelWhere(c.Account, CancelKillSwitch)
		ev := e.emit(KindAdmin)
		ev.Account, ev.Reason, ev.Qty = c.Account, AdminKill, n
	case CmdKillRelease:
		r.setKill(s, false)
		ev := e.emit(KindAdmin)
		ev.Account, ev.Reason = c.Account, AdminKillRelease
	case CmdAccountStatus:
		r.accts[s].status = AccountStatus(c.Qty)
		if r.accts[s].status != AccountActive {
			e.cancelWhere(c.Account, CancelAccountStatus)
		}
		ev := e.emit(KindAdmin)
		ev.Account, ev.Reason, ev.Qty = c.Account, AdminAccountStatus, c.Qty
	case CmdSetLimit:
		a := &r.accts[s]
		switch LimitID(c.OrigClOrdID) {
		case LimitOrderQty:
			a.maxQty = c.Qty
		case LimitOrderNotional:
			a.maxNotional = c.Qty
		case LimitPosition:
			a.maxPos = c.Qty
		case LimitDailyCredit:
			a.creditLimit = c.Qty
		case LimitOrdersPerSec:
			a.ordersPerSec, a.ordBucket = c.Qty, newBucket(c.Qty)
		case LimitCancelsPerSec:
			a.cancelsPerSec, a.cxlBucket = c.Qty, newBucket(c.Qty)
		case LimitDuplicateWindow:
			a.dupWindow = c.Qty
		}
		ev := e.emit(KindAdmin)
		ev.Account, ev.Reason, ev.OrigClOrdID, ev.Qty = c.Account, AdminSetLimit, c.OrigClOrdID, c.Qty
	case CmdLocate:
		r.pos[s*r.nb+int(bi)].locate = c.Qty
		ev := e.emit(KindAdmin)
		ev.Account, ev.Instrument, ev.Reason, ev.Qty = c.Account, c.Instrument, AdminLocate, c.Qty
	case CmdRestrict:
		e.books[bi].restricted = c.Qty == 1
		ev := e.emit(KindAdmin)
		ev.Instrument, ev.Reason, ev.Qty = c.Instrument, AdminRestrict, c.Qty
	case CmdAlert: // a record only: it changes nothing
		ev := e.emit(KindAlert)
		ev.Reason, ev.Instrument, ev.Account, ev.ContraAccount = AdminAlert, c.Instrument, c.Account, uint32(c.ClOrdID)
		ev.OrigClOrdID, ev.MatchID, ev.Qty, ev.Price = c.OrigClOrdID, c.OrderID, c.Qty, c.Price
	}
}

// setKill sets or releases the kill switch of the account in slot s: its
// risk slot, or with the layer off its directory slot.
func (r *risk) setKill(s int, on bool) {
	switch {
	case r.on:
		r.accts[s].killed = on
	case r.offKilled[s] == on:
	case on:
		r.offKilled[s] = true
		r.kills++
	default:
		r.offKilled[s] = false
		r.kills--
	}
}

// cancelWhere cancels every open order of account (0 = all) in traversal
// order with reason rsn and returns how many it cancelled.
func (e *Engine) cancelWhere(account uint32, rsn Reason) int64 {
	var n int64
	for bi := range e.books {
		e.walk(&e.books[bi], func(oi int32) {
			o := &e.orders[oi]
			if account == 0 || o.account == account {
				e.close(oi, KindCancelled, rsn, o.shown+o.hidden)
				n++
			}
		})
	}
	return n
}

// AccountState is a read-only view of one account's risk state, for tests,
// reports and snapshots (it allocates; not for the hot path).
type AccountState struct {
	ID          uint32
	Status      AccountStatus
	Killed      bool
	Cash        int64   // minor units
	Held        int64   // cash held by open buy orders
	OpenSell    int64   // notional of open sell orders
	Credit      int64   // notional executed today
	Positions   []int64 // lots per instrument, in configuration order
	Locates     []int64 // locate lots per instrument, in configuration order
	BuyOpen     []int64 // open buy lots per instrument
	SellOpen    []int64 // open sell lots per instrument
	Firm, Owner uint32
	PDT         bool  // the pattern-day-trader rule applies (flagged, equity below Config.PDTMinEquity)
	DayTrades   int64 // day trades in the last five trading days, today included
	// ShortReq is what short positions hold back from buying power (their
	// proceeds and margin, less what backs open buys to cover): buying
	// power = Cash - Held - ShortReq. ShortReqs is each instrument's whole
	// requirement.
	ShortReq  int64
	ShortReqs []int64
}

// Account returns the account's risk state, and false if the risk layer is
// off or the account is not configured.
func (e *Engine) Account(id uint32) (AccountState, bool) {
	if !e.risk.on {
		return AccountState{}, false
	}
	s := e.risk.slot(id)
	if s < 0 {
		return AccountState{}, false
	}
	a, c := &e.risk.accts[s], &e.risk.cold[s]
	st := AccountState{ID: id, Status: a.status, Killed: a.killed, Cash: a.cash, Held: a.held, OpenSell: a.openSell,
		Credit: a.credit, Firm: c.firm, Owner: c.owner, PDT: a.pdt, DayTrades: a.dayTradeCount(), ShortReq: a.shortNet}
	for bi := range e.books {
		p := &e.risk.pos[s*e.risk.nb+bi]
		st.Positions = append(st.Positions, p.pos)
		st.Locates = append(st.Locates, p.locate)
		st.BuyOpen = append(st.BuyOpen, p.buyOpen)
		st.SellOpen = append(st.SellOpen, p.sellOpen)
		st.ShortReqs = append(st.ShortReqs, p.shortReq)
	}
	return st, true
}

// checkRisk verifies the risk state against the open orders: every
// account's held cash, open sell notional, open lots, cover and short lots
// equal the sums over its open orders; every short requirement and its net
// part agree with the positions; cash is not negative and no buying power is.
func (e *Engine) checkRisk(fail func(string, ...any) error) error {
	if !e.risk.on {
		return nil
	}
	r := &e.risk
	held := make([]int64, len(r.accts))
	buy := make([]int64, len(r.accts))
	sell := make([]int64, len(r.accts))
	lots := make([]apos, len(r.pos))
	for bi := range e.books {
		e.walk(&e.books[bi], func(oi int32) {
			o := &e.orders[oi]
			s := r.slot(o.account)
			open := o.shown + o.hidden
			w := &lots[s*r.nb+bi]
			held[s] += open * e.cold[oi].hp
			if o.side == Buy {
				buy[s] += open * e.cold[oi].rp * e.books[bi].inst.TickValue
				w.buyOpen += open
				if o.flags&flagCover != 0 {
					w.coverOpen += open
				}
			} else {
				sell[s] += open * e.cold[oi].rp * e.books[bi].inst.TickValue
				w.sellOpen += open
				if o.flags&flagShort != 0 {
					w.shortOpen += open
				}
			}
		})
	}
	for s := range r.accts {
		a := &r.accts[s]
		id := r.cold[s].id
		var net int64
		for bi := range e.books {
			p, w := &r.pos[s*r.nb+bi], &lots[s*r.nb+bi]
			inst := e.books[bi].inst.ID
			switch {
			case p.buyOpen != w.buyOpen || p.sellOpen != w.sellOpen:
				return fail("account %d instrument %d open lots %d/%d, orders %d/%d", id, inst, p.buyOpen, p.sellOpen, w.buyOpen, w.sellOpen)
			case p.coverOpen != w.coverOpen || p.shortOpen != w.shortOpen:
				return fail("account %d instrument %d cover/short lots %d/%d, orders %d/%d", id, inst, p.coverOpen, p.shortOpen, w.coverOpen, w.shortOpen)
			case p.shortReq < 0 || p.shortReq > 0 && p.pos >= 0:
				return fail("account %d instrument %d short requirement %d at position %d", id, inst, p.shortReq, p.pos)
			case p.shortNet != shortNet(p.shortReq, -p.pos, p.coverOpen):
				return fail("account %d instrument %d net short requirement %d, want %d", id, inst, p.shortNet, shortNet(p.shortReq, -p.pos, p.coverOpen))
			case p.coverOpen > 0 && p.shortOpen > 0:
				return fail("account %d instrument %d has cover lots and short sales open together", id, inst)
			}
			net += p.shortNet
		}
		switch {
		case a.held != held[s]:
			return fail("account %d holds %d, open orders need %d", id, a.held, held[s])
		case a.openBuy != buy[s]:
			return fail("account %d open buy notional %d, open buys sum to %d", id, a.openBuy, buy[s])
		case a.openSell != sell[s]:
			return fail("account %d open sell notional %d, open sells sum to %d", id, a.openSell, sell[s])
		case a.shortNet != net:
			return fail("account %d net short requirement %d, positions sum to %d", id, a.shortNet, net)
		case a.cash < 0:
			return fail("account %d cash %d is negative", id, a.cash)
		case a.cash-a.held-a.shortNet < 0:
			return fail("account %d buying power %d is negative", id, a.cash-a.held-a.shortNet)
		}
	}
	return nil
}
