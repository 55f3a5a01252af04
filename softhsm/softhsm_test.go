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
	pins := filepath.Join(t.TempDir(), "credentials")

	_, err = softhsm.Find(ctx, softhsm.Config{Dir: dir, PINDir: pins})
	require.ErrorIs(t, err, softhsm.ErrTokenNotFound)

	tok, err := softhsm.Ensure(ctx, softhsm.Config{Dir: dir, PINDir: pins})
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
	again, err := softhsm.Ensure(ctx, softhsm.Config{Dir: dir, PINDir: pins})
	require.NoError(t, err)
	assert.Equal(t, tok, again)
	pin2, err := softhsm.ReadPIN(tok.UserPINFile)
	require.NoError(t, err)
	assert.Equal(t, pin, pin2)
	_, err = softhsm.Ensure(ctx, softhsm.Config{Dir: dir, PINDir: pins, Label: "second"})
	require.NoError(t, err)
	labels, err := tok.Labels(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"tradecore", "second"}, labels)

	found, err := softhsm.Find(ctx, softhsm.Config{Dir: dir, PINDir: pins, Label: "second"})
	require.NoError(t, err)
	assert.Equal(t, "second", found.Label)
	_, err = softhsm.Find(ctx, softhsm.Config{Dir: dir, PINDir: pins, Label: "third"})
	require.ErrorIs(t, err, softhsm.ErrTokenNotFound)
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	_, err := softhsm.Ensure(ctx, softhsm.Config{})
	require.ErrorContains(t, err, "Config.Dir")
	_, err = softhsm.Ensure(ctx, softhsm.Config{Dir: t.TempDir(), PINDir: t.TempDir(), Module: "/nonexistent.so"})
	require.ErrorIs(t, err, softhsm.ErrModuleNotFound)
	_, err = softhsm.Ensure(ctx, softhsm.Config{Dir: t.TempDir(), PINDir: t.TempDir(), Label: "a-label-that-is-longer-than-32-bytes"})
	require.ErrorContains(t, err, "Config.Label")
	_, err = softhsm.Ensure(ctx, softhsm.Config{Dir: t.TempDir()})
	require.ErrorContains(t, err, "Config.PINDir")
}

// TestPINsStayOutOfTheDataDir: the PIN files are never inside the token
// folder, a PIN folder inside it is refused, and a folder that still holds
// PINs from an older version is refused with the move to make; a copy of
// the token folder alone opens nothing.
func TestPINsStayOutOfTheDataDir(t *testing.T) {
	_, err := softhsm.FindModule()
	testenv.Need(t, err == nil, "SoftHSM2 not installed: apt-get install softhsm2")
	t.Setenv(softhsm.EnvConf, os.Getenv(softhsm.EnvConf))
	ctx := context.Background()
	data := t.TempDir()
	dir := filepath.Join(data, "softhsm")
	_, err = softhsm.Ensure(ctx, softhsm.Config{Dir: dir, PINDir: filepath.Join(data, "softhsm", "creds")})
	require.ErrorIs(t, err, softhsm.ErrPINInDataDir)
	_, err = softhsm.Ensure(ctx, softhsm.Config{Dir: dir, PINDir: dir})
	require.ErrorIs(t, err, softhsm.ErrPINInDataDir)

	pins := t.TempDir()
	tok, err := softhsm.Ensure(ctx, softhsm.Config{Dir: dir, PINDir: pins})
	require.NoError(t, err)
	require.NoError(t, filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			pin, _ := softhsm.ReadPIN(tok.UserPINFile)
			assert.NotContains(t, string(b), pin, "PIN inside the data dir: %s", p)
		}
		return nil
	}))
	assert.Equal(t, filepath.Join(pins, softhsm.UserPINFile), tok.UserPINFile)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "user.pin"), []byte("0000\n"), 0o600))
	_, err = softhsm.Find(ctx, softhsm.Config{Dir: dir, PINDir: pins})
	require.ErrorIs(t, err, softhsm.ErrPINInDataDir)
	assert.Contains(t, err.Error(), filepath.Join(pins, softhsm.UserPINFile), "names where to move it")
}
