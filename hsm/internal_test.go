package hsm

import (
	"context"
	"crypto"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/internal/testenv"
	"github.com/tradecore/tradecore/softhsm"
)

// TestPoolExhausted holds every session permit and checks that signing gives
// up after PoolWaitTimeout with ErrPoolExhausted, then works once one frees.
func TestPoolExhausted(t *testing.T) {
	_, err := softhsm.FindModule()
	testenv.Need(t, err == nil, "SoftHSM2 (libsofthsm2.so) not installed: apt-get install softhsm2")
	dir := t.TempDir()
	// A separate folder: this test binary has no other token open.
	st, err := softhsm.Ensure(context.Background(), softhsm.Config{Dir: dir, PINDir: t.TempDir(), Label: "pool"})
	require.NoError(t, err)
	ctx := context.Background()
	tok, closeTok, err := Open(ctx, Config{Module: st.Module, TokenLabel: st.Label, PINFile: st.UserPINFile,
		MaxSessions: 2, PoolWaitTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	defer closeTok()
	for _, alg := range []Algorithm{Ed25519, ECDSAP256} {
		k, err := tok.GenerateKey(ctx, "pool-"+string(alg), alg)
		require.NoError(t, err)
		require.NoError(t, tok.acquire(ctx))
		require.NoError(t, tok.acquire(ctx))
		msg := make([]byte, 32)
		start := time.Now()
		_, err = k.Sign(nil, msg, crypto.Hash(0))
		require.ErrorIs(t, err, ErrPoolExhausted)
		require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
		tok.release()
		opts := crypto.SignerOpts(crypto.Hash(0))
		if alg == ECDSAP256 {
			opts = crypto.SHA256
		}
		_, err = k.Sign(nil, msg, opts)
		require.NoError(t, err)
		tok.release()
	}
}
