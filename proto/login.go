package proto

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
)

// macOffset is where the login's MAC starts: the MAC covers every byte
// before it.
const macOffset = 56

// SecretSize is the length of an API key's secret.
const SecretSize = 32

// KeyIDSize is the length of an API key id.
const KeyIDSize = 16

// Login.Flags bits. FlagSnapshot asks the market-data port for a snapshot
// first; FlagDevice announces an AttestHello after the login: the session
// is attested with the device's TPM (docs/protocol.md, "Device
// attestation").
const (
	FlagSnapshot = 1
	FlagDevice   = 2
)

// ErrKeyID means a key id is not 16 characters of [0-9a-z]: check the key id
// given to the client.
var ErrKeyID = errors.New("proto: a key id is 16 characters of 0-9 and a-z")

// ValidKeyID reports whether id has the form of an API key id: 16 of
// [0-9a-z].
func ValidKeyID(id []byte) bool {
	if len(id) != KeyIDSize {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// SetKeyID copies id into l.KeyID.
func (m *Login) SetKeyID(id string) error {
	if !ValidKeyID([]byte(id)) {
		return ErrKeyID
	}
	copy(m.KeyID[:], id)
	return nil
}

// SignLogin sets l.MAC to the HMAC-SHA256, keyed with secret, of the login
// frame's first 56 bytes (docs/protocol.md, "Login").
func SignLogin(l *Login, secret []byte) {
	var buf [88]byte
	b := l.AppendFrame(buf[:0])
	mac := hmac.New(sha256.New, secret)
	mac.Write(b[:macOffset])
	mac.Sum(l.MAC[:0])
}

// VerifyLogin reports, in constant time, whether frame (a Login frame) carries
// the right MAC for secret.
func VerifyLogin(frame []byte, secret []byte) bool {
	if len(frame) != int(sizes[TLogin]) {
		return false
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(frame[:macOffset])
	var sum [sha256.Size]byte
	return hmac.Equal(mac.Sum(sum[:0]), frame[macOffset:])
}

// ParseLogin decodes a login frame and checks the form of its key id. It is
// what the server runs on a connection's first bytes.
func ParseLogin(frame []byte, l *Login) error {
	if err := l.UnmarshalFrame(frame); err != nil {
		return err
	}
	if !ValidKeyID(l.KeyID[:]) {
		return fmt.Errorf("%w: %w", ErrMalformed, ErrKeyID)
	}
	return nil
}
