package hsm_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/internal/hsmtest"
	"github.com/tradecore/tradecore/internal/testenv"
)

func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	testenv.Need(t, err == nil, name+" not installed: apt-get install "+pkg)
	return p
}

// TestPkcs11ToolSeesKeyAttributes lists the token's objects with OpenSC's
// pkcs11-tool (PIN through an environment variable, not argv) and checks our
// private keys are sensitive, never extractable and sign-only.
func TestPkcs11ToolSeesKeyAttributes(t *testing.T) {
	tool := needTool(t, "pkcs11-tool", "opensc")
	tok, st := hsmtest.Open(t)
	ctx := context.Background()
	ed, err := tok.GenerateKey(ctx, "interop-ed", hsm.Ed25519)
	require.NoError(t, err)
	ec, err := tok.GenerateKey(ctx, "interop-ec", hsm.ECDSAP256)
	require.NoError(t, err)

	pin, err := os.ReadFile(st.UserPINFile)
	require.NoError(t, err)
	cmd := exec.Command(tool, "--module", st.Module, "--token-label", st.Label, "--login", "--pin", "env:TC_TEST_PIN", "--list-objects")
	cmd.Env = append(os.Environ(), st.Env(), "TC_TEST_PIN="+strings.TrimSpace(string(pin)))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "pkcs11-tool failed: %s", out)
	text := string(out)
	for _, k := range []*hsm.Key{ed, ec} {
		// The private key block: label, ID, usage, access.
		re := regexp.MustCompile(`(?s)Private Key Object; (\w+)\s*\n\s*label:\s*` + regexp.QuoteMeta(k.Label()) + `\s*\n\s*ID:\s*(\w+)\s*\n\s*Usage:\s*([^\n]*)\n\s*Access:\s*([^\n]*)`)
		m := re.FindStringSubmatch(text)
		require.NotNil(t, m, "private key %s not listed:\n%s", k.Label(), text)
		assert.Equal(t, k.ID(), m[2], "CKA_ID is the fingerprint")
		assert.Equal(t, "sign", strings.TrimSpace(m[3]))
		assert.Contains(t, m[4], "sensitive")
		assert.Contains(t, m[4], "never extractable")
		assert.NotRegexp(t, `(^|, )extractable`, m[4])
	}
	assert.Contains(t, text, "EC_EDWARDS")
}

// TestOpenSSLVerifiesECDSA verifies an HSM ECDSA signature with openssl from
// the exported PEM alone.
func TestOpenSSLVerifiesECDSA(t *testing.T) {
	tool := needTool(t, "openssl", "openssl")
	tok, _ := hsmtest.Open(t)
	k, err := tok.GenerateKey(context.Background(), "openssl-ec", hsm.ECDSAP256)
	require.NoError(t, err)
	dir := t.TempDir()
	msg := []byte("checkpoint tree_size=1000 root=deadbeef\n")
	sig, err := manifest.SignMessage(k, msg)
	require.NoError(t, err)
	pemText, err := manifest.PublicKeyPEM(k.Public())
	require.NoError(t, err)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	pub, sigPath, file := write("pub.pem", []byte(pemText)), write("sig.der", sig), write("file", msg)
	out, err := exec.Command(tool, "dgst", "-sha256", "-verify", pub, "-signature", sigPath, file).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "Verified OK")

	// A different message must fail.
	other := write("other", append(bytes.Clone(msg), 'x'))
	out, err = exec.Command(tool, "dgst", "-sha256", "-verify", pub, "-signature", sigPath, other).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "Verification failure")
}

// TestPkcs11ToolCannotSignWithRevokedKey is the check from outside
// tradecore: after a revocation, OpenSC's pkcs11-tool with the user PIN
// finds no private key to sign with, while the active key still signs.
func TestPkcs11ToolCannotSignWithRevokedKey(t *testing.T) {
	tool := needTool(t, "pkcs11-tool", "opensc")
	tok, st := hsmtest.Open(t)
	ctx := context.Background()
	svc := newService(t, tok, t.TempDir(), &fakeClock{now: time.Now()}, hsm.Ed25519)
	revoked := svc.Active().ID
	_, err := svc.Revoke(ctx, revoked, time.Time{}, "stolen laptop")
	require.NoError(t, err)
	pin, err := os.ReadFile(st.UserPINFile)
	require.NoError(t, err)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	require.NoError(t, os.WriteFile(in, []byte("forged manifest tail"), 0o600))
	sign := func(id string) ([]byte, error) {
		cmd := exec.Command(tool, "--module", st.Module, "--token-label", st.Label, "--login", "--pin", "env:TC_TEST_PIN",
			"--sign", "--mechanism", "EDDSA", "--id", id, "--input-file", in, "--output-file", filepath.Join(dir, "sig"))
		cmd.Env = append(os.Environ(), st.Env(), "TC_TEST_PIN="+strings.TrimSpace(string(pin)))
		return cmd.CombinedOutput()
	}
	out, err := sign(revoked)
	require.Error(t, err, "pkcs11-tool signed with the revoked key: %s", out)
	out, err = sign(svc.Active().ID)
	require.NoError(t, err, "the active key signs: %s", out)
}
