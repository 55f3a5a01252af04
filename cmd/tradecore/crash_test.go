package main

import (
	"bufio"
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
  "instruments": [
    {"symbol": "AAPL", "id": 1, "tick_size": "0.01", "lot_size": "1", "price_band": {"low": "100.00", "high": "400.00"}},
    {"symbol": "MSFT", "id": 2, "tick_size": "0.01", "lot_size": "1", "price_band": {"low": "200.00", "high": "800.00"}}
  ],
  "netseg": {"required": false}
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

	// A new serve recovers and trades on.
	again := exec.Command(bin, "serve", "--data-dir", data, "--config", cfgPath, "--rate", "5000", "--duration", "500ms", "--report", "100ms")
	again.Env = env
	out, err := again.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "recovered "+strconv.FormatUint(last, 10)+" commands from the journal")
	require.Regexp(t, `stopped after \d+ commands`, string(out))
}
