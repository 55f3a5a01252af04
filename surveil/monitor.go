package surveil

import (
	"fmt"
	"strings"

	"github.com/tradecore/tradecore/core"
)

// Detector names the pattern an Alert reports.
type Detector uint8

const (
	DetectNone     Detector = iota
	DetectWash              // "wash-trade": a fill between two accounts of one beneficial owner
	DetectLayering          // "layering": a one-sided layer, a trade on the other side, the layer cancelled
	DetectRapid             // "rapid-orders": order-to-trade or cancel-to-order ratio over the window
	DetectPumpDump          // "pump-and-dump": linked accounts buy the price up, then one of them sells
	DetectFrontRun          // "front-running": a firm's proprietary fill just before its customer's large order
	detectors
)

var detectorNames = [...]string{"none", "wash-trade", "layering", "rapid-orders", "pump-and-dump", "front-running"}

func (d Detector) String() string {
	if int(d) < len(detectorNames) {
		return detectorNames[d]
	}
	return fmt.Sprintf("detector(%d)", uint8(d))
}

// MaxEvidence is the most order ids (and cancel sequence numbers) an Alert
// carries.
const MaxEvidence = maxLayer

// Alert is one detection, a value with its evidence. Time and Seq are those of
// the event that completed the pattern (event Time, never the wall clock), so
// the same event stream always yields the same alerts.
type Alert struct {
	Detector   Detector
	Time       int64
	Seq        uint64
	Instrument uint32
	Accounts   [2]uint32 // the account(s) concerned; Accounts[1] is 0 when one
	Owner      uint32    // DetectWash, DetectPumpDump: the shared beneficial owner
	Firm       uint32    // DetectFrontRun: the firm of both accounts
	Action     Action    // what the Monitor did: ActionAlert or the command it emitted
	Report     bool      // a regulator-report record: file it with the regulator

	// Counts over the window (DetectRapid): orders, fills and client cancels.
	Orders, Fills, Cancels int64

	orders   [MaxEvidence]uint64
	cancels  [MaxEvidence]uint64
	matches  [MaxEvidence]uint64
	nOrders  uint8
	nCancels uint8
	nMatches uint8
}

// OrderIDs are the engine order ids in evidence: wash, the two crossing
// orders (taker first); layering, the layered orders; pump-and-dump, the
// linked accounts' buy orders then the sell order; front-running, the
// proprietary orders then the customer's order.
func (a *Alert) OrderIDs() []uint64 { return a.orders[:a.nOrders] }

// MatchIDs are the trades in evidence.
func (a *Alert) MatchIDs() []uint64 { return a.matches[:a.nMatches] }

// CancelSeqs are the Seq of the cancel events in evidence (layering: the
// cancels of the layered orders, in order).
func (a *Alert) CancelSeqs() []uint64 { return a.cancels[:a.nCancels] }

func (a *Alert) addOrder(id uint64) {
	if int(a.nOrders) < len(a.orders) {
		a.orders[a.nOrders] = id
		a.nOrders++
	}
}

func (a *Alert) addCancel(seq uint64) {
	if int(a.nCancels) < len(a.cancels) {
		a.cancels[a.nCancels] = seq
		a.nCancels++
	}
}

func (a *Alert) addMatch(id uint64) {
	if int(a.nMatches) < len(a.matches) {
		a.matches[a.nMatches] = id
		a.nMatches++
	}
}

// String formats the alert on one line (for logs, reports and golden files).
func (a Alert) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s seq=%d time=%d inst=%d acct=%d", a.Detector, a.Seq, a.Time, a.Instrument, a.Accounts[0])
	if a.Accounts[1] != 0 {
		fmt.Fprintf(&b, ",%d", a.Accounts[1])
	}
	if a.Owner != 0 {
		fmt.Fprintf(&b, " owner=%d", a.Owner)
	}
	if a.Firm != 0 {
		fmt.Fprintf(&b, " firm=%d", a.Firm)
	}
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
	// engine's inbound ring; the sequencer stamps Seq and Time.
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
	last  []int64 // instrument id -> last trade price (0 = none yet)

	owners []ownerState // one per distinct non-zero owner of the configured accounts
	firms  []firmState  // one per distinct non-zero firm
}

// acct is the bounded state of one watched account.
type acct struct {
	ref   Ref
	acted [actions]bool // commands already emitted (cleared when an admin event undoes them)
	open  [3]int32      // open orders per core.Side

	layer  [maxLayer]cand // ring of layer candidates, oldest overwritten
	head   int
	pend   pending
	rapid  [rapidBuckets]bucket
	rquiet int64 // no rapid alert before this Time

	owner int32 // index in Monitor.owners + 1 (0 = owner unknown)
	firm  int32 // index in Monitor.firms + 1 (0 = no firm)
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
		cfg:   cfg,
		slot:  make([]int32, maxID+1),
		accts: make([]acct, len(cfg.Accounts)),
		last:  make([]int64, core.MaxInstrumentID+1),
	}
	owners, firms := map[uint32]int32{}, map[uint32]int32{}
	for i, a := range cfg.Accounts {
		m.slot[a.ID] = int32(i + 1)
		m.accts[i].ref = a
		if a.Owner != 0 {
			if owners[a.Owner] == 0 {
				owners[a.Owner] = int32(len(owners) + 1)
			}
			m.accts[i].owner = owners[a.Owner]
		}
		if a.Firm != 0 {
			if firms[a.Firm] == 0 {
				firms[a.Firm] = int32(len(firms) + 1)
			}
			m.accts[i].firm = firms[a.Firm]
		}
	}
	m.owners = make([]ownerState, len(owners))
	m.firms = make([]firmState, len(firms))
	m.cfg.Accounts = nil // the refs live in accts
	return m, nil
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
// appends alerts and commands to out. Call it with every batch of the stream,
// in order and without gaps; state expires by event Time.
func (m *Monitor) Observe(batch []core.Event, out *Output) {
	for i := range batch {
		ev := &batch[i]
		switch ev.Kind {
		case core.KindAccepted:
			if a := m.acct(ev.Account); a != nil {
				a.open[ev.Side&3]++
				m.layerExpire(a, ev.Time)
				m.layerAccepted(a, ev)
				m.frontRun(a, ev, out)
				m.rapidCount(a, ev, out, 1, 0, 0)
			}
		case core.KindReplaced:
			if a := m.acct(ev.Account); a != nil {
				m.rapidCount(a, ev, out, 1, 0, 0)
			}
		case core.KindExecuted:
			m.executed(ev, out)
		case core.KindCancelled, core.KindExpired:
			if a := m.acct(ev.Account); a != nil {
				a.open[ev.Side&3]--
				m.layerClosed(a, ev, out)
				if ev.Reason == core.CancelRequested {
					m.rapidCount(a, ev, out, 0, 0, 1)
				}
			}
		case core.KindReduced:
			if a := m.acct(ev.Account); a != nil && ev.Reason == core.CancelRequested {
				m.rapidCount(a, ev, out, 0, 0, 1)
			}
		case core.KindAdmin:
			m.admin(ev)
		}
	}
}

func (m *Monitor) executed(ev *core.Event, out *Output) {
	var prev int64 // the last trade price before this fill
	if int(ev.Instrument) < len(m.last) {
		prev = m.last[ev.Instrument]
		m.last[ev.Instrument] = ev.Price
	}
	taker, maker := m.acct(ev.Account), m.acct(ev.ContraAccount)
	if !m.cfg.Wash.Disabled && taker != nil && maker != nil {
		m.wash(taker, maker, ev, out)
	}
	if taker != nil {
		m.traded(taker, ev, ev.Side, ev.OrderID, ev.Leaves, prev, out)
	}
	if maker != nil {
		m.traded(maker, ev, ev.Side.Opposite(), ev.ContraOrderID, ev.ContraLeaves, prev, out)
	}
}

// traded handles one side of a fill for account a, whose order id traded on
// side s with leaves open lots left; prev is the last trade price before it.
func (m *Monitor) traded(a *acct, ev *core.Event, s core.Side, id uint64, leaves, prev int64, out *Output) {
	m.layerExpire(a, ev.Time)
	m.layerTraded(a, ev, s, id)
	m.pumpFill(a, ev, s, id, prev, out)
	m.propFill(a, ev, s, id)
	if leaves == 0 {
		a.open[s&3]--
	}
	m.rapidCount(a, ev, out, 0, 1, 0)
}

// admin clears the record of an action the operator has since undone, so the
// next detection acts again.
func (m *Monitor) admin(ev *core.Event) {
	a := m.acct(ev.Account)
	if a == nil {
		return
	}
	switch ev.Reason {
	case core.AdminAccountStatus:
		a.acted[ActionSuspend] = ev.Qty == int64(core.AccountSuspended)
	case core.AdminKillRelease:
		a.acted[ActionKill] = false
	case core.AdminSetLimit:
		if core.LimitID(ev.OrigClOrdID) == core.LimitOrdersPerSec {
			a.acted[ActionThrottle] = ev.Qty == m.cfg.ThrottleOrdersPerSec
		}
	}
}

// act emits the command of action for account a, once until undone.
func (m *Monitor) act(a *acct, action Action, out *Output) {
	if action <= ActionAlert || a.acted[action] {
		return
	}
	a.acted[action] = true
	c := core.Command{Account: a.ref.ID, Tag: m.cfg.Tag}
	switch action {
	case ActionThrottle:
		c.Kind, c.OrigClOrdID, c.Qty = core.CmdSetLimit, uint64(core.LimitOrdersPerSec), m.cfg.ThrottleOrdersPerSec
	case ActionSuspend:
		c.Kind, c.Qty = core.CmdAccountStatus, int64(core.AccountSuspended)
	case ActionKill:
		c.Kind = core.CmdKill
	}
	out.Commands = append(out.Commands, c)
}
