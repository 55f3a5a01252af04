package surveil

import "github.com/tradecore/tradecore/core"

// Layering and spoofing share one pattern per trader, instrument and layer
// side (up to maxPatterns at once):
//
//   - armed by a fill of the trader on the genuine side: the layer is the
//     trader's open orders on the other side entered within Window; its
//     least aggressive price is the pattern's "worst" price, and the base is
//     the trader's open lots on the layer side at or better than worst;
//   - a later genuine fill within CancelWindow extends it (new layer orders,
//     more lots traded);
//   - the withdrawn lots are the base minus what is open there now, minus
//     what left by fills or by cancels the client did not ask for (kill,
//     expiry, STP): cancels, cancels-to-size and replaces to a worse price
//     withdraw, new orders and replaces at or better than worst re-add;
//   - when a client withdrawal makes the withdrawn share reach CancelPct
//     (and the layer is MinRatio times the genuine interest) the decision is
//     due Grace later; it alerts if the condition still holds then.

type pattern struct {
	active    bool
	side      core.Side // the layer's side
	n, nm, nc uint8     // members, genuine matches and withdrawal seqs kept
	inst      uint32
	layerAcct uint32 // the account of the first layer order
	tradeAcct uint32 // the account of the first genuine fill
	start     int64  // first genuine fill
	last      int64  // latest genuine fill
	worst     int64  // least aggressive layer price
	dist      int64  // how far the layer is from the last trade (ticks, at the latest fill)
	lots      int64  // the layer's open lots when they joined it
	base      int64  // open lots at or better than worst when counted
	gone      int64  // lots at or better than worst that left by fills or non-client cancels
	traded    int64  // lots traded on the genuine side
	near      int64  // open lots on the genuine side no further than dist, at the latest fill
	decideAt  int64  // 0 = no decision pending
	crossTime int64
	crossSeq  uint64
	ids       [MaxEvidence]uint64
	matches   [8]uint64
	cancels   [MaxEvidence]uint64
}

type patRef struct {
	ent int32
	pat int32
}

func (m *Monitor) layeringOn() bool { return !m.cfg.Layering.Disabled || !m.cfg.Spoofing.Disabled }

// layerArm handles a fill of trader e (account a) on side s: it starts or
// extends the pattern whose layer is on the other side.
func (m *Monitor) layerArm(e *entity, a *acct, ev *core.Event, s core.Side) {
	if !m.layeringOn() || int(ev.Instrument) >= len(m.insts) {
		return
	}
	cfg := &m.cfg.Layering
	ls, now := s.Opposite(), ev.Time
	pi, slot := -1, -1
	for i := range e.pats {
		p := &e.pats[i]
		if p.active && p.decideAt == 0 && now > p.last+cfg.CancelWindow {
			m.layerEnd(e, i)
		}
		switch {
		case p.active && p.inst == ev.Instrument && p.side == ls:
			pi = i
		case !p.active && (slot < 0 || e.pats[slot].active):
			slot = i
		case p.active && p.decideAt == 0 && (slot < 0 || e.pats[slot].active && p.last < e.pats[slot].last):
			slot = i
		}
	}
	if pi < 0 {
		if slot < 0 || !e.hasLayer(ev.Instrument, ls, now-cfg.Window) {
			return
		}
		if e.pats[slot].active {
			m.layerEnd(e, slot)
		}
		pi = slot
		p := &e.pats[pi]
		*p = pattern{active: true, side: ls, inst: ev.Instrument, tradeAcct: a.ref.ID, start: now}
	}
	p := &e.pats[pi]
	bit := uint8(1) << pi
	last := m.insts[ev.Instrument].last
	worst, first := p.worst, p.n == 0
	for i := range e.ords {
		o := &e.ords[i]
		if e.ids[i] == 0 || o.inst != p.inst || o.side != ls || o.open <= 0 || o.time < now-cfg.Window || o.member&bit != 0 {
			continue
		}
		o.member |= bit
		if p.n < MaxEvidence {
			p.ids[p.n] = e.ids[i]
			p.n++
		}
		if p.layerAcct == 0 {
			p.layerAcct = o.acct
		}
		p.lots = satAdd(p.lots, o.open)
		if first || worse(ls, o.price, worst) {
			worst, first = o.price, false
		}
	}
	p.worst = worst
	p.dist, p.near = 0, 0
	for i := range e.ords {
		o := &e.ords[i]
		if e.ids[i] == 0 || o.inst != p.inst || o.open <= 0 {
			continue
		}
		if o.side == ls && !worse(ls, o.price, worst) {
			if o.based&bit == 0 {
				o.based |= bit
				p.base = satAdd(p.base, o.open)
			}
			if o.member&bit != 0 {
				p.dist = max(p.dist, abs(o.price-last))
			}
		}
	}
	for i := range e.ords {
		o := &e.ords[i]
		if e.ids[i] != 0 && o.inst == p.inst && o.side == s && o.open > 0 && abs(o.price-last) <= p.dist {
			p.near = satAdd(p.near, o.open)
		}
	}
	p.traded = satAdd(p.traded, ev.Qty)
	p.last = now
	if int(p.nm) < len(p.matches) {
		p.matches[p.nm] = ev.MatchID
		p.nm++
	}
}

// hasLayer reports whether trader e has an open order on side s of inst
// entered at or after since.
func (e *entity) hasLayer(inst uint32, s core.Side, since int64) bool {
	for i := range e.ords {
		if o := &e.ords[i]; e.ids[i] != 0 && o.inst == inst && o.side == s && o.open > 0 && o.time >= since {
			return true
		}
	}
	return false
}

// layerGone records that qty lots of order o (as it was before the event)
// left the book by a fill or a cancel the client did not ask for.
func (m *Monitor) layerGone(e *entity, o *ord, qty int64) {
	for i := range e.pats {
		if p := &e.pats[i]; p.active && p.inst == o.inst && p.side == o.side && !worse(p.side, o.price, p.worst) {
			p.gone = satAdd(p.gone, qty)
		}
	}
}

// layerWithdrawn handles a client withdrawal (cancel, cancel-to-size,
// replace to a worse price or fewer lots) of order o, as it was before ev.
func (m *Monitor) layerWithdrawn(ei int32, o *ord, ev *core.Event) {
	e := &m.ents[ei]
	for i := range e.pats {
		p := &e.pats[i]
		if !p.active || p.inst != o.inst || p.side != o.side || worse(p.side, o.price, p.worst) {
			continue
		}
		if ev.Time > p.last+m.cfg.Layering.CancelWindow && p.decideAt == 0 {
			m.layerEnd(e, i)
			continue
		}
		if int(p.nc) < len(p.cancels) {
			p.cancels[p.nc] = ev.Seq
			p.nc++
		}
		if p.decideAt != 0 {
			continue
		}
		if _, _, ok := m.layerState(e, i); ok {
			p.decideAt, p.crossTime, p.crossSeq = ev.Time+m.cfg.Layering.Grace, ev.Time, ev.Seq
			m.decide = append(m.decide, patRef{ent: ei, pat: int32(i)})
			m.due = min(m.due, p.decideAt)
		}
	}
}

// layerState returns pattern i's net withdrawn lots, its detector and whether
// it meets its thresholds now.
func (m *Monitor) layerState(e *entity, i int) (int64, Detector, bool) {
	p := &e.pats[i]
	var present int64
	for j := range e.ords {
		if o := &e.ords[j]; e.ids[j] != 0 && o.inst == p.inst && o.side == p.side && !worse(p.side, o.price, p.worst) {
			present = satAdd(present, o.open)
		}
	}
	w := max(p.base-present-p.gone, 0)
	det, ratio, off := DetectLayering, m.cfg.Layering.MinRatio, m.cfg.Layering.Disabled
	if int(p.n) < m.cfg.Layering.MinOrders {
		det, ratio, off = DetectSpoofing, m.cfg.Spoofing.MinRatio, m.cfg.Spoofing.Disabled
	}
	ok := !off && p.lots > 0 && mulGE(w, 100, p.lots, int64(m.cfg.Layering.CancelPct)) &&
		mulGE(p.lots, 1, ratio, satAdd(p.traded, p.near))
	return w, det, ok
}

// layerDecide takes pattern i's pending decision: alert if the withdrawal
// still stands.
func (m *Monitor) layerDecide(e *entity, i int, out *Output) {
	p := &e.pats[i]
	p.decideAt = 0
	w, det, ok := m.layerState(e, i)
	if !ok {
		return
	}
	cfg := &m.cfg.Layering
	action, report := cfg.Action, cfg.Report
	if det == DetectSpoofing {
		action, report = m.cfg.Spoofing.Action, m.cfg.Spoofing.Report
	}
	al := Alert{
		Detector:   det,
		Time:       p.crossTime,
		Seq:        p.crossSeq,
		Instrument: p.inst,
		Accounts:   [2]uint32{p.layerAcct},
		Action:     action,
		Report:     report,
		Qty:        p.lots,
		Traded:     satAdd(p.traded, p.near),
		Withdrawn:  w,
	}
	if p.tradeAcct != p.layerAcct {
		al.Accounts[1] = p.tradeAcct
	}
	la, ta := m.acct(p.layerAcct), m.acct(p.tradeAcct)
	if la != nil && la.ref.Owner != 0 {
		al.Owner = la.ref.Owner
	}
	for _, id := range p.ids[:p.n] {
		al.addOrder(id)
	}
	for _, id := range p.matches[:p.nm] {
		al.addMatch(id)
	}
	for _, s := range p.cancels[:p.nc] {
		al.addCancel(s)
	}
	out.Alerts = append(out.Alerts, al)
	now := p.crossTime
	m.layerEnd(e, i)
	if la != nil {
		m.act(la, action, now, out)
	}
	if ta != nil && ta != la {
		m.act(ta, action, now, out)
	}
}

// layerEnd drops pattern i.
func (m *Monitor) layerEnd(e *entity, i int) {
	e.pats[i].active = false
	mask := ^(uint8(1) << i)
	for j := range e.ords {
		e.ords[j].member &= mask
		e.ords[j].based &= mask
	}
}
