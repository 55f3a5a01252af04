package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/hsm/remote"
)

// TestSignerServesOverSocket runs `tradecore signer` in-process, signs over
// its socket with the remote client, and stops it with the context.
func TestSignerServesOverSocket(t *testing.T) {
	needSoftHSM(t)
	dd := t.TempDir()
	d := "--data-dir=" + dd
	r := runCLI(t, "keys", "init", d)
	require.Equal(t, 0, r.code, "err: %v", r.err)

	sock := filepath.Join(t.TempDir(), "signer.sock")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"signer", d, "--socket", sock}, &bytes.Buffer{}, &stderr)
	}()
	var cl *remote.Client
	var closeCl func() error
	require.Eventually(t, func() bool {
		var err error
		cl, closeCl, err = remote.Dial(ctx, sock, remote.ClientConfig{})
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	var s hsm.Signer = cl
	sig, err := s.Sign(ctx, []byte("over the socket"))
	require.NoError(t, err)
	m, err := s.Manifest(ctx)
	require.NoError(t, err)
	v, err := manifest.Verify(m, sig.KeyID)
	require.NoError(t, err)
	assert.True(t, manifest.VerifyMessage(v.Active().Public, []byte("over the socket"), sig.Sig))
	require.NoError(t, closeCl())

	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("signer did not stop")
	}
	assert.Contains(t, stderr.String(), `"msg":"signer: serving"`)
	assert.Contains(t, stderr.String(), `"allow_uids":"[`+strconv.Itoa(os.Getuid())+`]"`, "the effective allow list, never null")
	assert.NotContains(t, stderr.String(), "null")
	_, err = os.Stat(sock)
	assert.True(t, os.IsNotExist(err), "socket removed on exit")
}
