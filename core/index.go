package core

// index maps (account, ClOrdID) of every open order to its slot: open
// addressing with linear probing and backward-shift deletion, so it never
// allocates after New and never accumulates tombstones.
//
// A slot is 8 bytes: a 32-bit hash of the key, whose low bits are the slot's
// home, and the order's slot. The full key lives in the order; it is compared
// only when the hashes match, so the common lookup of a fresh ClOrdID (the
// duplicate check of every new order) reads nothing but the index.
type index struct {
	slots []islot
	mask  uint32
}

type islot struct {
	h   uint32
	ref int32 // order slot + 1; 0 = empty
}

func newIndex(capacity int) index {
	n := 1
	for n < 2*capacity {
		n <<= 1
	}
	return index{slots: make([]islot, n), mask: uint32(n - 1)}
}

func ihash(acct uint32, cl uint64) uint32 {
	h := cl ^ (uint64(acct) * 0x9e3779b97f4a7c15)
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint32(h)
}

// get returns the slot of the open order, or -1.
func (x *index) get(orders []order, acct uint32, cl uint64) int32 {
	h := ihash(acct, cl)
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		s := x.slots[i]
		if s.ref == 0 {
			return -1
		}
		if s.h == h {
			if o := &orders[s.ref-1]; o.clOrdID == cl && o.account == acct {
				return s.ref - 1
			}
		}
	}
}

// put records order oi under its key; the key must not be present (callers
// check).
func (x *index) put(acct uint32, cl uint64, oi int32) {
	h := ihash(acct, cl)
	i := h & x.mask
	for x.slots[i].ref != 0 {
		i = (i + 1) & x.mask
	}
	x.slots[i] = islot{h: h, ref: oi + 1}
}

// del removes order oi, recorded under its key.
func (x *index) del(acct uint32, cl uint64, oi int32) {
	i := ihash(acct, cl) & x.mask
	for {
		s := x.slots[i]
		if s.ref == 0 {
			return
		}
		if s.ref == oi+1 {
			break
		}
		i = (i + 1) & x.mask
	}
	// Backward-shift: pull later members of the probe run into the hole.
	for j := (i + 1) & x.mask; ; j = (j + 1) & x.mask {
		s := x.slots[j]
		if s.ref == 0 {
			break
		}
		home := s.h & x.mask
		// s may move to i if its home is not in the cyclic range (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.slots[i] = s
			i = j
		}
	}
	x.slots[i] = islot{}
}
