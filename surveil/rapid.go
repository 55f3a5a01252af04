package surveil

import "github.com/tradecore/tradecore/core"

// rapidBuckets is the number of buckets the sliding window is cut into: the
// window slides in steps of Window/rapidBuckets.
const rapidBuckets = 10

type bucket struct {
	idx                   int64 // Time / (Window/rapidBuckets) this bucket counts
	orders, fills, cancel int32
}

// rapidCount adds to account a's counts at ev.Time and, when orders or
// cancels grew, checks the thresholds over the window.
func (m *Monitor) rapidCount(a *acct, ev *core.Event, out *Output, orders, fills, cancels int32) {
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
	b.orders += orders
	b.fills += fills
	b.cancel += cancels
	if fills > 0 || ev.Time < a.rquiet {
		return
	}
	var no, nf, nc int64
	for i := range a.rapid {
		if w := &a.rapid[i]; w.idx > idx-rapidBuckets && w.idx <= idx {
			no, nf, nc = no+int64(w.orders), nf+int64(w.fills), nc+int64(w.cancel)
		}
	}
	if no < int64(cfg.MinOrders) {
		return
	}
	if no <= int64(cfg.MaxOrderToTrade)*max(nf, 1) && nc*100 < int64(cfg.CancelPct)*no {
		return
	}
	a.rquiet = ev.Time + cfg.Window
	al := Alert{
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
	}
	out.Alerts = append(out.Alerts, al)
	m.act(a, cfg.Action, out)
}
