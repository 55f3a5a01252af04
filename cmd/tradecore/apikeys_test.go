package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/gateway/apikey"
)

func TestAPIKeysCLI(t *testing.T) {
	needSoftHSM(t)
	dd := t.TempDir()
	d := "--data-dir=" + dd

	r := runCLI(t, "apikeys", "create", d, "--user", "u-1", "--account", "7", "--scope", "trade", "--format", "json", "--out", filepath.Join(dd, "demo-key.json"))
	require.Equal(t, 0, r.code, "stderr: %s err: %v", r.stderr, r.err)
	var created apikeyView
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &created))
	require.Len(t, created.Secret, 64)
	require.Equal(t, "active", created.State)
	assert.Contains(t, r.stderr, "shown once")

	var kf KeyFile
	data, err := os.ReadFile(filepath.Join(dd, "demo-key.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &kf))
	require.Equal(t, KeyFile{KeyID: created.ID, Secret: created.Secret, Account: 7}, kf)

	store, err := os.ReadFile(filepath.Join(dd, "gateway", apikey.File))
	require.NoError(t, err)
	assert.NotContains(t, string(store), created.Secret, "the store never holds the secret in plain text")

	r = runCLI(t, "apikeys", "list", d)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, created.ID)
	assert.NotContains(t, r.stdout, created.Secret, "list never shows a secret")

	r = runCLI(t, "apikeys", "create", d, "--user", "u-1", "--account", "7")
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, apikey.ErrExists)

	r = runCLI(t, "apikeys", "rotate", d, created.ID, "--format", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var rotated apikeyView
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rotated))
	require.Equal(t, created.ID, rotated.RotatedFrom)
	require.NotEqual(t, created.Secret, rotated.Secret)

	r = runCLI(t, "apikeys", "revoke", d, rotated.ID)
	assert.Equal(t, 2, r.code, "--reason is required")
	r = runCLI(t, "apikeys", "revoke", d, rotated.ID, "--reason", "test")
	require.Equal(t, 0, r.code, r.stderr)
	r = runCLI(t, "apikeys", "list", d, "--format", "json")
	require.Equal(t, 0, r.code)
	var views []apikeyView
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &views))
	require.Len(t, views, 2)
	assert.Equal(t, "rotated (grace)", views[0].State)
	assert.Equal(t, "revoked", views[1].State)

	// Keys bound to an attested device.
	const dev = "00112233445566778899aabbccddeeff"
	r = runCLI(t, "apikeys", "create", d, "--user", "u-3", "--account", "9", "--require-device", "any", "--format", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var anyDev apikeyView
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &anyDev))
	require.Equal(t, "any", anyDev.RequireDevice)
	r = runCLI(t, "apikeys", "create", d, "--user", "u-4", "--account", "9", "--require-device", dev)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "device:  "+dev)
	r = runCLI(t, "apikeys", "list", d)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "DEVICE")
	assert.Regexp(t, anyDev.ID+`\s+u-3\s+9\s+trade\s+any\s`, r.stdout)
	assert.Regexp(t, `u-4\s+9\s+trade\s+`+dev+`\s`, r.stdout)
	assert.Regexp(t, created.ID+`\s+u-1\s+7\s+trade\s+-\s`, r.stdout, "no requirement shows as -")
	r = runCLI(t, "apikeys", "list", d, "--format", "json")
	require.Equal(t, 0, r.code)
	views = nil
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &views))
	require.Len(t, views, 4)
	assert.Equal(t, dev, views[3].RequireDevice)
	r = runCLI(t, "apikeys", "create", d, "--user", "u-5", "--account", "9", "--require-device", "some")
	assert.Equal(t, 2, r.code, "a requirement that is neither a device id nor any is a usage error")
	assert.ErrorIs(t, r.err, apikey.ErrInvalid)

	r = runCLI(t, "apikeys", "frobnicate", d)
	assert.Equal(t, 2, r.code)
	r = runCLI(t, "apikeys", "create", d, "--user", "u-2", "--scope", "trade")
	assert.Equal(t, 1, r.code, "a trade key needs an account")
	require.ErrorIs(t, r.err, apikey.ErrInvalid)
}
