package softhsm_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/internal/testenv"
	"github.com/tradecore/tradecore/softhsm"
)

func TestEnsureFind(t *testing.T) {
	_, err := softhsm.FindModule()
	testenv.Need(t, err == nil, "SoftHSM2 not installed: apt-get install softhsm2")
	t.Setenv(softhsm.EnvConf, os.Getenv(softhsm.EnvConf))
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "softhsm")

	_, err = softhsm.Find(ctx, softhsm.Config{Dir: dir})
	require.ErrorIs(t, err, softhsm.ErrTokenNotFound)

	tok, err := softhsm.Ensure(ctx, softhsm.Config{Dir: dir})
	require.NoError(t, err)
	assert.Equal(t, softhsm.DefaultLabel, tok.Label)
	assert.Equal(t, filepath.Join(dir, "softhsm2.conf"), tok.ConfPath)
	assert.Equal(t, tok.ConfPath, os.Getenv(softhsm.EnvConf))
	for _, p := range []string{tok.UserPINFile, tok.SOPINFile, tok.ConfPath} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), filepath.Base(p))
	}
	pin, err := softhsm.ReadPIN(tok.UserPINFile)
	require.NoError(t, err)
	assert.Len(t, pin, 32)

	// Idempotent: same PIN, same token; a second label shares the folder.
	again, err := softhsm.Ensure(ctx, softhsm.Config{Dir: dir})
	require.NoError(t, err)
	assert.Equal(t, tok, again)
	pin2, err := softhsm.ReadPIN(tok.UserPINFile)
	require.NoError(t, err)
	assert.Equal(t, pin, pin2)
	_, err = softhsm.Ensure(ctx, softhsm.Config{Dir: dir, Label: "second"})
	require.NoError(t, err)
	labels, err := tok.Labels(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"tradecore", "second"}, labels)

	found, err := softhsm.Find(ctx, softhsm.Config{Dir: dir, Label: "second"})
	require.NoError(t, err)
	assert.Equal(t, "second", found.Label)
	_, err = softhsm.Find(ctx, softhsm.Config{Dir: dir, Label: "third"})
	require.ErrorIs(t, err, softhsm.ErrTokenNotFound)
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	_, err := softhsm.Ensure(ctx, softhsm.Config{})
	require.ErrorContains(t, err, "Config.Dir")
	_, err = softhsm.Ensure(ctx, softhsm.Config{Dir: t.TempDir(), Module: "/nonexistent.so"})
	require.ErrorIs(t, err, softhsm.ErrModuleNotFound)
	_, err = softhsm.Ensure(ctx, softhsm.Config{Dir: t.TempDir(), Label: "a-label-that-is-longer-than-32-bytes"})
	require.ErrorContains(t, err, "Config.Label")
}
