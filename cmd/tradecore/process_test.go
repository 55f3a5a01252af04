package main

import (
	"bytes"
	"context"
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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/hsm/remote"
	"github.com/tradecore/tradecore/internal/docverify"
)

// syncBuf is a goroutine-safe buffer for a child's stderr.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// tradecoreCmd runs the tradecore binary (this test binary, see TestMain) as
// a separate process and returns its stdout.
func tradecoreCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	exe, err := exec.LookPath("tradecore")
	require.NoError(t, err, "TestMain puts tradecore on PATH")
	var out, errb bytes.Buffer
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("tradecore %s: %w: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

type signed struct {
	started time.Time
	keyID   string
	msg     []byte
	sig     []byte
}

// TestLifecycleAcrossProcesses is the first finding end to end, with
// real processes: a `tradecore signer` serves while two `tradecore keys`
// processes rotate and revoke at the same moment, and the signer rotates by
// itself (max age 4 s). It must end in one manifest that both manifest.Verify
// and the documentation-only verifier accept, holding every rotation and the
// revocation; no signature requested after `keys revoke` returned may be made
// by the revoked key; the signer must refuse the revoked key by id and show
// the revocation in its manifest within RefreshInterval. A second signer on
// the same socket is refused and leaves the first serving.
func TestLifecycleAcrossProcesses(t *testing.T) {
	needSoftHSM(t)
	dd := t.TempDir()
	d := "--data-dir=" + dd
	root := filepath.Join(t.TempDir(), "root.id")
	_, err := tradecoreCmd(t, "keys", "init", d, "--max-age", "4s", "--root-out", root)
	require.NoError(t, err)
	pinB, err := os.ReadFile(root)
	require.NoError(t, err)
	pin := strings.TrimSpace(string(pinB))

	sock := filepath.Join(t.TempDir(), "s.sock")
	exe, err := exec.LookPath("tradecore")
	require.NoError(t, err)
	signerErr := &syncBuf{}
	signer := exec.Command(exe, "signer", d, "--socket", sock)
	signer.Stderr = signerErr
	require.NoError(t, signer.Start())
	exited := make(chan error, 1)
	go func() { exited <- signer.Wait() }()
	t.Cleanup(func() {
		if signer.ProcessState == nil {
			_ = signer.Process.Kill()
			<-exited
		}
	})
	ctx := context.Background()
	var cl *remote.Client
	require.Eventually(t, func() bool {
		c, closeCl, err := remote.Dial(ctx, sock, remote.ClientConfig{})
		if err != nil {
			return false
		}
		cl = c
		t.Cleanup(func() { closeCl() })
		return true
	}, 20*time.Second, 20*time.Millisecond, "signer did not start: %s", signerErr)

	// A second signer on the same socket is refused; the first still serves.
	_, err = tradecoreCmd(t, "signer", d, "--socket", sock)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "socket in use")
	_, err = cl.Sign(ctx, []byte("first signer still serves"))
	require.NoError(t, err)

	// Sign continuously through the socket.
	var mu sync.Mutex
	var sigs []signed
	var signErrs []string
	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			msg := fmt.Appendf(nil, "checkpoint %d", i)
			start := time.Now()
			s, err := cl.Sign(ctx, msg)
			if err != nil {
				mu.Lock()
				signErrs = append(signErrs, err.Error())
				mu.Unlock()
				continue // refusal is fine, a wrong key is not
			}
			mu.Lock()
			sigs = append(sigs, signed{start, s.KeyID, msg, s.Sig})
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	parallel := func(jobs ...func() error) {
		var wg sync.WaitGroup
		errs := make([]error, len(jobs))
		for i, j := range jobs {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = j() }()
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
	}
	rotate := func(n int) func() error {
		return func() error {
			for range n {
				if _, err := tradecoreCmd(t, "keys", "rotate", d); err != nil {
					return err
				}
			}
			return nil
		}
	}
	// Phase 1: two writers at once.
	parallel(rotate(3), rotate(2))

	// Phase 2: revoke the key the signer is using while the other process
	// rotates.
	s, err := cl.Sign(ctx, []byte("which key"))
	require.NoError(t, err)
	stolen := s.KeyID
	var revokedAt time.Time
	parallel(rotate(2), func() error {
		_, err := tradecoreCmd(t, "keys", "revoke", stolen, d, "--reason", "stolen laptop <&>")
		revokedAt = time.Now()
		return err
	})
	_, err = cl.SignWith(ctx, stolen, []byte("x"))
	require.ErrorIs(t, err, hsm.ErrKeyRetired, "the running signer refuses the revoked key")
	require.Eventually(t, func() bool {
		m, err := cl.Manifest(ctx)
		if err != nil {
			return false
		}
		v, err := manifest.Verify(m, pin)
		return err == nil && !v.Key(stolen).RevokedAt.IsZero()
	}, hsm.DefaultRefreshInterval+2*time.Second, 50*time.Millisecond, "the signer's manifest shows the revocation within RefreshInterval")

	// Phase 3: keep signing until the signer has rotated by itself at least
	// once (its key reaches the 4 s max age).
	require.Eventually(t, func() bool { return strings.Contains(signerErr.String(), "key rotated at its age") },
		30*time.Second, 50*time.Millisecond, "the signer never rotated by itself: %s", signerErr)
	close(stop)
	<-loopDone

	require.NoError(t, signer.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-exited:
		require.NoError(t, err, "signer exit: %s", signerErr)
	case <-time.After(20 * time.Second):
		t.Fatal("signer did not stop")
	}
	assert.NoFileExists(t, sock, "the signer removed its socket")

	// One consistent manifest, accepted by both verifiers.
	data, err := os.ReadFile(filepath.Join(dd, "keys", hsm.ManifestFile))
	require.NoError(t, err)
	v, err := manifest.Verify(data, pin)
	require.NoError(t, err)
	require.NoError(t, docverify.Verify(data, pin), "the documentation-only verifier accepts the final manifest")
	count := map[manifest.Event]int{}
	for _, e := range v.Manifest.Entries {
		count[e.Event]++
	}
	assert.Equal(t, 1, count[manifest.EventInit])
	assert.Equal(t, 1, count[manifest.EventRevoke], "the revocation survives every later write")
	assert.GreaterOrEqual(t, count[manifest.EventRotate], 3+2+2+1, "every CLI rotation and the signer's own")
	k := v.Key(stolen)
	assert.Equal(t, "stolen laptop <&>", k.RevokeReason)
	for i := range v.Keys[:len(v.Keys)-1] {
		assert.NotZero(t, v.Keys[i].DestroyedSeq, "retired key %s destroyed", v.Keys[i].ID)
	}
	assert.Equal(t, v.Policy, manifest.Policy{Algorithm: manifest.Ed25519, MaxAgeSeconds: 4})

	// Every signature verifies under its key; none requested after the
	// revoke command returned was made by the revoked key.
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, sigs)
	after := 0
	for _, sg := range sigs {
		key := v.Key(sg.keyID)
		require.NotNil(t, key, "signature by a key not in the manifest")
		require.True(t, manifest.VerifyMessage(key.Public, sg.msg, sg.sig))
		if sg.started.After(revokedAt) {
			after++
			require.NotEqual(t, stolen, sg.keyID, "signed with the revoked key after the revocation")
		}
	}
	assert.Positive(t, after, "signatures were made after the revocation")
	t.Logf("%d signatures, %d after the revocation; %d manifest entries (%v); %d refused signatures %q; signer errors: %d",
		len(sigs), after, len(v.Manifest.Entries), count, len(signErrs), signErrs[:min(3, len(signErrs))], strings.Count(signerErr.String(), `"level":"ERROR"`))
}
