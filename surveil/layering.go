package surveil

import (
	"math/bits"

	"github.com/tradecore/tradecore/core"
)

// Order-table slots are tracked in uint32 masks, patterns in uint8 masks.
const (
	_ = uint32(1) << (maxTrack - 1)
	_ = uint8(1) << (maxPatterns - 1)
)

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
//     (and the layer is MinRatio times the genuine interest: lots traded plus
//     genuine-side lots still resting as near the market as the layer) the
//     decision is due Grace later; it alerts if the condition still holds
//     then.

type pattern struct {
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
	ref       int64  // the last trade price at the latest genuine fill
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
// extends the pattern whose layer is on the other side. It reads the order
// table once and writes nothing unless a pattern is (or becomes) live: a
// layer smaller than the lowest MinRatio times the lots traded starts none.
func (m *Monitor) layerArm(e *entity, a *acct, ev *core.Event, s core.Side) {
	if !m.layeringOn() || e.n == 0 || int(ev.Instrument) >= len(m.insts) {
		return
	}
	cfg := &m.cfg.Layering
	ls, now, inst := s.Opposite(), ev.Time, ev.Instrument
	pi, slot := -1, -1
	for j := e.live; j != 0; j &= j - 1 {
		i := bits.TrailingZeros8(j)
		p := &e.pats[i]
		switch {
		case p.decideAt == 0 && now > p.last+cfg.CancelWindow:
			m.layerEnd(e, i)
		case p.inst == inst && p.side == ls:
			pi = i
		}
	}
	if pi < 0 {
		if free := ^e.live & (1<<maxPatterns - 1); free != 0 {
			slot = bits.TrailingZeros8(free)
		} else {
			for i := range e.pats { // every slot live: the one traded on longest ago
				if p := &e.pats[i]; p.decideAt == 0 && (slot < 0 || p.last < e.pats[slot].last) {
					slot = i
				}
			}
		}
	}
	var (
		p    *pattern
		bit  uint8
		have bool // worst is set
		base int64
	)
	worst, dist, lots, traded := int64(0), int64(0), int64(0), ev.Qty
	if pi >= 0 {
		p, bit = &e.pats[pi], uint8(1)<<pi
		worst, have, lots, traded = p.worst, true, p.lots, satAdd(p.traded, ev.Qty)
	}
	last := m.insts[inst].last

	// One pass over the order table lists this instrument's layer-side
	// orders; the rest works on that list.
	var (
		lslot [maxTrack]uint8 // table slots of this instrument's layer-side orders
		nl    int
	)
	for i := range e.inst {
		if e.inst[i] == inst && e.side[i] == ls && e.open[i] > 0 {
			lslot[nl] = uint8(i)
			nl++
		}
	}
	// The layer: members and new orders entered within Window; its least
	// aggressive price; its farthest order from the last trade.
	var join uint32 // new members, by slot
	for _, i := range lslot[:nl] {
		if p == nil || e.member[i]&bit == 0 {
			if e.time[i] < now-cfg.Window {
				continue
			}
			join |= 1 << i
			lots = satAdd(lots, e.open[i])
			if !have || worse(ls, e.price[i], worst) {
				worst, have = e.price[i], true
			}
		}
		dist = max(dist, abs(e.price[i]-last))
	}
	ratio := m.minRatio()
	if p == nil && (join == 0 || !mulGE(lots, 1, ratio, traded)) {
		return
	}
	// Layer-side lots at or better than worst not yet counted.
	var based uint32
	for _, i := range lslot[:nl] {
		if !worse(ls, e.price[i], worst) && (p == nil || e.based[i]&bit == 0) {
			based |= 1 << i
			base = satAdd(base, e.open[i])
		}
	}
	if p == nil {
		if slot < 0 {
			return
		}
		if e.live&(1<<slot) != 0 {
			m.layerEnd(e, slot)
		}
		pi = slot
		p, bit = &e.pats[pi], uint8(1)<<pi
		*p = pattern{side: ls, inst: inst, tradeAcct: a.ref.ID, start: now}
		e.live |= bit
	}
	for j := join; j != 0; j &= j - 1 {
		i := bits.TrailingZeros32(j)
		e.member[i] |= bit
		if p.n < MaxEvidence {
			p.ids[p.n] = e.ids[i]
			p.n++
		}
		if p.layerAcct == 0 {
			p.layerAcct = e.acct[i]
		}
	}
	for j := based; j != 0; j &= j - 1 {
		e.based[bits.TrailingZeros32(j)] |= bit
	}
	p.worst, p.dist, p.ref, p.lots, p.traded, p.last = worst, dist, last, lots, traded, now
	p.base = satAdd(p.base, base)
	if int(p.nm) < len(p.matches) {
		p.matches[p.nm] = ev.MatchID
		p.nm++
	}
}

// minRatio is the lowest layer-to-genuine ratio an enabled detector alerts
// at.
func (m *Monitor) minRatio() int64 {
	switch {
	case m.cfg.Layering.Disabled:
		return m.cfg.Spoofing.MinRatio
	case m.cfg.Spoofing.Disabled:
		return m.cfg.Layering.MinRatio
	}
	return min(m.cfg.Layering.MinRatio, m.cfg.Spoofing.MinRatio)
}

// layerGone records that qty lots of order o (as it was before the event)
// left the book by a fill or a cancel the client did not ask for.
func (m *Monitor) layerGone(e *entity, o *ord, qty int64) {
	for j := e.live; j != 0; j &= j - 1 {
		if p := &e.pats[bits.TrailingZeros8(j)]; p.inst == o.inst && p.side == o.side && !worse(p.side, o.price, p.worst) {
			p.gone = satAdd(p.gone, qty)
		}
	}
}

// layerWithdrawn handles a client withdrawal (cancel, cancel-to-size,
// replace to a worse price or fewer lots) of order o, as it was before ev.
func (m *Monitor) layerWithdrawn(ei int32, o *ord, ev *core.Event) {
	e := &m.ents[ei]
	for j := e.live; j != 0; j &= j - 1 {
		i := bits.TrailingZeros8(j)
		p := &e.pats[i]
		if p.inst != o.inst || p.side != o.side || worse(p.side, o.price, p.worst) {
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
		if _, _, ok, _ := m.layerState(e, i); ok {
			p.decideAt, p.crossTime, p.crossSeq = ev.Time+m.cfg.Layering.Grace, ev.Time, ev.Seq
			m.decide = append(m.decide, patRef{ent: ei, pat: int32(i)})
			m.due = min(m.due, p.decideAt)
		}
	}
}

// layerState returns pattern i's net withdrawn lots, its detector, whether
// it meets its thresholds now, and the genuine-side open lots still resting
// as near the market as the layer (genuine interest a trader that pulls both
// sides no longer shows).
func (m *Monitor) layerState(e *entity, i int) (int64, Detector, bool, int64) {
	p := &e.pats[i]
	var present, near int64
	for j := range e.inst {
		if e.inst[j] != p.inst || e.open[j] <= 0 {
			continue
		}
		if e.side[j] == p.side {
			if !worse(p.side, e.price[j], p.worst) {
				present = satAdd(present, e.open[j])
			}
		} else if abs(e.price[j]-p.ref) <= p.dist {
			near = satAdd(near, e.open[j])
		}
	}
	w := max(p.base-present-p.gone, 0)
	det, ratio, off := DetectLayering, m.cfg.Layering.MinRatio, m.cfg.Layering.Disabled
	if int(p.n) < m.cfg.Layering.MinOrders {
		det, ratio, off = DetectSpoofing, m.cfg.Spoofing.MinRatio, m.cfg.Spoofing.Disabled
	}
	ok := !off && p.lots > 0 && mulGE(w, 100, p.lots, int64(m.cfg.Layering.CancelPct)) &&
		mulGE(p.lots, 1, ratio, satAdd(p.traded, near))
	return w, det, ok, near
}

// layerDecide takes pattern i's pending decision: alert if the withdrawal
// still stands.
func (m *Monitor) layerDecide(e *entity, i int, out *Output) {
	p := &e.pats[i]
	p.decideAt = 0
	w, det, ok, near := m.layerState(e, i)
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
		Traded:     satAdd(p.traded, near),
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
	e.live &^= 1 << i
	mask := ^(uint8(1) << i)
	for j := range e.member {
		e.member[j] &= mask
		e.based[j] &= mask
	}
}
