package config

import "errors"

// ErrInvalid is wrapped by every error that reports a configuration file
// which is malformed or breaks a rule (an *Error). The message names the field
// and the fix: show it to the operator and refuse to start.
var ErrInvalid = errors.New("config: invalid configuration")

// ErrUnits is wrapped by the errors of Instrument.PriceToTicks and
// Instrument.QtyToLots: the decimal is not a whole number of the instrument's
// ticks or lots, or the count does not fit an int64. Reject the order or
// request that carried it; the message names the tick or lot size.
var ErrUnits = errors.New("config: not a whole number of ticks or lots")

// Error reports one problem in a configuration file. It wraps ErrInvalid.
type Error struct {
	// File is the path given to Load; empty for Parse and Default.
	File string
	// Field is the path of the offending value in the file, such as
	// "instruments[2].tick_size"; empty when the problem is the whole file
	// (a JSON syntax error).
	Field string
	// Msg says what is wrong and how to fix it.
	Msg string
}

func (e *Error) Error() string {
	s := "config: "
	if e.File != "" {
		s += e.File + ": "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Msg
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }
