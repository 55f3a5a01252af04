package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/core"
)

// crashConfig is a small, unpinned configuration, so the child shares the
// test machine politely.
const crashConfig = `{
  "engine": {"max_orders": 65536, "pin": false, "engine_idle": "backoff", "others_idle": "backoff"},
  "risk": "off",
  "instruments": [
    {"symbol": "AAPL", "id": 1, "tick_size": "0.01", "lot_size": "1", "price_band": {"low": "100.00", "high": "400.00"}},
    {"symbol": "MSFT", "id": 2, "tick_size": "0.01", "lot_size": "1", "price_band": {"low": "200.00", "high": "800.00"}}
  ],
  "netseg": {"required": false},
  "gateway": {"order_entry": "127.0.0.1:0", "market_data": "127.0.0.1:0", "metrics": "-"}
}`

// tradecoreBin returns a path that runs this test binary as `tradecore`
// (TestMain dispatches on the name).
func tradecoreBin(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "tradecore")
	require.NoError(t, os.Symlink(self, bin))
	return bin
}

// TestCrashLosesNothingAcknowledged: a serve process under load is killed
// with SIGKILL. Every command it had acknowledged (answered, which the
// journal's durability gate allows only once durable) is in the journal; the
// journal verifies, torn tail and all; two replays of it agree; and a new
// serve recovers from it and goes on trading.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	needSoftHSM(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "var")
	cfgPath := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(cfgPath, []byte(crashConfig), 0o600))
	bin := tradecoreBin(t)
	env := append(os.Environ(), "TRADECORE_CREDENTIALS_DIR="+filepath.Join(dir, "credentials"))

	child := exec.Command(bin, "serve", "--data-dir", data, "--config", cfgPath, "--rate", "20000", "--report", "50ms")
	child.Env = env
	stdout, err := child.StdoutPipe()
	require.NoError(t, err)
	child.Stderr = os.Stderr
	require.NoError(t, child.Start())
	acked := regexp.MustCompile(`acked to seq (\d+)`)
	first := regexp.MustCompile(`first key ([0-9a-f]+)`)
	var lastAcked uint64
	var pin string
	sc := bufio.NewScanner(stdout)
	reports := 0
	for sc.Scan() && reports < 40 { // 2 s: past the first signed checkpoint (every 1 s)
		if m := first.FindStringSubmatch(sc.Text()); m != nil {
			pin = m[1]
		}
		if m := acked.FindStringSubmatch(sc.Text()); m != nil {
			lastAcked, _ = strconv.ParseUint(m[1], 10, 64)
			reports++
		}
	}
	require.NoError(t, child.Process.Signal(syscall.SIGKILL))
	_ = child.Wait()
	require.NotZero(t, lastAcked, "the child acknowledged nothing before the kill")
	require.NotEmpty(t, pin)

	// Everything acknowledged is in the journal, which verifies.
	adir := filepath.Join(data, "audit")
	man, err := os.ReadFile(filepath.Join(data, "keys", "manifest.json"))
	require.NoError(t, err)
	res, err := audit.VerifyDir(t.Context(), adir, audit.VerifyOptions{Manifest: man, PinnedFirstKey: pin})
	require.NoError(t, err)
	require.NotZero(t, res.Commands)
	file, err := config.Parse([]byte(crashConfig))
	require.NoError(t, err)
	replay := func() ([32]byte, uint64) {
		eng, err := core.New(file.Core(), nil)
		require.NoError(t, err)
		r, err := audit.OpenReader(adir)
		require.NoError(t, err)
		var last uint64
		require.NoError(t, audit.ReadCommands(r, 0, func(_ uint64, c *core.Command) error {
			require.Equal(t, last+1, c.Seq, "the journal's commands are gapless")
			last = c.Seq
			eng.Apply(c)
			return nil
		}))
		return eng.StateHash(), last
	}
	h1, last := replay()
	h2, _ := replay()
	require.Equal(t, h1, h2, "two replays of the journal disagree")
	require.GreaterOrEqual(t, last, lastAcked, "an acknowledged command is missing from the journal")
	// Every acknowledged command's events are there too (each command has
	// at least one: accepted or rejected).
	evSeq := regexp.MustCompile(`^\{"i":\d+,"t":\d+,"type":"event\.[a-z-]+","body":\{"seq":(\d+)`)
	withEvents := map[uint64]bool{}
	r, err := audit.OpenReader(adir)
	require.NoError(t, err)
	require.NoError(t, r.Read(0, 0, func(e *audit.Entry) error {
		if m := evSeq.FindSubmatch(e.Leaf); m != nil {
			n, _ := strconv.ParseUint(string(m[1]), 10, 64)
			withEvents[n] = true
		}
		return nil
	}))
	for seq := uint64(1); seq <= lastAcked; seq++ {
		require.True(t, withEvents[seq], "the events of acknowledged command %d are missing from the journal", seq)
	}

	// A new serve recovers and trades on.
	// Each run lasts long enough for the generated flow's TLS logins on a
	// loaded machine, so it applies commands and its snapshot is a new one.
	again := exec.Command(bin, "serve", "--data-dir", data, "--config", cfgPath, "--rate", "5000", "--duration", "3s", "--report", "100ms")
	again.Env = env
	out, err := again.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "recovered to seq "+strconv.FormatUint(last, 10)+": snapshot at seq 0, then "+strconv.FormatUint(last, 10)+" commands replayed")
	require.Regexp(t, `stopped after [1-9]\d* commands`, string(out))
	// The engine it recovered is the fresh replay's, state hash for state hash.
	require.Contains(t, string(out), fmt.Sprintf(`"state_hash":"%x"`, h1), "the recovered engine differs from a fresh replay")

	// That clean stop wrote a snapshot: the next start loads it and replays
	// nothing before it.
	third := exec.Command(bin, "serve", "--data-dir", data, "--config", cfgPath, "--rate", "5000", "--duration", "3s", "--report", "100ms")
	third.Env = env
	out, err = third.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Regexp(t, `stopped after [1-9]\d* commands`, string(out))
	require.Regexp(t, `recovered to seq (\d+): snapshot at seq \d+, then 0 commands replayed`, string(out))

	// A damaged snapshot is refused and the journal is replayed instead.
	snaps, _ := filepath.Glob(filepath.Join(adir, "snapshots", "seq-*.snap"))
	require.Len(t, snaps, 2, "two clean stops, two snapshots")
	newest := snaps[len(snaps)-1]
	good, err := os.ReadFile(newest)
	require.NoError(t, err)
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	require.NoError(t, os.WriteFile(newest, bad, 0o600))
	run := func() (string, error) {
		c := exec.Command(bin, "serve", "--data-dir", data, "--config", cfgPath, "--rate", "1000", "--duration", "100ms")
		c.Env = env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	o, err := run()
	require.NoError(t, err, "%s", o)
	require.Contains(t, o, "engine snapshot unusable")
	require.Regexp(t, `recovered to seq \d+: snapshot at seq 0, then \d+ commands replayed`, o)

	// A well-formed snapshot that is not the one the log recorded (an older
	// one put in its place) refuses the start.
	snaps, _ = filepath.Glob(filepath.Join(adir, "snapshots", "seq-*.snap"))
	older, err := os.ReadFile(snaps[0])
	require.NoError(t, err)
	newest = snaps[len(snaps)-1]
	require.NoError(t, os.WriteFile(newest, older, 0o600))
	o, err = run()
	require.Error(t, err, "%s", o)
	require.Regexp(t, `not the file the log recorded|missing or not the size`, o)
}

// replayJournal replays every command of the journal in adir into a fresh
// engine from seq 1 and returns its state hash and the last seq.
func replayJournal(t *testing.T, adir string) ([32]byte, uint64) {
	t.Helper()
	file, err := config.Parse([]byte(crashConfig))
	require.NoError(t, err)
	eng, err := core.New(file.Core(), nil)
	require.NoError(t, err)
	r, err := audit.OpenReader(adir)
	require.NoError(t, err)
	var last uint64
	require.NoError(t, audit.ReadCommands(r, 0, func(_ uint64, c *core.Command) error {
		require.Equal(t, last+1, c.Seq, "the journal's commands are gapless")
		last = c.Seq
		eng.Apply(c)
		return nil
	}))
	return eng.StateHash(), last
}

// TestRecoveryFromSnapshotEqualsFullReplay: a clean stop leaves a snapshot;
// the next serve loads it, trades on and is killed with SIGKILL; the start
// after that loads the snapshot and replays only the journal's tail, and
// the engine it gets has the state hash of a replay of the whole journal
// from the first command.
func TestRecoveryFromSnapshotEqualsFullReplay(t *testing.T) {
	needSoftHSM(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "var")
	adir := filepath.Join(data, "audit")
	cfgPath := filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(cfgPath, []byte(crashConfig), 0o600))
	bin := tradecoreBin(t)
	env := append(os.Environ(), "TRADECORE_CREDENTIALS_DIR="+os.Getenv("TRADECORE_CREDENTIALS_DIR"))
	serve := func(args ...string) string {
		c := exec.Command(bin, append([]string{"serve", "--data-dir", data, "--config", cfgPath, "--report", "100ms"}, args...)...)
		c.Env = env
		out, err := c.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	serve("--rate", "5000", "--duration", "500ms")
	snaps, _ := filepath.Glob(filepath.Join(adir, "snapshots", "seq-*.snap"))
	require.Len(t, snaps, 1, "a clean stop writes a snapshot")

	s := startServe(t, bin, data, cfgPath, env)
	for i := 0; i < 10 && s.out.Scan(); i++ { // a second of trading after the snapshot
	}
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGKILL))
	_ = s.cmd.Wait()

	full, last := replayJournal(t, adir)
	out := serve("--rate", "1000", "--duration", "200ms")
	m := regexp.MustCompile(`recovered to seq (\d+): snapshot at seq (\d+), then (\d+) commands replayed`).FindStringSubmatch(out)
	require.NotNil(t, m, "%s", out)
	snapSeq, _ := strconv.ParseUint(m[2], 10, 64)
	tail, _ := strconv.ParseUint(m[3], 10, 64)
	require.Equal(t, strconv.FormatUint(last, 10), m[1])
	require.NotZero(t, snapSeq, "the snapshot was not used")
	require.NotZero(t, tail, "nothing was replayed after the snapshot")
	require.Equal(t, last, snapSeq+tail)
	require.Contains(t, out, fmt.Sprintf(`"state_hash":"%x"`, full), "snapshot + tail gives another state than a full replay")
}
