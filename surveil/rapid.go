package surveil

import "github.com/tradecore/tradecore/core"

// rapidBuckets is the number of buckets the sliding window is cut into: the
// window slides in steps of Window/rapidBuckets.
const rapidBuckets = 10

type bucket struct {
	buys, sells   int32 // accepted new orders and replaces per side
	fills, cancel int32
}

// rapidWin is one account's sliding window: rapidBuckets buckets of
// Window/rapidBuckets, the running totals over them, and the current
// bucket (so the common case is one comparison, no division).
type rapidWin struct {
	b          [rapidBuckets]bucket
	idx        int64 // the current bucket's number, Time / width
	next       int64 // Time at which the current bucket ends
	cur        int   // idx % rapidBuckets
	buys, sell int64 // totals over the window
	fills, cnc int64
}

// advance moves w to the bucket holding time now, dropping the buckets that
// left the window.
func (w *rapidWin) advance(now, width int64) {
	if now < w.next && now >= w.next-width {
		return
	}
	idx := now / width
	if idx < w.idx || idx-w.idx >= rapidBuckets { // time went back, or the whole window passed
		*w = rapidWin{}
	} else {
		for k := w.idx + 1; k <= idx; k++ {
			x := &w.b[(k%rapidBuckets+rapidBuckets)%rapidBuckets]
			w.buys -= int64(x.buys)
			w.sell -= int64(x.sells)
			w.fills -= int64(x.fills)
			w.cnc -= int64(x.cancel)
			*x = bucket{}
		}
	}
	w.idx, w.next, w.cur = idx, (idx+1)*width, int((idx%rapidBuckets+rapidBuckets)%rapidBuckets)
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
	w := &a.rapid
	w.advance(ev.Time, cfg.Window/rapidBuckets)
	b := &w.b[w.cur]
	switch side {
	case core.Buy:
		b.buys++
		w.buys++
	case core.Sell:
		b.sells++
		w.sell++
	}
	b.fills += fills
	b.cancel += cancels
	w.fills += int64(fills)
	w.cnc += int64(cancels)
	if fills > 0 || ev.Time < a.rquiet {
		return
	}
	nb, ns, nf, nc := w.buys, w.sell, w.fills, w.cnc
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
