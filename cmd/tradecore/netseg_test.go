package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/internal/testenv"
	"github.com/tradecore/tradecore/netseg"
)

func TestNetsegCLIUsageAndCheck(t *testing.T) {
	r := runCLI(t, "netseg")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "usage: tradecore netseg")
	r = runCLI(t, "netseg", "frobnicate")
	assert.Equal(t, 2, r.code)
	r = runCLI(t, "netseg", "apply")
	assert.Equal(t, 2, r.code)
	assert.ErrorContains(t, r.err, "needs -f POLICY")
	r = runCLI(t, "netseg", "status", "--format", "xml")
	assert.Equal(t, 2, r.code)

	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	require.NoError(t, os.WriteFile(good, []byte("version: 1\nsegments:\n  - name: pay\n    cgroup: /tc/pay\n    allow: [{cidr: 10.0.0.0/8, protocol: tcp, ports: 443}]\n"), 0o600))
	r = runCLI(t, "netseg", "check", "-f", good)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "valid sha256:")
	assert.Contains(t, r.stdout, "segment pay: cgroup /tc/pay, default deny, 1 allow, 0 deny")

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("version: 1\nsegments:\n  - name: pay\n    cgroup: /tc/pay\n    allow: [{cidr: 10.0.0.1/8}]\n"), 0o600))
	r = runCLI(t, "netseg", "check", "-f", bad)
	assert.Equal(t, 1, r.code)
	assert.EqualError(t, r.err, "netseg: policy "+bad+` line 5 segments[0].allow[0].cidr: "10.0.0.1/8" has host bits set; write 10.0.0.0/8`)
}

// netsegEnv makes a cgroup <base>/pay under the cgroup v2 mount and a bpf
// filesystem of the test's own, and returns the --pin-path flag for it and
// base. Both are removed at cleanup.
func netsegEnv(t *testing.T) (pin, base string) {
	t.Helper()
	testenv.NeedRoot(t)
	err := netseg.Probe()
	testenv.Need(t, err == nil, fmt.Sprintf("eBPF segmentation unavailable: %v", err))
	mount, err := netseg.CgroupMount()
	require.NoError(t, err)
	base = fmt.Sprintf("/netseg-cli-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-"))
	require.NoError(t, os.MkdirAll(filepath.Join(mount, base, "pay"), 0o755))
	t.Cleanup(func() {
		os.Remove(filepath.Join(mount, base, "pay"))
		os.Remove(filepath.Join(mount, base))
	})
	bpffs, err := os.MkdirTemp("", "netseg-cli-bpffs-")
	require.NoError(t, err)
	require.NoError(t, unix.Mount("bpf", bpffs, "bpf", 0, "mode=0700"))
	t.Cleanup(func() {
		_ = unix.Unmount(bpffs, unix.MNT_DETACH)
		os.Remove(bpffs)
	})
	return "--pin-path=" + filepath.Join(bpffs, "tc"), base
}

func TestNetsegCLIEndToEnd(t *testing.T) {
	pin, base := netsegEnv(t)
	dd := t.TempDir()
	d := "--data-dir=" + dd
	policy := filepath.Join(dd, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(fmt.Sprintf(
		"version: 1\nsegments:\n  - name: pay\n    cgroup: %s/pay\n    allow: [{cidr: 127.0.0.2}]\n", base)), 0o600))

	r := runCLI(t, "netseg", "status", pin, d)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stdout, "no policy applied")
	assert.ErrorContains(t, r.err, "apply one with")

	r = runCLI(t, "netseg", "apply", "-f", policy, pin, d)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "applied sha256:")
	assert.Contains(t, r.stdout, "+ pay allow any 127.0.0.2/32")

	r = runCLI(t, "netseg", "apply", "-f", policy, pin, d)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "unchanged: sha256:")

	r = runCLI(t, "netseg", "status", pin, d)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "enforced yes")
	assert.Contains(t, r.stdout, "connect4,connect6,sendmsg4,sendmsg6,egress")

	r = runCLI(t, "netseg", "status", "--format", "json", pin, d)
	require.Equal(t, 0, r.code, r.stderr)
	var st netseg.Status
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.True(t, st.Enforced)

	r = runCLI(t, "netseg", "stats", "--format", "json", pin, d)
	require.Equal(t, 0, r.code, r.stderr)
	var stats netseg.Stats
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &stats))
	require.Len(t, stats.Segments, 1)
	assert.Equal(t, "pay", stats.Segments[0].Name)
	assert.Len(t, stats.Segments[0].Hooks, 5)
	r = runCLI(t, "netseg", "stats", pin, d)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "segment pay: 0 allowed, 0 denied")

	// A bad file is refused with its line, and nothing changes.
	badPolicy := filepath.Join(dd, "bad.yaml")
	require.NoError(t, os.WriteFile(badPolicy, []byte("version: 1\nsegments:\n  - name: pay\n    cgroup: "+base+"/pay\n    default: open\n"), 0o600))
	r = runCLI(t, "netseg", "apply", "-f", badPolicy, pin, d)
	assert.Equal(t, 1, r.code)
	assert.ErrorContains(t, r.err, "line 5 segments[0].default")
	r = runCLI(t, "netseg", "status", pin, d)
	require.Equal(t, 0, r.code, r.stderr)

	r = runCLI(t, "netseg", "detach", pin, d)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "detached")
	r = runCLI(t, "netseg", "detach", pin, d)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "nothing applied")

	queued, err := audit.ReadInbox(filepath.Join(dd, "audit"))
	require.NoError(t, err)
	require.Len(t, queued, 2)
	assert.Equal(t, netseg.RecordApplied, queued[0].Type)
	var applied netseg.AppliedRecord
	require.NoError(t, json.Unmarshal(queued[0].Body, &applied))
	assert.Equal(t, st.Digest, applied.Digest)
	assert.Equal(t, netseg.RecordDetached, queued[1].Type)
}
