package hsm_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/internal/hsmtest"
)

func TestVaultSealOpenRotateShred(t *testing.T) {
	tok, st := hsmtest.Open(t)
	ctx := context.Background()
	dir := t.TempDir()
	v, closeV, err := hsm.NewVault(ctx, tok, hsm.VaultConfig{Dir: dir})
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
	v, closeV, err = hsm.NewVault(ctx, tok2, hsm.VaultConfig{Dir: dir})
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
	v, closeV, err = hsm.NewVault(ctx, tok2, hsm.VaultConfig{Dir: dir})
	require.NoError(t, err)
	for c, ct := range sealed {
		_, err := v.Open(ctx, c, ct, aad)
		require.ErrorIs(t, err, hsm.ErrShredded, "class %s after reopen", c)
	}
	require.NoError(t, closeV())
	// Restoring a keyring backup taken before the shred does not help: the
	// subject key is gone from the token.
	require.NoError(t, os.WriteFile(filepath.Join(dir, hsm.KeyringFile), backup, 0o600))
	v, closeV, err = hsm.NewVault(ctx, tok2, hsm.VaultConfig{Dir: dir})
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
