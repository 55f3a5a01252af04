package hsm_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/internal/hsmtest"
)

func TestVaultSealOpenRotateShred(t *testing.T) {
	tok, st := hsmtest.Open(t)
	ctx := context.Background()
	dir := t.TempDir()
	v, closeV, err := hsm.NewVault(ctx, tok, hsm.VaultConfig{Dir: dir, Recorder: &fakeLog{}})
	require.NoError(t, err)

	aad := []byte("record 17")
	sealed := map[hsm.DataClass][]byte{}
	for _, c := range hsm.DataClasses {
		ct, err := v.Seal(ctx, c, "subj-a", []byte("value of "+string(c)), aad)
		require.NoError(t, err)
		assert.NotContains(t, string(ct), "value of", "plaintext does not leak")
		assert.Equal(t, "TCS1", string(ct[:4]))
		sealed[c] = ct
		pt, err := v.Open(ctx, c, ct, aad)
		require.NoError(t, err)
		assert.Equal(t, "value of "+string(c), string(pt))
		assert.Equal(t, uint32(1), v.KEKVersion(c))
	}
	other, err := v.Seal(ctx, hsm.ClassTaxID, "subj-b", []byte("b's tax id"), nil)
	require.NoError(t, err)

	t.Run("wrong class", func(t *testing.T) {
		_, err := v.Open(ctx, hsm.ClassTaxID, sealed[hsm.ClassBankDetails], aad)
		require.ErrorIs(t, err, hsm.ErrBadCiphertext)
	})
	t.Run("wrong aad", func(t *testing.T) {
		_, err := v.Open(ctx, hsm.ClassTaxID, sealed[hsm.ClassTaxID], []byte("record 18"))
		require.ErrorIs(t, err, hsm.ErrBadCiphertext)
	})
	t.Run("tampered", func(t *testing.T) {
		for _, i := range []int{0, 5, len(sealed[hsm.ClassTaxID]) - 1} {
			ct := append([]byte(nil), sealed[hsm.ClassTaxID]...)
			ct[i] ^= 1
			_, err := v.Open(ctx, hsm.ClassTaxID, ct, aad)
			require.Error(t, err)
		}
		_, err := v.Open(ctx, hsm.ClassTaxID, []byte("TCS1"), aad)
		require.ErrorIs(t, err, hsm.ErrBadCiphertext)
	})
	t.Run("unknown class", func(t *testing.T) {
		_, err := v.Seal(ctx, "names", "subj-a", []byte("x"), nil)
		require.ErrorIs(t, err, hsm.ErrUnsupported)
	})

	// KEK rotation re-wraps the data keys; old ciphertexts still open, after
	// a restart too (no cached DEKs).
	ver, err := v.RotateKEK(ctx, hsm.ClassTaxID)
	require.NoError(t, err)
	assert.Equal(t, uint32(2), ver)
	require.NoError(t, closeV())
	tok2, closeTok2, err := hsm.Open(ctx, hsmtest.Config(st))
	require.NoError(t, err)
	defer closeTok2()
	v, closeV, err = hsm.NewVault(ctx, tok2, hsm.VaultConfig{Dir: dir, Recorder: &fakeLog{}})
	require.NoError(t, err)
	defer closeV()
	assert.Equal(t, uint32(2), v.KEKVersion(hsm.ClassTaxID))
	assert.Equal(t, uint32(1), v.KEKVersion(hsm.ClassBankDetails))
	for c, ct := range sealed {
		pt, err := v.Open(ctx, c, ct, aad)
		require.NoError(t, err, "class %s after rotation and restart", c)
		assert.Equal(t, "value of "+string(c), string(pt))
	}

	// Crypto-shredding: after Shred, subj-a's values never open again, in
	// any class, even from a fresh Vault; subj-b is untouched.
	backup, err := os.ReadFile(filepath.Join(dir, hsm.KeyringFile))
	require.NoError(t, err)
	require.NoError(t, v.Shred(ctx, "subj-a"))
	for c, ct := range sealed {
		_, err := v.Open(ctx, c, ct, aad)
		require.ErrorIs(t, err, hsm.ErrShredded, "class %s", c)
	}
	require.NoError(t, closeV())
	v, closeV, err = hsm.NewVault(ctx, tok2, hsm.VaultConfig{Dir: dir, Recorder: &fakeLog{}})
	require.NoError(t, err)
	for c, ct := range sealed {
		_, err := v.Open(ctx, c, ct, aad)
		require.ErrorIs(t, err, hsm.ErrShredded, "class %s after reopen", c)
	}
	require.NoError(t, closeV())
	// Restoring a keyring backup taken before the shred does not help: the
	// subject key is gone from the token.
	require.NoError(t, os.WriteFile(filepath.Join(dir, hsm.KeyringFile), backup, 0o600))
	v, closeV, err = hsm.NewVault(ctx, tok2, hsm.VaultConfig{Dir: dir, Recorder: &fakeLog{}})
	require.NoError(t, err)
	defer closeV()
	for c, ct := range sealed {
		_, err := v.Open(ctx, c, ct, aad)
		require.ErrorIs(t, err, hsm.ErrShredded, "class %s from a restored backup", c)
	}
	pt, err := v.Open(ctx, hsm.ClassTaxID, other, nil)
	require.NoError(t, err)
	assert.Equal(t, "b's tax id", string(pt))
}

// TestShredSurvivesARestoredBackup: restoring an old backup of tokens/ and
// datakeys.json brings a shredded subject's key back (the attack is real);
// re-applying the shreds recorded in the audit log, as the daemon does at
// start, shreds it again. Without a recorder, or when recording fails, a
// shred is refused and nothing is destroyed.
func TestShredSurvivesARestoredBackup(t *testing.T) {
	st := hsmtest.NewToken(t)
	ctx := context.Background()
	dir := t.TempDir()
	log := &fakeLog{}
	open := func() (*hsm.Vault, func()) {
		tok, closeTok, err := hsm.Open(ctx, hsmtest.Config(st))
		require.NoError(t, err)
		v, closeV, err := hsm.NewVault(ctx, tok, hsm.VaultConfig{Dir: dir, Recorder: log})
		require.NoError(t, err)
		return v, func() { closeV(); closeTok() }
	}
	v, closeAll := open()
	ct, err := v.Seal(ctx, hsm.ClassTaxID, "subj-r", []byte("tax id"), nil)
	require.NoError(t, err)
	closeAll()

	backup := t.TempDir()
	copyTree(t, st.TokenDir, filepath.Join(backup, "tokens"))
	copyTree(t, filepath.Join(dir, hsm.KeyringFile), filepath.Join(backup, hsm.KeyringFile))

	v, closeAll = open()
	log.setFail(errors.New("audit log down"))
	require.Error(t, v.Shred(ctx, "subj-r"), "an unrecorded shred is refused")
	_, err = v.Open(ctx, hsm.ClassTaxID, ct, nil)
	require.NoError(t, err, "and nothing was destroyed")
	log.setFail(nil)
	require.NoError(t, v.Shred(ctx, "subj-r"))
	_, err = v.Open(ctx, hsm.ClassTaxID, ct, nil)
	require.ErrorIs(t, err, hsm.ErrShredded)
	closeAll()
	var shredded []string
	for _, r := range log.records() {
		require.Equal(t, hsm.RecordVaultShredded, r.typ)
		var body hsm.ShredRecord
		require.NoError(t, json.Unmarshal(r.body, &body))
		shredded = append(shredded, body.Subject)
	}
	require.Equal(t, []string{"subj-r"}, shredded)

	// Restore the backup: the shred is undone.
	require.NoError(t, os.RemoveAll(st.TokenDir))
	copyTree(t, filepath.Join(backup, "tokens"), st.TokenDir)
	copyTree(t, filepath.Join(backup, hsm.KeyringFile), filepath.Join(dir, hsm.KeyringFile))
	v, closeAll = open()
	pt, err := v.Open(ctx, hsm.ClassTaxID, ct, nil)
	require.NoError(t, err, "a restored backup undoes a shred")
	require.Equal(t, "tax id", string(pt))
	n, err := v.ApplyShreds(ctx, shredded)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = v.Open(ctx, hsm.ClassTaxID, ct, nil)
	require.ErrorIs(t, err, hsm.ErrShredded, "re-applied")
	closeAll()

	// And through the config at start, after another restore.
	require.NoError(t, os.RemoveAll(st.TokenDir))
	copyTree(t, filepath.Join(backup, "tokens"), st.TokenDir)
	copyTree(t, filepath.Join(backup, hsm.KeyringFile), filepath.Join(dir, hsm.KeyringFile))
	tok, closeTok, err := hsm.Open(ctx, hsmtest.Config(st))
	require.NoError(t, err)
	defer closeTok()
	v, closeV, err := hsm.NewVault(ctx, tok, hsm.VaultConfig{Dir: dir, Recorder: log, Shredded: shredded})
	require.NoError(t, err)
	defer closeV()
	_, err = v.Open(ctx, hsm.ClassTaxID, ct, nil)
	require.ErrorIs(t, err, hsm.ErrShredded)

	_, _, err = hsm.NewVault(ctx, tok, hsm.VaultConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	nv, closeNV, err := hsm.NewVault(ctx, tok, hsm.VaultConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	defer closeNV()
	require.ErrorIs(t, nv.Shred(ctx, "x"), hsm.ErrNoRecorder)
}

// copyTree copies a file or a folder tree.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		require.NoError(t, os.MkdirAll(filepath.Dir(out), 0o700))
		return os.WriteFile(out, b, 0o600)
	}))
}
