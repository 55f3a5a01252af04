package netseg

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/tradecore/tradecore/internal/testenv"
)

// kernelEnv is a test's own corner of the machine: a parent cgroup it
// created under the cgroup v2 mount, and a private bpf filesystem mounted on
// a temporary folder. Cleanup kills what runs in the cgroups, removes them
// and unmounts the bpf filesystem, on failure too. Nothing is ever attached
// to a cgroup the test did not create.
type kernelEnv struct {
	mount  string // cgroup v2 mount point
	base   string // the test's parent cgroup, relative to mount ("/netseg-test-…")
	bpffs  string // private bpf filesystem
	pin    string // pin path inside it
	rec    *fakeRecorder
	enf    *Enforcer
	helper string // the test binary
}

func newKernelEnv(t testing.TB) *kernelEnv {
	t.Helper()
	testenv.NeedRoot(t)
	err := Probe()
	testenv.Need(t, err == nil, fmt.Sprintf("eBPF segmentation unavailable: %v", err))
	mount, err := cgroup2Mount("/proc/self/mountinfo")
	require.NoError(t, err)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	env := &kernelEnv{mount: mount, base: fmt.Sprintf("/netseg-test-%d-%s", os.Getpid(), hex.EncodeToString(rnd[:])), rec: &fakeRecorder{}}
	require.NoError(t, os.Mkdir(filepath.Join(mount, env.base), 0o755))
	t.Cleanup(func() { removeCgroupTree(t, filepath.Join(mount, env.base)) })

	dir, err := os.MkdirTemp("", "netseg-bpffs-")
	require.NoError(t, err)
	require.NoError(t, unix.Mount("bpf", dir, "bpf", 0, "mode=0700"))
	env.bpffs = dir
	env.pin = filepath.Join(dir, "tradecore-test")
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount test bpffs %s: %v", dir, err)
		}
		os.Remove(dir)
	})
	env.helper, err = os.Executable()
	require.NoError(t, err)
	env.enf = env.enforcer(t, env.rec)
	return env
}

func (env *kernelEnv) enforcer(t testing.TB, rec Recorder) *Enforcer {
	t.Helper()
	e, err := New(Config{PinPath: env.pin, CgroupMount: env.mount, Recorder: rec})
	require.NoError(t, err)
	return e
}

// cgroup creates a cgroup below the test's parent and returns its path
// relative to the mount.
func (env *kernelEnv) cgroup(t testing.TB, name string) string {
	t.Helper()
	rel := env.base + "/" + name
	require.NoError(t, os.MkdirAll(filepath.Join(env.mount, rel), 0o755))
	return rel
}

// removeCgroupTree kills every process left in the tree (only the test's own
// children can be there) and removes the cgroups, deepest first.
func removeCgroupTree(t testing.TB, root string) {
	var dirs []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		_ = os.WriteFile(filepath.Join(d, "cgroup.kill"), []byte("1"), 0)
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("cannot remove test cgroup %s: %v", d, err)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// fakeRecorder captures audit records; fail makes Record fail.
type fakeRecorder struct {
	mu      sync.Mutex
	records []fakeRecord
	fail    error
}

type fakeRecord struct {
	Type string
	Body json.RawMessage
}

func (r *fakeRecorder) Record(_ context.Context, typ string, body any) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return 0, r.fail
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	r.records = append(r.records, fakeRecord{typ, b})
	return uint64(len(r.records) - 1), nil
}

func (r *fakeRecorder) all() []fakeRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]fakeRecord(nil), r.records...)
}

func (r *fakeRecorder) setFail(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

// helperEnv selects the helper mode of a re-executed test binary.
const helperEnv = "NETSEG_TEST_HELPER"

// child starts the test binary in helper mode inside the cgroup rel (born
// there: clone3 with CLONE_INTO_CGROUP), with args passed as JSON.
func (env *kernelEnv) child(t testing.TB, rel, mode string, args any) *exec.Cmd {
	t.Helper()
	fd, err := unix.Open(filepath.Join(env.mount, rel), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	a, err := json.Marshal(args)
	require.NoError(t, err)
	cmd := exec.Command(env.helper, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	if len(a) > 32<<10 { // too long for one environment string
		f := filepath.Join(t.TempDir(), "args.json")
		require.NoError(t, os.WriteFile(f, a, 0o600))
		cmd.Env = append(cmd.Env, "NETSEG_TEST_ARGS_FILE="+f)
	} else {
		cmd.Env = append(cmd.Env, "NETSEG_TEST_ARGS="+string(a))
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	cmd.Stderr = &testWriter{t: t, prefix: mode + ": "}
	return cmd
}

// runChild runs a helper to completion and decodes its JSON output.
func (env *kernelEnv) runChild(t testing.TB, rel, mode string, args, out any) {
	t.Helper()
	cmd := env.child(t, rel, mode, args)
	b, err := cmd.Output()
	require.NoError(t, err, "helper %s", mode)
	require.NoError(t, json.Unmarshal(b, out), "helper %s output %q", mode, b)
}

type testWriter struct {
	t      testing.TB
	prefix string
}

func (w *testWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.t.Log(w.prefix + l)
	}
	return len(p), nil
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		args := os.Getenv("NETSEG_TEST_ARGS")
		if f := os.Getenv("NETSEG_TEST_ARGS_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
			args = string(b)
		}
		os.Exit(runHelper(mode, args))
	}
	os.Exit(m.Run())
}
