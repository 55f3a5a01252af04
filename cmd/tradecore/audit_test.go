package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/internal/audittest"
)

// writeTestLog writes an engine-driven log into dataDir/audit signed by keys.
func writeTestLog(t *testing.T, dataDir string, signer audit.Signer, n int) {
	t.Helper()
	l, cls, err := audit.Open(context.Background(), audit.Config{
		WriterConfig:   audit.WriterConfig{Dir: filepath.Join(dataDir, "audit"), Instruments: []audit.InstrumentScale{{ID: 1, Symbol: "BENCH", Tick: "0.01", Lot: "1"}}},
		Signer:         signer,
		ExternalCommit: true, CheckpointInterval: time.Hour,
	})
	require.NoError(t, err)
	w := l.Writer()
	var evs []core.Event
	eng, err := core.New(bench.EngineConfig(1<<14), func(e []core.Event) { evs = append(evs, e...) })
	require.NoError(t, err)
	t0 := time.Now().UnixNano()
	for i, c := range bench.RandomLimits(3, n, 30) {
		c.Seq, c.Time = uint64(i+1), t0+int64(i)
		_, err := w.AppendCommand(&c)
		require.NoError(t, err)
		evs = evs[:0]
		eng.Apply(&c)
		eng.Flush()
		for j := range evs {
			_, err := w.AppendEvent(&evs[j])
			require.NoError(t, err)
		}
		if i%50 == 49 {
			require.NoError(t, w.Commit())
			_, err := l.Checkpoint(context.Background())
			require.NoError(t, err)
		}
	}
	require.NoError(t, w.Commit())
	require.NoError(t, cls())
}

func TestAuditCLI(t *testing.T) {
	data := t.TempDir()
	keys := audittest.New("tradecore", time.Now().Add(-time.Hour))
	writeTestLog(t, data, keys.Signer(), 300)
	dd := "--data-dir=" + data

	acct := strconv.FormatUint(uint64(bench.RandomLimits(3, 1, 30)[0].Account), 10)
	r := runCLI(t, "audit", "query", dd, "--account", acct)
	require.Equal(t, 0, r.code, r.stderr)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.NotEmpty(t, lines)
	for _, l := range lines {
		h, err := audit.ParseLeaf([]byte(l))
		require.NoError(t, err, l)
		assert.Regexp(t, `"(contra_)?acct":`+acct+`[,}]`, string(h.Body))
	}
	r = runCLI(t, "audit", "query", dd, "--symbol", "BENCH", "--type", "event.trade", "--limit", "3", "--format", "text")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Len(t, strings.Split(strings.TrimSpace(r.stdout), "\n"), 3)
	assert.Contains(t, r.stderr, "stopped at --limit 3")

	// export jsonl: each line exactly a leaf; together they verify as the log.
	r = runCLI(t, "audit", "export", dd, "--format", "jsonl")
	require.Equal(t, 0, r.code, r.stderr)
	seg, _ := os.ReadFile(filepath.Join(data, "audit", "segments", "00000000000000000000.seg"))
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n")[:20] {
		assert.True(t, bytes.Contains(seg, []byte(l)), "jsonl line is a stored leaf")
	}
	r = runCLI(t, "audit", "export", dd, "--format", "csv", "--from", time.Now().Add(-time.Hour).Format(time.RFC3339))
	require.Equal(t, 0, r.code, r.stderr)
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, "index", rows[0][0])
	assert.Greater(t, len(rows), 300)
	bundle := filepath.Join(t.TempDir(), "b.jsonl")
	r = runCLI(t, "audit", "export", dd, "--format", "bundle", "--out", bundle)
	require.Equal(t, 0, r.code, r.stderr)
	f, _ := os.Open(bundle)
	_, err = audit.VerifyBundle(context.Background(), f, audit.VerifyOptions{Manifest: keys.JSON(), PinnedFirstKey: keys.FirstID()})
	f.Close()
	require.NoError(t, err)

	r = runCLI(t, "audit", "prove", dd, "--index", "42")
	require.Equal(t, 0, r.code, r.stderr)
	v, _ := manifest.Verify(keys.JSON(), keys.FirstID())
	p, _, err := audit.VerifyProof([]byte(r.stdout), v, "")
	require.NoError(t, err)
	assert.EqualValues(t, 42, p.Index)

	r = runCLI(t, "audit", "index", dd)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "indexed")

	for name, tc := range map[string]struct {
		args []string
		code int
		text string
	}{
		"no command":   {[]string{"audit"}, 2, "usage: tradecore audit"},
		"unknown":      {[]string{"audit", "frobnicate"}, 2, `unknown audit command "frobnicate"`},
		"no filter":    {[]string{"audit", "query", dd}, 2, "give at least one of"},
		"bad time":     {[]string{"audit", "query", dd, "--from", "yesterday"}, 2, "--from \"yesterday\""},
		"bad format":   {[]string{"audit", "export", dd, "--format", "xml"}, 2, "use jsonl, csv or bundle"},
		"no index":     {[]string{"audit", "prove", dd}, 2, "--index N is required"},
		"beyond":       {[]string{"audit", "prove", dd, "--index", "99999999"}, 1, "no signed checkpoint covers entry 99999999"},
		"no log":       {[]string{"audit", "query", "--data-dir", t.TempDir(), "--account", "1"}, 1, "no audit log in"},
		"bad symbol":   {[]string{"audit", "query", dd, "--symbol", "NOPE"}, 1, `no instrument "NOPE"`},
		"bad day":      {[]string{"audit", "report", dd, "--day", "monday"}, 2, "YYYY-MM-DD"},
		"both inst":    {[]string{"audit", "query", dd, "--symbol", "BENCH", "--instrument", "1"}, 2, "not both"},
		"extra arg":    {[]string{"audit", "index", dd, "extra"}, 2, "unexpected argument"},
		"no checkpnt":  {[]string{"audit", "prove", dd, "--index", "1", "--size", "7"}, 1, "no stored checkpoint has tree size 7"},
		"to before fr": {[]string{"audit", "export", dd, "--from", "2026-12-02", "--to", "2026-12-01"}, 2, "--to is before --from"},
	} {
		r := runCLI(t, tc.args...)
		assert.Equal(t, tc.code, r.code, "%s: %v", name, r.err)
		assert.Contains(t, r.stderr+errText(r.err), tc.text, name)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestAuditReportSignedInHSM signs the daily report with the real SoftHSM
// signing service and checks it with the offline verifier's library.
func TestAuditReportSignedInHSM(t *testing.T) {
	needSoftHSM(t)
	data := t.TempDir()
	r := runCLI(t, "keys", "init", "--data-dir", data)
	require.Equal(t, 0, r.code, r.stderr)
	mj, err := os.ReadFile(filepath.Join(data, "keys", "manifest.json"))
	require.NoError(t, err)
	m, err := manifest.Parse(mj)
	require.NoError(t, err)
	pin := m.Entries[0].Key.ID
	// Sign the log's checkpoints with the same HSM key (through the signer
	// service built by the report command's own path).
	keys := signerFromCLI(t, data)
	writeTestLog(t, data, keys, 120)
	day := time.Now().UTC().Format(time.DateOnly)
	r = runCLI(t, "audit", "report", "--data-dir", data, "--day", day, "--format", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var out struct {
		File   string            `json:"file"`
		Report audit.DailyReport `json:"report"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	assert.EqualValues(t, 120, out.Report.Orders)
	note, err := os.ReadFile(out.File)
	require.NoError(t, err)
	v, err := manifest.Verify(mj, pin)
	require.NoError(t, err)
	got, _, err := audit.VerifyReport(note, v)
	require.NoError(t, err)
	assert.Equal(t, day, got.Day)
	_, err = audit.VerifyDir(context.Background(), filepath.Join(data, "audit"), audit.VerifyOptions{Manifest: mj, PinnedFirstKey: pin, Checkpoints: [][]byte{[]byte(got.Checkpoint)}})
	require.NoError(t, err)
}
