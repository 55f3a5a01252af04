package surveil

import (
	"fmt"
	"math"
	"strings"

	"github.com/tradecore/tradecore/core"
)

// Detector names the pattern an Alert reports. Values are stable (they will
// be encoded in engine events): new detectors are added at the end.
type Detector uint8

const (
	DetectNone      Detector = iota
	DetectWash               // "wash-trade": a fill between two accounts of one beneficial owner, or within one account
	DetectLayering           // "layering": a layer on one side, a trade on the other, the layer withdrawn
	DetectRapid              // "rapid-orders": order-to-trade or cancel-to-order ratio over the window
	DetectPumpDump           // "pump-and-dump": linked accounts buy the price up, then one of them sells
	DetectFrontRun           // "front-running": a firm's proprietary fill just before or during its customer's large order
	DetectSpoofing           // "spoofing": the layering pattern with one (or fewer than Layering.MinOrders) large orders
	DetectRamp               // "momentum-ignition": one account pushes the price through levels, then trades against the move
	DetectMarkClose          // "marking-the-close": one account's fills made most of a move of the closing price
	detectors
)

var detectorNames = [...]string{"none", "wash-trade", "layering", "rapid-orders", "pump-and-dump", "front-running",
	"spoofing", "momentum-ignition", "marking-the-close"}

func (d Detector) String() string {
	if int(d) < len(detectorNames) {
		return detectorNames[d]
	}
	return fmt.Sprintf("detector(%d)", uint8(d))
}

// MaxEvidence is the most order ids, match ids and cancel sequence numbers an
// Alert carries (each).
const MaxEvidence = 32

// Evidence are the ids an alert rests on, in fixed arrays so that an Alert is
// a fixed-size value without pointers; the first N of each array are used.
type Evidence struct {
	NOrders, NMatches, NCancels uint8
	OrderIDs                    [MaxEvidence]uint64 // engine order ids
	MatchIDs                    [MaxEvidence]uint64 // engine match ids of the trades
	CancelSeqs                  [MaxEvidence]uint64 // Seq of the events withdrawing orders
}

// Alert is one detection: a fixed-size value without pointers, with its
// evidence, so it can be copied into a fixed-size record. Time and Seq are
// those of the event that completed the pattern (event Time, never the wall
// clock), so the same event stream always yields the same alerts.
// docs/surveillance.md gives each field's meaning per detector.
type Alert struct {
	Detector   Detector
	Action     Action // what the Monitor did: ActionAlert or the command it submitted
	Report     bool   // a regulator-report record: file it with the regulator
	Time       int64
	Seq        uint64
	Instrument uint32
	Accounts   [2]uint32 // the account(s) concerned; Accounts[1] is 0 when one
	Owner      uint32    // the beneficial owner linking the accounts (0 = none)
	Firm       uint32    // DetectFrontRun: the firm of both accounts

	// Lots.
	Qty       int64 // layering, spoofing: the layer; front-running: the customer's (parent) order; ramp, close: the account's pushing fills; wash: the fill
	Traded    int64 // layering, spoofing: genuine interest on the other side; ramp: the fill against the move
	Withdrawn int64 // layering, spoofing: net lots withdrawn from the layer
	// Prices in ticks.
	Ref    int64 // ramp, close, pump-and-dump: the price before the move
	Price  int64 // ramp: the fill against the move; close: the closing price; pump-and-dump: the sell
	Push   int64 // ramp, close: ticks the account's own fills moved the price (signed: + up)
	Levels int64 // ramp: the account's fills that each moved the price

	// Counts over the window (DetectRapid): orders, fills and client cancels.
	Orders, Fills, Cancels int64

	Evidence Evidence
}

// OrderIDs are the engine order ids in evidence (per detector, see
// docs/surveillance.md).
func (a *Alert) OrderIDs() []uint64 { return a.Evidence.OrderIDs[:a.Evidence.NOrders] }

// MatchIDs are the trades in evidence.
func (a *Alert) MatchIDs() []uint64 { return a.Evidence.MatchIDs[:a.Evidence.NMatches] }

// CancelSeqs are the Seq of the withdrawal events in evidence (layering and
// spoofing: the cancels, cancels-to-size and replaces of the layer, in order).
func (a *Alert) CancelSeqs() []uint64 { return a.Evidence.CancelSeqs[:a.Evidence.NCancels] }

func (a *Alert) addOrder(id uint64) {
	e := &a.Evidence
	if int(e.NOrders) < len(e.OrderIDs) {
		for _, x := range e.OrderIDs[:e.NOrders] {
			if x == id {
				return
			}
		}
		e.OrderIDs[e.NOrders] = id
		e.NOrders++
	}
}

func (a *Alert) addCancel(seq uint64) {
	e := &a.Evidence
	if int(e.NCancels) < len(e.CancelSeqs) {
		e.CancelSeqs[e.NCancels] = seq
		e.NCancels++
	}
}

func (a *Alert) addMatch(id uint64) {
	e := &a.Evidence
	if int(e.NMatches) < len(e.MatchIDs) {
		e.MatchIDs[e.NMatches] = id
		e.NMatches++
	}
}

// String formats the alert on one line (for logs, reports and golden files).
func (a Alert) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s seq=%d time=%d inst=%d acct=%d", a.Detector, a.Seq, a.Time, a.Instrument, a.Accounts[0])
	if a.Accounts[1] != 0 {
		fmt.Fprintf(&b, ",%d", a.Accounts[1])
	}
	num := func(name string, v int64) {
		if v != 0 {
			fmt.Fprintf(&b, " %s=%d", name, v)
		}
	}
	num("owner", int64(a.Owner))
	num("firm", int64(a.Firm))
	num("qty", a.Qty)
	num("traded", a.Traded)
	num("withdrawn", a.Withdrawn)
	num("ref", a.Ref)
	num("price", a.Price)
	num("push", a.Push)
	num("levels", a.Levels)
	list := func(name string, ids []uint64) {
		if len(ids) > 0 {
			fmt.Fprintf(&b, " %s=", name)
			for i, id := range ids {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%d", id)
			}
		}
	}
	list("orders", a.OrderIDs())
	list("matches", a.MatchIDs())
	list("cancel-seqs", a.CancelSeqs())
	if a.Detector == DetectRapid {
		fmt.Fprintf(&b, " window-orders=%d fills=%d cancels=%d", a.Orders, a.Fills, a.Cancels)
	}
	fmt.Fprintf(&b, " action=%s", a.Action)
	if a.Report {
		b.WriteString(" report")
	}
	return b.String()
}

// Output collects what Observe found. Reuse one Output and call Reset after
// handling it: its slices keep their capacity, so steady state does not
// allocate.
type Output struct {
	Alerts []Alert
	// Commands are admin commands (throttle, suspend, kill) to push into the
	// engine, only when Config.Submit is nil; the sequencer stamps Seq and
	// Time. A command that does not take effect within Retry.Confirm appears
	// here again.
	Commands []core.Command
}

// Reset empties o, keeping its capacity.
func (o *Output) Reset() {
	o.Alerts = o.Alerts[:0]
	o.Commands = o.Commands[:0]
}

// Monitor runs the detectors over the engine's event stream. It is not safe
// for concurrent use: one goroutine (the consumer of the outbound ring) owns
// it. It holds no resources and needs no closing.
type Monitor struct {
	cfg   Config
	slot  []int32 // account id -> index in accts + 1 (0 = not watched)
	accts []acct
	ents  []entity    // traders: one per distinct non-zero owner, one per owner-less account
	insts []instState // by instrument id

	owners []ownerState // one per distinct non-zero owner of the configured accounts
	firms  []firmState  // one per distinct non-zero firm

	// Deadlines by event Time: layering decisions and the close.
	due      int64
	decide   []patRef // patterns whose decision is pending
	closeEnd int64    // the next close (0 = not yet known)

	// Actions waiting for their effect, by the caller's engine time.
	retry   []retryRef
	retryAt int64
	alerts  []alertRec // alerts waiting for their KindAlert event (record.go)

	stats Stats
	cmd   core.Command // the command being submitted
}

// instState is the state kept per instrument id.
type instState struct {
	last     int64 // last trade price (0 = none yet)
	ref      int64 // marking the close: the last trade price before the closing window
	refClose int64 // the close ref belongs to
}

// acct is the bounded state of one watched account.
type acct struct {
	ref   Ref
	act   [actions]actState
	rapid rapidWin
	runs  [maxRuns]run

	rquiet int64 // no rapid alert before this Time
	ent    int32 // index in Monitor.ents
	owner  int32 // index in Monitor.owners + 1 (0 = owner unknown)
	firm   int32 // index in Monitor.firms + 1 (0 = no firm)
}

// New returns a Monitor for cfg, with defaults filled. The error wraps
// ErrConfig and names the field to fix.
func New(cfg Config) (*Monitor, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	maxID := uint32(0)
	for _, a := range cfg.Accounts {
		maxID = max(maxID, a.ID)
	}
	m := &Monitor{
		cfg:     cfg,
		slot:    make([]int32, maxID+1),
		accts:   make([]acct, len(cfg.Accounts)),
		insts:   make([]instState, core.MaxInstrumentID+1),
		retry:   make([]retryRef, 0, int(actions)*len(cfg.Accounts)),
		alerts:  make([]alertRec, 0, cfg.MaxPendingAlerts),
		retryAt: math.MaxInt64,
		due:     math.MinInt64,
	}
	owners, firms, ents := map[uint32]int32{}, map[uint32]int32{}, map[uint32]int32{}
	nents := int32(0)
	for i, a := range cfg.Accounts {
		m.slot[a.ID] = int32(i + 1)
		ac := &m.accts[i]
		ac.ref = a
		if a.Owner != 0 {
			if owners[a.Owner] == 0 {
				owners[a.Owner] = int32(len(owners) + 1)
			}
			ac.owner = owners[a.Owner]
			if ents[a.Owner] == 0 {
				nents++
				ents[a.Owner] = nents
			}
			ac.ent = ents[a.Owner] - 1
		} else {
			ac.ent = nents
			nents++
		}
		if a.Firm != 0 {
			if firms[a.Firm] == 0 {
				firms[a.Firm] = int32(len(firms) + 1)
			}
			ac.firm = firms[a.Firm]
		}
	}
	m.owners = make([]ownerState, len(owners))
	m.firms = make([]firmState, len(firms))
	m.ents = make([]entity, nents)
	for i := range m.accts {
		m.ents[m.accts[i].ent].owner = m.accts[i].ref.Owner
	}
	m.decide = make([]patRef, 0, int(nents)*maxPatterns)
	m.cfg.Accounts = nil // the refs live in accts
	return m, nil
}

// Disabled lists the detectors the configuration turned off, for the caller
// to log at start (every detector is on unless its Disabled is set).
func (m *Monitor) Disabled() []Detector {
	var d []Detector
	c := &m.cfg
	for _, x := range []struct {
		off bool
		det Detector
	}{{c.Wash.Disabled, DetectWash}, {c.Layering.Disabled, DetectLayering}, {c.Rapid.Disabled, DetectRapid},
		{c.PumpDump.Disabled, DetectPumpDump}, {c.FrontRun.Disabled, DetectFrontRun}, {c.Spoofing.Disabled, DetectSpoofing},
		{c.Ramp.Disabled, DetectRamp}, {c.MarkClose.Disabled, DetectMarkClose}} {
		if x.off {
			d = append(d, x.det)
		}
	}
	return d
}

func (m *Monitor) acct(id uint32) *acct {
	if int(id) < len(m.slot) {
		if s := m.slot[id]; s != 0 {
			return &m.accts[s-1]
		}
	}
	return nil
}

// Observe runs every enabled detector over batch, events in engine order, and
// appends alerts (and, without Config.Submit, commands) to out. Call it with
// every batch of the stream, in order and without gaps; state expires by
// event Time. Actions decided here are submitted here; actions still waiting
// for their effect are re-submitted when due, by the Time of the batch's last
// event (see Tick for an idle stream).
func (m *Monitor) Observe(batch []core.Event, out *Output) {
	from := len(out.Alerts)
	for i := range batch {
		ev := &batch[i]
		if ev.Time >= m.due {
			m.runDue(ev.Time, out)
		}
		switch ev.Kind {
		case core.KindAccepted:
			if a := m.acct(ev.Account); a != nil {
				m.accepted(a, ev, out)
			}
		case core.KindReplaced:
			if a := m.acct(ev.Account); a != nil {
				m.replaced(a, ev, out)
			}
		case core.KindExecuted:
			m.executed(ev, out)
		case core.KindCancelled, core.KindExpired:
			if a := m.acct(ev.Account); a != nil {
				m.closed(a, ev, out)
			}
		case core.KindReduced:
			if a := m.acct(ev.Account); a != nil {
				m.reduced(a, ev, out)
			}
		case core.KindAdmin:
			m.admin(ev)
		case core.KindAlert:
			m.alertSeen(ev)
		}
	}
	n := len(batch)
	if n > 0 && len(out.Alerts) > from {
		m.recordAlerts(out, from, batch[n-1].Time)
	}
	if n > 0 && batch[n-1].Time >= m.retryAt {
		m.resubmit(batch[n-1].Time, out)
	}
}

func (m *Monitor) accepted(a *acct, ev *core.Event, out *Output) {
	m.rapidCount(a, ev, out, ev.Side, 0, 0)
	m.frontRun(a, ev, ev.Qty, out)
	if ev.Type == core.Limit && (ev.TIF == core.DAY || ev.TIF == core.GTC) && ev.OrderID != 0 {
		m.ents[a.ent].track(m, a.ref.ID, ev)
	}
}

func (m *Monitor) replaced(a *acct, ev *core.Event, out *Output) {
	m.rapidCount(a, ev, out, ev.Side, 0, 0)
	e := &m.ents[a.ent]
	i := e.find(ev.OrderID)
	if i < 0 {
		return
	}
	old := e.ord(i)
	if grow := ev.Leaves - old.open; grow > 0 {
		m.frontRun(a, ev, grow, out)
	}
	e.price[i], e.open[i] = ev.Price, ev.Leaves
	if e.live != 0 && (worse(old.side, ev.Price, old.price) || ev.Leaves < old.open) {
		m.layerWithdrawn(a.ent, &old, ev)
	}
}

func (m *Monitor) executed(ev *core.Event, out *Output) {
	var prev int64 // the last trade price before this fill
	if int(ev.Instrument) < len(m.insts) {
		is := &m.insts[ev.Instrument]
		prev = is.last
		is.last = ev.Price
		m.markPrint(is, ev, prev)
	}
	taker, maker := m.acct(ev.Account), m.acct(ev.ContraAccount)
	if !m.cfg.Wash.Disabled && taker != nil && maker != nil {
		m.wash(taker, maker, ev, out)
	}
	if taker != nil {
		m.traded(taker, ev, ev.Side, ev.OrderID, ev.Leaves, prev, true, out)
	}
	if maker != nil {
		m.traded(maker, ev, ev.Side.Opposite(), ev.ContraOrderID, ev.ContraLeaves, prev, false, out)
	}
}

// traded handles one side of a fill for account a, whose order id traded on
// side s with leaves open lots left; prev is the last trade price before it;
// taker says whether a's order was the aggressor.
func (m *Monitor) traded(a *acct, ev *core.Event, s core.Side, id uint64, leaves, prev int64, taker bool, out *Output) {
	e := &m.ents[a.ent]
	if i := e.find(id); i >= 0 {
		if e.live != 0 {
			o := e.ord(i)
			m.layerGone(e, &o, ev.Qty)
		}
		e.open[i] = leaves
		if leaves == 0 {
			e.remove(i)
		}
	}
	m.layerArm(e, a, ev, s)
	m.pumpFill(a, ev, s, id, prev, out)
	m.propFill(a, ev, s, id)
	m.rampFill(e, a, ev, s, id, prev, taker, out)
	if taker {
		m.markFill(e, a, ev, prev)
	}
	m.rapidCount(a, ev, out, core.SideNone, 1, 0)
}

// closed handles a cancel or expiry of account a's order.
func (m *Monitor) closed(a *acct, ev *core.Event, out *Output) {
	client := ev.Kind == core.KindCancelled && (ev.Reason == core.CancelRequested || ev.Reason == core.CancelMass)
	if ev.Reason == core.CancelRequested {
		m.rapidCount(a, ev, out, core.SideNone, 0, 1)
	}
	e := &m.ents[a.ent]
	i := e.find(ev.OrderID)
	if i < 0 {
		return
	}
	if e.live == 0 {
		e.remove(i)
		return
	}
	o := e.ord(i)
	e.remove(i)
	if client {
		m.layerWithdrawn(a.ent, &o, ev)
	} else {
		m.layerGone(e, &o, o.open)
	}
}

// reduced handles a cancel-to-size (or an STP decrement) of account a's order.
func (m *Monitor) reduced(a *acct, ev *core.Event, out *Output) {
	if ev.Reason == core.CancelRequested {
		m.rapidCount(a, ev, out, core.SideNone, 0, 1)
	}
	e := &m.ents[a.ent]
	i := e.find(ev.OrderID)
	if i < 0 {
		return
	}
	if e.live == 0 {
		e.open[i] = ev.Leaves
		return
	}
	o := e.ord(i)
	e.open[i] = ev.Leaves
	if ev.Reason == core.CancelRequested {
		m.layerWithdrawn(a.ent, &o, ev)
	} else {
		m.layerGone(e, &o, ev.Qty)
	}
}

// runDue handles the deadlines that event Time now has reached: the close
// and pending layering decisions.
func (m *Monitor) runDue(now int64, out *Output) {
	if now >= m.closeEnd {
		if m.closeEnd != 0 {
			m.markClose(m.closeEnd, out)
		}
		m.closeEnd = m.nextClose(now)
	}
	due := m.closeEnd
	for i := 0; i < len(m.decide); {
		r := m.decide[i]
		p := &m.ents[r.ent].pats[r.pat]
		if p.decideAt <= now {
			m.layerDecide(&m.ents[r.ent], int(r.pat), out)
			m.decide[i] = m.decide[len(m.decide)-1]
			m.decide = m.decide[:len(m.decide)-1]
			continue
		}
		due = min(due, p.decideAt)
		i++
	}
	m.due = due
}

// worse reports whether price p is less aggressive than q for side s (lower
// for a buy, higher for a sell).
func worse(s core.Side, p, q int64) bool {
	if s == core.Buy {
		return p < q
	}
	return p > q
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
