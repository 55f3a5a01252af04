package surveil

import "github.com/tradecore/tradecore/core"

// maxLinked is the most distinct linked accounts a pump-and-dump alert counts.
const maxLinked = 8

// fill is one recorded fill: the buy fills of an owner's accounts (pump and
// dump) or the fills of a firm's proprietary accounts (front-running).
type fill struct {
	time    int64
	pre     int64 // last trade price before the fill
	match   uint64
	order   uint64
	account uint32
	inst    uint32
	side    core.Side
}

// ownerState is the bounded state of one beneficial owner: a ring of its
// accounts' buy fills; the fields a sell fill tests first are kept apart in
// parallel arrays (bt, bp, bi: time, price before, instrument).
type ownerState struct {
	bt    [maxFills]int64
	bp    [maxFills]int64
	bi    [maxFills]uint32
	buys  [maxFills]fill
	head  int
	quiet int64 // no pump-and-dump alert before this Time
}

// pumpFill records a buy fill of a linked account, or checks a sell fill
// against the owner's recent buys.
func (m *Monitor) pumpFill(a *acct, ev *core.Event, s core.Side, id uint64, prev int64, out *Output) {
	cfg := &m.cfg.PumpDump
	if cfg.Disabled || a.owner == 0 {
		return
	}
	o := &m.owners[a.owner-1]
	if s == core.Buy {
		o.buys[o.head] = fill{time: ev.Time, pre: prev, match: ev.MatchID, order: id, account: a.ref.ID, inst: ev.Instrument, side: s}
		o.bt[o.head], o.bp[o.head], o.bi[o.head] = ev.Time, prev, ev.Instrument
		o.head = (o.head + 1) % maxFills
		return
	}
	if ev.Time < o.quiet {
		return
	}
	var (
		linked [maxLinked]uint32
		nl     int
		nb     int
		start  int64
	)
	for i := range o.bi {
		if o.bi[i] != ev.Instrument || o.bt[i] < ev.Time-cfg.Window || o.bt[i] > ev.Time {
			continue
		}
		nb++
		if p := o.bp[i]; p != 0 && (start == 0 || p < start) {
			start = p
		}
	}
	if nb < cfg.MinBuys || start == 0 || !mulGE(ev.Price, 10_000, start, 10_000+cfg.RiseBps) {
		return
	}
	for i := range o.buys {
		b := &o.buys[i]
		if b.side != core.Buy || b.inst != ev.Instrument || b.time < ev.Time-cfg.Window || b.time > ev.Time {
			continue
		}
		seen := false
		for _, l := range linked[:nl] {
			seen = seen || l == b.account
		}
		if !seen && nl < len(linked) {
			linked[nl] = b.account
			nl++
		}
	}
	if nl < cfg.MinAccounts || nb < cfg.MinBuys || start == 0 || !mulGE(ev.Price, 10_000, start, 10_000+cfg.RiseBps) {
		return
	}
	o.quiet = ev.Time + cfg.Window
	al := Alert{
		Detector:   DetectPumpDump,
		Time:       ev.Time,
		Seq:        ev.Seq,
		Instrument: ev.Instrument,
		Accounts:   [2]uint32{a.ref.ID},
		Owner:      a.ref.Owner,
		Action:     cfg.Action,
		Report:     cfg.Report,
		Ref:        start,
		Price:      ev.Price,
	}
	for _, l := range linked[:nl] {
		if l != a.ref.ID {
			al.Accounts[1] = l
			break
		}
	}
	for k := range o.buys { // oldest first
		b := &o.buys[(o.head+k)%maxFills]
		if b.side == core.Buy && b.inst == ev.Instrument && b.time >= ev.Time-cfg.Window && b.time <= ev.Time && al.Evidence.NOrders < MaxEvidence-1 {
			al.addOrder(b.order)
			al.addMatch(b.match)
		}
	}
	al.addOrder(id)
	al.addMatch(ev.MatchID)
	out.Alerts = append(out.Alerts, al)
	for _, l := range linked[:nl] {
		if la := m.acct(l); la != nil {
			m.act(la, cfg.Action, ev.Time, out)
		}
	}
	if !contains(linked[:nl], a.ref.ID) {
		m.act(a, cfg.Action, ev.Time, out)
	}
}

func contains(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
