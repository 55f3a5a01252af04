package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/internal/swtpmtest"
	"github.com/tradecore/tradecore/tpm"
	"github.com/tradecore/tradecore/tpm/device"
)

type result struct {
	code           int
	stdout, stderr string
	err            error
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	code := 0
	switch {
	case err == nil:
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		code = 2
	default:
		code = 1
	}
	return result{code, out.String(), errb.String(), err}
}

type nopRecorder struct{}

func (nopRecorder) Record(context.Context, string, any) (uint64, error) { return 1, nil }

// TestAttestSteps runs each tcclient attest step against a swtpm and
// feeds its output to the server side.
func TestAttestSteps(t *testing.T) {
	ca := swtpmtest.NewCA(t)
	sw := swtpmtest.Manufacture(t, ca)
	pool, err := tpm.ParseCAPool(ca.PoolPEM(t))
	require.NoError(t, err)
	ctx := context.Background()
	a, closeA, err := tpm.Open(ctx, tpm.Config{Dir: t.TempDir(), EKRoots: pool, Recorder: nopRecorder{}})
	require.NoError(t, err)
	defer closeA()
	work := t.TempDir()
	key := filepath.Join(work, "ak.json")
	dev := []string{"--tpm", sw.Socket, "--key", key}

	r := runCLI(t, append([]string{"attest", "quote", "-"}, dev...)...)
	assert.Equal(t, 1, r.code, "no key yet")

	r = runCLI(t, append([]string{"attest", "enroll"}, dev...)...)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	req, err := tpm.ParseEnrollRequest([]byte(r.stdout))
	require.NoError(t, err)
	_, err = os.Stat(key + ".new")
	require.NoError(t, err, "the new AK waits beside the key file")
	ch, err := a.Enroll(ctx, req)
	require.NoError(t, err)
	chFile := filepath.Join(work, "ch.json")
	b, err := tpm.Marshal(ch)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(chFile, b, 0o600))

	r = runCLI(t, append([]string{"attest", "activate", chFile}, dev...)...)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	proof, err := tpm.ParseActivationProof([]byte(r.stdout))
	require.NoError(t, err)
	_, err = a.Activate(ctx, proof)
	require.NoError(t, err)
	k, err := device.LoadKey(key)
	require.NoError(t, err)
	assert.NotEmpty(t, k.Private)
	_, err = a.Approve(ctx, ch.DeviceID, tpm.Approval{PinPCRs: []int{0, 7}})
	require.NoError(t, err)

	c, err := a.Challenge(ctx, ch.DeviceID)
	require.NoError(t, err)
	b, err = tpm.Marshal(c)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(chFile, b, 0o600))
	out := filepath.Join(work, "q.json")
	r = runCLI(t, append([]string{"attest", "quote", chFile, "--out", out}, dev...)...)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	qb, err := os.ReadFile(out)
	require.NoError(t, err)
	q, err := tpm.ParseQuoteResponse(qb)
	require.NoError(t, err)
	_, err = a.Verify(ctx, q)
	require.NoError(t, err)

	// A challenge of the wrong type is refused before the TPM is used.
	r = runCLI(t, append([]string{"attest", "quote", filepath.Join(work, "ak.json")}, dev...)...)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, tpm.ReasonMalformed, tpm.ReasonOf(r.err))
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, ""},
		{"unknown command", []string{"trade"}, `unknown command "trade"`},
		{"unknown step", []string{"attest", "frob"}, `unknown attest step "frob"`},
		{"enroll with argument", []string{"attest", "enroll", "x"}, "takes no arguments"},
		{"quote without file", []string{"attest", "quote"}, "challenge FILE"},
		{"bad flag", []string{"attest", "quote", "--nope"}, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.args...)
			assert.Equal(t, 2, r.code, "err: %v", r.err)
			if tc.want != "" {
				assert.Contains(t, r.err.Error(), tc.want)
			}
		})
	}
	r := runCLI(t, "help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "attest ")
	r = runCLI(t, "attest", "enroll", "--tpm", filepath.Join(t.TempDir(), "missing"))
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err.Error(), "--tpm")
}
