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

	r = runCLI(t, "apikeys", "frobnicate", d)
	assert.Equal(t, 2, r.code)
	r = runCLI(t, "apikeys", "create", d, "--user", "u-2", "--scope", "trade")
	assert.Equal(t, 1, r.code, "a trade key needs an account")
	require.ErrorIs(t, r.err, apikey.ErrInvalid)
}
