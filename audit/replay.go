package audit

import (
	"strings"

	"github.com/tradecore/tradecore/core"
)

// ReadCommands calls fn, in order, for every command in the log read by r
// whose Seq is above afterSeq (0: all), decoding each leaf with the scales of
// the "audit.instruments" record in force at it. It is the replay input of
// recovery: feed the commands to a fresh engine (or one restored from the
// snapshot of seq afterSeq) and the state hash comes out as before. c is
// reused between calls.
func ReadCommands(r *Reader, afterSeq uint64, fn func(idx uint64, c *core.Command) error) error {
	return ReadCommandsFrom(r, 0, afterSeq, fn)
}

// ReadCommandsFrom is ReadCommands reading the log from leaf index from on:
// recovery starts at a snapshot's record. An "audit.instruments" record (every
// writer open writes one) must come before the first command read.
func ReadCommandsFrom(r *Reader, from, afterSeq uint64, fn func(idx uint64, c *core.Command) error) error {
	scales := Scales{}
	var c core.Command
	return r.Read(from, 0, func(e *Entry) error {
		switch {
		case e.Type == TypeInstruments:
			h, err := ParseLeaf(e.Leaf)
			if err != nil {
				return err
			}
			if scales, err = parseInstruments(h.Body); err != nil {
				return err
			}
		case strings.HasPrefix(e.Type, "cmd."):
			if _, err := DecodeCommand(e.Leaf, &c, scales); err != nil {
				return err
			}
			if c.Seq > afterSeq {
				return fn(e.Index, &c)
			}
		}
		return nil
	})
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
