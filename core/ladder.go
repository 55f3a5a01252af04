package core

import "math/bits"

// bitset is a two-level bitmap over price levels: one bit per level in l0 and
// one bit per non-zero l0 word in l1, so the next non-empty level is found in
// a few word operations however sparse the band is.
type bitset struct {
	l0, l1 []uint64
}

func newBitset(n int) bitset {
	w := (n + 63) / 64
	return bitset{l0: make([]uint64, w), l1: make([]uint64, (w+63)/64)}
}

func (b *bitset) set(i int32) {
	w := i >> 6
	b.l0[w] |= 1 << (uint(i) & 63)
	b.l1[w>>6] |= 1 << (uint(w) & 63)
}

func (b *bitset) clear(i int32) {
	w := i >> 6
	b.l0[w] &^= 1 << (uint(i) & 63)
	if b.l0[w] == 0 {
		b.l1[w>>6] &^= 1 << (uint(w) & 63)
	}
}

// prev returns the highest set index <= i, or -1.
func (b *bitset) prev(i int32) int32 {
	if i < 0 {
		return -1
	}
	w := i >> 6
	if m := b.l0[w] & (^uint64(0) >> (63 - (uint(i) & 63))); m != 0 {
		return w<<6 + 63 - int32(bits.LeadingZeros64(m))
	}
	w--
	if w < 0 {
		return -1
	}
	j := w >> 6
	m := b.l1[j] & (^uint64(0) >> (63 - (uint(w) & 63)))
	for m == 0 {
		j--
		if j < 0 {
			return -1
		}
		m = b.l1[j]
	}
	w = j<<6 + 63 - int32(bits.LeadingZeros64(m))
	return w<<6 + 63 - int32(bits.LeadingZeros64(b.l0[w]))
}

// next returns the lowest set index >= i, or -1.
func (b *bitset) next(i int32) int32 {
	w := i >> 6
	if int(w) >= len(b.l0) {
		return -1
	}
	if m := b.l0[w] & (^uint64(0) << (uint(i) & 63)); m != 0 {
		return w<<6 + int32(bits.TrailingZeros64(m))
	}
	w++
	if int(w) >= len(b.l0) {
		return -1
	}
	j := w >> 6
	m := b.l1[j] & (^uint64(0) << (uint(w) & 63))
	for m == 0 {
		j++
		if int(j) >= len(b.l1) {
			return -1
		}
		m = b.l1[j]
	}
	w = j<<6 + int32(bits.TrailingZeros64(m))
	return w<<6 + int32(bits.TrailingZeros64(b.l0[w]))
}

// level is one price: a FIFO of orders linked through order.next/prev.
type level struct {
	head, tail int32 // order slots, -1 when empty
	n          int32 // orders at this price
	_          int32
	qty        int64 // shown lots at this price (book ladders only)
}

// ladder is one side of a book (or of the stop book): a level per tick of the
// band, the bitmap of non-empty levels and the best level. For bids and sell
// stops the best level is the highest price; for asks and buy stops the lowest.
type ladder struct {
	levels []level
	bits   bitset
	best   int32 // -1 when empty
	high   bool
}

func newLadder(n int, high bool) ladder {
	l := ladder{levels: make([]level, n), bits: newBitset(n), best: -1, high: high}
	for i := range l.levels {
		l.levels[i].head, l.levels[i].tail = -1, -1
	}
	return l
}

// better reports whether level a is better than level b on this ladder.
func (l *ladder) better(a, b int32) bool {
	if l.high {
		return a > b
	}
	return a < b
}

// worse returns the next non-empty level after i in the direction away from
// the best, or -1.
func (l *ladder) worse(i int32) int32 {
	if l.high {
		return l.bits.prev(i - 1)
	}
	return l.bits.next(i + 1)
}

// pushBack appends order oi at the back of level li.
func (l *ladder) pushBack(orders []order, li, oi int32) {
	lv := &l.levels[li]
	o := &orders[oi]
	o.next, o.prev = -1, lv.tail
	if lv.tail >= 0 {
		orders[lv.tail].next = oi
	} else {
		lv.head = oi
		l.bits.set(li)
		if l.best < 0 || l.better(li, l.best) {
			l.best = li
		}
	}
	lv.tail = oi
	lv.n++
}

// unlink removes order oi from level li, keeping the bitmap and best current.
func (l *ladder) unlink(orders []order, li, oi int32) {
	lv := &l.levels[li]
	o := &orders[oi]
	if o.prev >= 0 {
		orders[o.prev].next = o.next
	} else {
		lv.head = o.next
	}
	if o.next >= 0 {
		orders[o.next].prev = o.prev
	} else {
		lv.tail = o.prev
	}
	o.next, o.prev = -1, -1
	lv.n--
	if lv.n == 0 {
		l.bits.clear(li)
		if l.best == li {
			l.best = l.worse(li)
		}
	}
}

// takeBest detaches the whole FIFO of the best level, which it leaves empty,
// and returns its first and last order (linked through next/prev).
func (l *ladder) takeBest() (head, tail int32) {
	li := l.best
	lv := &l.levels[li]
	head, tail = lv.head, lv.tail
	lv.head, lv.tail, lv.n = -1, -1, 0
	l.bits.clear(li)
	l.best = l.worse(li)
	return head, tail
}

// moveBack moves order oi to the back of its level li (losing time priority).
func (l *ladder) moveBack(orders []order, li, oi int32) {
	if l.levels[li].tail == oi {
		return
	}
	l.unlink(orders, li, oi)
	l.pushBack(orders, li, oi)
}
