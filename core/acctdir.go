package core

// acctDir gives accounts dense slots when the risk layer is off and accounts
// are not configured: open addressing over a preallocated table at most half
// full, linear probing, no deletion (an account keeps its slot for the
// engine's life). The table is touched only at the slots of active accounts,
// so a venue's working set stays in cache.
type acctDir struct {
	keys  []uint32 // account id; 0 = empty
	slots []int32
	mask  uint32
	n     int32
	max   int32
}

func newAcctDir(capacity int) acctDir {
	n := 2
	for n < 2*capacity {
		n <<= 1
	}
	return acctDir{keys: make([]uint32, n), slots: make([]int32, n), mask: uint32(n - 1), max: int32(capacity)}
}

// slot returns the account's slot, giving it the next one on first sight,
// or -1 when every slot is taken (Config.MaxAccounts).
func (d *acctDir) slot(acct uint32) int32 {
	h := acct * 0x9e3779b1
	for i := h & d.mask; ; i = (i + 1) & d.mask {
		switch d.keys[i] {
		case acct:
			return d.slots[i]
		case 0:
			if d.n == d.max {
				return -1
			}
			d.keys[i], d.slots[i] = acct, d.n
			d.n++
			return d.slots[i]
		}
	}
}
