package manifest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/hsm/manifest"
)

// builder appends correctly signed entries with software keys (the HSM is
// not needed to build or verify a manifest).
type builder struct {
	t       testing.TB
	m       *manifest.Manifest
	signers map[string]crypto.Signer
	active  string
	now     time.Time
	policy  manifest.Policy
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newKey(t testing.TB, alg manifest.Algorithm) crypto.Signer {
	t.Helper()
	if alg == manifest.ECDSAP256 {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		return k
	}
	_, k, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return k
}

func newBuilder(t testing.TB, alg manifest.Algorithm) *builder {
	b := &builder{t: t, m: &manifest.Manifest{Format: manifest.Format, Name: "tradecore"}, signers: map[string]crypto.Signer{},
		now: t0, policy: manifest.Policy{Algorithm: alg, MaxAgeSeconds: 90 * 24 * 3600}}
	p := b.policy
	b.add(manifest.Entry{Event: manifest.EventInit, Policy: &p}, true)
	return b
}

// add fills seq, time, prev, the new key (when withKey) and the signatures.
func (b *builder) add(e manifest.Entry, withKey bool) string {
	b.t.Helper()
	e.Seq = uint64(len(b.m.Entries))
	e.Time = b.now
	if e.Seq > 0 {
		e.Prev = manifest.EntryHash(&b.m.Entries[e.Seq-1])
	}
	var signers []crypto.Signer
	if b.active != "" {
		signers = append(signers, b.signers[b.active])
	}
	var id string
	if withKey {
		s := newKey(b.t, b.policy.Algorithm)
		k, err := manifest.NewKey(b.m.Name, "k", s.Public(), b.now, b.now, b.now.Add(b.policy.MaxAge()))
		require.NoError(b.t, err)
		e.Key, id = &k, k.ID
		b.signers[id] = s
		signers = append(signers, s)
	}
	in := manifest.SigningInput(b.m.Name, &e)
	for _, s := range signers {
		sig, err := manifest.SignMessage(s, in)
		require.NoError(b.t, err)
		kid, _ := manifest.Fingerprint(s.Public())
		e.Signatures = append(e.Signatures, manifest.Signature{KeyID: kid, Sig: sig})
	}
	b.m.Entries = append(b.m.Entries, e)
	if withKey {
		b.active = id
	}
	b.now = b.now.Add(24 * time.Hour)
	return id
}

func (b *builder) rotate(newPolicy *manifest.Policy) string {
	if newPolicy != nil {
		b.policy = *newPolicy
	}
	return b.add(manifest.Entry{Event: manifest.EventRotate, Policy: newPolicy}, true)
}

func (b *builder) revoke(id string, at time.Time, reason string) string {
	return b.add(manifest.Entry{Event: manifest.EventRevoke, Revoked: &manifest.Revocation{KeyID: id, At: at, Reason: reason}}, id == b.active)
}

func (b *builder) destroy(id string) {
	b.add(manifest.Entry{Event: manifest.EventDestroy, Destroyed: &manifest.Destruction{KeyID: id}}, false)
}

func (b *builder) bytes() []byte {
	data, err := manifest.Marshal(b.m)
	require.NoError(b.t, err)
	return data
}

func (b *builder) pin() string { return b.m.Entries[0].Key.ID }

// chain: 0 init (ed25519), 1 rotate to ECDSA (policy change), 2 revoke of
// entry 1's active key with a new ECDSA key, 3 rotate back to Ed25519, 4
// destroy of entry 1's key, 5 revoke of entry 0's retired key (no new key).
func chain(t testing.TB) *builder {
	b := newBuilder(t, manifest.Ed25519)
	k1 := b.rotate(&manifest.Policy{Algorithm: manifest.ECDSAP256, MaxAgeSeconds: 120})
	b.revoke(k1, b.now.Add(-time.Hour), "stolen <laptop> & \"bag\"\n")
	b.rotate(&manifest.Policy{Algorithm: manifest.Ed25519, MaxAgeSeconds: 90 * 24 * 3600})
	b.destroy(k1)
	b.revoke(b.pin(), b.now, "retired key found on a backup")
	return b
}
