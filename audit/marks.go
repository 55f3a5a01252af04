package audit

import (
	"sort"
	"sync"
)

// SeqMarks is a sparse map from command sequence numbers to the leaf indices
// of their records: every Every-th command's. A reader that must find a
// command in the log (the gateway replaying an account's messages) starts at
// Floor(seq) instead of the log's first leaf. The journaler adds marks as it
// appends (Journaler.SetMarks); a scan of the log at start adds the older ones.
// Safe for concurrent use; Add takes a lock once per Every commands.
type SeqMarks struct {
	// Every is the mark interval, in commands (default 1024).
	Every uint64

	mu     sync.Mutex
	seqs   []uint64
	leaves []uint64
}

func (m *SeqMarks) every() uint64 {
	if m.Every == 0 {
		return 1024
	}
	return m.Every
}

// Want reports whether command seq is one to mark.
func (m *SeqMarks) Want(seq uint64) bool { return seq%m.every() == 0 }

// Add records that command seq's record is leaf. Marks must come in
// increasing seq order; an older or repeated one is ignored.
func (m *SeqMarks) Add(seq, leaf uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := len(m.seqs); n > 0 && m.seqs[n-1] >= seq {
		return
	}
	m.seqs = append(m.seqs, seq)
	m.leaves = append(m.leaves, leaf)
}

// Floor returns the leaf of the greatest marked command at or below seq, or
// 0 (the log's start) when there is none: every record of command seq and
// its events is at or after it.
func (m *SeqMarks) Floor(seq uint64) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.seqs), func(i int) bool { return m.seqs[i] > seq })
	if i == 0 {
		return 0
	}
	return m.leaves[i-1]
}

// Len returns the number of marks.
func (m *SeqMarks) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.seqs)
}
