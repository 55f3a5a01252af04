// Package swtpmtest runs software TPMs (swtpm) for tests: a local EK
// certificate authority in a temporary folder, simulated TPMs manufactured
// with EK certificates signed by it, and swtpm processes on unix sockets that
// the test starts, restarts and stops by pid.
//
// Nothing here touches the system's swtpm folders: every CA and TPM state
// lives under the test's temporary directories, and swtpm_setup is always run
// with its own --config.
package swtpmtest

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"

	"github.com/tradecore/tradecore/internal/testenv"
)

// Need skips (or, under make test, fails) t when swtpm or swtpm_setup is
// missing.
func Need(t testing.TB) {
	t.Helper()
	for _, bin := range []string{"swtpm", "swtpm_setup", "swtpm_localca"} {
		_, err := exec.LookPath(bin)
		testenv.Need(t, err == nil, bin+" not installed: apt-get install swtpm swtpm-tools")
	}
}

// CA is a local EK certificate authority (swtpm_localca) in its own folder.
// Its root and intermediate are created the first time a TPM is manufactured
// with it.
type CA struct {
	dir       string
	setupConf string
}

// NewCA prepares a CA in a temporary folder removed when t ends.
func NewCA(t testing.TB) *CA {
	t.Helper()
	Need(t)
	dir := shortTempDir(t, "ca")
	state := filepath.Join(dir, "state")
	must(t, os.Mkdir(state, 0o700))
	localca := filepath.Join(dir, "localca.conf")
	must(t, os.WriteFile(localca, []byte(fmt.Sprintf(
		"statedir = %s\nsigningkey = %s\nissuercert = %s\ncertserial = %s\n",
		state, filepath.Join(state, "signkey.pem"), filepath.Join(state, "issuercert.pem"),
		filepath.Join(state, "certserial"))), 0o600))
	opts := filepath.Join(dir, "localca.options")
	must(t, os.WriteFile(opts, []byte("--platform-manufacturer tradecore-test\n--platform-version 1\n--platform-model swtpm\n"), 0o600))
	setup := filepath.Join(dir, "swtpm_setup.conf")
	must(t, os.WriteFile(setup, []byte(fmt.Sprintf(
		"create_certs_tool = %s\ncreate_certs_tool_config = %s\ncreate_certs_tool_options = %s\nactive_pcr_banks = sha256\n",
		lookPath(t, "swtpm_localca"), localca, opts)), 0o600))
	return &CA{dir: dir, setupConf: setup}
}

// Certs returns the CA's root and intermediate certificates. Call it after
// the first Manufacture.
func (ca *CA) Certs(t testing.TB) (root, intermediate *x509.Certificate) {
	t.Helper()
	return readCert(t, filepath.Join(ca.dir, "state", "swtpm-localca-rootca-cert.pem")),
		readCert(t, filepath.Join(ca.dir, "state", "issuercert.pem"))
}

// PoolPEM returns the root and intermediate as one PEM bundle, the form the
// verifier's CA pool file takes.
func (ca *CA) PoolPEM(t testing.TB) []byte {
	t.Helper()
	root, inter := ca.Certs(t)
	var b bytes.Buffer
	must(t, pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}))
	must(t, pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw}))
	return b.Bytes()
}

// TPM is one simulated TPM: its state folder and, while started, the swtpm
// process serving it on a unix socket.
type TPM struct {
	t      testing.TB
	Dir    string // TPM state (swtpm --tpmstate)
	Socket string // the TPM command socket (linuxudstpm)
	ctrl   string
	cmd    *exec.Cmd
	waited chan error
}

// Manufacture creates a TPM 2.0 state with an RSA-2048 EK and its
// certificate signed by ca, starts swtpm on it, and stops it when t ends.
func Manufacture(t testing.TB, ca *CA) *TPM {
	t.Helper()
	Need(t)
	dir := shortTempDir(t, "tpm")
	state := filepath.Join(dir, "state")
	must(t, os.Mkdir(state, 0o700))
	out, err := exec.Command(lookPath(t, "swtpm_setup"), "--tpm2", "--tpmstate", state,
		"--create-ek-cert", "--config", ca.setupConf, "--overwrite").CombinedOutput()
	if err != nil {
		t.Fatalf("swtpm_setup: %v\n%s", err, out)
	}
	tp := &TPM{t: t, Dir: state, Socket: filepath.Join(dir, "s"), ctrl: filepath.Join(dir, "c")}
	tp.Start()
	t.Cleanup(tp.Stop)
	return tp
}

// Start starts swtpm on the state folder and waits until its socket accepts
// connections. The TPM performs Startup(CLEAR) itself, so each Start after
// a Stop is a TPM Reset (a reboot: resetCount grows, PCRs are cleared).
func (tp *TPM) Start() {
	tp.t.Helper()
	if tp.cmd != nil {
		tp.t.Fatal("swtpmtest: Start on a running TPM")
	}
	_ = os.Remove(tp.Socket)
	_ = os.Remove(tp.ctrl)
	cmd := exec.Command(lookPath(tp.t, "swtpm"), "socket", "--tpm2",
		"--tpmstate", "dir="+tp.Dir,
		"--server", "type=unixio,path="+tp.Socket,
		"--ctrl", "type=unixio,path="+tp.ctrl,
		"--flags", "not-need-init,startup-clear")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(tp.t, cmd.Start())
	tp.cmd = cmd
	tp.waited = make(chan error, 1)
	go func() { tp.waited <- cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", tp.Socket); err == nil {
			c.Close()
			// The socket listens before swtpm's own Startup(CLEAR) has run
			// and been saved; a command answered means it has (commands
			// run in order), so a Stop right after cannot lose the reset.
			if tpm, err := linuxudstpm.Open(tp.Socket); err == nil {
				_, err = tpm2.GetRandom{BytesRequested: 1}.Execute(tpm)
				tpm.Close()
				if err == nil {
					return
				}
			}
		}
		select {
		case werr := <-tp.waited:
			tp.cmd = nil
			tp.t.Fatalf("swtpm exited at start: %v\n%s", werr, stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tp.Stop()
			tp.t.Fatalf("swtpm socket %s not ready after 10s: %s", tp.Socket, stderr.String())
		}
	}
}

// Stop ends the swtpm process by its pid (SIGTERM, then SIGKILL after 5 s)
// and waits for it. Stopping a stopped TPM does nothing.
func (tp *TPM) Stop() {
	if tp.cmd == nil {
		return
	}
	pid := tp.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-tp.waited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-tp.waited
	}
	tp.cmd = nil
}

// Restart stops and starts the TPM: a reboot of the device.
func (tp *TPM) Restart() {
	tp.t.Helper()
	tp.Stop()
	tp.Start()
}

// Pid is the running swtpm's process id (0 when stopped).
func (tp *TPM) Pid() int {
	if tp.cmd == nil {
		return 0
	}
	return tp.cmd.Process.Pid
}

// Open connects to the running TPM; the connection is closed when t ends.
func (tp *TPM) Open(t testing.TB) transport.TPMCloser {
	t.Helper()
	c, err := linuxudstpm.Open(tp.Socket)
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// Extend extends PCR pcr of the SHA-256 bank with the hash of data, as
// software measured at boot would.
func Extend(t testing.TB, tpm transport.TPM, pcr int, digest []byte) {
	t.Helper()
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests: tpm2.TPMLDigestValues{Digests: []tpm2.TPMTHA{{
			HashAlg: tpm2.TPMAlgSHA256, Digest: digest,
		}}},
	}.Execute(tpm)
	must(t, err)
}

// CopyState copies the TPM's state folder to a new temporary folder (the
// TPM should be stopped, so the state on disk is complete): a backup an
// attacker could restore later.
func (tp *TPM) CopyState(t testing.TB) string {
	t.Helper()
	dst := shortTempDir(t, "bak")
	entries, err := os.ReadDir(tp.Dir)
	must(t, err)
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".lock") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(tp.Dir, e.Name()))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600))
	}
	return dst
}

// RestoreState replaces the TPM's state with a copy taken by CopyState.
// The TPM must be stopped.
func (tp *TPM) RestoreState(t testing.TB, from string) {
	t.Helper()
	if tp.cmd != nil {
		t.Fatal("swtpmtest: RestoreState on a running TPM")
	}
	entries, err := os.ReadDir(from)
	must(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(tp.Dir, e.Name()), b, 0o600))
	}
}

func readCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("swtpmtest: %s missing: manufacture a TPM with this CA first", path)
	}
	must(t, err)
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("swtpmtest: %s holds no PEM block", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	must(t, err)
	return c
}

// shortTempDir is a temporary folder with a short path: unix socket paths
// are limited to 108 bytes, and t.TempDir embeds the test's name.
func shortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", "tc"+prefix)
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func lookPath(t testing.TB, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	must(t, err)
	return p
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
