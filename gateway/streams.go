package gateway

import "github.com/tradecore/tradecore/core"

// markEvery is how often (in messages) a stream remembers where a message
// came from, to start replays near it.
const markEvery = 64

// mark says that message msg of a stream came from an event of command cmd,
// after before earlier messages of the stream from the same command.
type mark struct {
	msg, cmd uint64
	before   uint32
}

// stream is one account's sequenced order-entry messages: numbered from 1
// over the journal's life, in journal order. A stream starts with the
// account's first private message; system events go to every started
// stream. The same rules, applied to the journal, rebuild it (startup scan)
// and replay it.
type stream struct {
	account uint32
	next    uint64 // the number the next message gets
	maxRef  uint64 // the highest client reference seen in its messages
	marks   []mark
	lastCmd uint64
	inCmd   uint32
}

// count numbers the stream's next message, from command cmd.
func (st *stream) count(cmd uint64) uint64 {
	if cmd != st.lastCmd {
		st.lastCmd, st.inCmd = cmd, 0
	}
	n := st.next
	if n == 1 || n%markEvery == 0 {
		st.marks = append(st.marks, mark{msg: n, cmd: cmd, before: st.inCmd})
	}
	st.inCmd++
	st.next++
	return n
}

// markFor returns the mark a replay from message from starts at: the last
// one at or below it.
func (st *stream) markFor(from uint64) mark {
	lo, hi := 0, len(st.marks)
	for lo < hi {
		m := (lo + hi) / 2
		if st.marks[m].msg <= from {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return st.marks[0]
	}
	return st.marks[lo-1]
}

// streams are the order-entry streams of every account, owned by one
// goroutine at a time (the startup scan, then the publisher).
type streams struct {
	byAcct map[uint32]*stream
	all    []*stream
}

func newStreams() *streams { return &streams{byAcct: map[uint32]*stream{}} }

// get returns acct's stream, starting it when missing.
func (ss *streams) get(acct uint32) *stream {
	st := ss.byAcct[acct]
	if st == nil {
		st = &stream{account: acct, next: 1}
		ss.byAcct[acct] = st
		ss.all = append(ss.all, st)
	}
	return st
}

// apply numbers the messages ev gives every recipient and calls deliver
// (when not nil) for each.
func (ss *streams) apply(ev *core.Event, deliver func(st *stream, n uint64, maker bool)) {
	if ev.Kind == core.KindSystem {
		for _, st := range ss.all {
			n := st.count(ev.Seq)
			if deliver != nil {
				deliver(st, n, false)
			}
		}
		return
	}
	rs, k := recipients(ev)
	for i := range k {
		st := ss.get(rs[i].acct)
		n := st.count(ev.Seq)
		st.maxRef = max(st.maxRef, refOf(ev, rs[i].maker))
		if deliver != nil {
			deliver(st, n, rs[i].maker)
		}
	}
}
