package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/netseg"
)

// serveChild is a `tradecore serve` process of a test.
type serveChild struct {
	cmd    *exec.Cmd
	out    *bufio.Scanner
	stderr *syncBuf
	pin    string
	done   chan struct{}
}

// startServe starts serve on data with the crash test's small configuration
// and waits until it has acknowledged commands.
func startServe(t *testing.T, bin, data, cfgPath string, env []string, args ...string) *serveChild {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--data-dir", data, "--config", cfgPath, "--rate", "2000", "--report", "100ms"}, args...)...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	s := &serveChild{cmd: cmd, out: bufio.NewScanner(stdout), stderr: &syncBuf{}, done: make(chan struct{})}
	cmd.Stderr = io.MultiWriter(os.Stderr, s.stderr)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-s.done })
	first := regexp.MustCompile(`first key ([0-9a-f]+)`)
	for s.out.Scan() {
		if m := first.FindStringSubmatch(s.out.Text()); m != nil {
			s.pin = m[1]
		}
		if strings.Contains(s.out.Text(), "acked to seq") {
			break
		}
	}
	require.NotEmpty(t, s.pin, "serve printed no first key")
	go func() { defer close(s.done); _, _ = io.Copy(io.Discard, stdout) }()
	return s
}

// stop interrupts serve and waits for its clean stop.
func (s *serveChild) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGINT))
	<-s.done
	require.NoError(t, s.cmd.Wait())
}

// TestServeRecordsKeyChanges: while `tradecore serve` runs, other processes
// rotate and revoke the signing key with `tradecore keys`. Every manifest
// entry ends up as a keys.* record of the daemon's audit log, in order, and
// the log verifies against the newest manifest with nothing unrecorded. A
// revocation made while the daemon is down is recorded at its next start,
// before any checkpoint commits to a tree without it.
func TestServeRecordsKeyChanges(t *testing.T) {
	needSoftHSM(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "var")
	cfgPath := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(cfgPath, []byte(crashConfig), 0o600))
	bin := tradecoreBin(t)
	env := append(os.Environ(), "TRADECORE_CREDENTIALS_DIR="+os.Getenv("TRADECORE_CREDENTIALS_DIR"))
	keys := func(args ...string) string {
		t.Helper()
		c := exec.Command(bin, append(args, "--data-dir", data)...)
		c.Env = env
		out, err := c.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	active := func() string {
		m, err := os.ReadFile(filepath.Join(data, "keys", "manifest.json"))
		require.NoError(t, err)
		v, err := manifest.Verify(m, "")
		if err != nil { // not pinned: read the chain against its own root
			p, perr := manifest.Parse(m)
			require.NoError(t, perr)
			v, err = manifest.Verify(m, p.Entries[0].Key.ID)
		}
		require.NoError(t, err)
		return v.Active().ID
	}

	s := startServe(t, bin, data, cfgPath, env)
	keys("keys", "rotate")
	keys("keys", "revoke", active(), "--reason", "stolen laptop")
	time.Sleep(2500 * time.Millisecond) // the service's refresh interval is 1 s
	s.stop(t)

	// While the daemon is down: a revocation, recorded at the next start.
	keys("keys", "revoke", active(), "--reason", "lost token")
	s = startServe(t, bin, data, cfgPath, env)
	time.Sleep(1500 * time.Millisecond) // past a checkpoint interval
	s.stop(t)

	man, err := os.ReadFile(filepath.Join(data, "keys", "manifest.json"))
	require.NoError(t, err)
	v, err := manifest.Verify(man, s.pin)
	require.NoError(t, err)
	n := len(v.Manifest.Entries)
	require.GreaterOrEqual(t, n, 7, "init, rotate, destroy, revoke, destroy, revoke, destroy")
	res, err := audit.VerifyDir(t.Context(), filepath.Join(data, "audit"), audit.VerifyOptions{Manifest: man, PinnedFirstKey: s.pin})
	require.NoError(t, err)
	assert.Empty(t, res.UnrecordedKeyEntries, "manifest entries missing from the audit log")
	assert.GreaterOrEqual(t, res.KeyRecords, uint64(n))

	// The records are the manifest's entries, in order.
	r, err := audit.OpenReader(filepath.Join(data, "audit"))
	require.NoError(t, err)
	var seqs []uint64
	require.NoError(t, r.Read(0, 0, func(e *audit.Entry) error {
		if !strings.HasPrefix(e.Type, "keys.") {
			return nil
		}
		h, err := audit.ParseLeaf(e.Leaf)
		require.NoError(t, err)
		var b struct {
			Seq       uint64 `json:"seq"`
			EntryHash string `json:"entry_hash"`
			Reason    string `json:"reason"`
		}
		require.NoError(t, json.Unmarshal(h.Body, &b))
		require.Equal(t, v.EntryHash(int(b.Seq)), b.EntryHash)
		if len(seqs) == 0 || b.Seq > seqs[len(seqs)-1] {
			seqs = append(seqs, b.Seq)
		}
		return nil
	}))
	require.Len(t, seqs, n)
	for i, s := range seqs {
		require.Equal(t, uint64(i), s)
	}
}

// TestServeRecordsNetsegChanges: `tradecore netseg apply` and `detach`, run
// while serve holds the audit log, queue their records in the log's inbox;
// the daemon copies them into the log, and the log verifies. Between the
// two, a process in the segment is refused a connect, and serve's metrics
// endpoint counts the denial.
func TestServeRecordsNetsegChanges(t *testing.T) {
	needSoftHSM(t)
	pin, base := netsegEnv(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "var")
	cfgPath := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(cfgPath, []byte(crashConfig), 0o600))
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(
		"version: 1\nsegments:\n  - name: pay\n    cgroup: "+base+"/pay\n    allow: [{cidr: 127.0.0.2}]\n"), 0o600))
	bin := tradecoreBin(t)
	env := append(os.Environ(), "TRADECORE_CREDENTIALS_DIR="+os.Getenv("TRADECORE_CREDENTIALS_DIR"),
		"TRADECORE_NETSEG_PIN_PATH="+strings.TrimPrefix(pin, "--pin-path="))
	netsegCmd := func(args ...string) string {
		t.Helper()
		c := exec.Command(bin, append([]string{"netseg"}, append(args, pin, "--data-dir", data)...)...)
		c.Env = env
		out, err := c.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}

	s := startServe(t, bin, data, cfgPath, env, "--metrics", "127.0.0.1:0")
	assert.Contains(t, netsegCmd("apply", "-f", policy), "queued in")

	// A process born in the segment is refused 127.0.0.3 (EPERM).
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	require.NoError(t, err)
	defer ln.Close()
	mount, err := netseg.CgroupMount()
	require.NoError(t, err)
	cg, err := os.Open(filepath.Join(mount, base, "pay"))
	require.NoError(t, err)
	defer cg.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	c := exec.Command("bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.3/%d", port))
	c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	out, err := c.CombinedOutput()
	require.Error(t, err, "a connect the policy denies succeeded")
	assert.Contains(t, string(out), "Operation not permitted")
	url := regexp.MustCompile(`"url":"(http://[^"]+)"`).FindStringSubmatch(s.stderr.String())
	require.NotNil(t, url, "serve logged no metrics url")
	resp, err := http.Get(url[1])
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Contains(t, string(body), "tradecore_netseg_enforced 1")
	assert.Regexp(t, `tradecore_netseg_denied_total\{hook="connect4",segment="pay"\} [1-9]`, string(body))

	time.Sleep(1500 * time.Millisecond)
	netsegCmd("detach")
	time.Sleep(1500 * time.Millisecond)
	s.stop(t)

	adir := filepath.Join(data, "audit")
	r, err := audit.OpenReader(adir)
	require.NoError(t, err)
	var got []string
	require.NoError(t, r.Read(0, 0, func(e *audit.Entry) error {
		if !strings.HasPrefix(e.Type, "netseg.") {
			return nil
		}
		h, err := audit.ParseLeaf(e.Leaf)
		require.NoError(t, err)
		var b audit.InboxBody
		if json.Unmarshal(h.Body, &b) == nil && b.InboxID != "" {
			got = append(got, e.Type)
		}
		return nil
	}))
	assert.Equal(t, []string{"netseg.policy.applied", "netseg.policy.detached"}, got)
	man, err := os.ReadFile(filepath.Join(data, "keys", "manifest.json"))
	require.NoError(t, err)
	_, err = audit.VerifyDir(t.Context(), adir, audit.VerifyOptions{Manifest: man, PinnedFirstKey: s.pin})
	require.NoError(t, err)
}

// TestServeReappliesShreds: a subject is crypto-shredded (the shred recorded
// through the audit inbox, as a process without the log does), then a
// backup of the token and the data-key store from before the shred is
// restored, which brings the subject's data back. The next serve re-applies
// the log's shreds at start: the data is gone again.
func TestServeReappliesShreds(t *testing.T) {
	needSoftHSM(t)
	ctx := t.Context()
	data := filepath.Join(t.TempDir(), "var")
	serve := func() string {
		t.Helper()
		var out, errb bytes.Buffer
		err := run(ctx, []string{"serve", "--duration", "300ms", "--rate", "1000", "--data-dir", data}, &out, &errb)
		require.NoError(t, err, errb.String())
		return errb.String()
	}
	serve()
	sel := tokenSelection{DataDir: data, Token: hsm.DefaultTokenLabel}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	vault := func() (*hsm.Vault, func()) {
		tok, closeTok, err := sel.open(ctx, quiet, false)
		require.NoError(t, err)
		v, closeV, err := hsm.NewVault(ctx, tok, hsm.VaultConfig{Dir: sel.keysDir(), Recorder: newInboxRecorder(data)})
		require.NoError(t, err)
		return v, func() { closeV(); closeTok() }
	}
	v, closeV := vault()
	ct, err := v.Seal(ctx, hsm.ClassTaxID, "subj-7", []byte("a tax id"), nil)
	require.NoError(t, err)
	closeV()
	backup := t.TempDir()
	require.NoError(t, os.CopyFS(filepath.Join(backup, "tokens"), os.DirFS(filepath.Join(data, "softhsm", "tokens"))))
	keyring, err := os.ReadFile(filepath.Join(sel.keysDir(), hsm.KeyringFile))
	require.NoError(t, err)

	v, closeV = vault()
	require.NoError(t, v.Shred(ctx, "subj-7"))
	_, err = v.Open(ctx, hsm.ClassTaxID, ct, nil)
	require.ErrorIs(t, err, hsm.ErrShredded)
	closeV()

	restore := func() {
		require.NoError(t, os.RemoveAll(filepath.Join(data, "softhsm", "tokens")))
		require.NoError(t, os.CopyFS(filepath.Join(data, "softhsm", "tokens"), os.DirFS(filepath.Join(backup, "tokens"))))
		require.NoError(t, os.WriteFile(filepath.Join(sel.keysDir(), hsm.KeyringFile), keyring, 0o600))
	}
	restore()
	v, closeV = vault()
	_, err = v.Open(ctx, hsm.ClassTaxID, ct, nil)
	require.NoError(t, err, "the restored backup undid the shred")
	closeV()

	// serve ingests the shred queued in the inbox into the log and
	// re-applies it before it trades.
	assert.Contains(t, serve(), "crypto-shreds of the audit log re-applied")
	v, closeV = vault()
	_, err = v.Open(ctx, hsm.ClassTaxID, ct, nil)
	require.ErrorIs(t, err, hsm.ErrShredded, "serve did not re-apply the recorded shred")
	closeV()
	subjects, err := shreddedSubjects(filepath.Join(data, "audit"))
	require.NoError(t, err)
	assert.Equal(t, []string{"subj-7"}, subjects)

	// And again after another restore, from the log alone (the inbox is
	// ingested already).
	restore()
	assert.Contains(t, serve(), "crypto-shreds of the audit log re-applied")
	v, closeV = vault()
	_, err = v.Open(ctx, hsm.ClassTaxID, ct, nil)
	require.ErrorIs(t, err, hsm.ErrShredded)
	closeV()
}

// TestServeStopsWithRecordsQueued: operator commands queue inbox records
// right up to serve's stop. The stop ingests what is queued and returns
// (its last ingestion runs after the journaler stopped, so it must commit
// the records itself), and every record queued is in the log or still in
// the inbox: none is lost, and serve does not hang.
func TestServeStopsWithRecordsQueued(t *testing.T) {
	needSoftHSM(t)
	dir := filepath.Join(t.TempDir(), "var")
	auditDir := filepath.Join(dir, "audit")
	require.NoError(t, os.MkdirAll(auditDir, 0o700))
	done := make(chan error, 1)
	var out, errb syncBuf
	go func() {
		done <- run(t.Context(), []string{"serve", "--duration", "1500ms", "--rate", "1000", "--data-dir", dir}, &out, &errb)
	}()
	var ids []string
	var err error
	deadline := time.After(30 * time.Second)
	for stopped := false; !stopped; {
		select {
		case err = <-done:
			stopped = true
		case <-deadline:
			t.Fatalf("serve did not stop with inbox records queued at its stop:\n%s", errb.String())
		case <-time.After(2 * time.Millisecond):
			id, serr := audit.Submit(auditDir, "test.inbox", struct {
				N int `json:"n"`
			}{len(ids)})
			require.NoError(t, serr)
			ids = append(ids, id)
		}
	}
	require.NoError(t, err, errb.String())
	rd, err := audit.OpenReader(auditDir)
	require.NoError(t, err)
	seen := map[string]bool{}
	require.NoError(t, rd.Read(0, 0, func(e *audit.Entry) error {
		if e.Type == "test.inbox" {
			h, err := audit.ParseLeaf(e.Leaf)
			require.NoError(t, err)
			var b audit.InboxBody
			require.NoError(t, json.Unmarshal(h.Body, &b))
			seen[b.InboxID] = true
		}
		return nil
	}))
	left, err := audit.ReadInbox(auditDir)
	require.NoError(t, err)
	for _, e := range left {
		seen[e.ID] = true
	}
	for _, id := range ids {
		require.True(t, seen[id], "inbox record %s was lost", id)
	}
	t.Logf("%d records queued, %d left in the inbox", len(ids), len(left))
}
