package surveil

import "github.com/tradecore/tradecore/core"

// Layering state per account: a ring of candidate orders (resting-priced
// limit orders away from the last trade) and at most one pending pattern
// (layer + trade) waiting for the layer's cancels.

const (
	candOpen uint8 = iota + 1
	candCancelled
	candGone // traded, expired or cancelled by someone else
)

type cand struct {
	id    uint64
	time  int64
	inst  uint32
	side  core.Side
	state uint8
}

type pending struct {
	active  bool
	time    int64
	seq     uint64
	match   uint64
	inst    uint32
	ids     [maxLayer]uint64
	n       int
	cancels [maxLayer]uint64 // Seq of each cancel, in cancel order
	nc      int
}

// layerAccepted records a limit order priced away from the last trade as a
// layer candidate.
func (m *Monitor) layerAccepted(a *acct, ev *core.Event) {
	if m.cfg.Layering.Disabled || ev.Type != core.Limit || int(ev.Instrument) >= len(m.last) {
		return
	}
	last := m.last[ev.Instrument]
	if last == 0 || ev.Side == core.Buy && ev.Price >= last || ev.Side == core.Sell && ev.Price <= last {
		return
	}
	a.layer[a.head] = cand{id: ev.OrderID, time: ev.Time, inst: ev.Instrument, side: ev.Side, state: candOpen}
	a.head = (a.head + 1) % maxLayer
}

// layerTraded handles a fill of account a's order id on side s: the order is
// no longer a layer candidate, and the fill may be the genuine leg of a layer
// on the other side.
func (m *Monitor) layerTraded(a *acct, ev *core.Event, s core.Side, id uint64) {
	cfg := &m.cfg.Layering
	if cfg.Disabled {
		return
	}
	for i := range a.layer {
		if c := &a.layer[i]; c.state == candOpen && c.id == id {
			c.state = candGone
		}
	}
	if a.pend.active || int(a.open[s&3]) > cfg.MaxGenuine {
		return
	}
	p := &a.pend
	p.n, p.nc = 0, 0
	for i := range a.layer {
		c := &a.layer[i]
		if c.state == candOpen && c.inst == ev.Instrument && c.side == s.Opposite() && c.time >= ev.Time-cfg.Window {
			p.ids[p.n] = c.id
			p.n++
		}
	}
	if p.n < cfg.MinOrders {
		return
	}
	p.active, p.time, p.seq, p.match, p.inst = true, ev.Time, ev.Seq, ev.MatchID, ev.Instrument
}

// layerExpire drops a pending pattern whose cancel window has passed.
func (m *Monitor) layerExpire(a *acct, now int64) {
	if a.pend.active && now > a.pend.time+m.cfg.Layering.CancelWindow {
		a.pend.active = false
	}
}

// layerClosed handles a cancel or expiry of account a's order: a layer
// candidate leaves the ring, and a cancel of a pending layer may complete the
// pattern.
func (m *Monitor) layerClosed(a *acct, ev *core.Event, out *Output) {
	cfg := &m.cfg.Layering
	if cfg.Disabled {
		return
	}
	byClient := ev.Kind == core.KindCancelled && (ev.Reason == core.CancelRequested || ev.Reason == core.CancelMass)
	for i := range a.layer {
		if c := &a.layer[i]; c.state == candOpen && c.id == ev.OrderID {
			c.state = candGone
			if byClient {
				c.state = candCancelled
			}
		}
	}
	m.layerExpire(a, ev.Time)
	p := &a.pend
	if !p.active || !byClient {
		return
	}
	for i := range p.n {
		if p.ids[i] == ev.OrderID {
			p.cancels[p.nc] = ev.Seq
			p.nc++
			break
		}
	}
	if p.nc*100 < cfg.CancelPct*p.n {
		return
	}
	p.active = false
	al := Alert{
		Detector:   DetectLayering,
		Time:       ev.Time,
		Seq:        ev.Seq,
		Instrument: p.inst,
		Accounts:   [2]uint32{a.ref.ID},
		Action:     cfg.Action,
		Report:     cfg.Report,
	}
	for _, id := range p.ids[:p.n] {
		al.addOrder(id)
	}
	al.addMatch(p.match)
	for _, s := range p.cancels[:p.nc] {
		al.addCancel(s)
	}
	out.Alerts = append(out.Alerts, al)
	m.act(a, cfg.Action, out)
}
