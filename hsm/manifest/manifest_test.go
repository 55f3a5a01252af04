package manifest_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/hsm/manifest"
	"golang.org/x/mod/sumdb/note"
)

func TestVerifyChain(t *testing.T) {
	b := chain(t)
	m := b.m
	v, err := manifest.Verify(b.bytes(), b.pin())
	require.NoError(t, err)
	require.Len(t, v.Keys, 4)
	assert.Equal(t, m.Entries[3].Key.ID, v.Active().ID)
	assert.True(t, v.Active().Active())
	assert.Equal(t, manifest.Ed25519, v.Policy.Algorithm)
	assert.Equal(t, m.Entries[1].Time, v.Keys[0].RetiredAt)
	assert.Equal(t, "retired key found on a backup", v.Keys[0].RevokeReason)
	assert.Equal(t, uint64(5), v.Keys[0].RevokedSeq)
	assert.Equal(t, uint64(4), v.Keys[1].DestroyedSeq)
	assert.Equal(t, manifest.ECDSAP256, v.Keys[1].Algorithm)
	assert.Equal(t, m.Entries[1].Time.Add(120*time.Second), v.Keys[1].Expires, "key follows the policy in force")
	assert.False(t, v.Keys[1].ValidAt(m.Entries[2].Time.Add(-30*time.Minute)))
	assert.True(t, v.Keys[1].ValidAt(m.Entries[1].Time))
	assert.Equal(t, v.Active().ID, v.KeyAt(5).ID)
	assert.Equal(t, v.Keys[1].ID, v.KeyAt(1).ID)
	assert.Nil(t, v.KeyAt(6))

	_, err = manifest.Verify(b.bytes(), m.Entries[1].Key.ID)
	require.ErrorIs(t, err, manifest.ErrInvalid, "wrong pin")
	_, err = manifest.Verify(b.bytes(), "")
	require.ErrorIs(t, err, manifest.ErrInvalid, "no pin")
}

// TestVerifyRejectsTampering alters, removes and reorders entries, and breaks
// each structural rule.
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
		{"alter policy", func(m *manifest.Manifest) { m.Entries[0].Policy.MaxAgeSeconds++ }},
		{"drop policy", func(m *manifest.Manifest) { m.Entries[1].Policy = nil }},
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
		{"change format", func(m *manifest.Manifest) { m.Format = "tradecore-key-manifest/v1" }},
		{"swap public key", func(m *manifest.Manifest) { m.Entries[1].Key.PublicKeyPEM = m.Entries[3].Key.PublicKeyPEM }},
		{"wrong note verifier", func(m *manifest.Manifest) { m.Entries[3].Key.NoteVerifier = m.Entries[0].Key.NoteVerifier }},
		{"destroy turned into revoke", func(m *manifest.Manifest) {
			m.Entries[4].Event = manifest.EventRevoke
		}},
		{"key dropped from a revocation of the active key", func(m *manifest.Manifest) { m.Entries[2].Key = nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := chain(t)
			pin := b.pin()
			tc.edit(b.m)
			_, err := manifest.Verify(b.bytes(), pin)
			require.ErrorIs(t, err, manifest.ErrInvalid)
		})
	}
	t.Run("unknown field", func(t *testing.T) {
		b := newBuilder(t, manifest.Ed25519)
		var raw map[string]any
		require.NoError(t, json.Unmarshal(b.bytes(), &raw))
		raw["extra"] = 1
		data, _ := json.Marshal(raw)
		_, err := manifest.Verify(data, b.pin())
		require.ErrorIs(t, err, manifest.ErrInvalid)
	})
	for name, edit := range map[string]func(string) string{
		"null member":      func(s string) string { return strings.Replace(s, `"prev": ""`, `"prev": "", "revoked": null`, 1) },
		"duplicate member": func(s string) string { return strings.Replace(s, `"prev": ""`, `"prev": "", "prev": ""`, 1) },
		"float seq":        func(s string) string { return strings.Replace(s, `"seq": 0`, `"seq": 0.0`, 1) },
		"leading zero":     func(s string) string { return strings.Replace(s, `"seq": 1`, `"seq": 01`, 1) },
		"invalid utf-8":    func(s string) string { return strings.Replace(s, `"label": "k"`, "\"label\": \"k\xff\"", 1) },
		"lone surrogate":   func(s string) string { return strings.Replace(s, `"label": "k"`, `"label": "k\ud800"`, 1) },
	} {
		t.Run(name, func(t *testing.T) {
			b := chain(t)
			data := edit(string(b.bytes()))
			require.NotEqual(t, string(b.bytes()), data)
			_, err := manifest.Verify([]byte(data), b.pin())
			require.ErrorIs(t, err, manifest.ErrInvalid)
		})
	}
}

// TestStructuralRules builds manifests that are correctly signed but break a
// lifecycle rule: the verifier must refuse them although every signature is
// good.
func TestStructuralRules(t *testing.T) {
	t.Run("revoking the active key without a new key", func(t *testing.T) {
		b := newBuilder(t, manifest.Ed25519)
		b.add(manifest.Entry{Event: manifest.EventRevoke, Revoked: &manifest.Revocation{KeyID: b.active, At: b.now, Reason: "x"}}, false)
		_, err := manifest.Verify(b.bytes(), b.pin())
		require.ErrorIs(t, err, manifest.ErrInvalid)
	})
	t.Run("revoking a retired key with a new key", func(t *testing.T) {
		b := newBuilder(t, manifest.Ed25519)
		old := b.active
		b.rotate(nil)
		b.add(manifest.Entry{Event: manifest.EventRevoke, Revoked: &manifest.Revocation{KeyID: old, At: b.now, Reason: "x"}}, true)
		_, err := manifest.Verify(b.bytes(), b.pin())
		require.ErrorIs(t, err, manifest.ErrInvalid)
	})
	t.Run("destroying the active key", func(t *testing.T) {
		b := newBuilder(t, manifest.Ed25519)
		b.destroy(b.active)
		_, err := manifest.Verify(b.bytes(), b.pin())
		require.ErrorIs(t, err, manifest.ErrInvalid)
	})
	t.Run("key breaking the policy's algorithm", func(t *testing.T) {
		b := newBuilder(t, manifest.ECDSAP256)
		b.policy.Algorithm = manifest.Ed25519 // the builder's key, not the manifest's policy
		b.rotate(nil)
		_, err := manifest.Verify(b.bytes(), b.pin())
		require.ErrorContains(t, err, "breaks the policy")
	})
	t.Run("key breaking the policy's max age", func(t *testing.T) {
		b := newBuilder(t, manifest.Ed25519)
		b.policy.MaxAgeSeconds = 60
		b.rotate(nil)
		_, err := manifest.Verify(b.bytes(), b.pin())
		require.ErrorContains(t, err, "the policy says")
	})
}

// TestEncodingDoesNotMatter re-encodes a valid manifest with Go's HTML
// escaping and compact whitespace: the canonical encoding, hence every
// signature and hash, is the same.
func TestEncodingDoesNotMatter(t *testing.T) {
	b := chain(t)
	data := b.bytes()
	assert.Contains(t, string(data), "stolen <laptop> & ", "written without HTML escaping")
	var any1 any
	require.NoError(t, json.Unmarshal(data, &any1))
	escaped, err := json.Marshal(any1) // escapes < > & as \u003c …
	require.NoError(t, err)
	require.Contains(t, string(escaped), `\u003c`)
	_, err = manifest.Verify(escaped, b.pin())
	require.NoError(t, err)
	c1, err := manifest.Canonical(data)
	require.NoError(t, err)
	c2, err := manifest.Canonical(escaped)
	require.NoError(t, err)
	assert.Equal(t, c1, c2)
}

// TestForgedTailNeedsFreshness is the attack: cut the manifest before
// a revocation and append a rotation to an attacker's key, signed by the key
// that was active at the cut. The result verifies against the pinned root
// (a manifest alone cannot say it is current); a verifier that remembers the
// newest manifest it saw refuses it, and refuses a plain truncation too.
func TestForgedTailNeedsFreshness(t *testing.T) {
	b := newBuilder(t, manifest.Ed25519)
	stolen := b.rotate(nil)
	good := *b.m
	good.Entries = append([]manifest.Entry(nil), b.m.Entries...)
	b.revoke(stolen, b.now, "stolen laptop")
	current := b.bytes()
	seen := filepath.Join(t.TempDir(), "seen", b.pin()+".json")
	v, err := manifest.VerifyFresh(current, b.pin(), seen)
	require.NoError(t, err)
	require.Equal(t, uint64(3), v.Head().Size)

	// The attacker's tail: entries 0..1, then a rotate signed by the stolen key.
	b.m = &good
	b.active = stolen
	b.rotate(nil)
	b.rotate(nil)
	forged := b.bytes()
	_, err = manifest.Verify(forged, b.pin())
	require.NoError(t, err, "a forged tail is a validly signed manifest")
	_, err = manifest.VerifyFresh(forged, b.pin(), seen)
	require.ErrorIs(t, err, manifest.ErrDiverged)

	truncated := &manifest.Manifest{Format: good.Format, Name: good.Name, Entries: good.Entries[:2]}
	data, err := manifest.Marshal(truncated)
	require.NoError(t, err)
	_, err = manifest.VerifyFresh(data, b.pin(), seen)
	require.ErrorIs(t, err, manifest.ErrStale)

	// The current manifest still passes, and so does a longer one later.
	_, err = manifest.VerifyFresh(current, b.pin(), seen)
	require.NoError(t, err)
	h, err := manifest.LoadHead(seen)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), h.Size)
}

// TestLogAnchoredRule is the rule of docs/keys.md "What a signature proves":
// a signature carries no trustworthy time. A revoked key's thief signs a
// checkpoint now and claims a time before the revocation: ValidAt on the
// claimed time accepts it, which is why claimed times never count. Judged by
// log position instead (the newest manifest entry recorded in the tree the
// checkpoint commits to), the revoked key is refused.
func TestLogAnchoredRule(t *testing.T) {
	b := newBuilder(t, manifest.Ed25519)
	stolen := b.rotate(nil) // entry 1
	thief := b.signers[stolen]
	revokedAt := b.now
	b.revoke(stolen, revokedAt, "stolen laptop") // entry 2
	v, err := manifest.Verify(b.bytes(), b.pin())
	require.NoError(t, err)
	k := v.Key(stolen)

	// A fake audit log: leaf i holds a record of manifest entry logSeq[i]
	// (or -1 for any other record).
	logSeq := []int{0, -1, -1, 1, -1, -1, 2, -1}
	newestEntry := func(treeSize int) uint64 {
		s := -1
		for _, e := range logSeq[:treeSize] {
			s = max(s, e)
		}
		return uint64(s)
	}
	checkpoint := []byte("tradecore\n8\nrootAAAA\n")
	sig, err := manifest.SignMessage(thief, checkpoint)
	require.NoError(t, err)
	require.True(t, manifest.VerifyMessage(k.Public, checkpoint, sig), "the thief's signature verifies")
	claimed := revokedAt.Add(-time.Minute)
	assert.True(t, k.ValidAt(claimed), "a claimed time is not evidence")

	assert.False(t, k.ActiveAt(newestEntry(8)), "tree of 8 leaves contains the revocation: refused")
	assert.NotEqual(t, stolen, v.KeyAt(newestEntry(8)).ID)
	assert.True(t, k.ActiveAt(newestEntry(5)), "a tree of 5 leaves predates the revocation")
	assert.Equal(t, stolen, v.KeyAt(newestEntry(5)).ID)
	assert.False(t, v.Keys[0].ActiveAt(newestEntry(5)), "the first key retired at entry 1")
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
	sig := ed25519.Sign(priv, []byte(text))
	assert.True(t, verifier.Verify([]byte(text), sig))
}

func FuzzVerify(f *testing.F) {
	b := chain(f)
	good := b.bytes()
	pin := b.pin()
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"tradecore-key-manifest/v2","name":"x","entries":[{}]}`))
	f.Add(good[:len(good)/2])
	f.Add(bytes.Replace(good, []byte(`"seq": 1`), []byte(`"seq": 1.0`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := manifest.Verify(data, pin)
		docErr := docVerify(data, pin)
		if err == nil {
			require.NotEmpty(t, v.Keys)
			require.Equal(t, pin, v.Keys[0].ID)
			require.NoError(t, docErr, "the documented verifier refuses what Verify accepts")
		} else {
			require.Error(t, docErr, "the documented verifier accepts what Verify refuses (%v)", err)
		}
	})
}

func FuzzCanonical(f *testing.F) {
	f.Add(chain(f).bytes())
	f.Add([]byte(`{"b":1,"a":"<&>\u2028","c":[true,false,{"z":"\u0001"}]}`))
	f.Add([]byte(`[null]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := manifest.Canonical(data)
		if err != nil {
			return
		}
		again, err := manifest.Canonical(c)
		require.NoError(t, err)
		require.Equal(t, c, again, "canonical form is a fixed point")
		require.True(t, json.Valid(c))
	})
}

func FuzzLoadHead(f *testing.F) {
	f.Add([]byte(`{"first_key_id":"00112233445566778899aabbccddeeff","size":3,"hash":"` + strings.Repeat("ab", 32) + `"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "seen.json")
		require.NoError(t, os.WriteFile(p, data, 0o600))
		h, err := manifest.LoadHead(p)
		if err == nil {
			require.NotZero(t, h.Size)
		}
	})
}
