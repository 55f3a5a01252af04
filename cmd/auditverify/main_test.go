package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/internal/audittest"
)

type fixture struct {
	dir, manifest, pin string
	keys               *audittest.Keys
}

func newFixture(t *testing.T, records int) fixture {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "audit")
	keys := audittest.New("tradecore", time.Now().Add(-time.Hour))
	l, cls, err := audit.Open(context.Background(), audit.Config{WriterConfig: audit.WriterConfig{Dir: dir}, Signer: keys.Signer(), CheckpointInterval: time.Hour})
	require.NoError(t, err)
	for i := 0; i < records; i++ {
		_, err := l.Record(context.Background(), "test.event", struct {
			N    int    `json:"n"`
			Acct uint32 `json:"acct"`
		}{i, uint32(i % 3)})
		require.NoError(t, err)
		if i%10 == 9 {
			_, err := l.Checkpoint(context.Background())
			require.NoError(t, err)
		}
	}
	require.NoError(t, cls())
	mf := filepath.Join(base, "manifest.json")
	require.NoError(t, os.WriteFile(mf, keys.JSON(), 0o600))
	return fixture{dir: dir, manifest: mf, pin: keys.FirstID(), keys: keys}
}

func runAV(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb, false)
	return code, out.String(), errb.String()
}

func TestVerifyFolderAndBundle(t *testing.T) {
	f := newFixture(t, 35)
	code, out, errs := runAV("--manifest", f.manifest, "--pin", f.pin, f.dir)
	require.Equal(t, 0, code, out+errs)
	assert.Contains(t, out, "VERIFIED 36 leaves")

	code, out, _ = runAV("--manifest", f.manifest, "--pin", f.pin, "--format", "json", f.dir)
	require.Equal(t, 0, code)
	var v struct {
		Verified bool               `json:"verified"`
		Result   audit.VerifyResult `json:"result"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.True(t, v.Verified)
	assert.EqualValues(t, 36, v.Result.Leaves)

	var bundle bytes.Buffer
	_, err := audit.ExportBundle(context.Background(), f.dir, 5, 20, &bundle)
	require.NoError(t, err)
	bf := filepath.Join(t.TempDir(), "b.jsonl")
	require.NoError(t, os.WriteFile(bf, bundle.Bytes(), 0o600))
	code, out, errs = runAV("--manifest", f.manifest, "--pin", f.pin, bf)
	require.Equal(t, 0, code, out+errs)
	assert.Contains(t, out, "VERIFIED 15 leaves [5, 20)")
	var stdout bytes.Buffer
	code = run(context.Background(), []string{"--manifest", f.manifest, "--pin", f.pin, "-"}, bytes.NewReader(bundle.Bytes()), &stdout, &stdout, false)
	assert.Equal(t, 0, code, stdout.String())
}

func TestVerifyFailureNamesIndex(t *testing.T) {
	f := newFixture(t, 35)
	seg := filepath.Join(f.dir, "segments", "00000000000000000000.seg")
	b, err := os.ReadFile(seg)
	require.NoError(t, err)
	// Change a record's content and fix up its frame checksum, as an
	// attacker with write access would: only the signed roots catch it.
	i := bytes.Index(b, []byte(`"n":17`))
	require.Positive(t, i)
	b[i+5] = '8'
	start := bytes.LastIndex(b[:i], []byte(`{"i":`))
	n := binary.LittleEndian.Uint32(b[start-8:])
	binary.LittleEndian.PutUint32(b[start-4:], crc32.Checksum(b[start:start+int(n)], crc32.MakeTable(crc32.Castagnoli)))
	require.NoError(t, os.WriteFile(seg, b, 0o600))
	code, out, _ := runAV("--manifest", f.manifest, "--pin", f.pin, f.dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, out, "FAILED")
	assert.Contains(t, out, "leaf 11", "names the first index not covered by a matching signed root")
	assert.Contains(t, out, "a record in [11, 21) was altered")
	code, out, _ = runAV("--manifest", f.manifest, "--pin", f.pin, "--format", "json", f.dir)
	assert.Equal(t, 1, code)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &v))
	assert.Equal(t, false, v["verified"])
	assert.EqualValues(t, 11, v["index"])
}

func TestUsageAndIOErrors(t *testing.T) {
	f := newFixture(t, 3)
	for name, tc := range map[string]struct {
		args []string
		code int
		text string
	}{
		"no path":        {[]string{"--manifest", f.manifest, "--pin", f.pin}, 2, "give exactly one PATH"},
		"no manifest":    {[]string{f.dir}, 2, "--manifest and --pin are required"},
		"bad format":     {[]string{"--manifest", f.manifest, "--pin", f.pin, "--format", "xml", f.dir}, 2, "--format"},
		"missing path":   {[]string{"--manifest", f.manifest, "--pin", f.pin, "/nonexistent/x"}, 2, "no such file"},
		"bad flag":       {[]string{"--bogus"}, 2, "flag provided but not defined"},
		"missing mf":     {[]string{"--manifest", "/nonexistent", "--pin", f.pin, f.dir}, 2, "--manifest"},
		"wrong pin":      {[]string{"--manifest", f.manifest, "--pin", "00000000000000000000000000000000", f.dir}, 1, "pinned first key"},
		"not a bundle":   {[]string{"--manifest", f.manifest, "--pin", f.pin, f.manifest}, 1, "bad bundle"},
		"wrong origin":   {[]string{"--manifest", f.manifest, "--pin", f.pin, "--origin", "other", f.dir}, 1, "origin"},
		"missing cpfile": {[]string{"--manifest", f.manifest, "--pin", f.pin, "--checkpoint", "/nonexistent", f.dir}, 2, "--checkpoint"},
	} {
		code, out, errs := runAV(tc.args...)
		assert.Equal(t, tc.code, code, "%s: %s%s", name, out, errs)
		assert.Contains(t, out+errs, tc.text, name)
	}
}

func TestProofAndReport(t *testing.T) {
	f := newFixture(t, 25)
	p, err := audit.Prove(context.Background(), f.dir, 7, 0)
	require.NoError(t, err)
	pb, _ := json.Marshal(p)
	pf := filepath.Join(t.TempDir(), "p.json")
	require.NoError(t, os.WriteFile(pf, pb, 0o600))
	code, out, errs := runAV("proof", "--manifest", f.manifest, "--pin", f.pin, pf)
	require.Equal(t, 0, code, out+errs)
	assert.Contains(t, out, "VERIFIED leaf 7")
	p.Index = 8
	pb, _ = json.Marshal(p)
	require.NoError(t, os.WriteFile(pf, pb, 0o600))
	code, out, _ = runAV("proof", "--manifest", f.manifest, "--pin", f.pin, pf)
	assert.Equal(t, 1, code, out)

	rep, err := audit.BuildReport(context.Background(), f.dir, time.Now(), "tradecore")
	require.NoError(t, err)
	note, err := audit.SignReport(context.Background(), f.keys.Signer(), rep, time.Now())
	require.NoError(t, err)
	rf := filepath.Join(t.TempDir(), "r.note")
	require.NoError(t, os.WriteFile(rf, note, 0o600))
	code, out, errs = runAV("report", "--manifest", f.manifest, "--pin", f.pin, "--log", f.dir, rf)
	require.Equal(t, 0, code, out+errs)
	assert.Contains(t, out, "recomputed from the log: identical")
}

// TestBuildsWithoutCgo proves the auditors' tool needs no cgo: it builds
// with CGO_ENABLED=0 and does not link the PKCS#11 packages.
func TestBuildsWithoutCgo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "auditverify")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	for _, bad := range []string{"github.com/miekg/pkcs11", "github.com/ThalesGroup/crypto11", "github.com/tradecore/tradecore/hsm\n"} {
		assert.NotContains(t, string(deps), bad)
	}
	// The built binary's exit codes.
	err = exec.Command(bin).Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, 2, ee.ExitCode())
}
