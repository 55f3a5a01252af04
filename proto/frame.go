package proto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol version this package speaks: the fourth byte of
// every frame.
const Version = 1

// HeaderSize is the length of a frame's header: Length (2), Type (1),
// Version (1).
const HeaderSize = 4

// MaxFrame is the longest frame a receiver accepts; a longer one closes the
// session (ReasonOversizedFrame).
const MaxFrame = 512

// Type is a message type: an ASCII letter (docs/protocol.md, "Messages").
type Type byte

// Message types.
const (
	TLogin          Type = 'L'
	TLogoutRequest  Type = 'O'
	THeartbeat      Type = 'H'
	TNewOrder       Type = 'N'
	TCancel         Type = 'X'
	TCancelToSize   Type = 'S'
	TReplace        Type = 'U'
	TMassCancel     Type = 'M'
	TKillSwitch     Type = 'K'
	TReferenceQuery Type = 'Q'

	TLoginAccepted Type = 'A'
	TLoginRejected Type = 'J'
	TLogout        Type = 'G'
	TSessionReject Type = 'R'
	TNextReference Type = 'q'

	TAccepted     Type = 'a'
	TRejected     Type = 'j'
	TExecuted     Type = 'e'
	TCancelled    Type = 'c'
	TReduced      Type = 'd'
	TReplaced     Type = 'u'
	TTriggered    Type = 't'
	TSystemEvent  Type = 'y'
	TAccountAlert Type = 'w'

	TMDAdd         Type = 'B'
	TMDExecute     Type = 'E'
	TMDCancel      Type = 'C'
	TMDDelete      Type = 'D'
	TMDReplace     Type = 'V'
	TMDTrade       Type = 'T'
	TMDSystem      Type = 'Y'
	TSnapshotBegin Type = 'W'
	TSnapshotEnd   Type = 'Z'

	TAttestHello     Type = 'I'
	TAttestChallenge Type = 'i'
	TAttestQuote     Type = 'P'
	TAttestAccepted  Type = 'p'
)

// sizes holds every type's frame length; 0 marks an unknown type.
var sizes = [256]uint16{
	TLogin: 88, TLogoutRequest: 4, THeartbeat: 4, TNewOrder: 72, TCancel: 24, TCancelToSize: 32,
	TReplace: 56, TMassCancel: 8, TKillSwitch: 4, TReferenceQuery: 4,
	TLoginAccepted: 56, TLoginRejected: 8, TLogout: 16, TSessionReject: 24, TNextReference: 16,
	TAccepted: 72, TRejected: 80, TExecuted: 80, TCancelled: 64, TReduced: 64, TReplaced: 80,
	TTriggered: 72, TSystemEvent: 40, TAccountAlert: 48,
	TMDAdd: 56, TMDExecute: 72, TMDCancel: 56, TMDDelete: 40, TMDReplace: 56, TMDTrade: 56,
	TMDSystem: 40, TSnapshotBegin: 20, TSnapshotEnd: 12,
	TAttestHello: 20, TAttestChallenge: 72, TAttestQuote: 440, TAttestAccepted: 40,
}

// Size returns the frame length of messages of type t, or 0 for a type this
// version does not know.
func Size(t Type) int { return int(sizes[t]) }

// Types lists every message type, in the order of docs/protocol.md.
func Types() []Type {
	return []Type{TLogin, TLogoutRequest, THeartbeat, TNewOrder, TCancel, TCancelToSize, TReplace, TMassCancel,
		TKillSwitch, TReferenceQuery, TLoginAccepted, TLoginRejected, TLogout, TSessionReject, TNextReference,
		TAccepted, TRejected, TExecuted, TCancelled, TReduced, TReplaced, TTriggered, TSystemEvent, TAccountAlert,
		TMDAdd, TMDExecute, TMDCancel, TMDDelete, TMDReplace, TMDTrade, TMDSystem, TSnapshotBegin, TSnapshotEnd,
		TAttestHello, TAttestChallenge, TAttestQuote, TAttestAccepted}
}

// String returns the type's letter.
func (t Type) String() string {
	if t >= ' ' && t < 0x7f {
		return string(rune(t))
	}
	return fmt.Sprintf("0x%02x", byte(t))
}

// Errors of the frame decoders. Each means the peer sent bytes that are not a
// frame of this version: close the session with ReasonOf(err).
var (
	// ErrOversized: the length field is above MaxFrame.
	ErrOversized = errors.New("proto: frame longer than 512 bytes")
	// ErrMalformed: a length below the header, a length that is not the
	// type's, an unknown type, a message of the wrong type, or a truncated
	// frame.
	ErrMalformed = errors.New("proto: malformed frame")
	// ErrVersion: the frame's version byte is not Version.
	ErrVersion = errors.New("proto: unsupported protocol version")
)

// Header is a frame's decoded header.
type Header struct {
	Length  int
	Type    Type
	Version uint8
}

// ParseHeader decodes and checks the header at the start of b: a known type,
// the type's exact length, version 1. b may hold more than one frame; it
// must hold at least HeaderSize bytes.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrMalformed, len(b))
	}
	h := Header{Length: int(binary.LittleEndian.Uint16(b)), Type: Type(b[2]), Version: b[3]}
	switch {
	case h.Length > MaxFrame:
		return h, ErrOversized
	case h.Length < HeaderSize:
		return h, fmt.Errorf("%w: length %d", ErrMalformed, h.Length)
	case sizes[h.Type] == 0:
		return h, fmt.Errorf("%w: unknown type %s", ErrMalformed, h.Type)
	case h.Version != Version:
		return h, fmt.Errorf("%w: version %d", ErrVersion, h.Version)
	case h.Length != int(sizes[h.Type]):
		return h, fmt.Errorf("%w: type %s is %d bytes, not %d", ErrMalformed, h.Type, sizes[h.Type], h.Length)
	}
	return h, nil
}

// putHeader writes the header of a frame of type t into b.
func putHeader(b []byte, t Type) {
	binary.LittleEndian.PutUint16(b, sizes[t])
	b[2] = byte(t)
	b[3] = Version
}

// checkFrame checks that b is exactly one frame of type t.
func checkFrame(b []byte, t Type) error {
	h, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if h.Type != t {
		return fmt.Errorf("%w: a %s frame where %s was expected", ErrMalformed, h.Type, t)
	}
	if len(b) != h.Length {
		return fmt.Errorf("%w: %d bytes for a %d-byte frame", ErrMalformed, len(b), h.Length)
	}
	return nil
}

// FrameReader splits a byte stream into checked frames. It allocates its
// buffer once; Next returns a slice of it.
type FrameReader struct {
	r          io.Reader
	buf        []byte
	start, end int
	empty      int // reads in a row that returned nothing
}

// NewFrameReader returns a reader of frames from r, buffering up to size
// bytes (at least MaxFrame; 0: 64 KiB).
func NewFrameReader(r io.Reader, size int) *FrameReader {
	if size == 0 {
		size = 64 << 10
	}
	return &FrameReader{r: r, buf: make([]byte, max(size, MaxFrame))}
}

// Next returns the next frame, header included, valid until the next call.
// Its header has been checked (ParseHeader). It returns io.EOF at a clean
// end of the stream, io.ErrUnexpectedEOF inside a frame, a proto error for
// bytes that are not a frame (after which the stream cannot be resynchronised:
// close it), and the reader's other errors as they are.
func (fr *FrameReader) Next() ([]byte, error) {
	for {
		if n := fr.end - fr.start; n >= HeaderSize {
			h, err := ParseHeader(fr.buf[fr.start:fr.end])
			if err != nil {
				return nil, err
			}
			if n >= h.Length {
				f := fr.buf[fr.start : fr.start+h.Length]
				fr.start += h.Length
				return f, nil
			}
		}
		if fr.start > 0 && fr.start == fr.end {
			fr.start, fr.end = 0, 0
		}
		if len(fr.buf)-fr.start < MaxFrame { // make room for a whole frame
			fr.end = copy(fr.buf, fr.buf[fr.start:fr.end])
			fr.start = 0
		}
		n, err := fr.r.Read(fr.buf[fr.end:])
		fr.end += n
		if n > 0 {
			fr.empty = 0
			continue
		}
		if err == nil {
			if fr.empty++; fr.empty < 100 {
				continue
			}
			err = io.ErrNoProgress
		}
		if err == io.EOF && fr.end > fr.start {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
}

// Buffered reports how many bytes are buffered beyond the frames returned.
func (fr *FrameReader) Buffered() int { return fr.end - fr.start }
