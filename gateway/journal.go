package gateway

import (
	"errors"
	"fmt"
	"sync"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/core"
)

// journal reads the audit log for the gateway: the startup scan that
// rebuilds the streams, and replays.
type journal struct {
	dir   string
	marks *audit.SeqMarks

	mu     sync.Mutex
	scales []scalesAt // the instruments records, in log order
}

type scalesAt struct {
	leaf uint64
	sc   audit.Scales
}

// scan reads the whole log: it numbers every account's messages (ss), adds
// the sequence marks of the commands, and remembers the instruments
// records. It returns the number of events read.
func (j *journal) scan(ss *streams) (int, error) {
	r, err := audit.OpenReader(j.dir)
	if err != nil {
		return 0, err
	}
	n := 0
	err = audit.ReadCoreFrom(r, 0, nil, func(idx uint64, c *core.Command, ev *core.Event, sc audit.Scales) error {
		switch {
		case c != nil:
			if j.marks.Want(c.Seq) {
				j.marks.Add(c.Seq, idx)
			}
		case ev != nil:
			ss.apply(ev, nil)
			n++
		default:
			j.mu.Lock()
			j.scales = append(j.scales, scalesAt{idx, sc})
			j.mu.Unlock()
		}
		return nil
	})
	return n, err
}

// scalesAt returns the scales in force at leaf.
func (j *journal) scalesAt(leaf uint64) audit.Scales {
	j.mu.Lock()
	defer j.mu.Unlock()
	var sc audit.Scales
	for _, s := range j.scales {
		if s.leaf > leaf {
			break
		}
		sc = s.sc
	}
	return sc
}

var errReplayDone = errors.New("replay done")

// replay sends account acct's messages from..to-1 again, read from the
// journal from mark m on (the stream's mark at or below from).
func (j *journal) replay(acct uint32, m mark, from, to uint64, send func(frame []byte) error) error {
	if from >= to {
		return nil
	}
	leaf := j.marks.Floor(m.cmd)
	r, err := audit.OpenReader(j.dir)
	if err != nil {
		return err
	}
	n := m.msg - uint64(m.before) // the number of the account's first message in command m.cmd
	started := n > 1
	buf := make([]byte, 0, 128)
	emit := func(ev *core.Event, maker bool) error {
		if n >= from {
			if err := send(appendOE(buf[:0], ev, n, maker)); err != nil {
				return err
			}
		}
		n++
		if n >= to {
			return errReplayDone
		}
		return nil
	}
	err = audit.ReadCoreFrom(r, leaf, j.scalesAt(leaf), func(_ uint64, _ *core.Command, ev *core.Event, _ audit.Scales) error {
		if ev == nil || ev.Seq < m.cmd {
			return nil
		}
		if ev.Kind == core.KindSystem {
			if started {
				return emit(ev, false)
			}
			return nil
		}
		rs, k := recipients(ev)
		for i := range k {
			if rs[i].acct != acct {
				continue
			}
			started = true
			if err := emit(ev, rs[i].maker); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errReplayDone) {
		return nil
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("gateway: the journal ends at message %d of account %d, before %d (it should hold every message sent)", n, acct, to)
}
