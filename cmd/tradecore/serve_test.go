package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/client"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/proto"
)

// TestServeRunsAndStops runs `tradecore serve` in-process on the embedded
// defaults for a short while: it must print trades and a latency report,
// answer every command it generated, and stop cleanly.
func TestServeRunsAndStops(t *testing.T) {
	needSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	var out, errb bytes.Buffer
	err := run(t.Context(), []string{"serve", "--duration", "1500ms", "--rate", "20000", "--report", "200ms", "--data-dir", dir,
		"--order-entry", "127.0.0.1:0", "--market-data", "127.0.0.1:0", "--metrics", "-"}, &out, &errb)
	require.NoError(t, err, errb.String())
	require.Regexp(t, `(?m)^trade [A-Z]+ +\d+ @ \d+\.\d{2} aggressor=(buy|sell) match=\d+$`, out.String())
	require.Regexp(t, `cmds/s +\d+ trades +recv→event p50`, out.String())
	require.Regexp(t, `order entry on 127\.0\.0\.1:\d+, market data on 127\.0\.0\.1:\d+ \(TLS 1\.3, pin [0-9a-f]{64}\)`, out.String())
	require.Regexp(t, `generated flow: [1-9]\d* orders sent, [1-9]\d* accepted, 0 send errors`, out.String())
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
		{"serve", "--rate", "-1"},
		{"serve", "--flow-sessions", "0"},
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
		done <- run(t.Context(), []string{"serve", "--duration", "2s", "--rate", "1000", "--data-dir", dir, "--order-entry", "127.0.0.1:0", "--market-data", "127.0.0.1:0", "--metrics", "-"}, &out, &errb)
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

// TestServeGateway runs serve with a demo key and, while it runs, trades
// through its order-entry port over TLS with the key file (pinned), reads
// the market data, scrapes the metrics; then a stop (SIGTERM's context)
// logs the session out cleanly and the logins are in the audit log.
func TestServeGateway(t *testing.T) {
	needSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	keyFile := filepath.Join(dir, "demo-key.json")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data-dir", dir, "--demo-key", keyFile, "--order-entry", "127.0.0.1:0",
			"--market-data", "127.0.0.1:0", "--metrics", "127.0.0.1:0"}, &out, &errb)
	}()
	var kf client.KeyFile
	var secret []byte
	require.Eventually(t, func() bool {
		var err error
		kf, secret, err = client.LoadKeyFile(keyFile)
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "serve writes the demo key: %s", errb.String())
	fi, err := os.Stat(keyFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Len(t, kf.PinSHA256, 64)

	c, err := client.Dial(ctx, client.Config{Addr: kf.OrderEntry, KeyID: kf.KeyID, Secret: secret, PinSHA256: kf.PinSHA256})
	require.NoError(t, err)
	md, err := client.Dial(ctx, client.Config{Addr: kf.MarketData, KeyID: kf.KeyID, Secret: secret, PinSHA256: kf.PinSHA256, Snapshot: true})
	require.NoError(t, err)
	require.NoError(t, c.NewOrder(&proto.NewOrder{ClOrdID: c.NewRef(), Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 24000, Qty: 5}))
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	m, err := c.Recv(rctx)
	require.NoError(t, err)
	require.IsType(t, &proto.Accepted{}, m, "%#v", m)
	var book proto.Book
	for book.Seq == 0 || len(book.Orders) == 0 {
		m, err := md.Recv(rctx)
		require.NoError(t, err)
		require.NoError(t, book.Apply(m.AppendFrame(nil)))
	}
	require.Equal(t, []proto.Level{{Price: 24000, Qty: 5, Orders: 1}}, book.Levels(1, core.Buy))

	addr := regexp.MustCompile(`metrics on (http://\S+)`).FindStringSubmatch(out.String())
	require.NotNil(t, addr, out.String())
	resp, err := http.Get(addr[1])
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(body), `tradecore_gateway_sessions{port="order-entry"} 1`)
	require.Contains(t, string(body), `tradecore_gateway_ack_seconds_count`)
	require.Contains(t, string(body), `tradecore_ring_depth{ring="inbound"}`)

	cancel() // what SIGTERM does
	_, err = c.Recv(context.Background())
	var lo *client.LogoutError
	require.ErrorAs(t, err, &lo)
	require.Equal(t, proto.ReasonShutdown, lo.Reason)
	require.Equal(t, uint64(2), lo.NextSeq)
	require.NoError(t, <-done, errb.String())

	r, err := audit.OpenReader(filepath.Join(dir, "audit"))
	require.NoError(t, err)
	types := map[string]int{}
	require.NoError(t, r.Read(0, 0, func(e *audit.Entry) error { types[e.Type]++; return nil }))
	require.Equal(t, 2, types["gateway.login"], "both logins recorded")
	require.GreaterOrEqual(t, types["apikey.created"], 1, "the demo key's creation recorded")
	require.GreaterOrEqual(t, types["gateway.session_closed"], 2)
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
