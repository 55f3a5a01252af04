package audit

import (
	"bytes"
	"context"
	"strings"

	"github.com/tradecore/tradecore/core"
)

// ReadCommands calls fn, in order, for every command in the log read by r
// whose Seq is above afterSeq (0: all), decoding each leaf with the scales of
// the "audit.instruments" record in force at it. It is the replay input of
// recovery: feed the commands to a fresh engine (or one restored from the
// snapshot of seq afterSeq) and the state hash comes out as before. c is
// valid only during the call.
func ReadCommands(r *Reader, afterSeq uint64, fn func(idx uint64, c *core.Command) error) error {
	return ReadCommandsFrom(r, 0, afterSeq, fn)
}

// replayBatch is a run of decoded commands and their leaf indexes.
type replayBatch struct {
	idx  []uint64
	cmds []core.Command
}

const replayBatchLen = 1024

// ReadCommandsFrom is ReadCommands reading the log from leaf index from on:
// recovery starts at a snapshot's record. An "audit.instruments" record (every
// writer open writes one) must come before the first command read.
//
// It works in two stages, so recovery uses two CPUs: a goroutine reads,
// checksums and decodes the leaves into batches of commands while the
// caller's goroutine runs fn on them, in order. fn always runs on the
// caller's goroutine; the first error (fn's, or a read's) stops both.
func ReadCommandsFrom(r *Reader, from, afterSeq uint64, fn func(idx uint64, c *core.Command) error) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	batches := make(chan *replayBatch, 2)
	free := make(chan *replayBatch, 4)
	for range cap(free) {
		free <- &replayBatch{idx: make([]uint64, 0, replayBatchLen), cmds: make([]core.Command, 0, replayBatchLen)}
	}
	var rerr error
	go func() {
		defer close(batches)
		scales := Scales{}
		b := <-free
		send := func() error {
			select {
			case batches <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
			b = <-free // the consumer gives every batch back
			b.idx, b.cmds = b.idx[:0], b.cmds[:0]
			return nil
		}
		rerr = r.read(from, 0, false, func(e *Entry, h *LeafHeader, _ uint64, _ int64) error {
			switch {
			case bytes.HasPrefix(h.Type, []byte("cmd.")):
				b.cmds = b.cmds[:len(b.cmds)+1]
				c := &b.cmds[len(b.cmds)-1]
				if err := decodeCommand(h, c, scales); err != nil {
					return err
				}
				if c.Seq <= afterSeq {
					b.cmds = b.cmds[:len(b.cmds)-1]
					return nil
				}
				b.idx = append(b.idx, e.Index)
				if len(b.cmds) == cap(b.cmds) {
					return send()
				}
			case string(h.Type) == TypeInstruments:
				sc, err := parseInstruments(h.Body)
				if err != nil {
					return err
				}
				scales = sc
			}
			return nil
		})
		if rerr == nil && len(b.cmds) > 0 {
			rerr = send()
		}
	}()
	var ferr error
	for b := range batches {
		for i := 0; ferr == nil && i < len(b.cmds); i++ {
			if ferr = fn(b.idx[i], &b.cmds[i]); ferr != nil {
				cancel()
			}
		}
		free <- b
	}
	if ferr != nil {
		return ferr
	}
	return rerr
}

// ReadCoreFrom calls fn, in log order from leaf index from on, for every
// command (c set, ev nil) and every journaled event (ev set, c nil), decoded
// with sc until an "audit.instruments" record replaces it, and for every
// instruments record (c and ev nil, sc the new scales); fn receives the
// scales in force. A reader that starts in the middle of the log passes the
// scales in force there (those of the last instruments record before from).
// c and ev are reused between calls. fn may stop the read by returning an
// error, which ReadCoreFrom returns.
func ReadCoreFrom(r *Reader, from uint64, sc Scales, fn func(idx uint64, c *core.Command, ev *core.Event, sc Scales) error) error {
	var c core.Command
	var ev core.Event
	return r.Read(from, 0, func(e *Entry) error {
		switch {
		case e.Type == TypeInstruments:
			h, err := ParseLeaf(e.Leaf)
			if err != nil {
				return err
			}
			if sc, err = parseInstruments(h.Body); err != nil {
				return err
			}
			return fn(e.Index, nil, nil, sc)
		case strings.HasPrefix(e.Type, "cmd."):
			if _, err := DecodeCommand(e.Leaf, &c, sc); err != nil {
				return err
			}
			return fn(e.Index, &c, nil, sc)
		case strings.HasPrefix(e.Type, "event."):
			if _, err := DecodeEvent(e.Leaf, &ev, sc); err != nil {
				return err
			}
			return fn(e.Index, nil, &ev, sc)
		}
		return nil
	})
}
