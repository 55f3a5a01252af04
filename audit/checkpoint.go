package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tradecore/tradecore/audit/merkle"
	"github.com/tradecore/tradecore/hsm/manifest"
)

// Checkpoint is a signed tree head in the C2SP tlog-checkpoint format
// (https://c2sp.org/tlog-checkpoint): origin, tree size, base64 root, and
// one extension line "time <unix ns>" — when the log signed it — which the
// verifier needs to check that the signing key was valid then.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   merkle.Hash
	Time   int64
}

// MaxNoteSize bounds a signed note (checkpoint or report) a parser accepts.
const MaxNoteSize = 1 << 20

// maxSigs bounds a note's signature lines (C2SP asks verifiers to accept 16).
const maxSigs = 16

// ErrCheckpoint is wrapped by every checkpoint or signed-note failure: bad
// format, a signature that does not verify, or a key that was not valid at
// the checkpoint's time. Do not trust the checkpoint.
var ErrCheckpoint = errors.New("audit: bad checkpoint")

// Text returns the checkpoint's note text (what is signed).
func (c *Checkpoint) Text() []byte {
	var b []byte
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, c.Root[:])
	b = append(b, "\ntime "...)
	b = strconv.AppendInt(b, c.Time, 10)
	return append(b, '\n')
}

// ParseCheckpointText parses a checkpoint's note text strictly.
func ParseCheckpointText(text []byte) (Checkpoint, error) {
	var c Checkpoint
	bad := func(why string) (Checkpoint, error) { return c, fmt.Errorf("%w: %s", ErrCheckpoint, why) }
	if len(text) == 0 || text[len(text)-1] != '\n' {
		return bad("text does not end in a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) != 4 {
		return bad(fmt.Sprintf("%d lines, want 4 (origin, size, root, time)", len(lines)))
	}
	if !validOrigin(lines[0]) {
		return bad("origin is empty or has spaces, '+' or control characters")
	}
	c.Origin = lines[0]
	if !canonicalUint(lines[1]) {
		return bad("tree size is not a decimal without leading zeros")
	}
	c.Size, _ = strconv.ParseUint(lines[1], 10, 64)
	root, err := base64.StdEncoding.Strict().DecodeString(lines[2])
	if err != nil || len(root) != merkle.HashSize {
		return bad("root hash is not base64 of 32 bytes")
	}
	copy(c.Root[:], root)
	ts, ok := strings.CutPrefix(lines[3], "time ")
	if !ok || !canonicalInt(ts) {
		return bad(`fourth line is not "time <unix ns>"`)
	}
	c.Time, _ = strconv.ParseInt(ts, 10, 64)
	return c, nil
}

func validOrigin(s string) bool {
	if s == "" || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == '+' || r == 0x7f || r == 0x85 || r == 0xa0 || r == 0x2028 || r == 0x2029 || (r >= 0x2000 && r <= 0x200a) || r == 0x3000 || r == 0x1680 || r == 0x205f {
			return false
		}
	}
	return true
}

func canonicalUint(s string) bool {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

func canonicalInt(s string) bool {
	if rest, ok := strings.CutPrefix(s, "-"); ok {
		return rest != "0" && canonicalUint(rest) && func() bool { _, err := strconv.ParseInt(s, 10, 64); return err == nil }()
	}
	if !canonicalUint(s) {
		return false
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// NoteSig is one signature line of a signed note.
type NoteSig struct {
	Name  string
	KeyID uint32 // the note key ID (first 4 bytes)
	Sig   []byte
}

// Note is a parsed C2SP signed note (https://c2sp.org/signed-note).
type Note struct {
	Text []byte
	Sigs []NoteSig
}

// ParseNote splits a signed note into its text and signature lines, checking
// the format strictly: valid UTF-8, no control characters but newline, the
// text separated from 1–16 signature lines by the last blank line.
func ParseNote(b []byte) (Note, error) {
	var n Note
	bad := func(why string) (Note, error) { return n, fmt.Errorf("%w: note: %s", ErrCheckpoint, why) }
	if len(b) > MaxNoteSize {
		return bad("too large")
	}
	if !utf8.Valid(b) {
		return bad("not valid UTF-8")
	}
	for _, c := range b {
		if c < 0x20 && c != '\n' {
			return bad("control character")
		}
	}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return bad("does not end in a newline")
	}
	split := bytes.LastIndex(b, []byte("\n\n"))
	if split < 0 {
		return bad("no blank line before the signatures")
	}
	n.Text = b[:split+1]
	if split+2 >= len(b) {
		return bad("no signature lines")
	}
	for _, line := range strings.Split(string(b[split+2:len(b)-1]), "\n") {
		rest, ok := strings.CutPrefix(line, "— ")
		if !ok {
			return bad("signature line does not start with an em dash and a space")
		}
		name, sig64, ok := strings.Cut(rest, " ")
		if !ok || name == "" || strings.ContainsAny(name, " +") {
			return bad("signature line has no valid key name")
		}
		raw, err := base64.StdEncoding.Strict().DecodeString(sig64)
		if err != nil || len(raw) < 5 {
			return bad("signature is not base64 of a key ID and a signature")
		}
		n.Sigs = append(n.Sigs, NoteSig{Name: name, KeyID: binary.BigEndian.Uint32(raw), Sig: raw[4:]})
		if len(n.Sigs) > maxSigs {
			return bad("more than 16 signatures")
		}
	}
	return n, nil
}

// Marshal renders the note.
func (n *Note) Marshal() []byte {
	b := append([]byte(nil), n.Text...)
	b = append(b, '\n')
	for _, s := range n.Sigs {
		b = append(b, "— "...)
		b = append(b, s.Name...)
		b = append(b, ' ')
		raw := binary.BigEndian.AppendUint32(nil, s.KeyID)
		raw = append(raw, s.Sig...)
		b = base64.StdEncoding.AppendEncode(b, raw)
		b = append(b, '\n')
	}
	return b
}

// Note signature types (C2SP signed-note).
const (
	sigTypeEd25519 = 0x01
	sigTypeECDSA   = 0x02
)

// NoteKeyID returns the 4-byte note key ID of pub under name:
// SHA-256(name || 0x0A || type || key)[:4], with type 0x01 and the 32-byte
// key for Ed25519, type 0x02 and the PKIX DER key for ECDSA.
func NoteKeyID(name string, pub crypto.PublicKey) (uint32, error) {
	var typ byte
	var key []byte
	switch p := pub.(type) {
	case ed25519.PublicKey:
		typ, key = sigTypeEd25519, p
	case *ecdsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(p)
		if err != nil {
			return 0, err
		}
		typ, key = sigTypeECDSA, der
	default:
		return 0, fmt.Errorf("audit: unsupported key type %T", pub)
	}
	h := sha256.New()
	h.Write([]byte(name))
	h.Write([]byte{'\n', typ})
	h.Write(key)
	return binary.BigEndian.Uint32(h.Sum(nil)), nil
}

// Signer signs checkpoints and reports. Sign signs msg with the active key
// the way manifest.SignMessage does (Ed25519 over msg; ECDSA P-256 over
// SHA-256(msg), ASN.1 DER) and returns that key's manifest id; Manifest
// returns the current key manifest. audit/hsmsign adapts the HSM signing
// service (hsm.Signer); KeySigner wraps a crypto.Signer.
type Signer interface {
	Sign(ctx context.Context, msg []byte) (keyID string, sig []byte, err error)
	Manifest(ctx context.Context) ([]byte, error)
}

// Rotator is implemented by a Signer that can rotate its key. Before each
// checkpoint the log asks RotationDue(now); when it says yes, the log signs
// a handover checkpoint: the same checkpoint signed by the old key, then,
// after Rotate, by the new key.
type Rotator interface {
	RotationDue(now time.Time) bool
	Rotate(ctx context.Context) error
}

// KeySigner is a Signer over a crypto.Signer whose key is in the manifest
// (tests, tools, or a key held outside the HSM service).
type KeySigner struct {
	Key          crypto.Signer
	ManifestJSON []byte
}

// Sign implements Signer.
func (k *KeySigner) Sign(_ context.Context, msg []byte) (string, []byte, error) {
	id, err := manifest.Fingerprint(k.Key.Public())
	if err != nil {
		return "", nil, err
	}
	sig, err := manifest.SignMessage(k.Key, msg)
	return id, sig, err
}

// Manifest implements Signer.
func (k *KeySigner) Manifest(context.Context) ([]byte, error) { return k.ManifestJSON, nil }

// noteKeys resolves note signatures to manifest keys.
type noteKeys struct {
	name string
	byID map[uint32][]*manifest.KeyState
}

func newNoteKeys(v *manifest.Verified) (*noteKeys, error) {
	nk := &noteKeys{name: v.Manifest.Name, byID: map[uint32][]*manifest.KeyState{}}
	for i := range v.Keys {
		k := &v.Keys[i]
		id, err := NoteKeyID(nk.name, k.Public)
		if err != nil {
			return nil, err
		}
		nk.byID[id] = append(nk.byID[id], k)
	}
	return nk, nil
}

// SignedBy says which manifest key signed a note and whether it was valid.
type SignedBy struct {
	KeyID string `json:"key_id"`
	// Role is "valid" (the key was active at the note's time) or "handover"
	// (the next key, co-signing the checkpoint at which it took over).
	Role string `json:"role"`
}

// verifyNote checks a note's signatures against the manifest at time t: at
// least one known key valid at t must sign; every signature by a known key
// must verify; a known key that was revoked, retired or expired at t fails
// the note, except the successor of a valid signer co-signing a handover.
func (nk *noteKeys) verifyNote(n *Note, t time.Time) ([]SignedBy, error) {
	var out []SignedBy
	var valid []*manifest.KeyState
	var later []*manifest.KeyState
	for _, s := range n.Sigs {
		if s.Name != nk.name {
			continue // unknown key: ignored, as C2SP requires
		}
		var key *manifest.KeyState
		for _, k := range nk.byID[s.KeyID] {
			if manifest.VerifyMessage(k.Public, n.Text, s.Sig) {
				key = k
				break
			}
		}
		if key == nil {
			if len(nk.byID[s.KeyID]) > 0 {
				return nil, fmt.Errorf("%w: signature by manifest key %s does not verify", ErrCheckpoint, nk.byID[s.KeyID][0].ID)
			}
			continue
		}
		switch {
		case key.ValidAt(t):
			valid = append(valid, key)
			out = append(out, SignedBy{KeyID: key.ID, Role: "valid"})
		case !key.RevokedAt.IsZero() && !t.Before(key.RevokedAt):
			return nil, fmt.Errorf("%w: signed by key %s, revoked at %s (%s), after it was revoked", ErrCheckpoint, key.ID, key.RevokedAt.UTC().Format(time.RFC3339Nano), key.RevokeReason)
		case t.Before(key.ActiveFrom):
			later = append(later, key)
		default:
			return nil, fmt.Errorf("%w: signed by key %s, which was no longer active at %s", ErrCheckpoint, key.ID, t.UTC().Format(time.RFC3339Nano))
		}
	}
	if len(valid) == 0 {
		return nil, fmt.Errorf("%w: no signature by a manifest key that was active at %s", ErrCheckpoint, t.UTC().Format(time.RFC3339Nano))
	}
	for _, k := range later {
		ok := false
		for _, v := range valid {
			if !v.RetiredAt.IsZero() && v.RetiredAt.Equal(k.ActiveFrom) {
				ok = true
			}
		}
		if !ok {
			return nil, fmt.Errorf("%w: signed by key %s, which was not yet active at %s", ErrCheckpoint, k.ID, t.UTC().Format(time.RFC3339Nano))
		}
		out = append(out, SignedBy{KeyID: k.ID, Role: "handover"})
	}
	return out, nil
}

// VerifyCheckpoint parses a signed checkpoint and verifies it against a
// verified key manifest: the origin must be origin (empty: the manifest's
// name) and the signatures must satisfy the rules of verifyNote at the
// checkpoint's time.
func VerifyCheckpoint(note []byte, keys *manifest.Verified, origin string) (Checkpoint, []SignedBy, error) {
	nk, err := newNoteKeys(keys)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	return nk.verifyCheckpoint(note, origin)
}

func (nk *noteKeys) verifyCheckpoint(note []byte, origin string) (Checkpoint, []SignedBy, error) {
	n, err := ParseNote(note)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	c, err := ParseCheckpointText(n.Text)
	if err != nil {
		return c, nil, err
	}
	if origin == "" {
		origin = nk.name
	}
	if c.Origin != origin {
		return c, nil, fmt.Errorf("%w: origin %q, want %q", ErrCheckpoint, c.Origin, origin)
	}
	by, err := nk.verifyNote(&n, time.Unix(0, c.Time))
	return c, by, err
}

// signNote signs text with s and returns the signature line.
func signNote(ctx context.Context, s Signer, cache *signerKeys, text []byte) (NoteSig, string, error) {
	id, sig, err := s.Sign(ctx, text)
	if err != nil {
		return NoteSig{}, "", fmt.Errorf("audit: sign: %w", err)
	}
	name, kid, err := cache.lookup(ctx, s, id)
	if err != nil {
		return NoteSig{}, "", err
	}
	return NoteSig{Name: name, KeyID: kid, Sig: sig}, id, nil
}

// signerKeys caches note key IDs of the signer's manifest keys.
type signerKeys struct {
	name string
	ids  map[string]uint32
}

func (c *signerKeys) lookup(ctx context.Context, s Signer, id string) (string, uint32, error) {
	if kid, ok := c.ids[id]; ok {
		return c.name, kid, nil
	}
	data, err := s.Manifest(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("audit: signer manifest: %w", err)
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return "", 0, err
	}
	if len(m.Entries) == 0 {
		return "", 0, fmt.Errorf("%w: signer manifest has no keys", ErrCheckpoint)
	}
	v, err := manifest.VerifyManifest(m, m.Entries[0].Key.ID)
	if err != nil {
		return "", 0, err
	}
	k := v.Key(id)
	if k == nil {
		return "", 0, fmt.Errorf("%w: the signer signed with key %s, which its manifest does not list", ErrCheckpoint, id)
	}
	kid, err := NoteKeyID(v.Manifest.Name, k.Public)
	if err != nil {
		return "", 0, err
	}
	if c.ids == nil {
		c.ids = map[string]uint32{}
	}
	c.name = v.Manifest.Name
	c.ids[id] = kid
	return c.name, kid, nil
}

// checkpoints file: frames like a segment's (uint32 length, uint32 CRC-32C,
// note bytes), no header.

// ReadCheckpoints returns every signed checkpoint note stored in the audit
// folder dir, in the order they were written. Damage anywhere, including an
// incomplete last frame, fails with ErrCorrupt (a writer truncates a torn
// tail when it opens the log; a reader never guesses).
func ReadCheckpoints(dir string) ([][]byte, error) {
	f, err := os.Open(filepath.Join(dir, cpFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	var out [][]byte
	off, err := scanCheckpoints(f, func(b []byte) { out = append(out, append([]byte(nil), b...)) })
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.Size() != off {
		return nil, fmt.Errorf("%w: checkpoints file: %d damaged or incomplete bytes after offset %d", ErrCorrupt, st.Size()-off, off)
	}
	return out, nil
}

// scanCheckpoints reads frames and returns the offset after the last good one.
func scanCheckpoints(f *os.File, fn func([]byte)) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	r := bufio.NewReader(f)
	var off int64
	for {
		var h [frameHeader]byte
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				return off, nil
			}
			return off, err
		}
		n := int64(binary.LittleEndian.Uint32(h[:4]))
		if n == 0 || n > MaxNoteSize {
			if frameReachesEnd(f, off, st.Size()) {
				return off, nil
			}
			return off, fmt.Errorf("%w: checkpoints file: bad frame at offset %d", ErrCorrupt, off)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return off, nil // torn tail
		}
		if crc32.Checksum(b, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
			if off+frameHeader+n >= st.Size() {
				return off, nil
			}
			return off, fmt.Errorf("%w: checkpoints file: frame at offset %d fails its checksum", ErrCorrupt, off)
		}
		fn(b)
		off += frameHeader + n
	}
}

// truncateCheckpoints cuts a torn tail from the checkpoints file.
func truncateCheckpoints(dir string) (int64, error) {
	path := filepath.Join(dir, cpFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	off, err := scanCheckpoints(f, func([]byte) {})
	if err != nil {
		return 0, err
	}
	if off < st.Size() {
		if err := os.Truncate(path, off); err != nil {
			return 0, fmt.Errorf("audit: truncate checkpoints: %w", err)
		}
		return st.Size() - off, nil
	}
	return 0, nil
}

// appendCheckpointFile appends one note frame and syncs it.
func appendCheckpointFile(dir string, note []byte) error {
	f, err := os.OpenFile(filepath.Join(dir, cpFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open checkpoints: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(appendFrame(nil, note)); err != nil {
		return fmt.Errorf("audit: write checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("audit: sync checkpoint: %w", err)
	}
	return nil
}
