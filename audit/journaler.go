package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
)

// Engine is what the journaler reads from the engine loop (core.Loop).
type Engine interface {
	// Time is the loop's last stamp whose command and events are published.
	Time() int64
	// Stopped reports whether the loop has published its last event.
	Stopped() bool
}

// Journaler is the agent (package core/agent, docs/threading.md) that makes
// the engine's input and output durable: each duty cycle it appends the
// sequenced commands (from the loop's Commands ring) and their events (from
// the outbound ring; the market-data view excepted, see journaled) to the log, in sequence order with each command before
// its events, plus the service records that are waiting, commits them
// (group commit: one write, and one fdatasync at DurabilityFsync), and only
// then releases the events it made durable. A consumer created after it
// (ring.NewConsumer(j.Events())) — the publisher that answers clients — so
// sees only durable events: that is the durability gate.
//
// Service records are stamped with the engine clock's published time read
// before the cycle's poll, when the cycle appended everything published by
// then, and otherwise with the time of the last leaf: either way no later
// engine record carries an earlier time, so the log's times never go back.
type Journaler struct {
	log   *Log
	w     *Writer
	cmds  *ring.Consumer[core.Command]
	evs   *ring.Consumer[core.Event]
	eng   Engine
	safe  int64  // the time service records of this cycle may carry
	seq   uint64 // the last command appended
	err   error
	marks *SeqMarks
}

// SetMarks makes the journaler record every marks.Every-th command's leaf
// index in marks. Call it before the journaler runs.
func (j *Journaler) SetMarks(marks *SeqMarks) { j.marks = marks }

// NewJournaler returns the journaler of l (opened with ExternalCommit) for
// the loop's commands ring and outbound ring, creating its consumers there.
// Create it, and every consumer gated after it, before the loop runs.
func NewJournaler(l *Log, cmds *ring.Ring[core.Command], evs *ring.Ring[core.Event], eng Engine) (*Journaler, error) {
	if !l.cfg.ExternalCommit {
		return nil, fmt.Errorf("audit: the journaler needs a log opened with Config.ExternalCommit")
	}
	cc, err := cmds.NewConsumer()
	if err != nil {
		return nil, err
	}
	ec, err := evs.NewConsumer()
	if err != nil {
		return nil, err
	}
	j := &Journaler{log: l, w: l.w, cmds: cc, evs: ec, eng: eng}
	l.w.cfg.Now = j.now
	return j, nil
}

// Events is the journaler's consumer of the outbound ring: gate the
// publisher after it.
func (j *Journaler) Events() *ring.Consumer[core.Event] { return j.evs }

func (j *Journaler) now() time.Time { return time.Unix(0, j.safe) }

// Name implements agent.Agent.
func (j *Journaler) Name() string { return "journaler" }

// UseDoorbell implements agent.DoorbellUser.
func (j *Journaler) UseDoorbell(d *agent.Doorbell) error {
	if err := j.cmds.SetDoorbell(d); err != nil {
		return err
	}
	return j.evs.SetDoorbell(d)
}

// DoWork implements agent.Agent. A failed write stops the runner (and the
// plan): the log refuses everything after it, and trading must stop.
func (j *Journaler) DoWork(context.Context) (int, error) {
	if j.err != nil {
		return 0, j.err
	}
	t := j.eng.Time() // read before polling: everything stamped up to t is visible below
	cw, ew := j.cmds.Poll(), j.evs.Poll()
	nc, ne := 0, 0
	for ne < len(ew) {
		ev := &ew[ne]
		for nc < len(cw) && cw[nc].Seq <= ev.Seq {
			idx, err := j.w.AppendCommand(&cw[nc])
			if err != nil {
				return 0, j.fail(err)
			}
			if j.marks != nil && j.marks.Want(cw[nc].Seq) {
				j.marks.Add(cw[nc].Seq, idx)
			}
			j.seq = cw[nc].Seq
			nc++
		}
		if j.seq < ev.Seq {
			break // its command is not visible yet: next cycle
		}
		if journaled(ev.Kind) {
			if _, err := j.w.AppendEvent(ev); err != nil {
				return 0, j.fail(err)
			}
		}
		ne++
	}
	// Everything published by t was appended only if both windows were
	// used up and nothing more is readable.
	j.safe = 0
	if nc == len(cw) && ne == len(ew) && j.cmds.Readable() == uint64(nc) && j.evs.Readable() == uint64(ne) {
		j.safe = t
	}
	if nc+ne == 0 && !j.w.Pending() {
		return 0, nil
	}
	if err := j.w.Commit(); err != nil {
		return 0, j.fail(err)
	}
	j.cmds.Release(nc)
	j.evs.Release(ne)
	return nc + ne + 1, nil
}

// journaled reports whether events of kind k are journaled: every event but
// the public order-by-order market-data view (book adds, executes, cancels,
// deletes, replaces and trade prints). Those follow deterministically from
// the journaled commands — a replay regenerates them exactly — and carry
// nothing the private events (accepted, executed, cancelled, …) do not; they
// would double the log. System events (halts) are journaled.
func journaled(k core.EventKind) bool {
	return k < core.KindBookAdd || k > core.KindTrade
}

func (j *Journaler) fail(err error) error {
	j.err = fmt.Errorf("audit: journal write failed, trading must stop (recover from the log after fixing the disk): %w", err)
	return j.err
}

// Drained implements agent.Drainer: the engine has stopped and everything it
// published is durable.
func (j *Journaler) Drained() bool {
	return j.eng.Stopped() && len(j.cmds.Poll()) == 0 && len(j.evs.Poll()) == 0 && !j.w.Pending()
}

// CommitDuring runs fn while committing service records itself, for the
// times a log opened with ExternalCommit has no journaler running: at start
// (before the engine's agents run: recovery, the signing service recording
// its pending key entries) and at stop (after they ended). It must not run
// while a journaler does. It returns fn's error.
func (l *Log) CommitDuring(fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	t := time.NewTicker(200 * time.Microsecond)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			if l.w.Pending() {
				if cerr := l.w.Commit(); cerr != nil && err == nil {
					err = cerr
				}
			}
			return err
		case <-t.C:
			if l.w.Pending() {
				if err := l.w.Commit(); err != nil {
					return fmt.Errorf("audit: commit service records: %w", err)
				}
			}
		}
	}
}
