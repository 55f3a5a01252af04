package core_test

// The differential test: core.Engine against the reference model in
// core/internal/refmodel, on seeded random command streams, compared after
// every command (events, open orders, CheckInvariants), plus properties any
// venue must hold, checked from the engine's events alone.
//
// TestDiffStops does the same on stop-heavy streams. Reproduce a failure with
// the test, seed and command count it prints:
//
//	go test ./core -run 'TestDiff$' -diff.seed=N -diff.ops=M
//	go test ./core -run 'TestDiffStops' -diff.seed=N -diff.ops=M

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/internal/refmodel"
)

var (
	diffSeed   = flag.Uint64("diff.seed", 0, "differential test: run only this seed (0 = the default seeds)")
	diffOps    = flag.Int("diff.ops", 0, "differential test: commands per seed (0 = the default)")
	diffShrink = flag.Duration("diff.shrink", 20*time.Second, "differential test: time spent minimising a failing command sequence (0 = off)")
)

const (
	defaultDiffSeeds = 8
	defaultDiffOps   = 125_000 // per seed: 8 x 125k = 1M commands
	shortDiffOps     = 5_000
)

func TestDiff(t *testing.T) {
	seeds := make([]uint64, defaultDiffSeeds)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	ops := defaultDiffOps
	if testing.Short() {
		ops = shortDiffOps
	}
	if *diffSeed != 0 {
		seeds = []uint64{*diffSeed}
	}
	if *diffOps > 0 {
		ops = *diffOps
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			runDiff(t, seed, ops)
		})
	}
}

func runDiff(t *testing.T, seed uint64, ops int) {
	runDiffGen(t, newCmdGen(seed), seed, ops, "TestDiff$", nil)
}

// runDiffGen runs ops commands of g through the harness; test names the test
// that reproduces a failure, and st, if not nil, gathers stop statistics.
func runDiffGen(t *testing.T, g *cmdGen, seed uint64, ops int, test string, st *stopStats) {
	h, err := newDiffHarness(g.cfg)
	if err != nil {
		t.Fatalf("seed %d: %v", seed, err)
	}
	for i := range ops {
		c := g.next(h.open)
		err := h.step(c)
		if err == nil && st != nil {
			st.add(h.got)
		}
		if err != nil {
			var b strings.Builder
			fmt.Fprintf(&b, "seed %d, command %d of %d: %v\n", seed, i+1, ops, err)
			fmt.Fprintf(&b, "config: %s\n", fmtConfig(g.cfg))
			b.WriteString("last commands:\n")
			for j := max(0, len(h.cmds)-10); j < len(h.cmds); j++ {
				fmt.Fprintf(&b, "  #%d %s\n", j+1, fmtCmd(h.cmds[j]))
			}
			fmt.Fprintf(&b, "reproduce: go test ./core -run '%s' -diff.seed=%d -diff.ops=%d\n", test, seed, i+1)
			if *diffShrink > 0 {
				small, merr := shrinkCmds(g.cfg, h.cmds, err, *diffShrink)
				fmt.Fprintf(&b, "minimised to %d commands (Seq and Time renumbered from 1), failing with: %v\n", len(small), merr)
				for j, c := range small {
					fmt.Fprintf(&b, "  #%d %s\n", j+1, fmtCmd(c))
				}
			}
			t.Fatal(b.String())
		}
	}
	if ops < 1000 {
		return // short streams: too many to log
	}
	v := h.v
	t.Logf("seed %d: %d commands, %d events, %d trades, open orders mean %.1f max %d",
		seed, ops, v.events, v.lastMatchID, float64(v.openSum)/float64(ops), v.openMax)
	var b strings.Builder
	for k := core.KindAccepted; k <= core.KindTrade; k++ {
		fmt.Fprintf(&b, " %v=%d", k, v.kinds[k])
	}
	t.Logf("seed %d: events by kind:%s", seed, b.String())
	b.Reset()
	for _, r := range core.Reasons() {
		fmt.Fprintf(&b, " %d=%d", r, v.reasons[r])
	}
	t.Logf("seed %d: events by reason:%s", seed, b.String())
	// The default run must reach every event kind and reason, or the
	// generator has drifted and the test proves less than it claims.
	if ops >= defaultDiffOps && *diffSeed == 0 {
		for k := core.KindAccepted; k <= core.KindTrade; k++ {
			if v.kinds[k] == 0 {
				t.Errorf("seed %d: no %v event in %d commands; the generator needs a look", seed, k, ops)
			}
		}
		for _, r := range core.Reasons() {
			if r == core.RejectOrderCapacity && h.cfg.MaxOrders > 48 {
				continue // only the seeds with small books fill them
			}
			if r == core.RejectAccountCapacity && h.cfg.MaxAccounts == 0 {
				continue // only the seeds with a short account table reach it
			}
			if v.reasons[r] == 0 {
				t.Errorf("seed %d: no event with reason %d (%s) in %d commands; the generator needs a look", seed, r, r, ops)
			}
		}
	}
}

// TestDiffStops runs the differential test on stop-heavy streams (newStopGen):
// long ones, with sweeps through ladders of stops and the cascades they set
// off, and many short ones that start quiet, so that stops of both sides
// wait for the instrument's first print, the only print that can elect both.
// Seeds from firstPrintSeeds up are short streams.
func TestDiffStops(t *testing.T) {
	longOps, shortStreams := 100_000, 1000
	if testing.Short() {
		longOps, shortStreams = 3_000, 20
	}
	seeds := []uint64{201, 202, 203, 204}
	for i := range shortStreams {
		seeds = append(seeds, firstPrintSeeds+uint64(i))
	}
	if *diffSeed != 0 {
		seeds = []uint64{*diffSeed}
	}
	var (
		mu    sync.Mutex
		total stopStats
	)
	run := func(t *testing.T, seed uint64) {
		ops, quiet := longOps, 0
		if seed >= firstPrintSeeds {
			ops, quiet = 150, 40
		}
		if *diffOps > 0 {
			ops = *diffOps
		}
		var st stopStats
		runDiffGen(t, newStopGen(seed, quiet), seed, ops, "TestDiffStops", &st)
		mu.Lock()
		total.merge(&st)
		mu.Unlock()
	}
	t.Run("streams", func(t *testing.T) {
		for _, seed := range seeds {
			if seed >= firstPrintSeeds {
				continue
			}
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				t.Parallel()
				run(t, seed)
			})
		}
		t.Run("first-print", func(t *testing.T) {
			t.Parallel()
			for _, seed := range seeds {
				if seed >= firstPrintSeeds {
					run(t, seed)
				}
			}
		})
	})
	t.Logf("stops: %s", total.String())
	if testing.Short() || *diffSeed != 0 || *diffOps != 0 {
		return
	}
	// The streams must do what they are for, or they prove less than claimed.
	for _, c := range []struct {
		name   string
		n, min int
	}{
		{"stops triggered", total.triggered, 20_000},
		{"commands triggering 3 or more stops", total.multi, 1500},
		{"cascades", total.cascades, 2500},
		{"stops elected by a print the last price no longer reaches", total.passed, 1500},
		{"commands triggering stops of both sides", total.bothSides, 1000},
		{"first prints electing stops of both sides", total.firstPrint, 200},
		{"first prints electing a buy and a sell stop equally far through", total.ties, 50},
	} {
		if c.n < c.min {
			t.Errorf("%s: %d, want at least %d; the stop-heavy generator needs a look", c.name, c.n, c.min)
		}
	}
}

const firstPrintSeeds = 10_000

// stopStats counts, from the engine's events, what the stop-heavy streams
// exercised.
type stopStats struct {
	commands   int
	triggered  int
	multi      int // commands that triggered 3 or more stops
	cascades   int // stops elected by the print of a triggered stop
	passed     int // stops elected by a print their command's last price no longer reaches
	bothSides  int // commands that triggered stops of both sides
	firstPrint int // of those, commands with the instrument's first print
	ties       int // first prints electing a buy and a sell stop equally far through
	traded     map[uint32]bool
}

func (s *stopStats) merge(o *stopStats) {
	s.commands += o.commands
	s.triggered += o.triggered
	s.multi += o.multi
	s.cascades += o.cascades
	s.passed += o.passed
	s.bothSides += o.bothSides
	s.firstPrint += o.firstPrint
	s.ties += o.ties
}

func (s *stopStats) String() string {
	return fmt.Sprintf("%d commands, %d triggered, %d commands with 3 or more, %d cascades, %d passed through, %d commands with both sides, %d of them at a first print (%d ties)",
		s.commands, s.triggered, s.multi, s.cascades, s.passed, s.bothSides, s.firstPrint, s.ties)
}

func reachedBy(side core.Side, stop, price int64) bool {
	if side == core.Buy {
		return price >= stop
	}
	return price <= stop
}

// add counts one command's events.
func (s *stopStats) add(es []core.Event) {
	if s.traded == nil {
		s.traded = map[uint32]bool{}
	}
	s.commands++
	type print struct {
		price     int64
		byTrigger bool // the taker was a triggered stop
	}
	var (
		prints    []print
		triggered = map[uint64]bool{}
		stops     []core.Event // the Triggered events
		lastTaker uint64
		sides     [3]bool
		first     bool
		inst      uint32
	)
	for _, e := range es {
		switch e.Kind {
		case core.KindExecuted:
			lastTaker = e.OrderID
		case core.KindTrade:
			prints = append(prints, print{e.Price, triggered[lastTaker]})
			if !s.traded[e.Instrument] {
				s.traded[e.Instrument], first, inst = true, true, e.Instrument
			}
		case core.KindTriggered:
			triggered[e.OrderID] = true
			stops = append(stops, e)
			sides[e.Side%3] = true
			// the print that elected it: the first so far that reaches it
			for _, p := range prints {
				if reachedBy(e.Side, e.StopPrice, p.price) {
					if p.byTrigger {
						s.cascades++
					}
					break
				}
			}
		}
	}
	s.triggered += len(stops)
	if len(stops) >= 3 {
		s.multi++
	}
	if len(prints) > 0 {
		final := prints[len(prints)-1].price
		for _, e := range stops {
			if !reachedBy(e.Side, e.StopPrice, final) {
				s.passed++
			}
		}
	}
	if sides[core.Buy] && sides[core.Sell] {
		s.bothSides++
		if first && len(prints) > 0 {
			s.firstPrint++
			p := prints[0].price
			var db, ds []int64
			for _, e := range stops {
				if e.Instrument != inst || !reachedBy(e.Side, e.StopPrice, p) {
					continue
				}
				if e.Side == core.Buy {
					db = append(db, p-e.StopPrice)
				} else {
					ds = append(ds, e.StopPrice-p)
				}
			}
			for _, x := range db {
				if slices.Contains(ds, x) {
					s.ties++
					break
				}
			}
		}
	}
}

// TestDiffDeterminism runs the same stream on two fresh engines and requires
// the same events after every command and the same StateHash. It does not
// compare with the model (TestDiff does); the model only aims the generator.
func TestDiffDeterminism(t *testing.T) {
	ops := 20_000
	if testing.Short() {
		ops = 2_000
	}
	for _, seed := range []uint64{101, 102, 301} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			g := newCmdGen(seed)
			if seed > 300 { // a stop-heavy stream: elections and cascades
				g = newStopGen(seed, 40)
			}
			m := refmodel.New(g.cfg)
			var got [2][]core.Event
			var engs [2]*core.Engine
			for i := range engs {
				e, err := core.New(g.cfg, func(es []core.Event) { got[i] = append(got[i], es...) })
				if err != nil {
					t.Fatal(err)
				}
				engs[i] = e
			}
			var open []core.OrderState
			for i := range ops {
				c := g.next(open)
				numberCmd(&c, uint64(i+1))
				m.Apply(c)
				open = m.OpenOrders()
				for j, e := range engs {
					got[j] = got[j][:0]
					cj := c
					e.Apply(&cj)
					e.Flush()
				}
				if d := diffEvents(got[1], got[0], "second engine", "first engine"); d != "" {
					t.Fatalf("seed %d, command %d %s: the same stream gave different events:\n%s", seed, i+1, fmtCmd(c), d)
				}
				if i%1000 == 999 || i == ops-1 {
					if a, b := engs[0].StateHash(), engs[1].StateHash(); a != b {
						t.Fatalf("seed %d, command %d: StateHash %x != %x", seed, i+1, a, b)
					}
				}
			}
		})
	}
}

// numberCmd sets the fields the sequencer sets: Seq, and a Time derived from it.
func numberCmd(c *core.Command, seq uint64) {
	c.Seq = seq
	c.Time = int64(seq)*1_000_003 + 1_700_000_000_000_000_000
}

// ---- harness ----

type diffHarness struct {
	cfg   core.Config
	eng   *core.Engine
	model *refmodel.Model
	got   []core.Event // the engine's events for the current command
	open  []core.OrderState
	cmds  []core.Command
	v     *venueCheck
}

func newDiffHarness(cfg core.Config) (*diffHarness, error) {
	h := &diffHarness{cfg: cfg, model: refmodel.New(cfg), v: newVenueCheck(cfg)}
	eng, err := core.New(cfg, func(es []core.Event) { h.got = append(h.got, es...) })
	if err != nil {
		return nil, err
	}
	h.eng = eng
	return h, nil
}

// step numbers c (Seq from 1, Time from the Seq), applies it to the engine
// and the model, and checks everything.
func (h *diffHarness) step(c core.Command) error {
	numberCmd(&c, uint64(len(h.cmds)+1))
	h.cmds = append(h.cmds, c)
	want := h.model.Apply(c)
	h.got = h.got[:0]
	if err := h.applyEngine(c); err != nil {
		return err
	}
	if d := diffEvents(h.got, want, "engine", "model"); d != "" {
		return fmt.Errorf("events differ:\n%s", d)
	}
	if err := h.eng.CheckInvariants(); err != nil {
		return fmt.Errorf("CheckInvariants: %w", err)
	}
	open := h.eng.OpenOrders()
	wantOpen := h.model.OpenOrders()
	if d := diffOpen(open, wantOpen); d != "" {
		return fmt.Errorf("open orders differ:\n%s", d)
	}
	if err := h.v.check(&c, h.got, open); err != nil {
		return fmt.Errorf("venueCheck property violated: %w\nevents:%s", err, fmtEvents(h.got))
	}
	h.open = wantOpen
	return nil
}

func (h *diffHarness) applyEngine(c core.Command) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("engine panicked: %v\n%s", p, debug.Stack())
		}
	}()
	h.eng.Apply(&c)
	h.eng.Flush()
	return nil
}

// shrinkCmds looks for a shorter command sequence that still fails (delta
// debugging, bounded by budget) and returns it with its error. cmds failed
// with last.
func shrinkCmds(cfg core.Config, cmds []core.Command, last error, budget time.Duration) ([]core.Command, error) {
	deadline := time.Now().Add(budget)
	fails := func(cs []core.Command) error {
		h, err := newDiffHarness(cfg)
		if err != nil {
			return err
		}
		for i, c := range cs {
			if err := h.step(c); err != nil {
				return err
			}
			if i%1024 == 1023 && time.Now().After(deadline) {
				return nil // out of time: count as passing
			}
		}
		return nil
	}
	cmds = slices.Clone(cmds)
	n := 2
	for len(cmds) >= 2 && time.Now().Before(deadline) {
		chunk := (len(cmds) + n - 1) / n
		reduced := false
		for start := 0; start < len(cmds) && time.Now().Before(deadline); start += chunk {
			cand := slices.Concat(cmds[:start], cmds[min(start+chunk, len(cmds)):])
			if err := fails(cand); err != nil {
				cmds, last, reduced = cand, err, true
				n = max(n-1, 2)
				break
			}
		}
		if !reduced {
			if n >= len(cmds) {
				break
			}
			n = min(2*n, len(cmds))
		}
	}
	for i := range cmds {
		numberCmd(&cmds[i], uint64(i+1))
	}
	return cmds, last
}

// ---- venue properties, from the engine's events alone ----

type trackedOrder struct {
	account    uint32
	clOrdID    uint64
	instrument uint32
	group      uint32
	stp        core.STPMode
	side       core.Side
	typ        core.OrderType
	tif        core.TIF
	price      int64
	open       int64
}

type feedOrder struct {
	id           uint64
	price, shown int64
}

// venueCheck tracks every open order through its events (quantity
// conservation, with a replace setting a new open quantity)
// and rebuilds the public order-by-order book from the market-data events.
type venueCheck struct {
	orders      map[uint64]*trackedOrder
	pub         map[uint32]*[2][]feedOrder // instrument: bids, asks, in priority
	lastOrderID uint64
	lastMatchID uint64
	events      int
	kinds       map[core.EventKind]int // coverage of the generator
	reasons     map[core.Reason]int
	openSum     int // sum over commands of the open orders, for the mean
	openMax     int

	slots   uint64            // docs/engine.md, "Order ids": the id-to-slot modulus
	lastRef map[uint32]uint64 // highest reference per account since the last end of day
	days    int               // ends of day seen

	seen             map[acctClOrd]bool
	resting          map[uint32][]feedOrder
	bestBid, bestAsk map[uint32]int64
}

type acctClOrd struct {
	account uint32
	clOrdID uint64
}

func newVenueCheck(cfg core.Config) *venueCheck {
	maxOrders := uint64(cfg.MaxOrders)
	if maxOrders == 0 {
		maxOrders = 1 << 20
	}
	slots := uint64(2)
	for slots < 2*maxOrders {
		slots *= 2
	}
	return &venueCheck{orders: map[uint64]*trackedOrder{}, pub: map[uint32]*[2][]feedOrder{},
		kinds: map[core.EventKind]int{}, reasons: map[core.Reason]int{}, slots: slots, lastRef: map[uint32]uint64{}}
}

func (v *venueCheck) side(inst uint32, s core.Side) *[]feedOrder {
	b := v.pub[inst]
	if b == nil {
		b = new([2][]feedOrder)
		v.pub[inst] = b
	}
	if s == core.Buy {
		return &b[0]
	}
	return &b[1]
}

func feedInsert(list *[]feedOrder, s core.Side, o feedOrder) {
	i := 0
	for i < len(*list) {
		p := (*list)[i].price
		if s == core.Buy && o.price > p || s == core.Sell && o.price < p {
			break
		}
		i++
	}
	*list = slices.Insert(*list, i, o)
}

func feedFind(list []feedOrder, id uint64) int {
	return slices.IndexFunc(list, func(o feedOrder) bool { return o.id == id })
}

func (v *venueCheck) check(c *core.Command, es []core.Event, open []core.OrderState) error {
	if c.Kind == core.CmdEndOfDay && (len(es) == 0 || es[0].Kind != core.KindRejected) {
		clear(v.lastRef) // references start again
		v.days++
	}
	v.events += len(es)
	v.openSum += len(open)
	v.openMax = max(v.openMax, len(open))
	var pendingMatch uint64
	for i := range es {
		e := &es[i]
		v.kinds[e.Kind]++
		v.reasons[e.Reason]++
		if e.Seq != c.Seq || e.Time != c.Time || e.Tag != c.Tag {
			return fmt.Errorf("event %d: Seq/Time/Tag %d/%d/%d, command has %d/%d/%d", i, e.Seq, e.Time, e.Tag, c.Seq, c.Time, c.Tag)
		}
		if err := v.event(c, e, &pendingMatch); err != nil {
			return fmt.Errorf("event %d (%s): %w", i, fmtEvent(*e), err)
		}
	}
	for id, o := range v.orders {
		if o.open == 0 {
			delete(v.orders, id)
		}
	}
	return v.state(open)
}

func (v *venueCheck) event(c *core.Command, e *core.Event, pendingMatch *uint64) error {
	get := func(id uint64) (*trackedOrder, error) {
		o := v.orders[id]
		if o == nil || o.open == 0 {
			return nil, fmt.Errorf("order %d is not open", id)
		}
		return o, nil
	}
	switch e.Kind {
	case core.KindRejected:
		if e.OrderID != c.OrderID {
			return errors.New("a rejection does not echo the command's OrderID")
		}
	case core.KindAccepted:
		if c.Kind != core.CmdNew {
			return errors.New("accepted on a command that is not New")
		}
		// Ids increase; one is skipped only while its slot holds an open order.
		if e.OrderID <= v.lastOrderID {
			return fmt.Errorf("OrderID %d after %d: not increasing", e.OrderID, v.lastOrderID)
		}
		for id := v.lastOrderID + 1; id < e.OrderID; id++ {
			held := false
			for oid := range v.orders {
				held = held || oid%v.slots == id%v.slots
			}
			if !held {
				return fmt.Errorf("OrderID %d after %d skips %d, whose slot no open order holds", e.OrderID, v.lastOrderID, id)
			}
		}
		v.lastOrderID = e.OrderID
		if e.ClOrdID <= v.lastRef[c.Account] {
			return fmt.Errorf("accepted reference %d of account %d, not above its %d today", e.ClOrdID, c.Account, v.lastRef[c.Account])
		}
		v.lastRef[c.Account] = e.ClOrdID
		if e.Qty != c.Qty || e.Leaves != c.Qty {
			return errors.New("accepted Qty/Leaves differ from the order's Qty")
		}
		v.orders[e.OrderID] = &trackedOrder{
			account: c.Account, clOrdID: c.ClOrdID, instrument: c.Instrument, group: c.STPGroup, stp: c.STP,
			side: c.Side, typ: c.Type, tif: c.TIF, price: c.Price, open: c.Qty,
		}
	case core.KindExecuted:
		t, err := get(e.OrderID)
		if err != nil {
			return fmt.Errorf("taker: %w", err)
		}
		m, err := get(e.ContraOrderID)
		if err != nil {
			return fmt.Errorf("maker: %w", err)
		}
		switch {
		case e.MatchID != v.lastMatchID+1:
			return fmt.Errorf("MatchID %d after %d", e.MatchID, v.lastMatchID)
		case e.Qty <= 0:
			return errors.New("non-positive quantity")
		case e.Side != t.side || m.side != t.side.Opposite():
			return errors.New("sides do not fit")
		case e.Instrument != t.instrument || m.instrument != t.instrument:
			return errors.New("instruments do not fit")
		case e.Account != t.account || e.ClOrdID != t.clOrdID || e.ContraAccount != m.account || e.ContraClOrdID != m.clOrdID:
			return errors.New("accounts or ClOrdIDs do not fit the orders")
		case e.Price != m.price:
			return fmt.Errorf("price %d is not the maker's resting price %d", e.Price, m.price)
		case (t.typ == core.Limit || t.typ == core.StopLimit) && t.side == core.Buy && e.Price > t.price:
			return fmt.Errorf("buy taker limited at %d executed at %d", t.price, e.Price)
		case (t.typ == core.Limit || t.typ == core.StopLimit) && t.side == core.Sell && e.Price < t.price:
			return fmt.Errorf("sell taker limited at %d executed at %d", t.price, e.Price)
		case t.stp != core.STPOff && (t.account == m.account || t.group != 0 && t.group == m.group):
			return fmt.Errorf("self-trade between accounts %d/%d groups %d/%d with taker STP mode %d", t.account, m.account, t.group, m.group, t.stp)
		}
		t.open -= e.Qty
		m.open -= e.Qty
		if t.open != e.Leaves || m.open != e.ContraLeaves || t.open < 0 || m.open < 0 {
			return fmt.Errorf("leaves %d/%d, conservation says %d/%d", e.Leaves, e.ContraLeaves, t.open, m.open)
		}
		v.lastMatchID = e.MatchID
		*pendingMatch = e.MatchID
	case core.KindTrade:
		if e.MatchID != *pendingMatch || *pendingMatch == 0 {
			return errors.New("trade print without its execution")
		}
		*pendingMatch = 0
	case core.KindCancelled, core.KindExpired, core.KindReduced:
		o, err := get(e.OrderID)
		if err != nil {
			return err
		}
		if e.Qty <= 0 {
			return errors.New("non-positive quantity")
		}
		o.open -= e.Qty
		if e.Kind == core.KindReduced && (o.open <= 0 || o.open != e.Leaves) {
			return fmt.Errorf("reduced to %d, conservation says %d", e.Leaves, o.open)
		}
		if e.Kind != core.KindReduced && o.open != 0 {
			return fmt.Errorf("removed %d lots, but %d remain", e.Qty, o.open)
		}
		if e.Kind == core.KindExpired && o.tif != core.DAY {
			return errors.New("a non-DAY order expired")
		}
	case core.KindReplaced:
		o, err := get(e.OrderID)
		if err != nil {
			return err
		}
		if e.OrigClOrdID != o.clOrdID || e.Leaves <= 0 {
			return errors.New("replace does not fit the order")
		}
		if e.ClOrdID <= v.lastRef[o.account] {
			return fmt.Errorf("replaced with reference %d of account %d, not above its %d today", e.ClOrdID, o.account, v.lastRef[o.account])
		}
		v.lastRef[o.account] = e.ClOrdID
		o.clOrdID, o.price, o.open = e.ClOrdID, e.Price, e.Leaves
	case core.KindTriggered:
		o, err := get(e.OrderID)
		if err != nil {
			return err
		}
		if o.typ != core.Stop && o.typ != core.StopLimit || e.Leaves != o.open {
			return errors.New("trigger does not fit the order")
		}
	case core.KindBookAdd:
		o, err := get(e.OrderID)
		if err != nil {
			return err
		}
		l := v.side(e.Instrument, e.Side)
		if feedFind(*l, e.OrderID) >= 0 || e.Qty <= 0 || e.Qty != e.Leaves || e.Qty > o.open || e.Price != o.price {
			return errors.New("book add does not fit")
		}
		feedInsert(l, e.Side, feedOrder{e.OrderID, e.Price, e.Qty})
	case core.KindBookReplace:
		o, err := get(e.OrderID)
		if err != nil {
			return err
		}
		l := v.side(e.Instrument, e.Side)
		i := feedFind(*l, e.OrderID)
		if i < 0 || e.Qty <= 0 || e.Qty != e.Leaves || e.Qty > o.open || e.Price != o.price {
			return errors.New("book replace does not fit")
		}
		*l = slices.Delete(*l, i, i+1)
		feedInsert(l, e.Side, feedOrder{e.OrderID, e.Price, e.Qty})
	case core.KindBookExecute, core.KindBookCancel:
		l := v.side(e.Instrument, e.Side)
		i := feedFind(*l, e.OrderID)
		if i < 0 || e.Qty <= 0 || (*l)[i].shown-e.Qty != e.Leaves || e.Price != (*l)[i].price {
			return errors.New("does not fit the public book")
		}
		if e.Kind == core.KindBookExecute && *pendingMatch == 0 {
			return errors.New("book execute without its execution")
		}
		(*l)[i].shown = e.Leaves
		if e.Leaves == 0 {
			if e.Kind == core.KindBookCancel {
				return errors.New("book cancel to zero (must be a delete)")
			}
			*l = slices.Delete(*l, i, i+1)
		}
	case core.KindBookDelete:
		l := v.side(e.Instrument, e.Side)
		i := feedFind(*l, e.OrderID)
		if i < 0 {
			return errors.New("not in the public book")
		}
		*l = slices.Delete(*l, i, i+1)
	case core.KindSystem:
		if e.Reason != core.AdminTradingDate || c.Kind != core.CmdEndOfDay {
			return errors.New("a system event other than an end of day's trading date")
		}
	default:
		return errors.New("unknown event kind")
	}
	return nil
}

// state checks the engine's open orders against what the events said.
func (v *venueCheck) state(open []core.OrderState) error {
	if len(open) != len(v.orders) {
		return fmt.Errorf("%d open orders, the events leave %d open", len(open), len(v.orders))
	}
	// Scratch maps, reused: this runs after every command.
	if v.seen == nil {
		v.seen, v.resting = map[acctClOrd]bool{}, map[uint32][]feedOrder{}
		v.bestBid, v.bestAsk = map[uint32]int64{}, map[uint32]int64{}
	}
	seen, resting, bestBid, bestAsk := v.seen, v.resting, v.bestBid, v.bestAsk
	clear(seen)
	clear(bestBid)
	clear(bestAsk)
	for k, r := range resting {
		resting[k] = r[:0]
	}
	for _, s := range open {
		o := v.orders[s.OrderID]
		switch {
		case o == nil:
			return fmt.Errorf("order %d is open but the events closed it", s.OrderID)
		case o.open != s.Shown+s.Hidden:
			return fmt.Errorf("order %d has %d+%d open lots, the events say %d", s.OrderID, s.Shown, s.Hidden, o.open)
		case o.account != s.Account || o.clOrdID != s.ClOrdID || o.price != s.Price || o.side != s.Side || o.typ != s.Type:
			return fmt.Errorf("order %d does not match its events", s.OrderID)
		case seen[acctClOrd{s.Account, s.ClOrdID}] && v.days == 0:
			return fmt.Errorf("account %d has two open orders with ClOrdID %d on the first day", s.Account, s.ClOrdID)
		case s.Waiting && (s.Type != core.Stop && s.Type != core.StopLimit || s.Hidden != 0):
			return fmt.Errorf("order %d waits but is not a stop", s.OrderID)
		case !s.Waiting && (s.Type == core.Market || s.Type == core.Stop || s.TIF == core.IOC || s.TIF == core.FOK):
			return fmt.Errorf("order %d rests but is Market, Stop, IOC or FOK", s.OrderID)
		case !s.Waiting && s.Shown <= 0:
			return fmt.Errorf("order %d rests without shown lots", s.OrderID)
		}
		seen[acctClOrd{s.Account, s.ClOrdID}] = true
		if s.Waiting {
			continue
		}
		resting[s.Instrument] = append(resting[s.Instrument], feedOrder{s.OrderID, s.Price, s.Shown})
		if s.Side == core.Buy {
			if b, ok := bestBid[s.Instrument]; !ok || s.Price > b {
				bestBid[s.Instrument] = s.Price
			}
		} else if a, ok := bestAsk[s.Instrument]; !ok || s.Price < a {
			bestAsk[s.Instrument] = s.Price
		}
	}
	for inst, b := range bestBid {
		if a, ok := bestAsk[inst]; ok && b >= a {
			return fmt.Errorf("instrument %d is crossed at rest: bid %d, ask %d", inst, b, a)
		}
	}
	for inst, sides := range v.pub {
		r := resting[inst]
		if len(sides[0])+len(sides[1]) != len(r) || !slices.Equal(sides[0], r[:len(sides[0])]) || !slices.Equal(sides[1], r[len(sides[0]):]) {
			return fmt.Errorf("instrument %d: the market-data feed shows %v then %v, the book holds %v", inst, sides[0], sides[1], r)
		}
	}
	for inst, r := range resting {
		if v.pub[inst] == nil && len(r) > 0 {
			return fmt.Errorf("instrument %d: orders rest without market data", inst)
		}
	}
	return nil
}

// ---- generator ----

// cmdGen makes random but interesting command streams: narrow bands so prices
// collide and cross, few accounts sharing STP groups, every command kind and
// order type, and a few invalid fields to reach every reject reason.
type cmdGen struct {
	ended  int64 // the last date an end of day named (YYYYMMDD)
	r      *rand.Rand
	cfg    core.Config
	maxQty int64
	mid    []int64
	nAcc   int
	pCross int // percentages of the seed's profile
	pStops int
	pIce   int
	group  []uint32 // by account
	nextCl []uint64 // by account
	byAcct [][]core.OrderState
	open   []core.OrderState
	maxOID uint64 // the highest OrderID seen open

	// Stop-heavy streams (newStopGen): many stops spread through the book,
	// sweeps through several levels, and a quiet start in which nothing
	// crosses, so stops of both sides wait for the first print.
	stopHeavy bool
	quiet     int // new orders left that must not cross
}

func newCmdGen(seed uint64) *cmdGen {
	r := rand.New(rand.NewPCG(seed, 0x7ade_c0de))
	cfg := core.Config{Instruments: []core.Instrument{
		{ID: 7, Symbol: "SEVEN", BandLow: 1, BandHigh: 200},
		{ID: 3, Symbol: "THREE", BandLow: 90, BandHigh: 130},
	}}
	if r.IntN(2) == 0 {
		cfg.Instruments = append(cfg.Instruments, core.Instrument{ID: 12, Symbol: "TWELVE", BandLow: 1000, BandHigh: 1030})
	}
	if r.IntN(3) < 2 {
		cfg.MaxOrders = 32 + r.IntN(17) // small: books hit it
	} else {
		cfg.MaxOrders = 4096
	}
	if r.IntN(2) == 0 {
		cfg.MaxOrderQty = 60
	}
	if r.IntN(2) == 0 {
		cfg.EventBatch = 16
	}
	g := &cmdGen{r: r, cfg: cfg, maxQty: cfg.MaxOrderQty, nAcc: 3 + r.IntN(6)}
	if r.IntN(3) == 0 {
		cfg.MaxAccounts = g.nAcc - 1 // the last account to appear is refused
		g.cfg = cfg
	}
	// A profile per seed, so seeds differ in more than their luck.
	g.pCross = 20 + r.IntN(21) // % of limits that cross: 20..40
	g.pStops = 10 + r.IntN(21) // % of new orders that are stops: 10..30
	g.pIce = 8 + r.IntN(15)    // % of restable orders that are icebergs: 8..22
	if g.maxQty == 0 {
		g.maxQty = 1_000_000_000
	}
	for _, in := range cfg.Instruments {
		g.mid = append(g.mid, (in.BandLow+in.BandHigh)/2)
	}
	g.group = make([]uint32, g.nAcc+1)
	for a := 1; a <= g.nAcc; a++ {
		g.group[a] = uint32(r.IntN(3)) // 0 = none; accounts share groups 1 and 2
	}
	g.nextCl = make([]uint64, g.nAcc+1)
	g.byAcct = make([][]core.OrderState, g.nAcc+1)
	return g
}

// newStopGen is newCmdGen with a stop-heavy profile: 40-60% of new orders
// are stops, spread up to 10 ticks from the market on both sides; 12% are
// sweeps; the first quiet new orders never cross.
func newStopGen(seed uint64, quiet int) *cmdGen {
	g := newCmdGen(seed)
	g.stopHeavy = true
	g.pStops = 40 + g.r.IntN(21)
	g.quiet = quiet
	return g
}

func (g *cmdGen) chance(percent int) bool { return g.r.IntN(1000) < percent*10 }

func (g *cmdGen) next(open []core.OrderState) core.Command {
	g.open = open
	for a := range g.byAcct {
		g.byAcct[a] = g.byAcct[a][:0]
	}
	for _, o := range open {
		if int(o.Account) < len(g.byAcct) {
			g.byAcct[o.Account] = append(g.byAcct[o.Account], o)
		}
		g.maxOID = max(g.maxOID, o.OrderID)
	}
	for i, in := range g.cfg.Instruments {
		switch {
		case g.chance(6):
			g.mid[i] += int64(g.r.IntN(3)) - 1
		case g.chance(2):
			// Follow the market: the best bid or ask, if any.
			for _, o := range open {
				if o.Instrument == in.ID && !o.Waiting {
					g.mid[i] = o.Price
					break
				}
			}
		}
		g.mid[i] = min(max(g.mid[i], in.BandLow+1), in.BandHigh-1)
	}
	var c core.Command
	// Weights per mille. Mass cancels and the end of day are rare so the
	// books grow to tens of orders (and hit small MaxOrders).
	p := g.r.IntN(1000)
	if len(open) > 120 && p < 630 && g.chance(40) {
		p = 630 // book large: cancel instead
	}
	switch {
	case p < 630:
		c = g.newOrder()
	case p < 730:
		c = g.cancel()
	case p < 795:
		c = g.cancelSize()
	case p < 995:
		c = g.replace()
	case p < 997:
		c = core.Command{Kind: core.CmdMassCancel}
		if g.chance(50) {
			c.Account = g.account()
		}
		if q := g.r.IntN(100); q < 55 {
			c.Instrument = g.cfg.Instruments[g.r.IntN(len(g.cfg.Instruments))].ID
		} else if q < 60 {
			c.Instrument = 999
		}
	case p < 998:
		c = core.Command{Kind: core.CmdEndOfDay, Qty: g.eodDate()}
	default:
		c = core.Command{Kind: []core.CmdKind{core.CmdNone, 100, 200}[g.r.IntN(3)], Account: g.account(), ClOrdID: 5}
	}
	if g.chance(5) {
		c = g.noise(c)
	}
	c.Tag = g.r.Uint64()
	return c
}

// noise fills the fields c's kind does not use with junk, which the engine
// must ignore (Rejected echoes some of them).
func (g *cmdGen) noise(c core.Command) core.Command {
	n := core.Command{
		Kind: c.Kind, Side: core.Side(g.r.IntN(4)), Type: core.OrderType(g.r.IntN(6)), TIF: core.TIF(g.r.IntN(6)),
		Flags: core.Flags(g.r.IntN(3)), STP: core.STPMode(g.r.IntN(6)),
		Instrument: uint32(g.r.IntN(13)), Account: g.account(), STPGroup: uint32(g.r.IntN(3)),
		ClOrdID: g.r.Uint64N(9), OrigClOrdID: g.r.Uint64N(9),
		Price: g.r.Int64N(300) - 50, StopPrice: g.r.Int64N(300) - 50, Qty: g.r.Int64N(30) - 5,
		DisplayQty: g.r.Int64N(10) - 2, MinQty: g.r.Int64N(10) - 2,
	}
	switch c.Kind {
	case core.CmdNew:
		c.OrigClOrdID = n.OrigClOrdID
		return c
	case core.CmdCancel, core.CmdCancelSize, core.CmdReplace:
		n.Account, n.OrigClOrdID, n.Instrument = c.Account, c.OrigClOrdID, c.Instrument
		if c.Kind != core.CmdCancel {
			n.Qty = c.Qty
		}
		if c.Kind == core.CmdReplace {
			n.ClOrdID, n.Price, n.StopPrice = c.ClOrdID, c.Price, c.StopPrice
		}
	case core.CmdMassCancel:
		n.Account, n.Instrument = c.Account, c.Instrument
	}
	return n
}

// eodDate returns the date of the next end of day: the weekday after the
// last one ended, or now and then a stale one (the same again) or one that
// is not a business day, which the engine refuses.
func (g *cmdGen) eodDate() int64 {
	t := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC) // a Friday: the first end of day is on Monday the 5th
	if g.ended != 0 {
		t = time.Date(int(g.ended/10000), time.Month(g.ended/100%100), int(g.ended%100), 0, 0, 0, 0, time.UTC)
	}
	switch p := g.r.IntN(100); {
	case p < 5 && g.ended != 0:
		return g.ended
	case p < 10:
		for t = t.AddDate(0, 0, 1); t.Weekday() != time.Saturday; t = t.AddDate(0, 0, 1) {
		}
		return int64(t.Year())*10000 + int64(t.Month())*100 + int64(t.Day())
	}
	for t = t.AddDate(0, 0, 1); t.Weekday() == time.Saturday || t.Weekday() == time.Sunday; t = t.AddDate(0, 0, 1) {
	}
	g.ended = int64(t.Year())*10000 + int64(t.Month())*100 + int64(t.Day())
	return g.ended
}

func (g *cmdGen) account() uint32 { return uint32(1 + g.r.IntN(g.nAcc)) }

func (g *cmdGen) inst() (int, core.Instrument) {
	i := g.r.IntN(len(g.cfg.Instruments))
	return i, g.cfg.Instruments[i]
}

func (g *cmdGen) clamp(i int, p int64) int64 {
	in := g.cfg.Instruments[i]
	return min(max(p, in.BandLow), in.BandHigh)
}

func (g *cmdGen) qty() int64 {
	switch q := g.r.IntN(100); {
	case q < 80:
		return 1 + g.r.Int64N(10)
	case q < 95:
		return 11 + g.r.Int64N(30)
	default:
		return 41 + g.r.Int64N(60)
	}
}

// limitPrice is around the instrument's moving mid: passive orders rest on
// their side, aggressive ones cross by a few ticks.
func (g *cmdGen) limitPrice(i int, s core.Side, aggressive bool) int64 {
	m := g.mid[i]
	off := g.r.Int64N(6)
	switch {
	case aggressive && s == core.Buy:
		return g.clamp(i, m+1+off)
	case aggressive:
		return g.clamp(i, m-off)
	case s == core.Buy:
		return g.clamp(i, m-off)
	default:
		return g.clamp(i, m+1+off)
	}
}

func (g *cmdGen) stopPrice(i int, s core.Side, last int64) int64 {
	if last == 0 {
		last = g.mid[i]
	}
	d := g.r.Int64N(7) - 2 // mostly away from the market, sometimes already met
	if g.stopHeavy {
		d = g.r.Int64N(14) - 3 // ladders of stops up to 10 ticks away
	}
	if s == core.Buy {
		return g.clamp(i, last+d)
	}
	return g.clamp(i, last-d)
}

// lastPrice guesses the last trade price of instrument i from the book (the
// generator only needs "near the market").
func (g *cmdGen) lastPrice(i int) int64 {
	id := g.cfg.Instruments[i].ID
	for _, o := range g.open {
		if o.Instrument == id && !o.Waiting {
			return o.Price
		}
	}
	return 0
}

func (g *cmdGen) side() core.Side { return core.Side(1 + g.r.IntN(2)) }

func (g *cmdGen) stp() core.STPMode {
	switch q := g.r.IntN(100); {
	case q < 30:
		return core.STPCancelNewest
	case q < 45:
		return core.STPCancelOldest
	case q < 55:
		return core.STPCancelBoth
	case q < 70:
		return core.STPDecrement
	default:
		return core.STPOff
	}
}

func (g *cmdGen) freshCl(a uint32) uint64 {
	g.nextCl[a]++
	return g.nextCl[a]
}

// clOrdID is a new order's reference: mostly fresh (above every reference the
// account used), sometimes a resend of the last one, an open order's, or an
// older one (refused: duplicate or stale).
func (g *cmdGen) clOrdID(a uint32) uint64 {
	switch q := g.r.IntN(100); {
	case q < 3 && g.nextCl[a] > 0:
		return g.nextCl[a] // a resend of the last reference
	case q < 5 && len(g.byAcct[a]) > 0:
		return g.byAcct[a][g.r.IntN(len(g.byAcct[a]))].ClOrdID // an open order's
	case q < 8 && g.nextCl[a] > 0:
		return 1 + g.r.Uint64N(g.nextCl[a]) // maybe open, maybe closed (reuse)
	default:
		return g.freshCl(a)
	}
}

func (g *cmdGen) newOrder() core.Command {
	a := g.account()
	i, in := g.inst()
	c := core.Command{Kind: core.CmdNew, Account: a, Instrument: in.ID, Side: g.side(), STP: g.stp(), Qty: g.qty()}
	c.ClOrdID = g.clOrdID(a)
	c.STPGroup = g.group[a]
	if g.chance(5) {
		c.STPGroup = uint32(g.r.IntN(3))
	}
	switch q := g.r.IntN(100); {
	case q < 40:
		c.TIF = core.DAY
	case q < 75:
		c.TIF = core.GTC
	case q < 90:
		c.TIF = core.IOC
	default:
		c.TIF = core.FOK
	}
	quiet := g.quiet > 0
	if quiet {
		g.quiet--
	}
	switch q := g.r.IntN(100); {
	case q < 90-g.pStops || quiet && q < 100-g.pStops:
		c.Type = core.Limit
		c.Price = g.limitPrice(i, c.Side, !quiet && g.chance(g.pCross))
	case q < 100-g.pStops:
		c.Type = core.Market
	case q < 100-g.pStops/2:
		c.Type = core.Stop
		c.StopPrice = g.stopPrice(i, c.Side, g.lastPrice(i))
	default:
		c.Type = core.StopLimit
		c.StopPrice = g.stopPrice(i, c.Side, g.lastPrice(i))
		d := g.r.Int64N(5) - 1
		if c.Side == core.Sell {
			d = -d
		}
		c.Price = g.clamp(i, c.StopPrice+d)
	}
	if g.stopHeavy && !quiet && g.chance(12) {
		// A sweep: a large market or deep limit order through several
		// levels, and through the stops waiting behind them.
		c.Qty = min(20+g.r.Int64N(60), g.maxQty)
		c.StopPrice = 0
		if g.chance(40) {
			c.Type, c.Price = core.Market, 0
		} else {
			c.Type = core.Limit
			off := 6 + g.r.Int64N(10)
			if c.Side == core.Sell {
				off = -off
			}
			c.Price = g.clamp(i, g.mid[i]+off)
		}
	}
	canRest := (c.Type == core.Limit || c.Type == core.StopLimit) && (c.TIF == core.DAY || c.TIF == core.GTC)
	if canRest && g.chance(g.pIce) {
		c.Qty = 10 + g.r.Int64N(40)
		c.DisplayQty = 1 + g.r.Int64N(6)
		if g.chance(5) {
			c.DisplayQty = c.Qty
		}
	}
	if (c.Type == core.Limit || c.Type == core.Market) && g.chance(6) {
		c.MinQty = 1 + g.r.Int64N(c.Qty)
	}
	if c.Type == core.Limit && (c.TIF == core.DAY || c.TIF == core.GTC) && g.chance(10) {
		c.Flags = core.PostOnly
	}
	if c.Side == core.Sell && g.chance(50) {
		c.Mark = core.SaleMark(1 + g.r.IntN(3))
	}
	if g.chance(4) {
		g.corruptNew(&c, in)
	}
	return c
}

// corruptNew makes one field of c invalid (or a combination the spec
// forbids), so every reject reason of New comes up.
func (g *cmdGen) corruptNew(c *core.Command, in core.Instrument) {
	switch g.r.IntN(26) {
	case 25:
		c.Mark = []core.SaleMark{4, 255, core.MarkLong}[g.r.IntN(3)]
		if c.Mark == core.MarkLong {
			c.Side = core.Buy
		}
	case 0:
		c.Account = 0
	case 1:
		c.ClOrdID = 0
	case 2:
		c.Instrument = []uint32{0, 999, 8}[g.r.IntN(3)]
	case 3:
		c.Side = []core.Side{0, 3, 255}[g.r.IntN(3)]
	case 4:
		c.Type = []core.OrderType{0, 5, 255}[g.r.IntN(3)]
	case 5:
		c.TIF = []core.TIF{0, 5, 255}[g.r.IntN(3)]
	case 6:
		c.STP = core.STPMode(5 + g.r.IntN(250))
	case 7:
		c.Flags = []core.Flags{2, 0x80, core.PostOnly | 4}[g.r.IntN(3)]
	case 8:
		c.Flags = core.PostOnly
		if g.chance(50) {
			c.TIF = core.IOC
		} else {
			c.Type, c.Price, c.StopPrice = core.Market, 0, 0
		}
	case 9:
		c.Qty = -g.r.Int64N(3)
	case 10:
		c.Qty = g.maxQty + 1
	case 11:
		c.Type, c.Price, c.StopPrice = core.Limit, 0, 0
	case 12:
		c.Type, c.Price, c.StopPrice = core.Limit, -5, 0
	case 13:
		c.Type, c.StopPrice = core.Limit, 0
		c.Price = []int64{in.BandHigh + 1, in.BandLow - 1, in.BandHigh + 1000}[g.r.IntN(3)]
		if c.Price <= 0 {
			c.Price = in.BandHigh + 2
		}
	case 14:
		c.Type, c.Price, c.StopPrice = core.Market, in.BandLow, 0
	case 15:
		c.Type, c.Price, c.StopPrice = core.Limit, in.BandLow, in.BandLow
	case 16:
		c.Type, c.Price, c.StopPrice = core.Stop, 0, 0
	case 17:
		c.Type, c.Price = core.Stop, 0
		c.StopPrice = []int64{in.BandHigh + 1, in.BandLow - 1, -3}[g.r.IntN(3)]
	case 18:
		c.DisplayQty = -1 - g.r.Int64N(2)
	case 19:
		c.DisplayQty = c.Qty + 1
	case 20:
		c.DisplayQty = 1
		c.TIF = core.IOC
	case 21:
		c.DisplayQty = 1
		c.Type, c.Price, c.StopPrice = core.Market, 0, 0
	case 22:
		c.MinQty = -1
	case 23:
		c.MinQty = c.Qty + 1
	default:
		c.MinQty = 1
		c.Type, c.Price, c.StopPrice = core.Stop, 0, in.BandLow
	}
}

// target picks an open order most of the time, else a made-up one.
func (g *cmdGen) target() (core.OrderState, bool) {
	if len(g.open) > 0 && g.chance(88) {
		return g.open[g.r.IntN(len(g.open))], true
	}
	a := g.account()
	return core.OrderState{Account: a, OrderID: 1 + g.r.Uint64N(g.maxOID+3), ClOrdID: 1 + g.r.Uint64N(g.nextCl[a]+3)}, false
}

// lookupFields sets Account, OrderID, OrigClOrdID and Instrument of an
// order command aimed at o, as a gateway would, sometimes wrong.
func (g *cmdGen) lookupFields(c *core.Command, o core.OrderState) {
	c.Account, c.OrderID, c.OrigClOrdID = o.Account, o.OrderID, o.ClOrdID
	switch q := g.r.IntN(100); {
	case q < 2:
		c.OrigClOrdID++ // a stale reference for this order
	case q < 3 && len(g.open) > 0:
		c.OrderID = g.open[g.r.IntN(len(g.open))].OrderID // another order, maybe another account's
	case q < 4:
		c.OrderID = 0
	case q < 20:
		c.Instrument = o.Instrument
	case q < 23:
		_, in := g.inst()
		c.Instrument = in.ID // may mismatch
	case q < 24:
		c.Instrument = 999
	case q < 25:
		c.Account = 0
	}
}

func (g *cmdGen) cancel() core.Command {
	o, _ := g.target()
	c := core.Command{Kind: core.CmdCancel}
	g.lookupFields(&c, o)
	return c
}

func (g *cmdGen) cancelSize() core.Command {
	o, _ := g.target()
	c := core.Command{Kind: core.CmdCancelSize}
	g.lookupFields(&c, o)
	open := o.Shown + o.Hidden
	if open > 1 && g.chance(85) {
		c.Qty = 1 + g.r.Int64N(open-1)
	} else {
		c.Qty = g.r.Int64N(open + 2)
	}
	return c
}

func (g *cmdGen) replace() core.Command {
	o, real := g.target()
	c := core.Command{Kind: core.CmdReplace}
	g.lookupFields(&c, o)
	switch q := g.r.IntN(100); {
	case q < 4:
		c.ClOrdID = o.ClOrdID // keeps its own: refused as reused
	case q < 7 && len(g.byAcct[o.Account]) > 0:
		c.ClOrdID = g.byAcct[o.Account][g.r.IntN(len(g.byAcct[o.Account]))].ClOrdID
	case q < 9:
		c.ClOrdID = 0
	default:
		c.ClOrdID = g.freshCl(o.Account)
	}
	i := 0
	if real {
		i = slices.IndexFunc(g.cfg.Instruments, func(in core.Instrument) bool { return in.ID == o.Instrument })
	} else {
		o.Type, o.Side = core.Limit, g.side()
		o.Price = g.limitPrice(i, o.Side, false)
	}
	if o.Type == core.Limit || o.Type == core.StopLimit {
		c.Price = o.Price
		if g.chance(65) {
			c.Price = g.limitPrice(i, o.Side, g.chance(25))
		}
	}
	if o.Type == core.Stop || o.Type == core.StopLimit {
		c.StopPrice = o.StopPrice
		if g.chance(40) {
			c.StopPrice = g.stopPrice(i, o.Side, g.lastPrice(i))
		}
	}
	open := o.Shown + o.Hidden
	if open > 0 && g.chance(40) {
		c.Qty = 1 + g.r.Int64N(open)
	} else {
		c.Qty = g.qty()
	}
	if g.chance(4) {
		in := g.cfg.Instruments[i]
		switch g.r.IntN(7) {
		case 0:
			c.Qty = 0
		case 1:
			c.Qty = g.maxQty + 1
		case 2:
			c.Price = in.BandHigh + 1
		case 3:
			c.Price = 0
		case 4:
			c.Price = in.BandLow // a price on a Stop, or a valid one
		case 5:
			c.StopPrice = in.BandLow // a stop price on a Limit, or a valid one
		default:
			c.StopPrice = 0
		}
	}
	return c
}

// ---- formatting and diffs ----

// nonZeroFields prints the named, non-zero fields of a struct (enums by their
// String methods).
func nonZeroFields(v any, skip ...string) string {
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	var b strings.Builder
	for i := range rt.NumField() {
		f := rt.Field(i)
		fv := rv.Field(i)
		if f.Name == "_" || slices.Contains(skip, f.Name) || fv.IsZero() {
			continue
		}
		fmt.Fprintf(&b, " %s=%v", f.Name, fv.Interface())
	}
	return b.String()
}

func fmtCmd(c core.Command) string {
	return fmt.Sprint(c.Kind) + "{" + strings.TrimSpace(nonZeroFields(c, "Kind", "Time")) + "}"
}

func fmtEvent(e core.Event) string {
	return fmt.Sprint(e.Kind) + "{" + strings.TrimSpace(nonZeroFields(e, "Kind", "Seq", "Time", "Tag")) + "}"
}

func fmtEvents(es []core.Event) string {
	var b strings.Builder
	for i, e := range es {
		fmt.Fprintf(&b, "\n    %2d %s", i, fmtEvent(e))
	}
	if len(es) == 0 {
		b.WriteString(" (none)")
	}
	return b.String()
}

func fmtConfig(c core.Config) string {
	var b strings.Builder
	for _, in := range c.Instruments {
		fmt.Fprintf(&b, "instrument %d [%d,%d] ", in.ID, in.BandLow, in.BandHigh)
	}
	fmt.Fprintf(&b, "MaxOrders=%d MaxOrderQty=%d EventBatch=%d", c.MaxOrders, c.MaxOrderQty, c.EventBatch)
	return b.String()
}

// fieldDiff lists the fields in which a and b (same struct type) differ.
func fieldDiff(a, b any) string {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	var out []string
	for i := range va.NumField() {
		f := va.Type().Field(i)
		if f.Name == "_" {
			continue
		}
		if x, y := va.Field(i).Interface(), vb.Field(i).Interface(); x != y {
			out = append(out, fmt.Sprintf("%s: %v vs %v", f.Name, x, y))
		}
	}
	return strings.Join(out, ", ")
}

func diffEvents(got, want []core.Event, gotName, wantName string) string {
	if slices.Equal(got, want) {
		return ""
	}
	var b strings.Builder
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	switch {
	case i < len(got) && i < len(want):
		fmt.Fprintf(&b, "  first difference at event %d (%s vs %s): %s\n", i, gotName, wantName, fieldDiff(got[i], want[i]))
	case i < len(got):
		fmt.Fprintf(&b, "  %s has %d extra events from event %d\n", gotName, len(got)-i, i)
	default:
		fmt.Fprintf(&b, "  %s lacks %d events from event %d\n", gotName, len(want)-i, i)
	}
	fmt.Fprintf(&b, "  %s:%s\n  %s:%s", gotName, fmtEvents(got), wantName, fmtEvents(want))
	return b.String()
}

func diffOpen(got, want []core.OrderState) string {
	if slices.Equal(got, want) {
		return ""
	}
	var b strings.Builder
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	if i < len(got) && i < len(want) {
		fmt.Fprintf(&b, "  first difference at position %d (engine vs model): %s\n", i, fieldDiff(got[i], want[i]))
	} else {
		fmt.Fprintf(&b, "  engine has %d open orders, model %d; first %d agree\n", len(got), len(want), i)
	}
	for _, side := range []struct {
		n  string
		os []core.OrderState
	}{{"engine", got}, {"model", want}} {
		fmt.Fprintf(&b, "  %s:", side.n)
		for j := max(0, i-3); j < min(len(side.os), i+4); j++ {
			fmt.Fprintf(&b, "\n    %2d {%s}", j, strings.TrimSpace(nonZeroFields(side.os[j])))
		}
		b.WriteString("\n")
	}
	return b.String()
}
