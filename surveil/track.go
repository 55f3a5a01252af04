package surveil

import (
	"math"
	"math/bits"

	"github.com/tradecore/tradecore/core"
)

// ord is one open limit order of a trader, as the Monitor last saw it (a
// copy of one slot of an entity's order table).
type ord struct {
	time  int64
	price int64
	open  int64
	acct  uint32
	inst  uint32
	side  core.Side
}

// entity is one trader: the accounts of one beneficial owner together, or
// one owner-less account. It tracks up to maxTrack open resting limit orders
// in a table of parallel arrays (ids[i] == 0 and inst[i] == 0: slot free),
// so that the scans read only the fields they test; its layering / spoofing
// patterns, its ramps (momentum ignition) and its pushes in the closing
// window.
type entity struct {
	ids    [maxTrack]uint64
	open   [maxTrack]int64
	price  [maxTrack]int64
	time   [maxTrack]int64
	inst   [maxTrack]uint32
	acct   [maxTrack]uint32
	side   [maxTrack]core.Side
	member [maxTrack]uint8 // bit i: in the layer of pattern i
	based  [maxTrack]uint8 // bit i: counted in pattern i's base presence
	n      int
	live   uint8 // bit i: pats[i] is active
	pats   [maxPatterns]pattern
	ramps  [2]ramp
	marks  [maxMarks]mark
	owner  uint32 // 0 = an owner-less account
}

func (e *entity) find(id uint64) int {
	if id == 0 {
		return -1
	}
	for i := range e.ids {
		if e.ids[i] == id {
			return i
		}
	}
	return -1
}

func (e *entity) ord(i int) ord {
	return ord{time: e.time[i], price: e.price[i], open: e.open[i], acct: e.acct[i], inst: e.inst[i], side: e.side[i]}
}

func (e *entity) remove(i int) {
	e.ids[i], e.open[i], e.inst[i], e.member[i], e.based[i] = 0, 0, 0, 0, 0
	e.n--
}

// track records account acct's newly accepted resting-capable limit order.
// When every slot is taken it evicts the smallest order that is in no
// pattern (so a flood of small orders cannot push a layer out), or else the
// smallest order.
func (e *entity) track(m *Monitor, acct uint32, ev *core.Event) {
	i := -1
	if e.n < maxTrack {
		for j := range e.ids {
			if e.ids[j] == 0 {
				i = j
				break
			}
		}
	} else {
		i = e.victim()
		if e.live != 0 {
			o := e.ord(i)
			m.layerGone(e, &o, o.open) // unknown from now on: never counted as withdrawn
		}
		e.remove(i)
	}
	e.ids[i], e.open[i], e.price[i], e.time[i] = ev.OrderID, ev.Qty, ev.Price, ev.Time
	e.inst[i], e.acct[i], e.side[i] = ev.Instrument, acct, ev.Side
	e.n++
}

func (e *entity) victim() int {
	best, bestFree := 0, false
	for i := range e.open {
		free := e.member[i]|e.based[i] == 0
		switch {
		case free && !bestFree:
		case free != bestFree:
			continue
		case e.open[i] < e.open[best], e.open[i] == e.open[best] && e.time[i] < e.time[best]:
		default:
			continue
		}
		best, bestFree = i, free
	}
	return best
}

// mulGE reports whether a*b >= c*d for non-negative a, b, c, d, without
// overflow.
func mulGE(a, b, c, d int64) bool {
	h1, l1 := bits.Mul64(uint64(max(a, 0)), uint64(max(b, 0)))
	h2, l2 := bits.Mul64(uint64(max(c, 0)), uint64(max(d, 0)))
	return h1 > h2 || h1 == h2 && l1 >= l2
}

// satAdd adds non-negative a and b, saturating at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
