package surveil

import (
	"math"
	"time"

	"github.com/tradecore/tradecore/core"
)

// mark is one trader's aggressive fills in one instrument during one
// closing window.
type mark struct {
	close   int64 // the close this entry belongs to (0 = free)
	inst    uint32
	accts   [2]uint32 // the first two accounts that pushed
	n, no   uint8
	push    int64 // sum of (fill price - last price before it) of the account's aggressive fills
	qty     int64
	time    int64 // the account's last price-moving fill
	seq     uint64
	matches [8]uint64
	orders  [8]uint64
}

// nextClose returns the first daily close strictly after t (event Time,
// Unix nanoseconds), or math.MaxInt64 when the detector is off.
func (m *Monitor) nextClose(t int64) int64 {
	cfg := &m.cfg.MarkClose
	if cfg.Disabled {
		return math.MaxInt64
	}
	h := cfg.Close / 3600e9
	mi := cfg.Close / 60e9 % 60
	s := cfg.Close / 1e9 % 60
	ns := cfg.Close % 1e9
	y, mo, d := time.Unix(0, t).In(cfg.Location).Date()
	for i := 0; i < 3; i++ {
		if c := time.Date(y, mo, d+i, int(h), int(mi), int(s), int(ns), cfg.Location).UnixNano(); c > t {
			return c
		}
	}
	return math.MaxInt64 // not reached: a day later is always later
}

// inCloseWindow reports whether t falls in the window before the next close.
func (m *Monitor) inCloseWindow(t int64) bool {
	return m.closeEnd != 0 && m.closeEnd != math.MaxInt64 && t >= m.closeEnd-m.cfg.MarkClose.Window && t < m.closeEnd
}

// markPrint notes, at the first fill of an instrument in the closing window,
// the last trade price before the window (prev).
func (m *Monitor) markPrint(is *instState, ev *core.Event, prev int64) {
	if !m.inCloseWindow(ev.Time) || is.refClose == m.closeEnd {
		return
	}
	is.refClose = m.closeEnd
	is.ref = prev
	if prev == 0 {
		is.ref = ev.Price
	}
}

// markFill adds the fill of taker account a (of trader e) in the closing
// window to the trader's push on the instrument.
func (m *Monitor) markFill(e *entity, a *acct, ev *core.Event, prev int64) {
	if !m.inCloseWindow(ev.Time) || prev == 0 || int(ev.Instrument) >= len(m.insts) {
		return
	}
	d := ev.Price - prev
	k := -1
	for i := range e.marks {
		if x := &e.marks[i]; x.close == m.closeEnd && x.inst == ev.Instrument {
			k = i
			break
		}
	}
	if k < 0 {
		if d == 0 {
			return
		}
		for i := range e.marks { // a free (stale) slot, else the one that pushed least
			x := &e.marks[i]
			if x.close != m.closeEnd {
				k = i
				break
			}
			if k < 0 || abs(x.push) < abs(e.marks[k].push) {
				k = i
			}
		}
		e.marks[k] = mark{close: m.closeEnd, inst: ev.Instrument}
	}
	x := &e.marks[k]
	x.push += d
	x.qty = satAdd(x.qty, ev.Qty)
	if d != 0 {
		switch a.ref.ID {
		case x.accts[0], x.accts[1]:
		default:
			if x.accts[0] == 0 {
				x.accts[0] = a.ref.ID
			} else if x.accts[1] == 0 {
				x.accts[1] = a.ref.ID
			}
		}
		x.time, x.seq = ev.Time, ev.Seq
		if int(x.n) < len(x.matches) {
			x.matches[x.n] = ev.MatchID
			x.n++
		}
		if int(x.no) < len(x.orders) && (x.no == 0 || x.orders[x.no-1] != ev.OrderID) {
			x.orders[x.no] = ev.OrderID
			x.no++
		}
	}
}

// markClose runs at the first event at or after the close: for each trader
// whose aggressive fills in the window pushed an instrument the way its
// closing price moved, by at least MinSharePct of a move of at least MoveBps,
// it raises an alert with the Time and Seq of the trader's last pushing
// fill.
func (m *Monitor) markClose(close int64, out *Output) {
	cfg := &m.cfg.MarkClose
	for ei := range m.ents {
		e := &m.ents[ei]
		for i := range e.marks {
			x := &e.marks[i]
			if x.close != close {
				continue
			}
			x.close = 0
			is := &m.insts[x.inst]
			move := is.last - is.ref
			if is.refClose != close || move == 0 || x.push == 0 || (move > 0) != (x.push > 0) ||
				!mulGE(abs(move), 10_000, is.ref, cfg.MoveBps) || !mulGE(abs(x.push), 100, abs(move), cfg.MinSharePct) {
				continue
			}
			al := Alert{
				Detector:   DetectMarkClose,
				Time:       x.time,
				Seq:        x.seq,
				Instrument: x.inst,
				Accounts:   x.accts,
				Owner:      e.owner,
				Action:     cfg.Action,
				Report:     cfg.Report,
				Qty:        x.qty,
				Ref:        is.ref,
				Price:      is.last,
				Push:       x.push,
			}
			for _, o := range x.orders[:x.no] {
				al.addOrder(o)
			}
			for _, id := range x.matches[:x.n] {
				al.addMatch(id)
			}
			out.Alerts = append(out.Alerts, al)
			for _, id := range x.accts {
				if a := m.acct(id); a != nil {
					m.act(a, cfg.Action, close, out)
				}
			}
		}
	}
}
