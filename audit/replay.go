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
