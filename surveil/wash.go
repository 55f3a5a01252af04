package surveil

import "github.com/tradecore/tradecore/core"

// wash reports a fill with no change of beneficial ownership: between two
// different accounts of one non-zero beneficial owner, or between two orders
// of one account (self-trade prevention stops those unless the orders opt
// out). Self-trade prevention stops fills within an STP group; this catches
// owners who spread across accounts and groups, and opted-out self-trades.
func (m *Monitor) wash(taker, maker *acct, ev *core.Event, out *Output) {
	if taker != maker && (taker.ref.Owner == 0 || taker.ref.Owner != maker.ref.Owner) {
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
		Qty:        ev.Qty,
		Price:      ev.Price,
	}
	if taker == maker {
		al.Accounts[1] = 0
	}
	al.addOrder(ev.OrderID)
	al.addOrder(ev.ContraOrderID)
	al.addMatch(ev.MatchID)
	out.Alerts = append(out.Alerts, al)
	m.act(taker, cfg.Action, ev.Time, out)
	m.act(maker, cfg.Action, ev.Time, out)
}
