package refmodel

import (
	"cmp"
	"slices"
	"time"

	"github.com/tradecore/tradecore/core"
)

// Defaults of core.Config, repeated here (core fills them in an unexported
// method).
const (
	defaultMaxOrders   = 1 << 20
	defaultMaxOrderQty = 1_000_000_000
	defaultMaxAccounts = 1 << 16
)

type order struct {
	id, clOrdID    uint64
	account, group uint32
	inst           uint32
	side           core.Side
	typ            core.OrderType
	tif            core.TIF
	stp            core.STPMode
	flags          core.Flags
	mark           core.SaleMark
	price, stop    int64
	shown, hidden  int64 // a waiting stop keeps all its open lots in shown
	display        int64 // 0 = show all; otherwise the peak, kept across replaces
	waiting        bool
}

func (o *order) open() int64 { return o.shown + o.hidden }

// market reports whether the order executes at any price (Market, and a
// triggered Stop).
func (o *order) market() bool { return o.typ == core.Market || o.typ == core.Stop }

type book struct {
	inst core.Instrument
	// Each list is in priority order; within a price, in queue order (an
	// order joining a level goes behind every order already at that price).
	bids      []*order // price high to low
	asks      []*order // price low to high
	buyStops  []*order // stop price low to high
	sellStops []*order // stop price high to low
	last      int64
	traded    bool
}

func (b *book) side(s core.Side) *[]*order {
	if s == core.Buy {
		return &b.bids
	}
	return &b.asks
}

func (b *book) stops(s core.Side) *[]*order {
	if s == core.Buy {
		return &b.buyStops
	}
	return &b.sellStops
}

// before reports whether price p is served before price q on side s.
func before(s core.Side, p, q int64) bool {
	if s == core.Buy {
		return p > q
	}
	return p < q
}

// insert puts o at the back of its level: after every order whose key is
// served before or equal to o's.
func insert(list *[]*order, o *order, key func(*order) int64, s core.Side) {
	i := 0
	for i < len(*list) && !before(s, key(o), key((*list)[i])) {
		i++
	}
	*list = slices.Insert(*list, i, o)
}

func remove(list *[]*order, o *order) {
	i := slices.Index(*list, o)
	if i < 0 {
		panic("refmodel: removing an order that is not in the list")
	}
	*list = slices.Delete(*list, i, i+1)
}

func priceKey(o *order) int64 { return o.price }

// stopKey orders stops so that the first one is the first to trigger: buy
// stops lowest stop price first (as a "sell" side sorts), sell stops highest
// first (as a "buy" side sorts).
func stopKey(o *order) int64 { return o.stop }

// Model is the reference engine. The zero value is not usable; call New.
type Model struct {
	cfg     core.Config
	books   []*book
	byID    map[uint32]*book
	open    map[uint64]*order // by OrderID
	orderID uint64            // the last OrderID assigned
	matchID uint64
	slots   uint64 // docs/engine.md, "Order ids": the id-to-slot modulus

	last     map[uint32]uint64 // highest client reference per account today
	accounts map[uint32]bool   // accounts that have traded (MaxAccounts)
	date     int64             // the trading date, YYYYMMDD (0: not known yet)

	elected []*order // stops prints reached, in the order they will enter

	cmd *core.Command
	out []core.Event
}

// New returns an empty model for cfg. It fills cfg's defaults as core.New
// does but does not validate cfg (the engine does; the test uses valid ones).
func New(cfg core.Config) *Model {
	if cfg.MaxOrders == 0 {
		cfg.MaxOrders = defaultMaxOrders
	}
	if cfg.MaxOrderQty == 0 {
		cfg.MaxOrderQty = defaultMaxOrderQty
	}
	if cfg.MaxAccounts == 0 {
		cfg.MaxAccounts = defaultMaxAccounts
	}
	m := &Model{cfg: cfg, byID: map[uint32]*book{}, open: map[uint64]*order{},
		last: map[uint32]uint64{}, accounts: map[uint32]bool{}, slots: 2, date: cfg.Calendar.TradingDate}
	for m.slots < 2*uint64(cfg.MaxOrders) {
		m.slots *= 2
	}
	for _, in := range cfg.Instruments {
		b := &book{inst: in}
		m.books = append(m.books, b)
		m.byID[in.ID] = b
	}
	return m
}

// LastPrice returns the instrument's last trade price and whether it traded.
func (m *Model) LastPrice(instrument uint32) (int64, bool) {
	b := m.byID[instrument]
	if b == nil {
		return 0, false
	}
	return b.last, b.traded
}

// Apply runs one command and returns the events it causes, in order. The
// returned slice is the caller's.
func (m *Model) Apply(cmd core.Command) []core.Event {
	m.cmd = &cmd
	m.out = nil
	switch cmd.Kind {
	case core.CmdNew:
		m.newOrder()
	case core.CmdCancel:
		m.cancel()
	case core.CmdCancelSize:
		m.cancelSize()
	case core.CmdReplace:
		m.replace()
	case core.CmdMassCancel:
		m.massCancel()
	case core.CmdEndOfDay:
		m.endOfDay()
	default:
		m.reject(core.RejectUnknownCommand)
	}
	m.runStops()
	out := m.out
	m.cmd, m.out = nil, nil
	return out
}

// OpenOrders lists every open order in traversal order.
func (m *Model) OpenOrders() []core.OrderState {
	if len(m.open) == 0 {
		return nil
	}
	out := make([]core.OrderState, 0, len(m.open))
	for _, b := range m.books {
		for _, list := range [][]*order{b.bids, b.asks, b.buyStops, b.sellStops} {
			for _, o := range list {
				out = append(out, core.OrderState{
					OrderID: o.id, ClOrdID: o.clOrdID,
					Account: o.account, STPGroup: o.group, Instrument: o.inst,
					Side: o.side, Type: o.typ, TIF: o.tif, STP: o.stp, Flags: o.flags, Mark: o.mark,
					Price: o.price, StopPrice: o.stop,
					Shown: o.shown, Hidden: o.hidden,
					DisplayQty: o.display,
					Waiting:    o.waiting,
				})
			}
		}
	}
	return out
}

// OpenCount returns the number of open orders (resting and waiting).
func (m *Model) OpenCount() int { return len(m.open) }

// walk calls fn for every open order of book only (nil: of every book) in
// traversal order, over a snapshot, so fn may remove the order.
func (m *Model) walk(only *book, fn func(*book, *order)) {
	for _, b := range m.books {
		if only != nil && b != only {
			continue
		}
		var all []*order
		all = append(all, b.bids...)
		all = append(all, b.asks...)
		all = append(all, b.buyStops...)
		all = append(all, b.sellStops...)
		for _, o := range all {
			fn(b, o)
		}
	}
}

// ---- events ----

func (m *Model) emit(e core.Event) {
	e.Seq, e.Time, e.Tag = m.cmd.Seq, m.cmd.Time, m.cmd.Tag
	m.out = append(m.out, e)
}

func (m *Model) reject(r core.Reason) {
	c := m.cmd
	m.emit(core.Event{
		Kind: core.KindRejected, Reason: r,
		Account: c.Account, OrderID: c.OrderID, ClOrdID: c.ClOrdID, OrigClOrdID: c.OrigClOrdID, Instrument: c.Instrument,
		Side: c.Side, Type: c.Type, TIF: c.TIF, Mark: c.Mark, Price: c.Price, StopPrice: c.StopPrice, Qty: c.Qty,
		Operator: c.Operator, Cause: c.Cause,
	})
}

// orderEvent is a private event about o: the order's identity, type, limit
// price and stop price.
func orderEvent(k core.EventKind, o *order) core.Event {
	return core.Event{
		Kind: k, Instrument: o.inst, Account: o.account,
		OrderID: o.id, ClOrdID: o.clOrdID,
		Side: o.side, Type: o.typ, TIF: o.tif, Mark: o.mark, Price: o.price, StopPrice: o.stop,
	}
}

func (m *Model) emitOrder(k core.EventKind, o *order, r core.Reason, qty, leaves int64) {
	e := orderEvent(k, o)
	e.Reason, e.Qty, e.Leaves = r, qty, leaves
	m.emit(e)
}

func (m *Model) emitBook(k core.EventKind, o *order, price, qty, leaves int64) {
	m.emit(core.Event{
		Kind: k, Instrument: o.inst, OrderID: o.id, Side: o.side,
		Price: price, Qty: qty, Leaves: leaves,
	})
}

// ---- order lifecycle ----

// close forgets a finished order. It must already be out of every book list.
func (m *Model) close(o *order) {
	if m.open[o.id] != o {
		panic("refmodel: closing an order that is not open")
	}
	delete(m.open, o.id)
}

// rest puts o at the back of its price level with r open lots and emits
// BookAdd.
func (m *Model) rest(b *book, o *order, r int64) {
	o.shown = r
	if o.display > 0 && o.display < r {
		o.shown = o.display
	}
	o.hidden = r - o.shown
	insert(b.side(o.side), o, priceKey, o.side)
	m.emitBook(core.KindBookAdd, o, o.price, o.shown, o.shown)
}

// unrest takes a resting order off the book and emits BookDelete (Qty = the
// shown lots that leave).
func (m *Model) unrest(b *book, o *order) {
	remove(b.side(o.side), o)
	m.emitBook(core.KindBookDelete, o, o.price, o.shown, 0)
}

// shrink reduces a resting or waiting order to newOpen lots, hidden lots
// first, keeping its place, and emits BookCancel if its shown lots changed.
func (m *Model) shrink(o *order, newOpen int64) {
	d := o.open() - newOpen
	h := min(o.hidden, d)
	o.hidden -= h
	s := d - h
	o.shown -= s
	if s > 0 && !o.waiting {
		m.emitBook(core.KindBookCancel, o, o.price, s, o.shown)
	}
}

// crosses reports whether taker t may trade with a maker resting at price p.
func crosses(t *order, p int64) bool {
	switch {
	case t.market():
		return true
	case t.side == core.Buy:
		return p <= t.price
	default:
		return p >= t.price
	}
}

// wouldTake reports whether a limit order on side s at price p crosses the
// opposite best.
func (b *book) wouldTake(s core.Side, p int64) bool {
	opp := *b.side(s.Opposite())
	if len(opp) == 0 {
		return false
	}
	if s == core.Buy {
		return p >= opp[0].price
	}
	return p <= opp[0].price
}

func conflicts(t, mk *order) bool {
	return t.account == mk.account || (t.group != 0 && t.group == mk.group)
}

// fillable is the quantity taker t with rem open lots would execute on
// arrival (spec: Fillable quantity): matching itself, run on a scratch model
// holding a copy of the opposite side, its events counted and thrown away.
func fillable(b *book, t *order, rem int64) int64 {
	sim := &Model{open: map[uint64]*order{}, cmd: &core.Command{}}
	sb := &book{inst: b.inst}
	side := sb.side(t.side.Opposite())
	for _, mk := range *b.side(t.side.Opposite()) {
		c := *mk
		*side = append(*side, &c)
		sim.open[c.id] = &c
	}
	taker := *t
	sim.match(sb, &taker, rem)
	var done int64
	for _, e := range sim.out {
		if e.Kind == core.KindExecuted {
			done += e.Qty
		}
	}
	return done
}

// enter runs o (not on any book) as a taker with rem open lots, then applies
// the remainder rules. fok says whether the FOK rule applies; minQty is the
// MinQty to check (0 = none).
func (m *Model) enter(b *book, o *order, rem int64, fok bool, minQty int64) {
	if fok || minQty > 0 {
		f := fillable(b, o, rem)
		switch {
		case fok && f < rem:
			m.emitOrder(core.KindCancelled, o, core.CancelFOKNotFillable, rem, 0)
			m.close(o)
			return
		case minQty > 0 && f < minQty:
			m.emitOrder(core.KindCancelled, o, core.CancelMinQtyNotMet, rem, 0)
			m.close(o)
			return
		}
	}
	rem, alive := m.match(b, o, rem)
	switch {
	case !alive || rem == 0: // cancelled by STP, or filled
		m.close(o)
	case o.market():
		m.emitOrder(core.KindCancelled, o, core.CancelMarketRemainder, rem, 0)
		m.close(o)
	case o.tif == core.IOC || o.tif == core.FOK:
		m.emitOrder(core.KindCancelled, o, core.CancelIOCRemainder, rem, 0)
		m.close(o)
	default:
		m.rest(b, o, rem)
	}
}

// match walks the opposite side for taker t with rem lots. It returns the
// remainder and false if self-trade prevention cancelled the taker.
func (m *Model) match(b *book, t *order, rem int64) (int64, bool) {
	opp := b.side(t.side.Opposite())
	for rem > 0 && len(*opp) > 0 {
		mk := (*opp)[0]
		if !crosses(t, mk.price) {
			break
		}
		if t.stp != core.STPOff && conflicts(t, mk) {
			switch t.stp {
			case core.STPCancelNewest:
				m.emitOrder(core.KindCancelled, t, core.CancelSTPNewest, rem, 0)
				return 0, false
			case core.STPCancelOldest:
				m.emitOrder(core.KindCancelled, mk, core.CancelSTPOldest, mk.open(), 0)
				m.unrest(b, mk)
				m.close(mk)
				continue
			case core.STPCancelBoth:
				m.emitOrder(core.KindCancelled, mk, core.CancelSTPBoth, mk.open(), 0)
				m.unrest(b, mk)
				m.close(mk)
				m.emitOrder(core.KindCancelled, t, core.CancelSTPBoth, rem, 0)
				return 0, false
			case core.STPDecrement:
				d := min(rem, mk.open())
				if mk.open() == d {
					m.emitOrder(core.KindCancelled, mk, core.CancelSTPDecrement, d, 0)
					m.unrest(b, mk)
					m.close(mk)
				} else {
					left := mk.open() - d
					m.emitOrder(core.KindReduced, mk, core.CancelSTPDecrement, d, left)
					m.shrink(mk, left)
				}
				if rem == d {
					m.emitOrder(core.KindCancelled, t, core.CancelSTPDecrement, d, 0)
					return 0, false
				}
				rem -= d
				m.emitOrder(core.KindReduced, t, core.CancelSTPDecrement, d, rem)
				continue
			}
		}
		q := min(rem, mk.shown)
		rem -= q
		mk.shown -= q
		m.matchID++
		// The taker's order event, at the maker's price, with the maker in
		// the Contra fields.
		e := orderEvent(core.KindExecuted, t)
		e.Price, e.Qty, e.Leaves, e.MatchID = mk.price, q, rem, m.matchID
		e.ContraAccount, e.ContraOrderID, e.ContraClOrdID = mk.account, mk.id, mk.clOrdID
		e.ContraLeaves = mk.open()
		m.emit(e)
		m.emit(core.Event{
			Kind: core.KindBookExecute, Instrument: b.inst.ID, OrderID: mk.id, Side: mk.side,
			Price: mk.price, Qty: q, Leaves: mk.shown,
		})
		m.emit(core.Event{
			Kind: core.KindTrade, Instrument: b.inst.ID, Side: t.side,
			Price: mk.price, Qty: q, MatchID: m.matchID,
		})
		b.last, b.traded = mk.price, true
		m.elect(b, mk.price, t.side)
		if mk.shown == 0 {
			remove(opp, mk)
			if mk.hidden > 0 {
				m.rest(b, mk, mk.hidden)
			} else {
				m.close(mk)
			}
		}
	}
	return rem, true
}

// reaches reports whether a trade at price p reaches stop o's trigger.
func reaches(o *order, p int64) bool {
	if o.side == core.Buy {
		return p >= o.stop
	}
	return p <= o.stop
}

// elect takes every waiting stop that the print at price p reaches out of
// the stop book and queues it to enter (spec: Stops): furthest through the
// print first, at equal distance the aggressor's side first, and otherwise
// in stop-book order (oldest first within a stop price).
func (m *Model) elect(b *book, p int64, aggressor core.Side) {
	var hit []*order
	for _, o := range slices.Concat(b.buyStops, b.sellStops) {
		if reaches(o, p) {
			hit = append(hit, o)
		}
	}
	through := func(o *order) int64 {
		if o.side == core.Buy {
			return p - o.stop
		}
		return o.stop - p
	}
	slices.SortStableFunc(hit, func(x, y *order) int {
		if c := cmp.Compare(through(y), through(x)); c != 0 {
			return c
		}
		switch {
		case x.side == y.side:
			return 0
		case x.side == aggressor:
			return -1
		default:
			return 1
		}
	})
	for _, o := range hit {
		remove(b.stops(o.side), o)
		o.waiting = false
		m.elected = append(m.elected, o)
	}
}

// waitOrElect files a stop (in no list) in the stop book, or queues it to
// enter if the last trade already reaches it.
func (m *Model) waitOrElect(b *book, o *order) {
	if b.traded && reaches(o, b.last) {
		o.waiting = false
		m.elected = append(m.elected, o)
		return
	}
	o.waiting = true
	insert(b.stops(o.side), o, stopKey, o.side.Opposite())
}

// runStops enters the elected stops one after the other, in queue order;
// stops their prints elect join the back of the queue.
func (m *Model) runStops() {
	for len(m.elected) > 0 {
		o := m.elected[0]
		m.elected = m.elected[1:]
		rem := o.shown
		o.shown = 0
		m.emitOrder(core.KindTriggered, o, 0, rem, rem)
		m.enter(m.byID[o.inst], o, rem, o.tif == core.FOK, 0)
	}
}

// ---- commands ----

// useReference applies the client-reference rule to the command's ClOrdID
// for account a: above the account's highest reference today, or refused.
func (m *Model) useReference(a uint32) bool {
	cl, last := m.cmd.ClOrdID, m.last[a]
	switch {
	case cl == last:
		m.reject(core.RejectDuplicateClOrdID)
		return false
	case cl < last:
		m.reject(core.RejectStaleClOrdID)
		return false
	}
	m.last[a] = cl
	return true
}

func (m *Model) newOrder() {
	c := m.cmd
	b := m.byID[c.Instrument]
	if c.Account == 0 {
		m.reject(core.RejectInvalidAccount)
		return
	}
	if !m.accounts[c.Account] {
		if len(m.accounts) >= m.cfg.MaxAccounts {
			m.reject(core.RejectAccountCapacity)
			return
		}
		m.accounts[c.Account] = true
	}
	if c.ClOrdID == 0 {
		m.reject(core.RejectInvalidClOrdID)
		return
	}
	if !m.useReference(c.Account) {
		return
	}
	switch {
	case b == nil:
		m.reject(core.RejectUnknownInstrument)
	case c.Side != core.Buy && c.Side != core.Sell:
		m.reject(core.RejectInvalidSide)
	case c.Type != core.Limit && c.Type != core.Market && c.Type != core.Stop && c.Type != core.StopLimit:
		m.reject(core.RejectInvalidType)
	case c.TIF != core.DAY && c.TIF != core.GTC && c.TIF != core.IOC && c.TIF != core.FOK:
		m.reject(core.RejectInvalidTIF)
	case c.STP > core.STPOff:
		m.reject(core.RejectInvalidSTP)
	case c.Flags&^core.PostOnly != 0,
		c.Flags&core.PostOnly != 0 && !(c.Type == core.Limit && (c.TIF == core.DAY || c.TIF == core.GTC)):
		m.reject(core.RejectInvalidFlags)
	case c.Mark > core.MarkShortExempt || c.Mark != core.MarkNone && c.Side != core.Sell:
		m.reject(core.RejectInvalidSaleMark)
	case c.Qty < 1 || c.Qty > m.cfg.MaxOrderQty:
		m.reject(core.RejectInvalidQty)
	default:
		if r := priceCheck(b, c.Type, c.Price, c.StopPrice); r != 0 {
			m.reject(r)
			return
		}
		canRest := (c.Type == core.Limit || c.Type == core.StopLimit) && (c.TIF == core.DAY || c.TIF == core.GTC)
		switch {
		case c.DisplayQty < 0 || c.DisplayQty > c.Qty || c.DisplayQty > 0 && !canRest:
			m.reject(core.RejectInvalidDisplayQty)
		case c.MinQty < 0 || c.MinQty > c.Qty || c.MinQty > 0 && c.Type != core.Limit && c.Type != core.Market:
			m.reject(core.RejectInvalidMinQty)
		case c.MinQty > 0 && c.Flags&core.PostOnly != 0:
			m.reject(core.RejectPostOnlyMinQty)
		case len(m.open) >= m.cfg.MaxOrders:
			m.reject(core.RejectOrderCapacity)
		case c.Flags&core.PostOnly != 0 && b.wouldTake(c.Side, c.Price):
			m.reject(core.RejectPostOnlyWouldTake)
		default:
			m.accept(b)
		}
	}
}

// priceCheck applies checks 10 and 11 of New to a price and stop price for
// an order of type typ.
func priceCheck(b *book, typ core.OrderType, price, stop int64) core.Reason {
	inBand := func(p int64) bool { return p >= b.inst.BandLow && p <= b.inst.BandHigh }
	switch typ {
	case core.Limit, core.StopLimit:
		if price <= 0 {
			return core.RejectInvalidPrice
		}
		if !inBand(price) {
			return core.RejectPriceOutOfBand
		}
	default:
		if price != 0 {
			return core.RejectInvalidPrice
		}
	}
	switch typ {
	case core.Stop, core.StopLimit:
		if stop <= 0 || !inBand(stop) {
			return core.RejectInvalidStopPrice
		}
	default:
		if stop != 0 {
			return core.RejectInvalidStopPrice
		}
	}
	return 0
}

// nextOrderID is the next OrderID: the smallest above the last one whose
// slot (id mod slots) no open order holds.
func (m *Model) nextOrderID() uint64 {
	held := map[uint64]bool{}
	for id := range m.open {
		held[id%m.slots] = true
	}
	id := m.orderID + 1
	for held[id%m.slots] {
		id++
	}
	return id
}

func (m *Model) accept(b *book) {
	c := m.cmd
	m.orderID = m.nextOrderID()
	o := &order{
		id: m.orderID, clOrdID: c.ClOrdID, account: c.Account, group: c.STPGroup,
		inst: c.Instrument, side: c.Side, typ: c.Type, tif: c.TIF, stp: c.STP,
		flags: c.Flags, mark: c.Mark, price: c.Price, stop: c.StopPrice, display: c.DisplayQty,
	}
	m.open[o.id] = o
	e := orderEvent(core.KindAccepted, o)
	e.Qty, e.Leaves = c.Qty, c.Qty
	m.emit(e)
	if o.typ == core.Stop || o.typ == core.StopLimit {
		// Waits, or triggers at once if the last trade already reaches it.
		o.shown = c.Qty
		m.waitOrElect(b, o)
		return
	}
	m.enter(b, o, c.Qty, o.tif == core.FOK, c.MinQty)
}

// lookup applies the checks Cancel, CancelSize and Replace share.
func (m *Model) lookup() (*book, *order, bool) {
	c := m.cmd
	if c.Account == 0 {
		m.reject(core.RejectInvalidAccount)
		return nil, nil, false
	}
	o := m.open[c.OrderID]
	if o == nil || o.account != c.Account || o.clOrdID != c.OrigClOrdID {
		m.reject(core.RejectUnknownOrder)
		return nil, nil, false
	}
	if c.Instrument != 0 && c.Instrument != o.inst {
		m.reject(core.RejectInstrumentMismatch)
		return nil, nil, false
	}
	return m.byID[o.inst], o, true
}

// drop removes o from whichever list holds it, with BookDelete if it rests.
func (m *Model) drop(b *book, o *order) {
	if o.waiting {
		remove(b.stops(o.side), o)
	} else {
		m.unrest(b, o)
	}
	m.close(o)
}

func (m *Model) cancel() {
	b, o, ok := m.lookup()
	if !ok {
		return
	}
	m.emitOrder(core.KindCancelled, o, core.CancelRequested, o.open(), 0)
	m.drop(b, o)
}

func (m *Model) cancelSize() {
	_, o, ok := m.lookup()
	if !ok {
		return
	}
	q := m.cmd.Qty
	if q < 1 || q >= o.open() {
		m.reject(core.RejectNotReduced)
		return
	}
	m.emitOrder(core.KindReduced, o, core.CancelRequested, o.open()-q, q)
	m.shrink(o, q)
}

func (m *Model) replace() {
	b, o, ok := m.lookup()
	if !ok {
		return
	}
	c := m.cmd
	if c.ClOrdID == 0 {
		m.reject(core.RejectInvalidClOrdID)
		return
	}
	if !m.useReference(o.account) {
		return
	}
	if c.Qty < 1 || c.Qty > m.cfg.MaxOrderQty {
		m.reject(core.RejectInvalidQty)
		return
	}
	if r := priceCheck(b, o.typ, c.Price, c.StopPrice); r != 0 {
		m.reject(r)
		return
	}
	if o.flags&core.PostOnly != 0 && b.wouldTake(o.side, c.Price) {
		m.reject(core.RejectPostOnlyWouldTake)
		return
	}

	oldCl := o.clOrdID
	o.clOrdID = c.ClOrdID
	keep := c.Price == o.price && c.StopPrice == o.stop && c.Qty <= o.open()
	oldPrice := o.price
	o.price, o.stop = c.Price, c.StopPrice
	e := orderEvent(core.KindReplaced, o)
	e.OrigClOrdID, e.Qty, e.Leaves = oldCl, c.Qty, c.Qty
	m.emit(e)

	switch {
	case keep:
		m.shrink(o, c.Qty)
	case o.waiting:
		remove(b.stops(o.side), o)
		o.shown, o.hidden = c.Qty, 0
		m.waitOrElect(b, o)
	case !b.wouldTake(o.side, o.price):
		remove(b.side(o.side), o)
		o.shown = c.Qty
		if o.display > 0 && o.display < c.Qty {
			o.shown = o.display
		}
		o.hidden = c.Qty - o.shown
		insert(b.side(o.side), o, priceKey, o.side)
		m.emitBook(core.KindBookReplace, o, o.price, o.shown, o.shown)
	default:
		remove(b.side(o.side), o)
		m.emitBook(core.KindBookDelete, o, oldPrice, o.shown, 0)
		o.shown, o.hidden = 0, 0
		m.enter(b, o, c.Qty, false, 0)
	}
}

func (m *Model) massCancel() {
	c := m.cmd
	var only *book
	if c.Instrument != 0 {
		if only = m.byID[c.Instrument]; only == nil {
			m.reject(core.RejectUnknownInstrument)
			return
		}
	}
	m.walk(only, func(b *book, o *order) {
		if c.Account != 0 && o.account != c.Account {
			return
		}
		m.emitOrder(core.KindCancelled, o, core.CancelMass, o.open(), 0)
		m.drop(b, o)
	})
}

// weekday parses d (YYYYMMDD) and reports whether it is a Monday to Friday
// that is not one of the calendar's holidays.
func (m *Model) weekday(d int64) (time.Time, bool) {
	t := time.Date(int(d/10000), time.Month(d/100%100), int(d%100), 0, 0, 0, 0, time.UTC)
	if d <= 0 || yyyymmdd(t) != d || t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		return t, false
	}
	return t, !slices.Contains(m.cfg.Calendar.Holidays, d)
}

func yyyymmdd(t time.Time) int64 {
	return int64(t.Year())*10000 + int64(t.Month())*100 + int64(t.Day())
}

func (m *Model) endOfDay() {
	d := m.cmd.Qty
	t, ok := m.weekday(d)
	switch {
	case !ok:
		m.reject(core.RejectInvalidTradingDay)
		return
	case m.date != 0 && d < m.date:
		m.reject(core.RejectStaleTradingDay)
		return
	}
	for {
		t = t.AddDate(0, 0, 1)
		if _, ok := m.weekday(yyyymmdd(t)); ok {
			break
		}
	}
	m.date = yyyymmdd(t)
	defer m.emit(core.Event{Kind: core.KindSystem, Reason: core.AdminTradingDate, Qty: m.date})
	clear(m.last) // references start again for the new trading day
	m.walk(nil, func(b *book, o *order) {
		if o.tif != core.DAY {
			return
		}
		m.emitOrder(core.KindExpired, o, core.ExpireEndOfDay, o.open(), 0)
		m.drop(b, o)
	})
}
