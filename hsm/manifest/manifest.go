// Package manifest is the key manifest of tradecore's signing keys: the
// append-only, self-signed JSON list of every key ever used, and its offline
// verifier. It is pure Go with no PKCS#11 or cgo, so auditors' tools can use
// it: [Verify] needs only the manifest bytes and a pinned first key id.
//
// The format is specified in docs/keys.md. Each entry activates one new key
// and is signed by the previous entry's key and by the new key itself; entries
// are hash-chained. Ed25519 keys also carry their C2SP signed-note verifier
// key (https://github.com/C2SP/C2SP/blob/main/signed-note.md), made with
// golang.org/x/mod/sumdb/note.
package manifest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Format is the value of the manifest's "format" field.
const Format = "tradecore-key-manifest/v1"

// IDBytes is the length of a key id in bytes (the id is its hex form).
const IDBytes = 16

// MaxSize bounds the manifest Verify accepts.
const MaxSize = 16 << 20

// signingPrefix starts every entry's signing input.
const signingPrefix = "tradecore key manifest v1\n"

// Algorithm names a signing algorithm.
type Algorithm string

// The supported algorithms.
const (
	Ed25519   Algorithm = "ed25519"    // pure Ed25519 (RFC 8032), 64-byte signatures
	ECDSAP256 Algorithm = "ecdsa-p256" // ECDSA P-256 over SHA-256 of the message, ASN.1 DER signatures
)

// Event says why an entry was appended.
type Event string

// The events.
const (
	EventInit   Event = "init"   // first key
	EventRotate Event = "rotate" // scheduled or manual rotation
	EventRevoke Event = "revoke" // a key is revoked and a new one activated
)

// ErrInvalid is wrapped by every verification failure: do not trust the
// manifest, or any signature checked against it.
var ErrInvalid = errors.New("manifest: invalid")

// Key is one key version as published.
type Key struct {
	ID           string    `json:"id"`                      // hex, see Fingerprint
	Algorithm    Algorithm `json:"algorithm"`               // Ed25519 or ECDSAP256
	Label        string    `json:"label"`                   // CKA_LABEL in the token
	PublicKeyPEM string    `json:"public_key_pem"`          // PKIX "PUBLIC KEY" PEM block
	NoteVerifier string    `json:"note_verifier,omitempty"` // C2SP signed-note verifier key (Ed25519 only)
	Created      time.Time `json:"created"`                 // generated in the token
	ActiveFrom   time.Time `json:"active_from"`             // first use for signing
	Expires      time.Time `json:"expires"`                 // rotated away no later than this
}

// Revocation records a compromised key.
type Revocation struct {
	KeyID  string    `json:"key_id"`
	At     time.Time `json:"at"` // signatures by the key from this time on are invalid
	Reason string    `json:"reason"`
}

// Signature is one signature over an entry's signing input.
type Signature struct {
	KeyID string `json:"key_id"`
	Sig   []byte `json:"sig"` // base64 in JSON
}

// Entry activates Key.
type Entry struct {
	Seq        uint64      `json:"seq"`
	Event      Event       `json:"event"`
	Time       time.Time   `json:"time"`
	Prev       string      `json:"prev"` // hex SHA-256 of the previous entry's JSON; "" for the first
	Key        Key         `json:"key"`
	Revoked    *Revocation `json:"revoked,omitempty"`
	Signatures []Signature `json:"signatures"`
}

// Manifest is the whole file.
type Manifest struct {
	Format  string  `json:"format"`
	Name    string  `json:"name"` // signed-note key name of every Ed25519 key
	Entries []Entry `json:"entries"`
}

// Fingerprint is the key id of pub: hex of the first 16 bytes of SHA-256
// over the PKIX (SubjectPublicKeyInfo) DER encoding.
func Fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("manifest: fingerprint: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:IDBytes]), nil
}

// PublicKeyPEM encodes pub as a PKIX "PUBLIC KEY" PEM block.
func PublicKeyPEM(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("manifest: %w", err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), nil
}

// ParsePublicKeyPEM parses one PKIX PEM block of a supported algorithm.
func ParsePublicKeyPEM(s string) (crypto.PublicKey, Algorithm, error) {
	b, rest := pem.Decode([]byte(s))
	if b == nil || b.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, "", errors.New("manifest: want one PUBLIC KEY PEM block")
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, "", fmt.Errorf("manifest: %w", err)
	}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return p, Ed25519, nil
	case *ecdsa.PublicKey:
		if p.Curve == elliptic.P256() {
			return p, ECDSAP256, nil
		}
	}
	return nil, "", fmt.Errorf("manifest: unsupported public key type %T", pub)
}

// NoteVerifierKey returns the C2SP signed-note verifier key of an Ed25519
// key: name+hex(keyhash)+base64(0x01‖pub), keyhash being the first 4 bytes of
// SHA-256(name ‖ "\n" ‖ 0x01 ‖ pub).
func NoteVerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	return note.NewEd25519VerifierKey(name, pub)
}

// NewKey describes pub for an entry.
func NewKey(name, label string, pub crypto.PublicKey, created, activeFrom, expires time.Time) (Key, error) {
	id, err := Fingerprint(pub)
	if err != nil {
		return Key{}, err
	}
	p, err := PublicKeyPEM(pub)
	if err != nil {
		return Key{}, err
	}
	k := Key{ID: id, Label: label, PublicKeyPEM: p, Created: created.UTC(), ActiveFrom: activeFrom.UTC(), Expires: expires.UTC()}
	switch pk := pub.(type) {
	case ed25519.PublicKey:
		k.Algorithm = Ed25519
		if k.NoteVerifier, err = NoteVerifierKey(name, pk); err != nil {
			return Key{}, fmt.Errorf("manifest: note verifier key: %w", err)
		}
	case *ecdsa.PublicKey:
		k.Algorithm = ECDSAP256
	default:
		return Key{}, fmt.Errorf("manifest: unsupported public key type %T", pub)
	}
	return k, nil
}

// SigningInput is what the signatures of e cover: a fixed prefix, the
// manifest name and a newline, then the JSON encoding of e without its
// signatures (encoding/json of these types, which is deterministic).
func SigningInput(name string, e *Entry) []byte {
	c := *e
	c.Signatures = nil
	body, err := json.Marshal(&c)
	if err != nil {
		panic(err) // cannot happen for these types
	}
	out := make([]byte, 0, len(signingPrefix)+len(name)+1+len(body))
	out = append(out, signingPrefix...)
	out = append(out, name...)
	out = append(out, '\n')
	return append(out, body...)
}

// EntryHash is the hex SHA-256 of the JSON encoding of e with its signatures:
// the next entry's Prev.
func EntryHash(e *Entry) string {
	body, err := json.Marshal(e)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// SignMessage signs msg with s the way every tradecore signature is made:
// Ed25519 over msg itself, ECDSA P-256 over SHA-256(msg) in ASN.1 DER.
func SignMessage(s crypto.Signer, msg []byte) ([]byte, error) {
	switch s.Public().(type) {
	case ed25519.PublicKey:
		return s.Sign(nil, msg, crypto.Hash(0))
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		return s.Sign(nil, d[:], crypto.SHA256)
	}
	return nil, fmt.Errorf("manifest: unsupported signer key %T", s.Public())
}

// VerifyMessage checks a SignMessage signature.
func VerifyMessage(pub crypto.PublicKey, msg, sig []byte) bool {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return len(p) == ed25519.PublicKeySize && ed25519.Verify(p, msg, sig)
	case *ecdsa.PublicKey:
		d := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(p, d[:], sig)
	}
	return false
}

// KeyState is a verified key and what later entries say about it.
type KeyState struct {
	Key
	Public       crypto.PublicKey
	RetiredAt    time.Time // zero while active: ActiveFrom of the next entry
	RevokedAt    time.Time // zero unless revoked
	RevokeReason string
}

// Active reports whether the key is the current signing key.
func (k *KeyState) Active() bool { return k.RetiredAt.IsZero() && k.RevokedAt.IsZero() }

// ValidAt reports whether a signature made at t by this key is acceptable:
// the key was active then (ActiveFrom ≤ t < RetiredAt, t < Expires) and not
// revoked from before t.
func (k *KeyState) ValidAt(t time.Time) bool {
	if t.Before(k.ActiveFrom) || !t.Before(k.Expires) {
		return false
	}
	if !k.RetiredAt.IsZero() && !t.Before(k.RetiredAt) {
		return false
	}
	return k.RevokedAt.IsZero() || t.Before(k.RevokedAt)
}

// Verified is a manifest that passed [Verify].
type Verified struct {
	Manifest Manifest
	Keys     []KeyState // in manifest order; the last is the active key
}

// Active returns the current key.
func (v *Verified) Active() *KeyState { return &v.Keys[len(v.Keys)-1] }

// Key returns the key with id, or nil.
func (v *Verified) Key(id string) *KeyState {
	for i := range v.Keys {
		if v.Keys[i].ID == id {
			return &v.Keys[i]
		}
	}
	return nil
}

// Parse decodes manifest JSON strictly (unknown fields rejected) without
// verifying it.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data after the manifest", ErrInvalid)
	}
	return &m, nil
}

// Verify parses and verifies manifest bytes offline. pinnedFirstID is the id
// of the first key, obtained out of band (an empty pin is refused). The
// first entry must be an init entry of that key, self-signed; every later
// entry must chain to its predecessor's hash, activate a new key, and carry
// exactly two valid signatures: the previous entry's key, then its own key.
// Any alteration, removal or reordering of entries fails with ErrInvalid.
func Verify(data []byte, pinnedFirstID string) (*Verified, error) {
	if pinnedFirstID == "" {
		return nil, fmt.Errorf("%w: no pinned first key id", ErrInvalid)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return VerifyManifest(m, pinnedFirstID)
}

// VerifyManifest is Verify of a parsed manifest.
func VerifyManifest(m *Manifest, pinnedFirstID string) (*Verified, error) {
	bad := func(i int, format string, args ...any) error {
		return fmt.Errorf("%w: entry %d: %s", ErrInvalid, i, fmt.Sprintf(format, args...))
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrInvalid, m.Format, Format)
	}
	if m.Name == "" || strings.ContainsAny(m.Name, "+ \t\n") {
		return nil, fmt.Errorf("%w: name %q is not a signed-note key name", ErrInvalid, m.Name)
	}
	if len(m.Entries) == 0 {
		return nil, fmt.Errorf("%w: no entries", ErrInvalid)
	}
	v := &Verified{Manifest: *m}
	seen := map[string]int{}
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Seq != uint64(i) {
			return nil, bad(i, "seq %d", e.Seq)
		}
		switch {
		case i == 0 && e.Event != EventInit:
			return nil, bad(i, "first event %q, want %q", e.Event, EventInit)
		case i > 0 && e.Event != EventRotate && e.Event != EventRevoke:
			return nil, bad(i, "event %q", e.Event)
		}
		if i == 0 {
			if e.Prev != "" {
				return nil, bad(i, "prev set on the first entry")
			}
			if e.Key.ID != pinnedFirstID {
				return nil, bad(i, "first key %s is not the pinned key %s", e.Key.ID, pinnedFirstID)
			}
		} else {
			if e.Prev != EntryHash(&m.Entries[i-1]) {
				return nil, bad(i, "prev does not match the previous entry")
			}
			if e.Time.Before(m.Entries[i-1].Time) {
				return nil, bad(i, "time goes backwards")
			}
		}
		pub, alg, err := ParsePublicKeyPEM(e.Key.PublicKeyPEM)
		if err != nil {
			return nil, bad(i, "%v", err)
		}
		if alg != e.Key.Algorithm {
			return nil, bad(i, "algorithm %q does not match the public key (%s)", e.Key.Algorithm, alg)
		}
		if id, err := Fingerprint(pub); err != nil || id != e.Key.ID {
			return nil, bad(i, "id %s does not match the public key", e.Key.ID)
		}
		if _, dup := seen[e.Key.ID]; dup {
			return nil, bad(i, "key %s activated twice", e.Key.ID)
		}
		switch alg {
		case Ed25519:
			want, err := NoteVerifierKey(m.Name, pub.(ed25519.PublicKey))
			if err != nil || e.Key.NoteVerifier != want {
				return nil, bad(i, "note verifier key does not match the public key")
			}
		default:
			if e.Key.NoteVerifier != "" {
				return nil, bad(i, "note verifier key on a %s key", alg)
			}
		}
		if e.Key.ActiveFrom.Before(e.Key.Created) || !e.Key.Expires.After(e.Key.ActiveFrom) || !e.Key.ActiveFrom.Equal(e.Time) {
			return nil, bad(i, "key times out of order")
		}
		switch {
		case e.Event == EventRevoke && e.Revoked == nil:
			return nil, bad(i, "revoke event without a revocation")
		case e.Event != EventRevoke && e.Revoked != nil:
			return nil, bad(i, "revocation in a %q event", e.Event)
		}
		input := SigningInput(m.Name, e)
		var signers []*KeyState
		if i > 0 {
			signers = append(signers, &v.Keys[i-1])
		}
		self := KeyState{Key: e.Key, Public: pub}
		signers = append(signers, &self)
		if len(e.Signatures) != len(signers) {
			return nil, bad(i, "%d signatures, want %d", len(e.Signatures), len(signers))
		}
		for j, s := range signers {
			sig := e.Signatures[j]
			if sig.KeyID != s.ID {
				return nil, bad(i, "signature %d by %s, want %s", j, sig.KeyID, s.ID)
			}
			if !VerifyMessage(s.Public, input, sig.Sig) {
				return nil, bad(i, "signature by %s does not verify", s.ID)
			}
		}
		if i > 0 {
			v.Keys[i-1].RetiredAt = e.Time
		}
		if r := e.Revoked; r != nil {
			j, ok := seen[r.KeyID]
			if !ok {
				return nil, bad(i, "revokes unknown key %s", r.KeyID)
			}
			if !v.Keys[j].RevokedAt.IsZero() {
				return nil, bad(i, "revokes key %s twice", r.KeyID)
			}
			if r.Reason == "" || r.At.IsZero() || r.At.After(e.Time) {
				return nil, bad(i, "revocation needs a reason and a time no later than the entry")
			}
			v.Keys[j].RevokedAt, v.Keys[j].RevokeReason = r.At, r.Reason
		}
		seen[e.Key.ID] = i
		v.Keys = append(v.Keys, self)
	}
	return v, nil
}

// Marshal encodes m as indented JSON with a trailing newline.
func Marshal(m *Manifest) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return append(b, '\n'), nil
}
