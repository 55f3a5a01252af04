package surveil

import "github.com/tradecore/tradecore/core"

// ramp is one trader's run of aggressive fills in one instrument and
// direction that each moved the last trade price its way.
type ramp struct {
	inst        uint32
	accts       [2]uint32 // the first two accounts whose fills pushed
	side        core.Side
	done        bool // alerted: wait for a new ramp
	n, no       uint8
	levels      int64
	start, push int64 // price before the first pushing fill; ticks pushed since
	first, last int64
	qty         int64
	matches     [8]uint64
	orders      [8]uint64
}

// rampFill handles a fill of account a (of trader e) whose order id traded
// on side s at ev.Price, prev being the last trade price before it: a fill
// against a ramp of the trader on the other side may complete momentum
// ignition; an aggressive fill that moved the price extends (or starts) a
// ramp on side s.
func (m *Monitor) rampFill(e *entity, a *acct, ev *core.Event, s core.Side, id uint64, prev int64, taker bool, out *Output) {
	cfg := &m.cfg.Ramp
	if cfg.Disabled {
		return
	}
	now := ev.Time
	for i := range e.ramps {
		r := &e.ramps[i]
		if r.done || r.levels < int64(cfg.MinLevels) || r.inst != ev.Instrument || r.side != s.Opposite() || now-r.last > cfg.ReverseWindow {
			continue
		}
		kept := ev.Price - r.start // what the price kept of the move, in the ramp's direction
		if r.side == core.Sell {
			kept = -kept
		}
		if !mulGE(r.push, 10_000, r.start, cfg.MoveBps) || kept <= 0 || !mulGE(kept, 100, r.push, cfg.RetainPct) {
			continue
		}
		r.done = true
		al := Alert{
			Detector:   DetectRamp,
			Time:       now,
			Seq:        ev.Seq,
			Instrument: ev.Instrument,
			Accounts:   [2]uint32{a.ref.ID},
			Owner:      e.owner,
			Action:     cfg.Action,
			Report:     cfg.Report,
			Qty:        r.qty,
			Traded:     ev.Qty,
			Ref:        r.start,
			Price:      ev.Price,
			Push:       r.push,
			Levels:     r.levels,
		}
		if r.side == core.Sell {
			al.Push = -r.push
		}
		for _, id := range r.accts {
			if id != 0 && id != a.ref.ID && al.Accounts[1] == 0 {
				al.Accounts[1] = id
			}
		}
		for _, o := range r.orders[:r.no] {
			al.addOrder(o)
		}
		al.addOrder(id)
		for _, x := range r.matches[:r.n] {
			al.addMatch(x)
		}
		al.addMatch(ev.MatchID)
		out.Alerts = append(out.Alerts, al)
		m.act(a, cfg.Action, now, out)
		for _, id := range r.accts {
			if ra := m.acct(id); ra != nil && ra != a {
				m.act(ra, cfg.Action, now, out)
			}
		}
	}
	if !taker || prev == 0 {
		return
	}
	d := ev.Price - prev
	if s == core.Sell {
		d = -d
	}
	if d <= 0 {
		return
	}
	ri := -1
	for i := range e.ramps {
		if r := &e.ramps[i]; r.levels > 0 && r.inst == ev.Instrument && r.side == s {
			ri = i
		}
	}
	if ri < 0 {
		ri = 0
		if e.ramps[1].last < e.ramps[0].last {
			ri = 1
		}
	}
	r := &e.ramps[ri]
	if r.levels == 0 || r.done || r.inst != ev.Instrument || r.side != s || now-r.first > cfg.Window {
		*r = ramp{inst: ev.Instrument, side: s, start: prev, first: now}
	}
	if acc := a.ref.ID; r.accts[0] == 0 {
		r.accts[0] = acc
	} else if r.accts[0] != acc && r.accts[1] == 0 {
		r.accts[1] = acc
	}
	r.push = satAdd(r.push, d)
	r.levels++
	r.last = now
	r.qty = satAdd(r.qty, ev.Qty)
	if int(r.n) < len(r.matches) {
		r.matches[r.n] = ev.MatchID
		r.n++
	}
	if int(r.no) < len(r.orders) && (r.no == 0 || r.orders[r.no-1] != id) {
		r.orders[r.no] = id
		r.no++
	}
}
