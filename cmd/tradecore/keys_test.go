package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/internal/testenv"
	"github.com/tradecore/tradecore/softhsm"
)

// exitCode mirrors main's mapping of run's error to the process exit code.
func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		return 2
	}
	return 1
}

type result struct {
	code           int
	stdout, stderr string
	err            error
}

func runCLI(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, &out, &errb)
	return result{exitCode(err), out.String(), errb.String(), err}
}

func needSoftHSM(t *testing.T) {
	t.Helper()
	_, err := softhsm.FindModule()
	testenv.Need(t, err == nil, "SoftHSM2 not installed: apt-get install softhsm2")
	// keys sets SOFTHSM2_CONF for the process; restore it after the test.
	t.Setenv(softhsm.EnvConf, os.Getenv(softhsm.EnvConf))
	// The local token's PINs go to a credentials folder outside the data dir.
	t.Setenv("TRADECORE_CREDENTIALS_DIR", t.TempDir())
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	t.Setenv("XDG_STATE_HOME", t.TempDir())
}

func TestKeysCLIEndToEnd(t *testing.T) {
	needSoftHSM(t)
	dd := t.TempDir()
	d := "--data-dir=" + dd

	r := runCLI(t, "keys", "status", d)
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, hsm.ErrNotInitialized)
	assert.Contains(t, r.err.Error(), "tradecore keys init")

	r = runCLI(t, "keys", "rotate", d)
	assert.Equal(t, 1, r.code, "rotate before init fails")

	r = runCLI(t, "keys", "init", d, "--format", "json")
	require.Equal(t, 0, r.code, "stderr: %s err: %v", r.stderr, r.err)
	var initOut struct {
		Created    bool   `json:"created"`
		FirstKeyID string `json:"first_key_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &initOut))
	assert.True(t, initOut.Created)
	first := initOut.FirstKeyID
	creds := os.Getenv("TRADECORE_CREDENTIALS_DIR")
	fi, err := os.Stat(filepath.Join(creds, softhsm.UserPINFile))
	require.NoError(t, err, "the local token's PIN is in the credentials folder")
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.NoFileExists(t, filepath.Join(dd, "softhsm", "user.pin"))
	pin, err := os.ReadFile(filepath.Join(creds, softhsm.UserPINFile))
	require.NoError(t, err)
	assert.NotContains(t, r.stdout+r.stderr, strings.TrimSpace(string(pin)), "PIN never printed")

	r = runCLI(t, "keys", "init", d)
	require.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "already initialised: first key "+first)
	r = runCLI(t, "keys", "init", d, "--algorithm", "ecdsa-p256")
	assert.Equal(t, 2, r.code, "a policy flag on an existing manifest is not silently ignored")
	assert.Contains(t, r.err.Error(), "keys rotate --algorithm")
	r = runCLI(t, "keys", "init", d, "--algorithm", "ed25519")
	assert.Equal(t, 0, r.code, "the same policy is fine")

	r = runCLI(t, "keys", "rotate", d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	assert.Contains(t, r.stdout, "rotated: "+first+" -> ")

	r = runCLI(t, "keys", "status", d, "--format=json")
	require.Equal(t, 0, r.code)
	var st struct {
		ActiveKey struct {
			ID string `json:"id"`
		} `json:"active_key"`
		Keys        int  `json:"keys"`
		RotationDue bool `json:"rotation_due"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.Equal(t, 2, st.Keys)
	assert.False(t, st.RotationDue)
	second := st.ActiveKey.ID

	r = runCLI(t, "keys", "revoke", second, d, "--reason", "key compromise")
	require.Equal(t, 0, r.code, "err: %v", r.err)
	assert.Contains(t, r.stdout, "revoked: "+second)

	r = runCLI(t, "keys", "list", d)
	require.Equal(t, 0, r.code)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	require.Len(t, lines, 4, r.stdout)
	assert.Contains(t, lines[1], first)
	assert.Contains(t, lines[1], "retired")
	assert.Contains(t, lines[2], "revoked")
	assert.Contains(t, lines[2], "key compromise")
	assert.Contains(t, lines[2], "destroyed")
	assert.Contains(t, lines[3], "active")
	assert.Contains(t, lines[3], "in token")

	r = runCLI(t, "keys", "list", d, "--format", "json")
	require.Equal(t, 0, r.code)
	var list []map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &list))
	require.Len(t, list, 3)
	assert.Equal(t, "revoked", list[1]["state"])

	// export: the manifest verifies offline from the pinned first key id,
	// and --pem gives a key that verifies an Ed25519 signature by itself.
	r = runCLI(t, "keys", "export", d, "--pinned", first)
	require.Equal(t, 0, r.code)
	v, err := manifest.Verify([]byte(r.stdout), first)
	require.NoError(t, err)
	assert.Len(t, v.Keys, 3)
	r = runCLI(t, "keys", "export", d, "--pinned", second)
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, manifest.ErrInvalid)

	r = runCLI(t, "keys", "export", d, "--pem", v.Active().ID)
	require.Equal(t, 0, r.code)
	pub, alg, err := manifest.ParsePublicKeyPEM(r.stdout)
	require.NoError(t, err)
	require.Equal(t, manifest.Ed25519, alg)
	// Sign through the service over the same token and verify with the PEM.
	tok, closeTok, err := hsm.Open(context.Background(), hsm.Config{TokenLabel: "tradecore", PINFile: filepath.Join(creds, softhsm.UserPINFile)})
	require.NoError(t, err)
	svc, closeSvc, err := hsm.NewService(context.Background(), tok, hsm.ServiceConfig{Dir: filepath.Join(dd, "keys"), CheckInterval: -1})
	require.NoError(t, err)
	sig, err := svc.Sign(context.Background(), []byte("hello"))
	require.NoError(t, err)
	require.NoError(t, closeSvc())
	require.NoError(t, closeTok())
	assert.True(t, ed25519.Verify(pub.(ed25519.PublicKey), []byte("hello"), sig.Sig))

	r = runCLI(t, "keys", "export", d, "--pem", "ffffffffffffffffffffffffffffffff")
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, hsm.ErrKeyNotFound)

	// Tampering with the manifest file is detected by every command.
	mpath := filepath.Join(dd, "keys", "manifest.json")
	data, err := os.ReadFile(mpath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(mpath, bytes.Replace(data, []byte("key compromise"), []byte("routine change"), 1), 0o644))
	r = runCLI(t, "keys", "list", d)
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, manifest.ErrInvalid)
}

func TestKeysCLIUsageErrors(t *testing.T) {
	d := "--data-dir=" + t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"keys"}, ""},
		{"unknown command", []string{"keys", "frobnicate"}, `unknown keys command "frobnicate"`},
		{"bad format", []string{"keys", "list", d, "--format", "yaml"}, `--format "yaml"`},
		{"revoke without id", []string{"keys", "revoke", d, "--reason", "x"}, "exactly one key id"},
		{"revoke without reason", []string{"keys", "revoke", "abc", d}, "needs --reason"},
		{"revoke bad time", []string{"keys", "revoke", "abc", d, "--reason", "x", "--at", "yesterday"}, "--at"},
		{"unknown flag", []string{"keys", "status", "--nope"}, "flag provided but not defined"},
		{"token flag on a read-only command", []string{"keys", "list", d, "--module", "/x.so"}, "flag provided but not defined: -module"},
		{"pin flag on export", []string{"keys", "export", d, "--pin-file", "/x"}, "flag provided but not defined: -pin-file"},
		{"verify without pin", []string{"keys", "verify", d}, "needs --pinned"},
		{"seen without pin", []string{"keys", "list", d, "--seen", "/x"}, "--seen needs --pinned"},
		{"module without pin", []string{"keys", "rotate", d, "--module", "/x.so"}, "--module needs --pin-file"},
		{"max age not whole seconds", []string{"keys", "init", d, "--max-age", "1500ms"}, "whole seconds"},
		{"init bad algorithm", []string{"keys", "init", d, "--algorithm", "rsa"}, `--algorithm "rsa"`},
		{"extra argument", []string{"keys", "list", "extra", d}, "takes no arguments"},
		{"signer without socket", []string{"signer", d}, "needs --socket"},
		{"signer bad uid", []string{"signer", d, "--socket", "/tmp/x", "--allow-uid", "root"}, "--allow-uid"},
		{"signer bad max conns", []string{"signer", d, "--socket", "/tmp/x", "--max-conns", "0"}, "--max-conns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, tc.args...)
			assert.Equal(t, 2, r.code, "err: %v", r.err)
			require.ErrorIs(t, r.err, errUsage)
			assert.Contains(t, r.err.Error(), tc.want)
		})
	}
	for _, args := range [][]string{{"keys", "init", "-h"}, {"signer", "-h"}, {"keys", "verify", "--help"}, {"keys", "revoke", "-help"}} {
		r := runCLI(t, args...)
		assert.Equal(t, 0, r.code, "%v: help is not an error", args)
		assert.Contains(t, r.stdout, "usage: tradecore "+strings.Join(args[:len(args)-1], " "), "help on stdout")
		assert.Empty(t, r.stderr)
	}
	r := runCLI(t, "keys", "init", "-h")
	assert.Contains(t, r.stdout, "-credentials-dir")
	assert.NotContains(t, runCLI(t, "keys", "list", "-h").stdout, "-module", "list has no token flags")
	r = runCLI(t, "keys", "help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "revoke ID --reason R")
	r = runCLI(t, "help")
	assert.Contains(t, r.stdout, "keys ")
	assert.Contains(t, r.stdout, "signer ")
}

func TestKeysCLIMissingTokenAndWrongPIN(t *testing.T) {
	needSoftHSM(t)
	dd := t.TempDir()
	d := "--data-dir=" + dd
	r := runCLI(t, "keys", "init", d)
	require.Equal(t, 0, r.code, "err: %v", r.err)

	// A manifest exists but the token label does not.
	r = runCLI(t, "keys", "rotate", d, "--token", "other")
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, softhsm.ErrTokenNotFound)

	// --module without SOFTHSM2_CONF: the error says why the token is missing.
	mod, _ := softhsm.FindModule()
	bad := filepath.Join(t.TempDir(), "bad.pin")
	require.NoError(t, os.WriteFile(bad, []byte("1234\n"), 0o600))
	os.Unsetenv(softhsm.EnvConf)
	r = runCLI(t, "keys", "rotate", d, "--module", mod, "--pin-file", bad)
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, hsm.ErrTokenMissing)
	assert.Contains(t, r.err.Error(), "SOFTHSM2_CONF is not set")
	assert.Contains(t, r.err.Error(), "--token")
	assert.NotContains(t, r.err.Error(), "Config.", "errors name flags, not Go fields")
	// Set but empty: SoftHSM cannot even initialise; the error says why.
	t.Setenv(softhsm.EnvConf, "")
	r = runCLI(t, "keys", "rotate", d, "--module", mod, "--pin-file", bad)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err.Error(), "SOFTHSM2_CONF is set but empty")

	// Wrong PIN through --pin-file with the module given explicitly.
	t.Setenv(softhsm.EnvConf, filepath.Join(dd, "softhsm", "softhsm2.conf"))
	r = runCLI(t, "keys", "rotate", d, "--module", mod, "--pin-file", bad)
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, hsm.ErrWrongPIN)
	assert.NotContains(t, r.err.Error(), "1234")
	assert.Contains(t, r.err.Error(), "--pin-file")

	r = runCLI(t, "keys", "rotate", d, "--module", mod, "--pin-env", "TC_NO_SUCH_VAR")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err.Error(), "--pin-env TC_NO_SUCH_VAR: the variable is not set")
	r = runCLI(t, "keys", "rotate", d, "--module", mod, "--pin-file", "/nonexistent/pin")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err.Error(), "--pin-file /nonexistent/pin")

	// The local token without its credentials folder.
	t.Setenv("TRADECORE_CREDENTIALS_DIR", t.TempDir())
	r = runCLI(t, "keys", "rotate", d)
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err.Error(), "--credentials-dir")
	t.Setenv("TRADECORE_CREDENTIALS_DIR", filepath.Join(dd, "creds"))
	r = runCLI(t, "keys", "rotate", d)
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, softhsm.ErrPINInDataDir)

	r = runCLI(t, "keys", "rotate", d, "--module", "/nonexistent.so", "--pin-file", bad)
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, hsm.ErrModuleMissing)
}

// TestMissingManifestIsNotANewRoot: with the manifest deleted but keys in the
// token, neither `keys init` nor `serve` makes a new first key; both fail
// and name the recovery.
func TestMissingManifestIsNotANewRoot(t *testing.T) {
	needSoftHSM(t)
	dd := t.TempDir()
	d := "--data-dir=" + dd
	r := runCLI(t, "keys", "init", d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	require.NoError(t, os.Remove(filepath.Join(dd, "keys", "manifest.json")))
	for _, args := range [][]string{{"keys", "init", d}, {"serve", d, "--duration", "100ms"}} {
		r = runCLI(t, args...)
		assert.Equal(t, 1, r.code, "%v", args)
		require.ErrorIs(t, r.err, hsm.ErrManifestMissing, "%v", args)
		assert.Contains(t, r.err.Error(), "--new-root")
		assert.NotContains(t, r.stdout, "initialised")
	}
	assert.NoFileExists(t, filepath.Join(dd, "keys", "manifest.json"))
	r = runCLI(t, "keys", "init", d, "--new-root", "--format", "json")
	require.Equal(t, 0, r.code, "err: %v", r.err)
	assert.Contains(t, r.stdout, `"created": true`)
}

// TestRevokeRetiredKeyKeepsActive: the CLI says so, and the active key is
// the same before and after.
func TestRevokeRetiredKeyKeepsActive(t *testing.T) {
	needSoftHSM(t)
	d := "--data-dir=" + t.TempDir()
	r := runCLI(t, "keys", "init", d, "--format", "json")
	require.Equal(t, 0, r.code, "err: %v", r.err)
	var out struct {
		FirstKeyID string `json:"first_key_id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	r = runCLI(t, "keys", "rotate", d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	before := runCLI(t, "keys", "status", d, "--format", "json").stdout
	r = runCLI(t, "keys", "revoke", out.FirstKeyID, d, "--reason", "found on a backup")
	require.Equal(t, 0, r.code, "err: %v", r.err)
	assert.Contains(t, r.stdout, "active key unchanged")
	after := runCLI(t, "keys", "status", d, "--format", "json").stdout
	var a, b struct {
		ActiveKey struct{ ID string } `json:"active_key"`
	}
	require.NoError(t, json.Unmarshal([]byte(before), &b))
	require.NoError(t, json.Unmarshal([]byte(after), &a))
	assert.Equal(t, b.ActiveKey.ID, a.ActiveKey.ID)

	// export --out writes the file; --pinned @FILE reads the pin from a file.
	pinFile := filepath.Join(t.TempDir(), "root.id")
	require.NoError(t, os.WriteFile(pinFile, []byte(out.FirstKeyID+"\n"), 0o644))
	outFile := filepath.Join(t.TempDir(), "m.json")
	r = runCLI(t, "keys", "export", d, "--pinned", "@"+pinFile, "--out", outFile)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	assert.Empty(t, r.stdout)
	data, err := os.ReadFile(outFile)
	require.NoError(t, err)
	_, err = manifest.Verify(data, out.FirstKeyID)
	require.NoError(t, err)
	r = runCLI(t, "keys", "status", d, "--pinned", "@"+pinFile)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	assert.Contains(t, r.stdout, "pinned, fresh")
}
