// Package gwtest gives the gateway's tests a data vault on a fresh SoftHSM2
// token (one SoftHSM folder per test binary: a process loads the module
// once).
package gwtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/internal/testenv"
	"github.com/tradecore/tradecore/softhsm"
)

var (
	dirOnce sync.Once
	dir     string
	dirErr  error
	seq     atomic.Int64
)

// Main runs the package's tests, then removes the SoftHSM folder.
func Main(m *testing.M) {
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// Vault returns a data vault on a fresh token, closed at the end of t. It
// skips t (fails it when the environment is required) without SoftHSM2.
func Vault(t testing.TB) *hsm.Vault {
	t.Helper()
	_, err := softhsm.FindModule()
	testenv.Need(t, err == nil, "SoftHSM2 (libsofthsm2.so) not installed: apt-get install softhsm2")
	dirOnce.Do(func() { dir, dirErr = os.MkdirTemp("", "tradecore-gw-softhsm-") })
	require.NoError(t, dirErr)
	label := fmt.Sprintf("gw-%d-%d", os.Getpid(), seq.Add(1))
	st, err := softhsm.Ensure(context.Background(), softhsm.Config{Dir: filepath.Join(dir, "softhsm"), PINDir: filepath.Join(dir, "credentials"), Label: label})
	require.NoError(t, err)
	tok, closeTok, err := hsm.Open(context.Background(), hsm.Config{Module: st.Module, TokenLabel: st.Label, PINFile: st.UserPINFile})
	require.NoError(t, err)
	v, closeV, err := hsm.NewVault(context.Background(), tok, hsm.VaultConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, closeV())
		require.NoError(t, closeTok())
	})
	return v
}
