package manifest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/hsm/manifest"
	"golang.org/x/mod/sumdb/note"
)

// chain builds a manifest of n entries with software keys (the HSM is not
// needed to build or verify a manifest), alternating algorithms; entry 2
// revokes entry 1's key when n > 2.
func chain(t testing.TB, n int) (*manifest.Manifest, []crypto.Signer) {
	t.Helper()
	m := &manifest.Manifest{Format: manifest.Format, Name: "tradecore"}
	var signers []crypto.Signer
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		var s crypto.Signer
		if i%2 == 0 {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			require.NoError(t, err)
			s = priv
		} else {
			priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			require.NoError(t, err)
			s = priv
		}
		now := t0.Add(time.Duration(i) * 24 * time.Hour)
		k, err := manifest.NewKey(m.Name, "k", s.Public(), now, now, now.Add(90*24*time.Hour))
		require.NoError(t, err)
		e := manifest.Entry{Seq: uint64(i), Event: manifest.EventRotate, Time: now, Key: k}
		switch {
		case i == 0:
			e.Event = manifest.EventInit
		case i == 2:
			e.Event = manifest.EventRevoke
			e.Revoked = &manifest.Revocation{KeyID: m.Entries[1].Key.ID, At: now.Add(-time.Hour), Reason: "compromise"}
		}
		if i > 0 {
			e.Prev = manifest.EntryHash(&m.Entries[i-1])
		}
		in := manifest.SigningInput(m.Name, &e)
		for _, sg := range append(signers[max(0, len(signers)-1):], s) {
			sig, err := manifest.SignMessage(sg, in)
			require.NoError(t, err)
			id, _ := manifest.Fingerprint(sg.Public())
			e.Signatures = append(e.Signatures, manifest.Signature{KeyID: id, Sig: sig})
		}
		signers = append(signers, s)
		m.Entries = append(m.Entries, e)
	}
	return m, signers
}

func encode(t testing.TB, m *manifest.Manifest) []byte {
	b, err := manifest.Marshal(m)
	require.NoError(t, err)
	return b
}

func TestVerifyChain(t *testing.T) {
	m, _ := chain(t, 4)
	data := encode(t, m)
	pin := m.Entries[0].Key.ID
	v, err := manifest.Verify(data, pin)
	require.NoError(t, err)
	require.Len(t, v.Keys, 4)
	assert.Equal(t, m.Entries[3].Key.ID, v.Active().ID)
	assert.True(t, v.Active().Active())
	assert.Equal(t, m.Entries[1].Time, v.Keys[0].RetiredAt)
	assert.Equal(t, "compromise", v.Keys[1].RevokeReason)
	assert.False(t, v.Keys[1].ValidAt(m.Entries[2].Time.Add(-30*time.Minute)))
	assert.True(t, v.Keys[1].ValidAt(m.Entries[1].Time))

	_, err = manifest.Verify(data, m.Entries[1].Key.ID)
	require.ErrorIs(t, err, manifest.ErrInvalid, "wrong pin")
	_, err = manifest.Verify(data, "")
	require.ErrorIs(t, err, manifest.ErrInvalid, "no pin")
}

// TestVerifyRejectsTampering alters, removes and reorders entries.
func TestVerifyRejectsTampering(t *testing.T) {
	tests := []struct {
		name string
		edit func(m *manifest.Manifest)
	}{
		{"alter key time", func(m *manifest.Manifest) { m.Entries[1].Key.Expires = m.Entries[1].Key.Expires.Add(time.Hour) }},
		{"alter label", func(m *manifest.Manifest) { m.Entries[2].Key.Label = "evil" }},
		{"alter revocation reason", func(m *manifest.Manifest) { m.Entries[2].Revoked.Reason = "routine" }},
		{"alter revocation time", func(m *manifest.Manifest) { m.Entries[2].Revoked.At = m.Entries[2].Revoked.At.Add(-time.Hour) }},
		{"alter first entry", func(m *manifest.Manifest) { m.Entries[0].Time = m.Entries[0].Time.Add(time.Second) }},
		{"flip signature bit", func(m *manifest.Manifest) { m.Entries[3].Signatures[0].Sig[5] ^= 1 }},
		{"drop a signature", func(m *manifest.Manifest) { m.Entries[3].Signatures = m.Entries[3].Signatures[1:] }},
		{"swap signatures", func(m *manifest.Manifest) {
			s := m.Entries[3].Signatures
			s[0], s[1] = s[1], s[0]
		}},
		{"remove middle entry", func(m *manifest.Manifest) { m.Entries = append(m.Entries[:1], m.Entries[2:]...) }},
		{"remove first entry", func(m *manifest.Manifest) { m.Entries = m.Entries[1:] }},
		{"reorder entries", func(m *manifest.Manifest) { m.Entries[1], m.Entries[2] = m.Entries[2], m.Entries[1] }},
		{"reorder and renumber", func(m *manifest.Manifest) {
			m.Entries[1], m.Entries[2] = m.Entries[2], m.Entries[1]
			m.Entries[1].Seq, m.Entries[2].Seq = 1, 2
		}},
		{"remove all", func(m *manifest.Manifest) { m.Entries = nil }},
		{"change name", func(m *manifest.Manifest) { m.Name = "other" }},
		{"change format", func(m *manifest.Manifest) { m.Format = "v0" }},
		{"swap public key", func(m *manifest.Manifest) { m.Entries[1].Key.PublicKeyPEM = m.Entries[3].Key.PublicKeyPEM }},
		{"wrong note verifier", func(m *manifest.Manifest) { m.Entries[2].Key.NoteVerifier = m.Entries[0].Key.NoteVerifier }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := chain(t, 4)
			pin := m.Entries[0].Key.ID
			tc.edit(m)
			_, err := manifest.Verify(encode(t, m), pin)
			require.ErrorIs(t, err, manifest.ErrInvalid)
		})
	}
	t.Run("truncating the tail still verifies", func(t *testing.T) {
		// Documented limit: a manifest cut after entry k is a valid older
		// manifest; freshness comes from the newest signature a verifier saw.
		m, _ := chain(t, 4)
		m.Entries = m.Entries[:2]
		_, err := manifest.Verify(encode(t, m), m.Entries[0].Key.ID)
		require.NoError(t, err)
	})
	t.Run("unknown field", func(t *testing.T) {
		m, _ := chain(t, 1)
		var raw map[string]any
		require.NoError(t, json.Unmarshal(encode(t, m), &raw))
		raw["extra"] = 1
		b, _ := json.Marshal(raw)
		_, err := manifest.Verify(b, m.Entries[0].Key.ID)
		require.ErrorIs(t, err, manifest.ErrInvalid)
	})
}

// TestNoteVerifierKey cross-checks the C2SP signed-note verifier key with
// golang.org/x/mod/sumdb/note: a note signed by the Ed25519 key verifies.
func TestNoteVerifierKey(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	vk, err := manifest.NoteVerifierKey("tradecore", pub)
	require.NoError(t, err)
	assert.Regexp(t, `^tradecore\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$`, vk)
	verifier, err := note.NewVerifier(vk)
	require.NoError(t, err)
	text := "tradecore\n7\nroot\n"
	// Sign by hand with the C2SP rule: signature over the note text.
	sig := ed25519.Sign(priv, []byte(text))
	assert.True(t, verifier.Verify([]byte(text), sig))
}

func FuzzVerify(f *testing.F) {
	m, _ := chain(f, 3)
	good := encode(f, m)
	pin := m.Entries[0].Key.ID
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"tradecore-key-manifest/v1","name":"x","entries":[{}]}`))
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := manifest.Verify(data, pin)
		if err == nil {
			require.NotEmpty(t, v.Keys)
			require.Equal(t, pin, v.Keys[0].ID)
		}
	})
}
