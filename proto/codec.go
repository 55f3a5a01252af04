package proto

import "fmt"

// Message is one protocol message: a pointer to one of this package's
// message structs.
type Message interface {
	// Type returns the message's type.
	Type() Type
	// AppendFrame appends the message's frame to dst and returns it.
	AppendFrame(dst []byte) []byte
	// UnmarshalFrame decodes a frame of the message's type into it.
	UnmarshalFrame(frame []byte) error
}

// zeros pads new frames; it is never written.
var zeros [MaxFrame]byte

// grow appends n zero bytes to dst.
func grow(dst []byte, n int) []byte { return append(dst, zeros[:n]...) }

// Append appends m's frame to dst. It does not allocate when dst has room.
func Append(dst []byte, m Message) []byte { return m.AppendFrame(dst) }

// Decode decodes frame, exactly one frame of any type, into a new message.
func Decode(frame []byte) (Message, error) {
	h, err := ParseHeader(frame)
	if err != nil {
		return nil, err
	}
	m := newMessage(h.Type)
	if m == nil { // unreachable: ParseHeader knows the type
		return nil, fmt.Errorf("%w: unknown type %s", ErrMalformed, h.Type)
	}
	if err := m.UnmarshalFrame(frame); err != nil {
		return nil, err
	}
	return m, nil
}

// DecodeInto decodes frame into m, which must be of the frame's type
// (ErrMalformed otherwise). It does not allocate.
func DecodeInto(frame []byte, m Message) error { return m.UnmarshalFrame(frame) }

// New returns a new zero message of type t, or nil for an unknown type.
func New(t Type) Message { return newMessage(t) }

// Sequenced returns the outbound sequence number of a sequenced message
// frame (the order-entry messages from the engine and the market-data
// messages), and false for any other frame. The frame must have passed
// ParseHeader.
func Sequenced(frame []byte) (uint64, bool) {
	switch Type(frame[2]) {
	case TAccepted, TRejected, TExecuted, TCancelled, TReduced, TReplaced, TTriggered, TSystemEvent, TAccountAlert,
		TMDAdd, TMDExecute, TMDCancel, TMDDelete, TMDReplace, TMDTrade, TMDSystem:
		return le.Uint64(frame[4:]), true
	}
	return 0, false
}
