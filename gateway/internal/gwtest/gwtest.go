// Package gwtest gives the gateway's tests a data vault on a fresh SoftHSM2
// token (internal/hsmtest: one SoftHSM folder per test binary, a process
// loads the module once).
package gwtest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/internal/hsmtest"
)

// Main runs the package's tests, then removes the SoftHSM folder.
func Main(m *testing.M) { hsmtest.Main(m) }

// Vault returns a data vault on a fresh token, closed at the end of t. It
// skips t (fails it when the environment is required) without SoftHSM2.
func Vault(t testing.TB) *hsm.Vault {
	t.Helper()
	tok, _ := hsmtest.Open(t)
	v, closeV, err := hsm.NewVault(context.Background(), tok, hsm.VaultConfig{Dir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, closeV()) })
	return v
}
