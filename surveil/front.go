package surveil

import "github.com/tradecore/tradecore/core"

// firmState is the bounded state of one firm: a ring of its proprietary
// accounts' fills.
type firmState struct {
	prop [maxFills]propFill
	head int
}

type propFill struct {
	fill
	reported bool // already in a front-running alert
}

// run is a customer's parent order as the Monitor sees it: the account's
// orders in one instrument and direction, each within ParentWindow of the
// previous one.
type run struct {
	inst        uint32
	side        core.Side
	n           uint8
	checked     bool // the proprietary fills ahead of it were checked
	first, last int64
	qty         int64
	orders      [8]uint64
}

// propFill records a fill of a proprietary account.
func (m *Monitor) propFill(a *acct, ev *core.Event, s core.Side, id uint64) {
	if m.cfg.FrontRun.Disabled || !a.ref.Proprietary || a.firm == 0 {
		return
	}
	f := &m.firms[a.firm-1]
	f.prop[f.head] = propFill{fill: fill{time: ev.Time, match: ev.MatchID, order: id, account: a.ref.ID, inst: ev.Instrument, side: s}}
	f.head = (f.head + 1) % maxFills
}

// frontRun adds qty lots (a new order, or what a replace added) of customer
// account a's order to its parent order in ev's instrument and direction. Once
// the parent is large, the firm's proprietary fills in the same instrument
// and direction within Window before the parent's first order (ahead of
// it), not yet reported, are front-running.
func (m *Monitor) frontRun(a *acct, ev *core.Event, qty int64, out *Output) {
	cfg := &m.cfg.FrontRun
	if cfg.Disabled || a.ref.Proprietary || a.firm == 0 {
		return
	}
	now := ev.Time
	r := -1
	for i := range a.runs { // the live parent in this instrument and direction
		x := &a.runs[i]
		if x.qty > 0 && x.inst == ev.Instrument && x.side == ev.Side && now-x.last <= cfg.ParentWindow {
			r = i
			break
		}
	}
	if r < 0 { // a new parent, in the slot used longest ago
		r = 0
		for i := range a.runs {
			if a.runs[i].last < a.runs[r].last {
				r = i
			}
		}
		a.runs[r] = run{inst: ev.Instrument, side: ev.Side, first: now}
	}
	p := &a.runs[r]
	p.qty = satAdd(p.qty, qty)
	p.last = now
	if int(p.n) < len(p.orders) && (p.n == 0 || p.orders[p.n-1] != ev.OrderID) {
		p.orders[p.n] = ev.OrderID
		p.n++
	}
	if p.qty < cfg.LargeQty || p.checked {
		return // the fills ahead of a parent are all in the past once it is large: check once
	}
	p.checked = true
	f := &m.firms[a.firm-1]
	var al *Alert
	for k := range f.prop { // oldest first
		x := &f.prop[(f.head+k)%maxFills]
		if x.match == 0 || x.reported || x.inst != ev.Instrument || x.side != ev.Side || x.time < p.first-cfg.Window || x.time > p.first {
			continue
		}
		x.reported = true
		if al == nil {
			out.Alerts = append(out.Alerts, Alert{
				Detector:   DetectFrontRun,
				Time:       now,
				Seq:        ev.Seq,
				Instrument: ev.Instrument,
				Accounts:   [2]uint32{x.account, a.ref.ID},
				Firm:       a.ref.Firm,
				Action:     cfg.Action,
				Report:     cfg.Report,
				Qty:        p.qty,
			})
			al = &out.Alerts[len(out.Alerts)-1]
		}
		al.addOrder(x.order)
		al.addMatch(x.match)
		if pa := m.acct(x.account); pa != nil {
			m.act(pa, cfg.Action, now, out)
		}
	}
	if al != nil {
		for _, id := range p.orders[:p.n] {
			al.addOrder(id)
		}
	}
}
