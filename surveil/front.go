package surveil

import "github.com/tradecore/tradecore/core"

// firmState is the bounded state of one firm: a ring of its proprietary
// accounts' fills.
type firmState struct {
	prop [maxFills]fill
	head int
}

// propFill records a fill of a proprietary account.
func (m *Monitor) propFill(a *acct, ev *core.Event, s core.Side, id uint64) {
	if m.cfg.FrontRun.Disabled || !a.ref.Proprietary || a.firm == 0 {
		return
	}
	f := &m.firms[a.firm-1]
	f.prop[f.head] = fill{time: ev.Time, match: ev.MatchID, order: id, account: a.ref.ID, inst: ev.Instrument, side: s}
	f.head = (f.head + 1) % maxFills
}

// frontRun checks a customer's accepted order: if it is large, the firm's
// proprietary fills in the same instrument and direction within Window before
// it are front-running.
func (m *Monitor) frontRun(a *acct, ev *core.Event, out *Output) {
	cfg := &m.cfg.FrontRun
	if cfg.Disabled || a.ref.Proprietary || a.firm == 0 || ev.Qty < cfg.LargeQty {
		return
	}
	f := &m.firms[a.firm-1]
	var al *Alert
	for k := range f.prop { // oldest first
		p := &f.prop[(f.head+k)%maxFills]
		if p.match == 0 || p.inst != ev.Instrument || p.side != ev.Side || p.time < ev.Time-cfg.Window || p.time > ev.Time {
			continue
		}
		if al == nil {
			out.Alerts = append(out.Alerts, Alert{
				Detector:   DetectFrontRun,
				Time:       ev.Time,
				Seq:        ev.Seq,
				Instrument: ev.Instrument,
				Accounts:   [2]uint32{p.account, a.ref.ID},
				Firm:       a.ref.Firm,
				Action:     cfg.Action,
				Report:     cfg.Report,
			})
			al = &out.Alerts[len(out.Alerts)-1]
		}
		al.addOrder(p.order)
		al.addMatch(p.match)
		if pa := m.acct(p.account); pa != nil {
			m.act(pa, cfg.Action, out)
		}
	}
	if al != nil {
		al.addOrder(ev.OrderID)
	}
}
