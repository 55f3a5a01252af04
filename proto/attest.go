package proto

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// Device attestation in the session layer (docs/protocol.md, "Device
// attestation"): a login with FlagDevice is followed by an AttestHello; the
// server answers with an AttestChallenge, the client with an AttestQuote
// made by its TPM, and the server with LoginAccepted and AttestAccepted (or
// LoginRejected). In a session the server sends an AttestChallenge again
// before the attestation expires.

// Sizes of the attestation frames' fields.
const (
	// DeviceIDSize is a device id on the wire: the 16 bytes its 32 hex
	// digits (docs/attestation.md) stand for.
	DeviceIDSize = 16
	// AttestNonceSize is the challenge nonce (the quote's qualifying data).
	AttestNonceSize = 32
	// MaxQuote bounds the TPMS_ATTEST an AttestQuote carries.
	MaxQuote = 256
	// MaxSignature bounds the TPMT_SIGNATURE an AttestQuote carries.
	MaxSignature = 128
)

// BankSHA256 is the TPM_ALG_ID of the SHA-256 PCR bank, the only bank of
// protocol version 1.
const BankSHA256 = 0x000B

// MaxPCR is the highest PCR index a challenge may select.
const MaxPCR = 23

// ErrAttestField means an attestation field does not fit its frame: a quote
// or signature longer than the frame holds, or a PCR outside 0..23. The
// TPM produced something this protocol version cannot carry: report it.
var ErrAttestField = errors.New("proto: attestation field out of range")

// AttestHello names the device whose TPM will answer the challenge; it
// follows a Login with FlagDevice (type TAttestHello, docs/protocol.md).
type AttestHello struct {
	DeviceID [16]byte
}

// Type implements Message.
func (*AttestHello) Type() Type { return TAttestHello }

// AppendFrame appends m's frame to dst.
func (m *AttestHello) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TAttestHello]))
	b := dst[n:]
	putHeader(b, TAttestHello)
	copy(b[4:20], m.DeviceID[:])
	return dst
}

// UnmarshalFrame decodes frame, exactly one AttestHello frame, into m.
func (m *AttestHello) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TAttestHello); err != nil {
		return err
	}
	copy(m.DeviceID[:], b[4:20])
	return nil
}

// AttestChallenge asks the device to quote PCRs with Nonce before Expires
// (type TAttestChallenge, docs/protocol.md).
type AttestChallenge struct {
	DeviceID [16]byte
	Nonce    [32]byte
	Expires  int64
	PCRs     uint32 // bit i: PCR i
	Bank     uint16 // TPM_ALG_ID, BankSHA256
}

// Type implements Message.
func (*AttestChallenge) Type() Type { return TAttestChallenge }

// AppendFrame appends m's frame to dst.
func (m *AttestChallenge) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TAttestChallenge]))
	b := dst[n:]
	putHeader(b, TAttestChallenge)
	copy(b[4:20], m.DeviceID[:])
	copy(b[20:52], m.Nonce[:])
	le.PutUint64(b[52:], uint64(m.Expires))
	le.PutUint32(b[60:], m.PCRs)
	le.PutUint16(b[64:], m.Bank)
	return dst
}

// UnmarshalFrame decodes frame, exactly one AttestChallenge frame, into m.
// It does not judge the PCR selection or the bank: PCRList does.
func (m *AttestChallenge) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TAttestChallenge); err != nil {
		return err
	}
	copy(m.DeviceID[:], b[4:20])
	copy(m.Nonce[:], b[20:52])
	m.Expires = int64(le.Uint64(b[52:]))
	m.PCRs = le.Uint32(b[60:])
	m.Bank = le.Uint16(b[64:])
	return nil
}

// SetPCRs sets the PCR bitmap from ascending or unordered indices 0..23.
func (m *AttestChallenge) SetPCRs(pcrs []int) error {
	var mask uint32
	for _, p := range pcrs {
		if p < 0 || p > MaxPCR {
			return fmt.Errorf("%w: PCR %d", ErrAttestField, p)
		}
		mask |= 1 << p
	}
	m.PCRs = mask
	return nil
}

// PCRList returns the selected PCRs, ascending. It fails for an empty
// selection, a bit above PCR 23 or a bank other than SHA-256: a challenge
// the device cannot answer in this protocol version.
func (m *AttestChallenge) PCRList() ([]int, error) {
	if m.Bank != BankSHA256 {
		return nil, fmt.Errorf("%w: PCR bank 0x%04x (version 1 quotes only SHA-256, 0x%04x)", ErrAttestField, m.Bank, BankSHA256)
	}
	if m.PCRs == 0 || m.PCRs>>(MaxPCR+1) != 0 {
		return nil, fmt.Errorf("%w: PCR selection 0x%08x", ErrAttestField, m.PCRs)
	}
	out := make([]int, 0, bits.OnesCount32(m.PCRs))
	for i := 0; i <= MaxPCR; i++ {
		if m.PCRs&(1<<i) != 0 {
			out = append(out, i)
		}
	}
	return out, nil
}

// AttestQuote is the device's answer to an AttestChallenge: the TPM's quote
// and signature, each in a fixed-size field with its length (type
// TAttestQuote, docs/protocol.md).
type AttestQuote struct {
	DeviceID     [16]byte
	Nonce        [32]byte
	QuoteLen     uint16
	SignatureLen uint16
	Quote        [256]byte
	Signature    [128]byte
}

// Type implements Message.
func (*AttestQuote) Type() Type { return TAttestQuote }

// AppendFrame appends m's frame to dst.
func (m *AttestQuote) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TAttestQuote]))
	b := dst[n:]
	putHeader(b, TAttestQuote)
	copy(b[4:20], m.DeviceID[:])
	copy(b[20:52], m.Nonce[:])
	le.PutUint16(b[52:], m.QuoteLen)
	le.PutUint16(b[54:], m.SignatureLen)
	copy(b[56:312], m.Quote[:])
	copy(b[312:440], m.Signature[:])
	return dst
}

// UnmarshalFrame decodes frame, exactly one AttestQuote frame, into m. It
// refuses (ErrMalformed) a QuoteLen outside 1..256, a SignatureLen outside
// 1..128, and a non-zero byte after either's length, so every quote has
// one encoding.
func (m *AttestQuote) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TAttestQuote); err != nil {
		return err
	}
	ql, sl := le.Uint16(b[52:]), le.Uint16(b[54:])
	switch {
	case ql == 0 || ql > MaxQuote:
		return fmt.Errorf("%w: QuoteLen %d is not 1..%d", ErrMalformed, ql, MaxQuote)
	case sl == 0 || sl > MaxSignature:
		return fmt.Errorf("%w: SignatureLen %d is not 1..%d", ErrMalformed, sl, MaxSignature)
	case !allZero(b[56+int(ql) : 312]):
		return fmt.Errorf("%w: bytes after the quote's %d are not zero", ErrMalformed, ql)
	case !allZero(b[312+int(sl) : 440]):
		return fmt.Errorf("%w: bytes after the signature's %d are not zero", ErrMalformed, sl)
	}
	copy(m.DeviceID[:], b[4:20])
	copy(m.Nonce[:], b[20:52])
	m.QuoteLen, m.SignatureLen = ql, sl
	copy(m.Quote[:], b[56:312])
	copy(m.Signature[:], b[312:440])
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// SetQuote copies the TPM's quote (TPMS_ATTEST) and signature
// (TPMT_SIGNATURE) into m, zeroing the rest of both fields.
func (m *AttestQuote) SetQuote(quote, sig []byte) error {
	if len(quote) == 0 || len(quote) > MaxQuote || len(sig) == 0 || len(sig) > MaxSignature {
		return fmt.Errorf("%w: a quote of %d bytes (1..%d) and a signature of %d (1..%d)", ErrAttestField,
			len(quote), MaxQuote, len(sig), MaxSignature)
	}
	m.Quote, m.Signature = [MaxQuote]byte{}, [MaxSignature]byte{}
	m.QuoteLen, m.SignatureLen = uint16(copy(m.Quote[:], quote)), uint16(copy(m.Signature[:], sig))
	return nil
}

// QuoteBytes returns the quote, a slice of m. QuoteLen must be in range
// (UnmarshalFrame checked it); out of range it returns nil.
func (m *AttestQuote) QuoteBytes() []byte {
	if m.QuoteLen == 0 || m.QuoteLen > MaxQuote {
		return nil
	}
	return m.Quote[:m.QuoteLen]
}

// SignatureBytes returns the signature, a slice of m (nil when SignatureLen
// is out of range).
func (m *AttestQuote) SignatureBytes() []byte {
	if m.SignatureLen == 0 || m.SignatureLen > MaxSignature {
		return nil
	}
	return m.Signature[:m.SignatureLen]
}

// AttestAccepted says the device's quote verified: the session is attested
// until Expires, and the server challenges again from RenewAt (type
// TAttestAccepted, docs/protocol.md).
type AttestAccepted struct {
	DeviceID [16]byte
	Expires  int64
	RenewAt  int64
}

// Type implements Message.
func (*AttestAccepted) Type() Type { return TAttestAccepted }

// AppendFrame appends m's frame to dst.
func (m *AttestAccepted) AppendFrame(dst []byte) []byte {
	n := len(dst)
	dst = grow(dst, int(sizes[TAttestAccepted]))
	b := dst[n:]
	putHeader(b, TAttestAccepted)
	copy(b[4:20], m.DeviceID[:])
	le.PutUint64(b[20:], uint64(m.Expires))
	le.PutUint64(b[28:], uint64(m.RenewAt))
	return dst
}

// UnmarshalFrame decodes frame, exactly one AttestAccepted frame, into m.
func (m *AttestAccepted) UnmarshalFrame(b []byte) error {
	if err := checkFrame(b, TAttestAccepted); err != nil {
		return err
	}
	copy(m.DeviceID[:], b[4:20])
	m.Expires = int64(le.Uint64(b[20:]))
	m.RenewAt = int64(le.Uint64(b[28:]))
	return nil
}

// DeviceIDString returns a wire device id in its documented form: 32
// lowercase hex digits.
func DeviceIDString(id [DeviceIDSize]byte) string { return hex.EncodeToString(id[:]) }

// ParseDeviceID decodes a device id of 32 lowercase hex digits. It reports
// false for anything else.
func ParseDeviceID(s string) ([DeviceIDSize]byte, bool) {
	var id [DeviceIDSize]byte
	if len(s) != 2*DeviceIDSize || strings.ToLower(s) != s {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return [DeviceIDSize]byte{}, false
	}
	return id, true
}
