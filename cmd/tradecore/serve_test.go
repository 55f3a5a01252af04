package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestServeRunsAndStops runs `tradecore serve` in-process on the embedded
// defaults for a short while: it must print trades and a latency report,
// answer every command it generated, and stop cleanly.
func TestServeRunsAndStops(t *testing.T) {
	needSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"serve", "--duration", "700ms", "--rate", "20000", "--report", "200ms", "--data-dir", dir}, &out, &errb)
	require.NoError(t, err, errb.String())
	require.Regexp(t, `(?m)^trade [A-Z]+ +\d+ @ \d+\.\d{2} aggressor=(buy|sell) match=\d+$`, out.String())
	require.Regexp(t, `cmds/s +\d+ trades +due→event p50`, out.String())
	require.Regexp(t, `stopped after \d+ commands: \d+ trades, \d+ open orders, \d+ surveillance alerts`, out.String())
	require.Contains(t, errb.String(), `"msg":"tradecore serving"`)
	require.Contains(t, errb.String(), `"msg":"signing service ready"`)
	require.FileExists(t, filepath.Join(os.Getenv("TRADECORE_CREDENTIALS_DIR"), "hsm-user-pin"), "PINs outside the data dir")
	require.NoFileExists(t, filepath.Join(dir, "softhsm", "user.pin"))
	require.Regexp(t, `(?m)^key manifest: first key [0-9a-f]{32} \(pin it`, out.String())
	require.FileExists(t, filepath.Join(dir, "keys", "manifest.json"))
	st, err := os.Stat(dir)
	require.NoError(t, err)
	require.True(t, st.IsDir())
}

func TestServeUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--rate", "0"},
		{"serve", "--no-such-flag"},
		{"no-such-verb"},
		{},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), args, &out, &errb)
		require.Error(t, err, "%v", args)
		require.ErrorIs(t, err, errUsage, "%v", args)
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", "/nonexistent/tradecore.json"}, &out, &errb)
	require.ErrorIs(t, err, os.ErrNotExist)
}
