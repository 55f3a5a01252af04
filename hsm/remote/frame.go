package remote

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrame bounds a response frame's payload (a manifest can be large).
const MaxFrame = 1 << 20

// DefaultMaxRequest bounds a request frame's payload unless
// ServerConfig.MaxRequest says otherwise: messages to sign are small
// (checkpoints, manifest entries).
const DefaultMaxRequest = 64 << 10

// Request operations.
const (
	OpSign     byte = 1 // payload: message
	OpSignWith byte = 2 // payload: len(key id) u8 ‖ key id ‖ message
	OpManifest byte = 3 // payload: empty
)

// Response status codes (first byte of a response payload).
const (
	StatusOK         byte = 0
	StatusBadRequest byte = 1
	StatusDenied     byte = 2
	StatusRetired    byte = 3
	StatusNotFound   byte = 4
	StatusExhausted  byte = 5
	StatusBusy       byte = 6 // connection cap reached (connection closed)
	StatusInternal   byte = 255
)

// ErrBadFrame is wrapped by every request the server cannot parse; the
// server answers StatusBadRequest and closes the connection.
var ErrBadFrame = errors.New("remote: bad frame")

// Request is a parsed request.
type Request struct {
	Op    byte
	KeyID string // OpSignWith only
	Msg   []byte // aliases the frame
}

// ParseRequest parses a request payload (the frame without its length). It
// never panics, whatever the input.
func ParseRequest(p []byte) (Request, error) {
	if len(p) == 0 {
		return Request{}, fmt.Errorf("%w: empty", ErrBadFrame)
	}
	r := Request{Op: p[0]}
	body := p[1:]
	switch r.Op {
	case OpSign:
		r.Msg = body
	case OpSignWith:
		if len(body) < 1 {
			return Request{}, fmt.Errorf("%w: missing key id length", ErrBadFrame)
		}
		n := int(body[0])
		if n == 0 || len(body) < 1+n {
			return Request{}, fmt.Errorf("%w: key id length %d", ErrBadFrame, n)
		}
		r.KeyID, r.Msg = string(body[1:1+n]), body[1+n:]
	case OpManifest:
		if len(body) != 0 {
			return Request{}, fmt.Errorf("%w: manifest request with a body", ErrBadFrame)
		}
	default:
		return Request{}, fmt.Errorf("%w: unknown op %d", ErrBadFrame, r.Op)
	}
	return r, nil
}

// AppendRequest appends r's payload (without the length prefix) to dst.
func AppendRequest(dst []byte, r Request) []byte {
	dst = append(dst, r.Op)
	if r.Op == OpSignWith {
		dst = append(dst, byte(len(r.KeyID)))
		dst = append(dst, r.KeyID...)
	}
	return append(dst, r.Msg...)
}

// readFrame reads one length-prefixed frame of at most limit bytes into buf.
// The length is checked before anything is allocated, and the buffer grows
// only as bytes actually arrive (at most doubling), so a peer that announces
// a large frame and stops costs almost nothing.
func readFrame(r io.Reader, buf []byte, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n > limit {
		return nil, fmt.Errorf("%w: length %d exceeds %d", ErrBadFrame, n, limit)
	}
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := make([]byte, len(buf), min(n, max(2*cap(buf), 512)))
			copy(grown, buf)
			buf = grown
		}
		m, err := r.Read(buf[len(buf):min(n, cap(buf))])
		buf = buf[:len(buf)+m]
		if err != nil && len(buf) < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return buf, nil
}

// writeFrame writes payload with its 4-byte big-endian length prefix.
func writeFrame(w io.Writer, scratch []byte, payload []byte) ([]byte, error) {
	if len(payload) > MaxFrame {
		return scratch, fmt.Errorf("%w: payload of %d bytes exceeds %d", ErrBadFrame, len(payload), MaxFrame)
	}
	scratch = binary.BigEndian.AppendUint32(scratch[:0], uint32(len(payload)))
	scratch = append(scratch, payload...)
	_, err := w.Write(scratch)
	return scratch, err
}
