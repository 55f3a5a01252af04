package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/internal/swtpmtest"
	"github.com/tradecore/tradecore/tpm"
)

// buildTCClient builds the real tcclient binary for end-to-end tests.
func buildTCClient(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tcclient")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/tradecore/tradecore/cmd/tcclient").CombinedOutput()
	require.NoError(t, err, "go build tcclient: %s", out)
	return bin
}

type clientResult struct {
	code           int
	stdout, stderr string
}

func runClient(t *testing.T, bin string, args ...string) clientResult {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return clientResult{code, out.String(), errb.String()}
}

// TestAttestCLIEndToEnd walks a device through enrolment, approval,
// attestation and revocation with the real tcclient binary on a swtpm and
// tradecore's attest verbs, exchanging the messages as files.
func TestAttestCLIEndToEnd(t *testing.T) {
	ca := swtpmtest.NewCA(t)
	sw := swtpmtest.Manufacture(t, ca)
	client := buildTCClient(t)
	dd := t.TempDir()
	d := "--data-dir=" + dd
	work := t.TempDir()
	file := func(n string) string { return filepath.Join(work, n) }
	dev := []string{"--tpm", sw.Socket, "--key", file("ak.json")}

	// No CA pool yet: enrolment is refused and says where the pool goes.
	c := runClient(t, client, append([]string{"attest", "enroll", "--out", file("req.json")}, dev...)...)
	require.Equal(t, 0, c.code, c.stderr)
	r := runCLI(t, "attest", "enroll", file("req.json"), d)
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, tpm.ErrNoCAPool)
	assert.Contains(t, r.err.Error(), "--ek-ca")

	require.NoError(t, os.MkdirAll(filepath.Join(dd, "tpm"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dd, "tpm", "ek-ca.pem"), ca.PoolPEM(t), 0o600))
	r = runCLI(t, "attest", "enroll", file("req.json"), d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	require.NoError(t, os.WriteFile(file("act.json"), []byte(r.stdout), 0o600))
	ch, err := tpm.ParseActivationChallenge([]byte(r.stdout))
	require.NoError(t, err)
	id := ch.DeviceID

	c = runClient(t, client, append([]string{"attest", "activate", file("act.json"), "--out", file("proof.json")}, dev...)...)
	require.Equal(t, 0, c.code, c.stderr)
	r = runCLI(t, "attest", "activate", file("proof.json"), d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	assert.Contains(t, r.stdout, "enrolled: device "+id)
	assert.Regexp(t, regexp.MustCompile(`pcr  7  [0-9a-f]{64}`), r.stdout)

	r = runCLI(t, "attest", "list", d)
	require.Equal(t, 0, r.code)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 2, r.stdout)
	assert.Contains(t, lines[1], id)
	assert.Contains(t, lines[1], "enrolled")

	// Not approved: no challenge.
	r = runCLI(t, "attest", "challenge", id, d)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, tpm.ReasonDeviceNotApproved, tpm.ReasonOf(r.err))
	assert.Contains(t, r.err.Error(), "802 device-not-approved")

	r = runCLI(t, "attest", "approve", id, "--pin", "0,2,4,7", d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	assert.Contains(t, r.stdout, "approved: device "+id+" under policy device-"+id)

	attest := func(name string) (result, clientResult) {
		r := runCLI(t, "attest", "challenge", id, d)
		require.Equal(t, 0, r.code, "err: %v", r.err)
		require.NoError(t, os.WriteFile(file(name+".ch.json"), []byte(r.stdout), 0o600))
		c := runClient(t, client, append([]string{"attest", "quote", file(name + ".ch.json"), "--out", file(name + ".q.json")}, dev...)...)
		require.Equal(t, 0, c.code, c.stderr)
		return runCLI(t, "attest", "verify", file(name+".q.json"), d, "--format", "json"), c
	}
	r, _ = attest("first")
	require.Equal(t, 0, r.code, "err: %v", r.err)
	var att tpm.Attestation
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &att))
	assert.Equal(t, id, att.DeviceID)
	assert.Equal(t, "device-"+id, att.Policy)

	// Replaying the same quote file is refused with its reason.
	r = runCLI(t, "attest", "verify", file("first.q.json"), d)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err.Error(), "806 nonce-used")

	// Malformed input is a reject with a reason, never a crash.
	require.NoError(t, os.WriteFile(file("junk.json"), []byte(`{"type":"tpm.quote","version":1,"device_id":"zz"}`), 0o600))
	r = runCLI(t, "attest", "verify", file("junk.json"), d)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, tpm.ReasonMalformed, tpm.ReasonOf(r.err))

	// A PCR extended after approval fails the next attestation.
	swtpmtest.Extend(t, sw.Open(t), 4, bytes.Repeat([]byte{7}, 32))
	r, _ = attest("extended")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err.Error(), "815 pcr-mismatch")

	r = runCLI(t, "attest", "revoke", id, "--reason", "bootloader replaced", d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	r = runCLI(t, "attest", "challenge", id, d)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err.Error(), "803 device-revoked")
	r = runCLI(t, "attest", "list", d, "--format", "json")
	require.Equal(t, 0, r.code)
	var list []tpm.Device
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	require.Len(t, list, 1)
	assert.Equal(t, tpm.StateRevoked, list[0].State)
	assert.Equal(t, "bootloader replaced", list[0].RevokeReason)

	// Every decision is an audit record, in order, queued in the audit
	// log's inbox (no daemon holds the log here).
	queued, err := audit.ReadInbox(filepath.Join(dd, "audit"))
	require.NoError(t, err)
	var types []string
	for _, e := range queued {
		types = append(types, e.Type)
	}
	assert.Equal(t, []string{
		tpm.RecordDeviceEnrolled, tpm.RecordDeviceApproved, tpm.RecordAttestationPassed,
		tpm.RecordAttestationFailed, tpm.RecordAttestationFailed, tpm.RecordDeviceRevoked,
	}, types)

	// Policies: a class policy from a file, listed with its digest.
	pol := filepath.Join(work, "class.json")
	require.NoError(t, os.WriteFile(pol, []byte(`{"version":1,"name":"trading-host-v1","bank":"sha256","pcrs":{"0":"`+strings.Repeat("00", 32)+`"}}`), 0o600))
	r = runCLI(t, "attest", "policy", "set", pol, d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	r = runCLI(t, "attest", "policy", "list", d)
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "trading-host-v1")
	assert.Contains(t, r.stdout, "device-"+id)
	require.NoError(t, os.WriteFile(pol, []byte(`{"version":1,"name":"x","bank":"sha1","pcrs":{}}`), 0o600))
	r = runCLI(t, "attest", "policy", "set", pol, d)
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, tpm.ErrPolicyInvalid)
	assert.Contains(t, r.err.Error(), `"bank": "sha256"`)
}

func TestAttestCLIUsageErrors(t *testing.T) {
	d := "--data-dir=" + t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"attest", "frob"}, `unknown attest command "frob"`},
		{"approve without decision", []string{"attest", "approve", "abc", d}, "exactly one of --pin"},
		{"approve with both", []string{"attest", "approve", "abc", d, "--pin", "0", "--policy", "p"}, "exactly one of --pin"},
		{"bad pin list", []string{"attest", "approve", "abc", d, "--pin", "0,x"}, "--pin"},
		{"revoke without reason", []string{"attest", "revoke", "abc", d}, "needs --reason"},
		{"verify without file", []string{"attest", "verify", d}, "exactly one argument"},
		{"list with argument", []string{"attest", "list", "x", d}, "takes no arguments"},
		{"policy without verb", []string{"attest", "policy", d}, "policy set FILE"},
		{"bad format", []string{"attest", "list", d, "--format", "yaml"}, `--format "yaml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.args...)
			assert.Equal(t, 2, r.code, "err: %v", r.err)
			require.ErrorIs(t, r.err, errUsage)
			assert.Contains(t, r.err.Error(), tc.want)
		})
	}
	r := runCLI(t, "attest", "help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "approve ID --pin PCRS")
	r = runCLI(t, "help")
	assert.Contains(t, r.stdout, "attest ")
	r = runCLI(t, "attest", "approve", "00000000000000000000000000000000", "--pin", "0", d)
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, tpm.ErrBadArgument)
	assert.Contains(t, r.err.Error(), "tradecore attest list")
}
