package hsmsign_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/audit/hsmsign"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/internal/testenv"
	"github.com/tradecore/tradecore/softhsm"
)

// TestCheckpointsSignedInSoftHSM signs checkpoints with the real HSM signing
// service (SoftHSM2, Ed25519 through CKM_EDDSA), including a handover
// checkpoint at rotation, and verifies them offline and with the standard
// signed-note verifier.
func TestCheckpointsSignedInSoftHSM(t *testing.T) {
	_, err := softhsm.FindModule()
	testenv.Need(t, err == nil, "SoftHSM2 not installed: apt-get install softhsm2")
	t.Setenv(softhsm.EnvConf, os.Getenv(softhsm.EnvConf))
	ctx := context.Background()
	base := t.TempDir()
	st, err := softhsm.Ensure(ctx, softhsm.Config{Dir: filepath.Join(base, "softhsm"), PINDir: filepath.Join(base, "credentials")})
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	tok, closeTok, err := hsm.Open(ctx, hsm.Config{Module: st.Module, TokenLabel: st.Label, PINFile: st.UserPINFile, Logger: log})
	require.NoError(t, err)
	defer closeTok()
	scfg := hsm.ServiceConfig{Dir: filepath.Join(base, "keys"), CheckInterval: -1, Logger: log}
	_, err = hsm.Init(ctx, tok, scfg)
	require.NoError(t, err)
	svc, closeSvc, err := hsm.NewService(ctx, tok, scfg)
	require.NoError(t, err)
	defer closeSvc()

	signer := hsmsign.New(svc)
	_, ok := signer.(audit.Rotator)
	require.True(t, ok, "the HSM service can hand keys over")
	dir := filepath.Join(base, "audit")
	l, cls, err := audit.Open(ctx, audit.Config{WriterConfig: audit.WriterConfig{Dir: dir, Logger: log}, Signer: signer, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	for i := 0; i < 5; i++ {
		_, err := l.Record(ctx, "test.signed", struct {
			N int `json:"n"`
		}{i})
		require.NoError(t, err)
	}
	_, err = l.Checkpoint(ctx)
	require.NoError(t, err)
	_, err = l.RotateKey(ctx)
	require.NoError(t, err)
	_, err = l.Record(ctx, "test.signed", struct{}{})
	require.NoError(t, err)
	require.NoError(t, cls())

	mj, err := svc.Manifest(ctx)
	require.NoError(t, err)
	v := svc.Verified()
	require.Len(t, v.Keys, 2)
	res, err := audit.VerifyDir(ctx, dir, audit.VerifyOptions{Manifest: mj, PinnedFirstKey: svc.FirstKeyID()})
	require.NoError(t, err)
	assert.Len(t, res.Keys, 2)
	notes, err := audit.ReadCheckpoints(dir)
	require.NoError(t, err)
	require.Len(t, notes, 3)
	for i, k := range v.Keys {
		nv, err := note.NewVerifier(k.NoteVerifier)
		require.NoError(t, err)
		_, err = note.Open(notes[1], note.VerifierList(nv))
		require.NoError(t, err, "handover checkpoint signed by key %d", i)
	}
}
