package surveil

import "github.com/tradecore/tradecore/core"

// wash reports a fill between two different accounts of one beneficial
// owner. Self-trade prevention stops fills within one account or one STP
// group; this catches owners who spread across accounts (or groups).
func (m *Monitor) wash(taker, maker *acct, ev *core.Event, out *Output) {
	if taker == maker || taker.ref.Owner == 0 || taker.ref.Owner != maker.ref.Owner {
		return
	}
	cfg := &m.cfg.Wash
	al := Alert{
		Detector:   DetectWash,
		Time:       ev.Time,
		Seq:        ev.Seq,
		Instrument: ev.Instrument,
		Accounts:   [2]uint32{taker.ref.ID, maker.ref.ID},
		Owner:      taker.ref.Owner,
		Action:     cfg.Action,
		Report:     cfg.Report,
	}
	al.addOrder(ev.OrderID)
	al.addOrder(ev.ContraOrderID)
	al.addMatch(ev.MatchID)
	out.Alerts = append(out.Alerts, al)
	m.act(taker, cfg.Action, out)
	m.act(maker, cfg.Action, out)
}
