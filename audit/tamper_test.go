package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/hsm/manifest"
)

// copyDir copies an audit folder (files only, one level of subfolders).
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	require.NoError(t, os.CopyFS(dst, os.DirFS(src)))
	return dst
}

type frame struct{ off, end int }

func frames(t *testing.T, seg []byte) []frame {
	var out []frame
	for off := segHeaderSize; off < len(seg); {
		n := int(binary.LittleEndian.Uint32(seg[off:]))
		out = append(out, frame{off, off + frameHeader + n})
		off += frameHeader + n
	}
	return out
}

func expectFail(t *testing.T, dir string, opts VerifyOptions, what string) {
	t.Helper()
	_, err := VerifyDir(context.Background(), dir, opts)
	require.ErrorIs(t, err, ErrVerify, "%s went undetected", what)
	parallelVerify = false
	_, err2 := VerifyDir(context.Background(), dir, opts)
	parallelVerify = true
	require.Equal(t, err.Error(), err2.Error(), "%s: both verifier modes report the same failure", what)
}

// TestTamperDetected alters a verified log in every way the issue lists, at
// many random positions, and checks the verifier catches each one: in a log
// of one segment (read through a buffer, as the newest segment always is)
// and in the first of several (a full segment, read from a mapping).
func TestTamperDetected(t *testing.T) {
	t.Run("one-segment", func(t *testing.T) { tamperDetected(t) })
	t.Run("full-segment", func(t *testing.T) {
		tamperDetected(t, func(c *Config) { c.SegmentSize = 64 << 10; c.BufferSize = 128 << 10 })
	})
}

func tamperDetected(t *testing.T, mut ...func(*Config)) {
	base := t.TempDir()
	el := writeEngineLog(t, base, 300, 25, mut...)
	el.close(t)
	opts := el.opts()
	_, err := VerifyDir(context.Background(), base, opts)
	require.NoError(t, err)
	segPath := filepath.Join(segDir, segName(0))
	seg, err := os.ReadFile(filepath.Join(base, segPath))
	require.NoError(t, err)
	fs := frames(t, seg)
	cps, err := os.ReadFile(filepath.Join(base, cpFile))
	require.NoError(t, err)
	seed := uint64(time.Now().UnixNano())
	r := mrand.New(mrand.NewPCG(seed, 99))
	t.Logf("seed %d, %d leaves, %d segment bytes", seed, len(fs), len(seg))

	write := func(dir, rel string, b []byte) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, rel), b, 0o600))
	}
	const trials = 40
	for i := 0; i < trials; i++ {
		dir := copyDir(t, base)
		pos := r.IntN(len(seg))
		b := append([]byte(nil), seg...)
		b[pos] ^= byte(1 + r.IntN(255))
		write(dir, segPath, b)
		expectFail(t, dir, opts, fmt.Sprintf("flipping segment byte %d", pos))
	}
	for i := 0; i < trials; i++ {
		dir := copyDir(t, base)
		pos := r.IntN(len(cps))
		b := append([]byte(nil), cps...)
		b[pos] ^= byte(1 + r.IntN(255))
		write(dir, cpFile, b)
		expectFail(t, dir, opts, fmt.Sprintf("flipping checkpoints byte %d", pos))
	}
	rebuild := func(order []int) []byte {
		out := append([]byte(nil), seg[:segHeaderSize]...)
		for _, k := range order {
			out = append(out, seg[fs[k].off:fs[k].end]...)
		}
		return out
	}
	ident := func() []int {
		o := make([]int, len(fs))
		for k := range o {
			o[k] = k
		}
		return o
	}
	for i := 0; i < trials; i++ {
		k := r.IntN(len(fs))
		o := ident()
		dir := copyDir(t, base)
		write(dir, segPath, rebuild(append(o[:k:k], o[k+1:]...)))
		expectFail(t, dir, opts, fmt.Sprintf("deleting record %d", k))

		o = ident()
		j := r.IntN(len(fs))
		for j == k {
			j = r.IntN(len(fs))
		}
		o[k], o[j] = o[j], o[k]
		dir = copyDir(t, base)
		write(dir, segPath, rebuild(o))
		expectFail(t, dir, opts, fmt.Sprintf("swapping records %d and %d", k, j))

		o = ident()
		dup := append(append(append([]int{}, o[:k+1]...), k), o[k+1:]...)
		dir = copyDir(t, base)
		write(dir, segPath, rebuild(dup))
		expectFail(t, dir, opts, fmt.Sprintf("duplicating record %d", k))

		cut := segHeaderSize + r.IntN(len(seg)-segHeaderSize)
		dir = copyDir(t, base)
		write(dir, segPath, seg[:cut])
		expectFail(t, dir, opts, fmt.Sprintf("truncating the segment at %d", cut))
	}
	// Removing the checkpoints altogether, or the log's own checkpoints
	// together with its tail while the auditor holds a later checkpoint.
	dir := copyDir(t, base)
	require.NoError(t, os.Remove(filepath.Join(dir, cpFile)))
	expectFail(t, dir, opts, "deleting the checkpoints")
	notes, err := ReadCheckpoints(base)
	require.NoError(t, err)
	dir = copyDir(t, base)
	write(dir, segPath, rebuild(ident()[:len(fs)-5]))
	var kept []byte
	for _, n := range notes[:len(notes)-1] {
		kept = appendFrame(kept, n)
	}
	write(dir, cpFile, kept)
	withHeld := opts
	withHeld.Checkpoints = [][]byte{notes[len(notes)-1]}
	expectFail(t, dir, withHeld, "cutting the tail and its checkpoint while the auditor holds it")

	// Re-signing checkpoints: by a key outside the manifest, by a key the
	// manifest revoked, and with a replaced root.
	n0, err := ParseNote(notes[0])
	require.NoError(t, err)
	c0, err := ParseCheckpointText(n0.Text)
	require.NoError(t, err)
	_, rogue, _ := ed25519.GenerateKey(rand.Reader)
	resign := func(c Checkpoint, key ed25519.PrivateKey) []byte {
		text := c.Text()
		kid, err := NoteKeyID("tradecore", key.Public())
		require.NoError(t, err)
		n := Note{Text: text, Sigs: []NoteSig{{Name: "tradecore", KeyID: kid, Sig: ed25519.Sign(key, text)}}}
		return n.Marshal()
	}
	replaceFirst := func(dir string, note []byte, o VerifyOptions, what string) {
		var b []byte
		b = appendFrame(b, note)
		for _, n := range notes[1:] {
			b = appendFrame(b, n)
		}
		write(dir, cpFile, b)
		expectFail(t, dir, o, what)
	}
	replaceFirst(copyDir(t, base), resign(c0, rogue), opts, "a checkpoint re-signed by a key outside the manifest")
	forged := c0
	forged.Root[0] ^= 1
	replaceFirst(copyDir(t, base), resign(forged, el.keys.Private(0)), opts, "a checkpoint with another root signed by the real key")

	// Revoke key 0 from a moment after the log was written; a checkpoint
	// the thief signs with it later is refused.
	revokedAt := time.Now().Add(time.Second)
	el.keys.Revoke(0, revokedAt, revokedAt, "key compromised")
	ropts := VerifyOptions{Manifest: el.keys.JSON(), PinnedFirstKey: el.keys.FirstID()}
	_, err = VerifyDir(context.Background(), base, ropts)
	require.NoError(t, err, "signatures made before the revocation stay valid")
	late := c0
	late.Time = revokedAt.Add(time.Hour).UnixNano()
	replaceFirst(copyDir(t, base), resign(late, el.keys.Private(0)), ropts, "a checkpoint signed by a revoked key")
	// A forged manifest (a rogue key appended) fails on the pin chain.
	fake := el.keys.Verified().Manifest
	fake.Entries = append([]manifest.Entry(nil), fake.Entries...)
	fake.Entries[0].Key.Label = "renamed"
	fj, _ := manifest.Marshal(&fake)
	_, err = VerifyDir(context.Background(), base, VerifyOptions{Manifest: fj, PinnedFirstKey: el.keys.FirstID()})
	require.ErrorIs(t, err, ErrVerify)
	_, err = VerifyDir(context.Background(), base, VerifyOptions{Manifest: el.keys.JSON(), PinnedFirstKey: "00112233445566778899aabbccddeeff"})
	require.ErrorIs(t, err, ErrVerify, "wrong pin")
}
