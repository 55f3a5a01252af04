package surveil

import "github.com/tradecore/tradecore/core"

// rapidBuckets is the number of buckets the sliding window is cut into: the
// window slides in steps of Window/rapidBuckets.
const rapidBuckets = 10

type bucket struct {
	idx           int64 // Time / (Window/rapidBuckets) this bucket counts
	buys, sells   int32 // accepted new orders and replaces per side
	fills, cancel int32
}

// rapidCount adds to account a's counts at ev.Time (an order on side, when
// side is not SideNone) and, when orders or cancels grew, checks the
// thresholds over the window.
//
// One-sided flow (at least OneSidedPct of the orders on one side) is held to
// MaxOrderToTrade and CancelPct; two-sided flow — quoting, where re-pricing
// both quotes many times per fill is normal — only to TwoSidedOrderToTrade.
func (m *Monitor) rapidCount(a *acct, ev *core.Event, out *Output, side core.Side, fills, cancels int32) {
	cfg := &m.cfg.Rapid
	if cfg.Disabled {
		return
	}
	width := cfg.Window / rapidBuckets
	idx := ev.Time / width
	b := &a.rapid[idx%rapidBuckets]
	if b.idx != idx {
		*b = bucket{idx: idx}
	}
	switch side {
	case core.Buy:
		b.buys++
	case core.Sell:
		b.sells++
	}
	b.fills += fills
	b.cancel += cancels
	if fills > 0 || ev.Time < a.rquiet {
		return
	}
	var nb, ns, nf, nc int64
	for i := range a.rapid {
		if w := &a.rapid[i]; w.idx > idx-rapidBuckets && w.idx <= idx {
			nb, ns, nf, nc = nb+int64(w.buys), ns+int64(w.sells), nf+int64(w.fills), nc+int64(w.cancel)
		}
	}
	no := nb + ns
	if no < int64(cfg.MinOrders) {
		return
	}
	if max(nb, ns)*100 >= int64(cfg.OneSidedPct)*no {
		if mulGE(int64(cfg.MaxOrderToTrade), max(nf, 1), no, 1) && nc*100 < int64(cfg.CancelPct)*no {
			return
		}
	} else if mulGE(int64(cfg.TwoSidedOrderToTrade), max(nf, 1), no, 1) {
		return
	}
	a.rquiet = ev.Time + cfg.Window
	out.Alerts = append(out.Alerts, Alert{
		Detector:   DetectRapid,
		Time:       ev.Time,
		Seq:        ev.Seq,
		Instrument: ev.Instrument,
		Accounts:   [2]uint32{a.ref.ID},
		Action:     cfg.Action,
		Report:     cfg.Report,
		Orders:     no,
		Fills:      nf,
		Cancels:    nc,
	})
	m.act(a, cfg.Action, ev.Time, out)
}
