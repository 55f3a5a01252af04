// Package audittest gives tests a key manifest of in-memory Ed25519 keys and
// an audit.Signer over it, with rotation and revocation, so audit logs can be
// written and verified without an HSM. Keys never leave the test process.
package audittest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/tradecore/tradecore/hsm/manifest"
)

// Keys is a manifest and the private keys of its entries.
type Keys struct {
	mu     sync.Mutex
	name   string
	m      manifest.Manifest
	priv   []ed25519.PrivateKey
	maxAge time.Duration
	// Now is the clock Rotate uses when it is called through the Signer
	// (audit.Rotator); default time.Now.
	Now func() time.Time
}

// New makes a manifest named name whose first key is created and active
// from at.
func New(name string, at time.Time) *Keys {
	k := &Keys{name: name, m: manifest.Manifest{Format: manifest.Format, Name: name}, maxAge: 90 * 24 * time.Hour, Now: time.Now}
	k.add(manifest.EventInit, at, nil)
	return k
}

func (k *Keys) add(ev manifest.Event, at time.Time, rev *manifest.Revocation) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	at = at.UTC()
	mk, err := manifest.NewKey(k.name, fmt.Sprintf("test-%d", len(k.priv)), priv.Public(), at, at, at.Add(k.maxAge))
	if err != nil {
		panic(err)
	}
	e := manifest.Entry{Seq: uint64(len(k.m.Entries)), Event: ev, Time: at, Key: &mk, Revoked: rev}
	if ev == manifest.EventInit {
		e.Policy = &manifest.Policy{Algorithm: manifest.Ed25519, MaxAgeSeconds: uint64(k.maxAge / time.Second)}
	}
	if e.Seq > 0 {
		e.Prev = manifest.EntryHash(&k.m.Entries[e.Seq-1])
	}
	input := manifest.SigningInput(k.name, &e)
	signers := []ed25519.PrivateKey{priv}
	if len(k.priv) > 0 {
		signers = []ed25519.PrivateKey{k.priv[len(k.priv)-1], priv}
	}
	for _, s := range signers {
		id, _ := manifest.Fingerprint(s.Public())
		e.Signatures = append(e.Signatures, manifest.Signature{KeyID: id, Sig: ed25519.Sign(s, input)})
	}
	k.m.Entries = append(k.m.Entries, e)
	k.priv = append(k.priv, priv)
	if _, err := manifest.VerifyManifest(&k.m, k.m.Entries[0].Key.ID); err != nil {
		panic(err)
	}
}

// Rotate activates a new key at at.
func (k *Keys) Rotate(at time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.add(manifest.EventRotate, at, nil)
}

// Revoke revokes key i (0 = first) from revokedAt, in an entry at at that
// activates a new key.
func (k *Keys) Revoke(i int, revokedAt, at time.Time, reason string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.add(manifest.EventRevoke, at, &manifest.Revocation{KeyID: k.m.Entries[i].Key.ID, At: revokedAt.UTC(), Reason: reason})
}

// JSON returns the manifest bytes.
func (k *Keys) JSON() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	b, err := manifest.Marshal(&k.m)
	if err != nil {
		panic(err)
	}
	return b
}

// FirstID returns the id to pin.
func (k *Keys) FirstID() string { return k.m.Entries[0].Key.ID }

// ID returns key i's id.
func (k *Keys) ID(i int) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m.Entries[i].Key.ID
}

// Private returns key i (for attack tests that sign with an old key).
func (k *Keys) Private(i int) ed25519.PrivateKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.priv[i]
}

// Len returns the number of keys.
func (k *Keys) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.priv)
}

// Verified returns the verified manifest.
func (k *Keys) Verified() *manifest.Verified {
	v, err := manifest.Verify(k.JSON(), k.FirstID())
	if err != nil {
		panic(err)
	}
	return v
}

// Signer returns an audit.Signer (and audit.Rotator) that signs with the
// newest key. Rotation is due when the newest key expires by then.
func (k *Keys) Signer() *Signer { return &Signer{k: k} }

// Signer signs with the newest key of Keys.
type Signer struct {
	k *Keys
	// Fail, when set, makes Sign fail (an HSM outage).
	Fail error
}

// Sign implements audit.Signer.
func (s *Signer) Sign(_ context.Context, msg []byte) (string, []byte, error) {
	if s.Fail != nil {
		return "", nil, s.Fail
	}
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	p := s.k.priv[len(s.k.priv)-1]
	id, _ := manifest.Fingerprint(p.Public())
	return id, ed25519.Sign(p, msg), nil
}

// Manifest implements audit.Signer.
func (s *Signer) Manifest(context.Context) ([]byte, error) { return s.k.JSON(), nil }

// RotationDue implements audit.Rotator.
func (s *Signer) RotationDue(now time.Time) bool {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return !now.Before(s.k.m.Entries[len(s.k.m.Entries)-1].Key.Expires)
}

// Rotate implements audit.Rotator.
func (s *Signer) Rotate(context.Context) error {
	s.k.Rotate(s.k.Now())
	return nil
}

// KeyRecord is the body of the keys.* audit record of a manifest entry, as
// the signing service writes it (hsm.KeyRecord, the fields a verifier reads).
type KeyRecord struct {
	FirstKeyID string `json:"first_key_id"`
	Seq        uint64 `json:"seq"`
	EntryHash  string `json:"entry_hash"`
}

// Record returns the audit record type and body of manifest entry i.
func (k *Keys) Record(i int) (string, KeyRecord) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e := &k.m.Entries[i]
	typ := map[manifest.Event]string{manifest.EventInit: "keys.init", manifest.EventRotate: "keys.rotated",
		manifest.EventRevoke: "keys.revoked", manifest.EventDestroy: "keys.destroyed"}[e.Event]
	return typ, KeyRecord{FirstKeyID: k.m.Entries[0].Key.ID, Seq: e.Seq, EntryHash: manifest.EntryHash(e)}
}
