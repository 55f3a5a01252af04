// Package manifest is the key manifest of tradecore's signing keys: the
// append-only, self-signed JSON list of every key ever used and of what
// happened to it, and its offline verifier. It is pure Go with no PKCS#11 or
// cgo, so auditors' tools can use it: [Verify] needs only the manifest bytes
// and a pinned first key id; [VerifyFresh] also refuses a manifest older than
// (or diverging from) one the verifier saw before.
//
// The format, its canonical encoding and the signing input are specified
// exactly in docs/keys.md. Each entry is signed by the key active before it
// and, when it activates a key, by that new key; entries are hash-chained over
// their canonical encoding. Ed25519 keys also carry their C2SP signed-note
// verifier key (https://github.com/C2SP/C2SP/blob/main/signed-note.md), made
// with golang.org/x/mod/sumdb/note.
//
// A signature says which key made it, never when: judge a key's validity by
// log position ([KeyState.ActiveAt], [Verified.KeyAt]) from the audit log's
// records of the manifest entries, not by a time a signature claims (see
// docs/keys.md, "What a signature proves").
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
const Format = "tradecore-key-manifest/v2"

// IDBytes is the length of a key id in bytes (the id is its hex form).
const IDBytes = 16

// MaxSize bounds the manifest Verify accepts.
const MaxSize = 16 << 20

// SigningPrefix starts every entry's signing input.
const SigningPrefix = "tradecore key manifest v2\n"

// MaxAgeSecondsLimit bounds a policy's max_age_seconds (100 years).
const MaxAgeSecondsLimit = 3155760000

// MaxReasonLen bounds a revocation reason in bytes.
const MaxReasonLen = 1024

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
	EventInit    Event = "init"    // first key and the key policy
	EventRotate  Event = "rotate"  // scheduled or manual rotation: a new key (and optionally a new policy)
	EventRevoke  Event = "revoke"  // a key is compromised; a new key when it was the active one
	EventDestroy Event = "destroy" // a retired or revoked key's private object was destroyed in the token
)

var (
	// ErrInvalid is wrapped by every verification failure: do not trust the
	// manifest, or any signature checked against it.
	ErrInvalid = errors.New("manifest: invalid")
	// ErrStale means the manifest verifies but is shorter than one this
	// verifier saw before: it is an old copy (or a tail was cut off). Get the
	// current manifest; never accept the older one.
	ErrStale = errors.New("manifest: older than one already seen")
	// ErrDiverged means the manifest verifies but does not extend the one
	// this verifier saw before: two histories exist, so a key was misused.
	// Treat it as a compromise; compare both with the audit log's records.
	ErrDiverged = errors.New("manifest: diverges from the one already seen")
)

// Policy is the key policy every key of the manifest follows: its algorithm
// and how long it signs before rotation.
type Policy struct {
	Algorithm     Algorithm `json:"algorithm"`
	MaxAgeSeconds uint64    `json:"max_age_seconds"`
}

// MaxAge is the policy's key lifetime.
func (p Policy) MaxAge() time.Duration { return time.Duration(p.MaxAgeSeconds) * time.Second }

// Key is one key version as published.
type Key struct {
	ID           string    `json:"id"`                      // hex, see Fingerprint
	Algorithm    Algorithm `json:"algorithm"`               // Ed25519 or ECDSAP256
	Label        string    `json:"label"`                   // CKA_LABEL in the token
	PublicKeyPEM string    `json:"public_key_pem"`          // PKIX "PUBLIC KEY" PEM block
	NoteVerifier string    `json:"note_verifier,omitempty"` // C2SP signed-note verifier key (Ed25519 only)
	Created      time.Time `json:"created"`                 // generated in the token
	ActiveFrom   time.Time `json:"active_from"`             // first use for signing (the entry's time)
	Expires      time.Time `json:"expires"`                 // active_from + the policy's max age
}

// Revocation records a compromised key.
type Revocation struct {
	KeyID  string    `json:"key_id"`
	At     time.Time `json:"at"` // signatures by the key from this time on are invalid
	Reason string    `json:"reason"`
}

// Destruction records that a key's private object was destroyed in the token.
type Destruction struct {
	KeyID string `json:"key_id"`
}

// Signature is one signature over an entry's signing input.
type Signature struct {
	KeyID string `json:"key_id"`
	Sig   []byte `json:"sig"` // standard base64 with padding in JSON
}

// Entry is one event of the key lifecycle. Which optional members it has
// depends on Event (docs/keys.md): absent members are omitted, never null.
type Entry struct {
	Seq        uint64       `json:"seq"`
	Event      Event        `json:"event"`
	Time       time.Time    `json:"time"`
	Prev       string       `json:"prev"`                // hex SHA-256 of the previous entry's canonical encoding; "" for the first
	Policy     *Policy      `json:"policy,omitempty"`    // init (required), rotate (a policy change)
	Key        *Key         `json:"key,omitempty"`       // the key this entry activates
	Revoked    *Revocation  `json:"revoked,omitempty"`   // revoke
	Destroyed  *Destruction `json:"destroyed,omitempty"` // destroy
	Signatures []Signature  `json:"signatures"`
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

// SigningInput is what the signatures of e cover: SigningPrefix, the
// manifest name and a newline, then the canonical encoding of e without its
// "signatures" member (docs/keys.md).
func SigningInput(name string, e *Entry) []byte {
	c := *e
	c.Signatures = []Signature{} // left out below; never encoded as null
	v := mustValue(&c)
	return signingInput(name, &v)
}

func signingInput(name string, entry *value) []byte {
	out := make([]byte, 0, len(SigningPrefix)+len(name)+1+1024)
	out = append(out, SigningPrefix...)
	out = append(out, name...)
	out = append(out, '\n')
	return appendCanonical(out, entry, "signatures")
}

// EntryHash is the hex SHA-256 of the canonical encoding of e with its
// signatures: the next entry's Prev.
func EntryHash(e *Entry) string {
	if e.Signatures == nil {
		c := *e
		c.Signatures = []Signature{}
		e = &c
	}
	v := mustValue(e)
	return entryHash(&v)
}

func entryHash(entry *value) string {
	sum := sha256.Sum256(appendCanonical(nil, entry, ""))
	return hex.EncodeToString(sum[:])
}

// mustValue encodes a typed entry and parses it back as a canonical value.
func mustValue(e *Entry) value {
	b, err := marshalNoEscape(e)
	if err != nil {
		panic(err) // cannot happen for these types
	}
	v, err := parseValue(b)
	if err != nil {
		panic(fmt.Sprintf("manifest: entry does not encode canonically: %v", err))
	}
	return v
}

func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
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

// VerifyMessage checks a SignMessage signature. It says that the key made
// the signature, never when: see [KeyState.ActiveAt].
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
	ActivatedSeq uint64    // seq of the entry that activated the key
	RetiredSeq   uint64    // seq of the entry that activated the next key; 0 while active
	RetiredAt    time.Time // zero while active: ActiveFrom of the next key
	RevokedAt    time.Time // zero unless revoked
	RevokeReason string
	RevokedSeq   uint64    // seq of the revoke entry; 0 unless revoked
	DestroyedSeq uint64    // seq of the destroy entry; 0 while the private object may exist
	DestroyedAt  time.Time // time of the destroy entry
}

// Active reports whether the key is the current signing key.
func (k *KeyState) Active() bool { return k.RetiredAt.IsZero() && k.RevokedAt.IsZero() }

// ValidAt reports whether a signature made at t by this key is acceptable:
// the key was active then (ActiveFrom ≤ t < RetiredAt, t < Expires) and not
// revoked from before t. t must be a time the verifier establishes itself
// (for a checkpoint, from the audit log), never one the signed data claims:
// a thief holding a copy of a revoked key can claim any time.
func (k *KeyState) ValidAt(t time.Time) bool {
	if t.Before(k.ActiveFrom) || !t.Before(k.Expires) {
		return false
	}
	if !k.RetiredAt.IsZero() && !t.Before(k.RetiredAt) {
		return false
	}
	return k.RevokedAt.IsZero() || t.Before(k.RevokedAt)
}

// ActiveAt reports whether the key was the signing key once manifest entries
// 0..seq had taken effect: ActivatedSeq ≤ seq, and seq < RetiredSeq unless
// still active. This is the log-anchored rule: a checkpoint counts only when
// signed by the key active at the newest manifest entry recorded in the tree
// it commits to (docs/keys.md, "What a signature proves").
func (k *KeyState) ActiveAt(seq uint64) bool {
	if seq < k.ActivatedSeq {
		return false
	}
	return k.RetiredSeq == 0 || seq < k.RetiredSeq
}

// Verified is a manifest that passed [Verify].
type Verified struct {
	Manifest Manifest
	Keys     []KeyState // in activation order; the last is the active key
	Policy   Policy     // the policy in force after the last entry
	hashes   []string   // EntryHash of each entry
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

// KeyAt returns the key that was active once entries 0..seq had taken
// effect, or nil when seq is past the manifest's end.
func (v *Verified) KeyAt(seq uint64) *KeyState {
	if seq >= uint64(len(v.Manifest.Entries)) {
		return nil
	}
	for i := len(v.Keys) - 1; i >= 0; i-- {
		if v.Keys[i].ActivatedSeq <= seq {
			return &v.Keys[i]
		}
	}
	return nil
}

// EntryHash returns the hash of entry i (the next entry's Prev).
func (v *Verified) EntryHash(i int) string { return v.hashes[i] }

// Head identifies a manifest by its pinned first key, its number of entries
// and its last entry's hash: what a verifier keeps to judge freshness.
type Head struct {
	FirstKeyID string `json:"first_key_id"`
	Size       uint64 `json:"size"`
	Hash       string `json:"hash"`
}

// Head returns v's head.
func (v *Verified) Head() Head {
	n := len(v.hashes)
	return Head{FirstKeyID: v.Keys[0].ID, Size: uint64(n), Hash: v.hashes[n-1]}
}

// CheckFresh refuses v when it is older than seen (ErrStale) or does not
// extend it (ErrDiverged). The zero Head accepts anything. Because entries
// are hash-chained, an equal hash at seen.Size-1 means v extends seen.
func (v *Verified) CheckFresh(seen Head) error {
	if seen.Size == 0 {
		return nil
	}
	if seen.FirstKeyID != v.Keys[0].ID {
		return fmt.Errorf("%w: seen a manifest of first key %s, this one is of %s", ErrDiverged, seen.FirstKeyID, v.Keys[0].ID)
	}
	if uint64(len(v.hashes)) < seen.Size {
		return fmt.Errorf("%w: %d entries, already seen %d", ErrStale, len(v.hashes), seen.Size)
	}
	if v.hashes[seen.Size-1] != seen.Hash {
		return fmt.Errorf("%w: entry %d is not the one seen before", ErrDiverged, seen.Size-1)
	}
	return nil
}

// Parse decodes manifest JSON strictly (unknown fields, null and duplicate
// members rejected) without verifying it.
func Parse(data []byte) (*Manifest, error) {
	m, _, err := parse(data)
	return m, err
}

func parse(data []byte) (*Manifest, *value, error) {
	if len(data) > MaxSize {
		return nil, nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalid, MaxSize)
	}
	tree, err := parseValue(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: trailing data after the manifest", ErrInvalid)
	}
	ents := tree.get("entries")
	if tree.kind != 'o' || ents == nil || ents.kind != 'a' || len(ents.elems) != len(m.Entries) {
		return nil, nil, fmt.Errorf("%w: entries is not an array", ErrInvalid)
	}
	return &m, &tree, nil
}

// Verify parses and verifies manifest bytes offline. pinnedFirstID is the id
// of the first key, obtained out of band (an empty pin is refused). The rules
// are in docs/keys.md; any alteration, removal or reordering of entries fails
// with ErrInvalid. Verify cannot tell an old manifest from the current one:
// use VerifyFresh (or CheckFresh) for that.
func Verify(data []byte, pinnedFirstID string) (*Verified, error) {
	if pinnedFirstID == "" {
		return nil, fmt.Errorf("%w: no pinned first key id", ErrInvalid)
	}
	m, tree, err := parse(data)
	if err != nil {
		return nil, err
	}
	return verify(m, tree, pinnedFirstID)
}

// VerifyManifest is Verify of a parsed manifest (re-encoded canonically).
func VerifyManifest(m *Manifest, pinnedFirstID string) (*Verified, error) {
	data, err := Marshal(m)
	if err != nil {
		return nil, err
	}
	return Verify(data, pinnedFirstID)
}

func validID(id string) bool {
	b, err := hex.DecodeString(id)
	return err == nil && len(b) == IDBytes && hex.EncodeToString(b) == id
}

func verify(m *Manifest, tree *value, pinnedFirstID string) (*Verified, error) {
	bad := func(i int, format string, args ...any) error {
		return fmt.Errorf("%w: entry %d: %s", ErrInvalid, i, fmt.Sprintf(format, args...))
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrInvalid, m.Format, Format)
	}
	if m.Name == "" || strings.ContainsAny(m.Name, "+ \t\n") || !utf8Printable(m.Name) {
		return nil, fmt.Errorf("%w: name %q is not a signed-note key name", ErrInvalid, m.Name)
	}
	if len(m.Entries) == 0 {
		return nil, fmt.Errorf("%w: no entries", ErrInvalid)
	}
	raw := tree.get("entries").elems
	v := &Verified{Manifest: *m}
	seen := map[string]int{} // key id → index in v.Keys
	for i := range m.Entries {
		e := &m.Entries[i]
		if e.Seq != uint64(i) {
			return nil, bad(i, "seq %d", e.Seq)
		}
		if raw[i].kind != 'o' {
			return nil, bad(i, "not an object")
		}
		has := func(name string) bool { return raw[i].get(name) != nil }
		for _, req := range []string{"seq", "event", "time", "prev", "signatures"} {
			if !has(req) {
				return nil, bad(i, "member %q missing", req)
			}
		}
		if e.Time.IsZero() {
			return nil, bad(i, "zero time")
		}
		if i == 0 {
			if e.Event != EventInit {
				return nil, bad(i, "first event %q, want %q", e.Event, EventInit)
			}
			if e.Prev != "" {
				return nil, bad(i, "prev set on the first entry")
			}
		} else {
			if e.Event == EventInit {
				return nil, bad(i, "a second init")
			}
			if e.Prev != v.hashes[i-1] {
				return nil, bad(i, "prev does not match the previous entry")
			}
			if e.Time.Before(m.Entries[i-1].Time) {
				return nil, bad(i, "time goes backwards")
			}
		}
		// Which members each event has (docs/keys.md).
		var wantKey, wantPolicy, mayPolicy, wantRev, wantDes bool
		var active *KeyState
		if len(v.Keys) > 0 {
			active = v.Active()
		}
		switch e.Event {
		case EventInit:
			wantKey, wantPolicy = true, true
		case EventRotate:
			wantKey, mayPolicy = true, true
		case EventRevoke:
			wantRev = true
			wantKey = e.Revoked != nil && active != nil && e.Revoked.KeyID == active.ID
		case EventDestroy:
			wantDes = true
		default:
			return nil, bad(i, "event %q", e.Event)
		}
		if (e.Key != nil) != wantKey {
			return nil, bad(i, "%s entry: key present=%v, want %v", e.Event, e.Key != nil, wantKey)
		}
		if e.Policy != nil && !wantPolicy && !mayPolicy || e.Policy == nil && wantPolicy {
			return nil, bad(i, "%s entry: policy present=%v", e.Event, e.Policy != nil)
		}
		if (e.Revoked != nil) != wantRev || (e.Destroyed != nil) != wantDes {
			return nil, bad(i, "%s entry with the wrong members", e.Event)
		}
		if e.Policy != nil {
			p := *e.Policy
			if p.Algorithm != Ed25519 && p.Algorithm != ECDSAP256 {
				return nil, bad(i, "policy algorithm %q", p.Algorithm)
			}
			if p.MaxAgeSeconds == 0 || p.MaxAgeSeconds > MaxAgeSecondsLimit {
				return nil, bad(i, "policy max_age_seconds %d", p.MaxAgeSeconds)
			}
			v.Policy = p
		}
		// What the entry says about existing keys.
		if r := e.Revoked; r != nil {
			j, ok := seen[r.KeyID]
			if !ok {
				return nil, bad(i, "revokes unknown key %s", r.KeyID)
			}
			if !v.Keys[j].RevokedAt.IsZero() {
				return nil, bad(i, "revokes key %s twice", r.KeyID)
			}
			if r.Reason == "" || len(r.Reason) > MaxReasonLen || r.At.IsZero() || r.At.After(e.Time) {
				return nil, bad(i, "revocation needs a reason (1..%d bytes) and a time no later than the entry", MaxReasonLen)
			}
		}
		if d := e.Destroyed; d != nil {
			j, ok := seen[d.KeyID]
			if !ok {
				return nil, bad(i, "destroys unknown key %s", d.KeyID)
			}
			if j == len(v.Keys)-1 {
				return nil, bad(i, "destroys the active key %s", d.KeyID)
			}
			if v.Keys[j].DestroyedSeq != 0 {
				return nil, bad(i, "destroys key %s twice", d.KeyID)
			}
		}
		// The new key.
		var self *KeyState
		if k := e.Key; k != nil {
			pub, alg, err := ParsePublicKeyPEM(k.PublicKeyPEM)
			if err != nil {
				return nil, bad(i, "%v", err)
			}
			if alg != k.Algorithm {
				return nil, bad(i, "algorithm %q does not match the public key (%s)", k.Algorithm, alg)
			}
			if !validID(k.ID) {
				return nil, bad(i, "key id %q is not %d lower-case hex bytes", k.ID, IDBytes)
			}
			if id, err := Fingerprint(pub); err != nil || id != k.ID {
				return nil, bad(i, "id %s does not match the public key", k.ID)
			}
			if _, dup := seen[k.ID]; dup {
				return nil, bad(i, "key %s activated twice", k.ID)
			}
			switch alg {
			case Ed25519:
				want, err := NoteVerifierKey(m.Name, pub.(ed25519.PublicKey))
				if err != nil || k.NoteVerifier != want {
					return nil, bad(i, "note verifier key does not match the public key")
				}
			default:
				if k.NoteVerifier != "" {
					return nil, bad(i, "note verifier key on a %s key", alg)
				}
			}
			if k.ActiveFrom.Before(k.Created) || !k.ActiveFrom.Equal(e.Time) {
				return nil, bad(i, "key times out of order")
			}
			if k.Algorithm != v.Policy.Algorithm {
				return nil, bad(i, "key algorithm %s breaks the policy (%s)", k.Algorithm, v.Policy.Algorithm)
			}
			if !k.Expires.Equal(k.ActiveFrom.Add(v.Policy.MaxAge())) {
				return nil, bad(i, "key expires %s, the policy says active_from + %ds", k.Expires.Format(time.RFC3339Nano), v.Policy.MaxAgeSeconds)
			}
			self = &KeyState{Key: *k, Public: pub, ActivatedSeq: uint64(i)}
		}
		// Signatures: the key active before the entry, then the new key.
		var signers []*KeyState
		if active != nil {
			signers = append(signers, active)
		}
		if self != nil {
			signers = append(signers, self)
		}
		if len(e.Signatures) != len(signers) {
			return nil, bad(i, "%d signatures, want %d", len(e.Signatures), len(signers))
		}
		input := signingInput(m.Name, &raw[i])
		for j, s := range signers {
			sig := e.Signatures[j]
			if sig.KeyID != s.ID {
				return nil, bad(i, "signature %d by %s, want %s", j, sig.KeyID, s.ID)
			}
			if !VerifyMessage(s.Public, input, sig.Sig) {
				return nil, bad(i, "signature by %s does not verify", s.ID)
			}
		}
		// Apply.
		if r := e.Revoked; r != nil {
			k := &v.Keys[seen[r.KeyID]]
			k.RevokedAt, k.RevokeReason, k.RevokedSeq = r.At, r.Reason, uint64(i)
		}
		if d := e.Destroyed; d != nil {
			k := &v.Keys[seen[d.KeyID]]
			k.DestroyedSeq, k.DestroyedAt = uint64(i), e.Time
		}
		if self != nil {
			if active != nil {
				active.RetiredAt, active.RetiredSeq = e.Time, uint64(i)
			}
			seen[self.ID] = len(v.Keys)
			v.Keys = append(v.Keys, *self)
		}
		v.hashes = append(v.hashes, entryHash(&raw[i]))
	}
	if pinnedFirstID != v.Keys[0].ID {
		return nil, fmt.Errorf("%w: entry 0: first key %s is not the pinned key %s", ErrInvalid, v.Keys[0].ID, pinnedFirstID)
	}
	return v, nil
}

func utf8Printable(s string) bool {
	for _, r := range s {
		if r < 0x21 || r == 0x7f {
			return false
		}
	}
	return true
}

// Marshal encodes m as indented JSON with a trailing newline, without HTML
// escaping. Any encoding of the same values verifies alike: signatures and
// hashes cover the canonical encoding (docs/keys.md).
func Marshal(m *Manifest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return buf.Bytes(), nil
}
