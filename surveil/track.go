package surveil

import (
	"math"
	"math/bits"

	"github.com/tradecore/tradecore/core"
)

// ord is one open limit order of a trader, as the Monitor last saw it.
type ord struct {
	time   int64
	price  int64
	open   int64
	acct   uint32
	inst   uint32
	side   core.Side
	member uint8 // bit i: in the layer of pattern i
	based  uint8 // bit i: counted in pattern i's base presence
}

// entity is one trader: the accounts of one beneficial owner together, or
// one owner-less account. It tracks up to maxTrack open resting limit orders
// (ids[i] == 0: slot free), its layering / spoofing patterns, its ramps
// (momentum ignition) and its pushes in the closing window.
type entity struct {
	ids   [maxTrack]uint64
	ords  [maxTrack]ord
	n     int
	pats  [maxPatterns]pattern
	ramps [2]ramp
	marks [maxMarks]mark
	owner uint32 // 0 = an owner-less account
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

func (e *entity) remove(i int) {
	e.ids[i] = 0
	e.ords[i] = ord{}
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
		o := e.ords[i]
		m.layerGone(e, &o, o.open) // unknown from now on: never counted as withdrawn
		e.remove(i)
	}
	e.ids[i] = ev.OrderID
	e.ords[i] = ord{time: ev.Time, price: ev.Price, open: ev.Qty, acct: acct, inst: ev.Instrument, side: ev.Side}
	e.n++
}

func (e *entity) victim() int {
	best, bestFree := -1, false
	for i := range e.ords {
		o := &e.ords[i]
		free := o.member|o.based == 0
		switch {
		case best < 0, free && !bestFree:
		case free != bestFree:
			continue
		case o.open < e.ords[best].open, o.open == e.ords[best].open && o.time < e.ords[best].time:
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
