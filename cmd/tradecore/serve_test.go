package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
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

// TestServeIngestsInbox: records that operator commands queue in the audit
// log's inbox — before serve starts and while it runs — end up in the signed
// log, once each; with serve stopped, `tradecore audit ingest` records them.
func TestServeIngestsInbox(t *testing.T) {
	needSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	auditDir := filepath.Join(dir, "audit")
	require.NoError(t, os.MkdirAll(auditDir, 0o700))
	type body struct {
		Step string `json:"step"`
	}
	before, err := audit.Submit(auditDir, "test.inbox", body{"before start"})
	require.NoError(t, err)

	done := make(chan error, 1)
	var out, errb bytes.Buffer
	go func() {
		done <- run(t.Context(), []string{"serve", "--duration", "2s", "--rate", "1000", "--data-dir", dir}, &out, &errb)
	}()
	// Once the log exists, queue one while the daemon holds it.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(auditDir, "segments"))
		return err == nil
	}, 30*time.Second, 10*time.Millisecond)
	during, err := audit.Submit(auditDir, "test.inbox", body{"while serving"})
	require.NoError(t, err)
	r := runCLI(t, "audit", "ingest", "--data-dir", dir)
	require.Equal(t, 1, r.code, "the running daemon holds the log")
	require.ErrorContains(t, r.err, "held by a running tradecore serve")
	require.NoError(t, <-done, errb.String())

	after, err := audit.Submit(auditDir, "test.inbox", body{"after stop"})
	require.NoError(t, err)
	r = runCLI(t, "audit", "ingest", "--data-dir", dir)
	require.Equal(t, 0, r.code, "%v", r.err)
	require.Contains(t, r.stdout, "ingested 1 record(s)")

	rd, err := audit.OpenReader(auditDir)
	require.NoError(t, err)
	var ids []string
	require.NoError(t, rd.Read(0, 0, func(e *audit.Entry) error {
		if e.Type == "test.inbox" {
			h, err := audit.ParseLeaf(e.Leaf)
			require.NoError(t, err)
			var b audit.InboxBody
			require.NoError(t, json.Unmarshal(h.Body, &b))
			ids = append(ids, b.InboxID)
		}
		return nil
	}))
	require.Equal(t, []string{before, during, after}, ids)
	left, err := audit.ReadInbox(auditDir)
	require.NoError(t, err)
	require.Empty(t, left)
}
