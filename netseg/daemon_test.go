package netseg

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func gather(t *testing.T, c prometheus.Collector) map[string][]*dto.Metric {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string][]*dto.Metric{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf.GetMetric()
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestStartDaemon(t *testing.T) {
	env := newKernelEnv(t)
	tg := listen(t)
	pay := env.cgroup(t, "pay")
	env.cgroup(t, "trade")
	ctx := context.Background()
	cfg := Config{PinPath: env.pin, CgroupMount: env.mount, Recorder: env.rec}

	t.Run("required-without-policy-refuses", func(t *testing.T) {
		_, err := StartDaemon(ctx, DaemonConfig{Config: cfg})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "required but not enforced: no policy is in force")
		assert.Contains(t, err.Error(), "netseg.required")
	})
	t.Run("optional-without-policy-reports-off", func(t *testing.T) {
		r, err := StartDaemon(ctx, DaemonConfig{Config: cfg, Optional: true})
		require.NoError(t, err)
		require.Error(t, r.Off)
		m := gather(t, r.Collector)
		require.Len(t, m["tradecore_netseg_enforced"], 1)
		assert.Equal(t, 0.0, m["tradecore_netseg_enforced"][0].GetGauge().GetValue())
	})
	t.Run("invalid-policy-refuses-even-optional", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "bad.yaml")
		require.NoError(t, os.WriteFile(path, []byte("version: 1\nsegments: []\n"), 0o600))
		_, err := StartDaemon(ctx, DaemonConfig{Config: cfg, Optional: true, Policy: path})
		require.ErrorIs(t, err, ErrPolicy)
		assert.Contains(t, err.Error(), "netseg.policy")
	})
	t.Run("required-with-policy-enforces", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "policy.yaml")
		require.NoError(t, os.WriteFile(path, []byte(testPolicy(env, tg, "")), 0o600))
		r, err := StartDaemon(ctx, DaemonConfig{Config: cfg, Policy: path})
		require.NoError(t, err)
		t.Cleanup(func() { _, _ = r.Enforcer.Detach(ctx) })
		assert.NoError(t, r.Off)
		assert.True(t, r.Status.Enforced)
		env.check(t, pay, payExpectations(tg))

		m := gather(t, r.Collector)
		assert.Equal(t, 1.0, m["tradecore_netseg_enforced"][0].GetGauge().GetValue())
		assert.Len(t, m["tradecore_netseg_segment_enforced"], 2)
		var denied float64
		for _, c := range m["tradecore_netseg_denied_total"] {
			if label(c, "segment") == "pay" && label(c, "hook") == "connect4" {
				denied = c.GetCounter().GetValue()
			}
		}
		assert.GreaterOrEqual(t, denied, 2.0) // 127.0.0.3, 127.0.0.4 (and TFO where enabled)
		// A restart with the same file changes nothing and writes no record.
		n := len(env.rec.all())
		r2, err := StartDaemon(ctx, DaemonConfig{Config: cfg, Policy: path})
		require.NoError(t, err)
		assert.True(t, r2.Status.Enforced)
		assert.Len(t, env.rec.all(), n)
	})
}

// TestNoRoot runs the probe and the daemon start as an unprivileged user:
// the error says root is missing.
func TestNoRoot(t *testing.T) {
	env := newKernelEnv(t)
	dir, err := os.MkdirTemp("", "netseg-noroot-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "netseg.test")
	src, err := os.Open(env.helper)
	require.NoError(t, err)
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	src.Close()
	require.NoError(t, err)
	require.NoError(t, dst.Close())

	run := func(mode string, args any) map[string]any {
		a, err := json.Marshal(args)
		require.NoError(t, err)
		cmd := exec.Command(bin, "-test.run=^$")
		cmd.Dir = dir
		cmd.Env = []string{helperEnv + "=" + mode, "NETSEG_TEST_ARGS=" + string(a), "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.Output()
		require.NoError(t, err, "helper %s as nobody", mode)
		var res map[string]any
		require.NoError(t, json.Unmarshal(out, &res))
		return res
	}
	res := run("probe", nil)
	assert.Equal(t, true, res["no_root"], "%v", res)
	assert.Contains(t, res["err"], "run as root")
	assert.True(t, strings.Contains(res["err"].(string), "CAP_BPF"))

	res = run("start", map[string]any{"Optional": false, "Pin": env.pin})
	assert.Contains(t, res["err"], "required but not enforced")
	assert.Contains(t, res["err"], "needs root")
	assert.Equal(t, true, res["no_root"])
	res = run("start", map[string]any{"Optional": true, "Pin": env.pin})
	assert.Equal(t, "", res["err"])
	assert.Contains(t, res["off"], "needs root")
}
