package hsm_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/internal/hsmtest"
)

func TestOpenErrors(t *testing.T) {
	st := hsmtest.NewToken(t)
	ctx := context.Background()
	wrongPIN := filepath.Join(t.TempDir(), "wrong.pin")
	require.NoError(t, os.WriteFile(wrongPIN, []byte("000000\n"), 0o600))
	tests := []struct {
		name    string
		mutate  func(*hsm.Config)
		want    error
		wantMsg string
	}{
		{"module missing", func(c *hsm.Config) { c.Module = "/nonexistent/libpkcs11.so" }, hsm.ErrModuleMissing, ""},
		{"token missing", func(c *hsm.Config) { c.TokenLabel = "no-such-token" }, hsm.ErrTokenMissing, ""},
		{"wrong PIN", func(c *hsm.Config) { c.PINFile = wrongPIN }, hsm.ErrWrongPIN, ""},
		{"negative MaxSessions", func(c *hsm.Config) { c.MaxSessions = -1 }, nil, "Config.MaxSessions"},
		{"negative PoolWaitTimeout", func(c *hsm.Config) { c.PoolWaitTimeout = -1 }, nil, "Config.PoolWaitTimeout"},
		{"no PIN", func(c *hsm.Config) { c.PINFile = ""; c.PINEnv = "TRADECORE_TEST_UNSET_PIN" }, nil, "TRADECORE_TEST_UNSET_PIN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := hsmtest.Config(st)
			tc.mutate(&cfg)
			_, _, err := hsm.Open(ctx, cfg)
			require.Error(t, err)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			}
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.NotContains(t, err.Error(), "000000", "no PIN in errors")
		})
	}
	t.Run("PIN from environment", func(t *testing.T) {
		pin, err := os.ReadFile(st.UserPINFile)
		require.NoError(t, err)
		t.Setenv("TRADECORE_TEST_PIN", strings.TrimSpace(string(pin)))
		cfg := hsmtest.Config(st)
		cfg.PINFile, cfg.PINEnv = "", "TRADECORE_TEST_PIN"
		_, closeTok, err := hsm.Open(ctx, cfg)
		require.NoError(t, err)
		require.NoError(t, closeTok())
	})
}

func TestKeysGenerateFindRestart(t *testing.T) {
	st := hsmtest.NewToken(t)
	ctx := context.Background()
	tok, closeTok, err := hsm.Open(ctx, hsmtest.Config(st))
	require.NoError(t, err)
	ids := map[hsm.Algorithm]string{}
	for _, alg := range []hsm.Algorithm{hsm.Ed25519, hsm.ECDSAP256} {
		k, err := tok.GenerateKey(ctx, "key-"+string(alg), alg)
		require.NoError(t, err)
		fp, err := manifest.Fingerprint(k.Public())
		require.NoError(t, err)
		assert.Equal(t, fp, k.ID(), "CKA_ID is the fingerprint")
		assert.Len(t, k.ID(), 32)
		attrs, err := k.Attributes(ctx)
		require.NoError(t, err)
		assert.Equal(t, hsm.KeyAttributes{Token: true, Private: true, Sensitive: true, Extractable: false,
			Modifiable: false, AlwaysSensitive: true, NeverExtractable: true}, attrs)
		ids[alg] = k.ID()
	}
	_, err = tok.GenerateKey(ctx, "key-ed25519", hsm.Ed25519)
	require.ErrorIs(t, err, hsm.ErrDuplicateLabel)
	_, err = tok.GenerateKey(ctx, "key-rsa", "rsa-3072")
	require.ErrorIs(t, err, hsm.ErrUnsupported)
	require.NoError(t, closeTok())
	_, err = tok.FindKey(ctx, ids[hsm.Ed25519])
	require.ErrorIs(t, err, hsm.ErrClosed)

	// Restart: the keys are found again by id and by label, and sign.
	tok, closeTok, err = hsm.Open(ctx, hsmtest.Config(st))
	require.NoError(t, err)
	defer closeTok()
	got, err := tok.KeyIDs(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{ids[hsm.Ed25519], ids[hsm.ECDSAP256]}, got)
	msg := []byte("checkpoint 42")

	ed, err := tok.FindKey(ctx, ids[hsm.Ed25519])
	require.NoError(t, err)
	assert.Equal(t, "key-ed25519", ed.Label())
	sig, err := ed.Sign(nil, msg, crypto.Hash(0))
	require.NoError(t, err)
	assert.Len(t, sig, ed25519.SignatureSize, "Ed25519 signature is raw R‖S")
	assert.True(t, ed25519.Verify(ed.Public().(ed25519.PublicKey), msg, sig))
	_, err = ed.Sign(nil, msg, crypto.SHA512)
	require.ErrorIs(t, err, hsm.ErrUnsupported, "Ed25519ph refused")

	ec, err := tok.FindKeyByLabel(ctx, "key-ecdsa-p256")
	require.NoError(t, err)
	assert.Equal(t, ids[hsm.ECDSAP256], ec.ID())
	d := sha256.Sum256(msg)
	sig, err = ec.Sign(nil, d[:], crypto.SHA256)
	require.NoError(t, err)
	assert.True(t, ecdsa.VerifyASN1(ec.Public().(*ecdsa.PublicKey), d[:], sig), "ECDSA signature is ASN.1 DER")

	_, err = tok.FindKey(ctx, "00112233445566778899aabbccddeeff")
	require.ErrorIs(t, err, hsm.ErrKeyNotFound)
	_, err = tok.FindKey(ctx, "not-hex")
	require.ErrorIs(t, err, hsm.ErrKeyNotFound)
	_, err = tok.FindKeyByLabel(ctx, "nope")
	require.ErrorIs(t, err, hsm.ErrKeyNotFound)

	require.NoError(t, tok.DestroyKey(ctx, ids[hsm.ECDSAP256]))
	_, err = tok.FindKey(ctx, ids[hsm.ECDSAP256])
	require.ErrorIs(t, err, hsm.ErrKeyNotFound)
}

func TestEd25519VerifiesFromExportedKeyAlone(t *testing.T) {
	tok, _ := hsmtest.Open(t)
	ctx := context.Background()
	k, err := tok.GenerateKey(ctx, "export-me", hsm.Ed25519)
	require.NoError(t, err)
	pemText, err := manifest.PublicKeyPEM(k.Public())
	require.NoError(t, err)
	msg := []byte("tree size 7, root abc")
	sig, err := manifest.SignMessage(k, msg)
	require.NoError(t, err)
	// Only the exported PEM from here on.
	pub, alg, err := manifest.ParsePublicKeyPEM(pemText)
	require.NoError(t, err)
	require.Equal(t, manifest.Ed25519, alg)
	assert.True(t, ed25519.Verify(pub.(ed25519.PublicKey), msg, sig))
	assert.False(t, ed25519.Verify(pub.(ed25519.PublicKey), []byte("tree size 8"), sig))
}
