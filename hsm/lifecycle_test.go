package hsm_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/internal/atomicfile"
	"github.com/tradecore/tradecore/internal/hsmtest"
)

// fakeLog captures audit records; fail makes Record fail.
type fakeLog struct {
	mu   sync.Mutex
	recs []fakeRecord
	fail error
}

type fakeRecord struct {
	typ  string
	body json.RawMessage
}

func (l *fakeLog) Record(_ context.Context, typ string, body any) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return 0, l.fail
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	l.recs = append(l.recs, fakeRecord{typ, b})
	return uint64(len(l.recs) - 1), nil
}

func (l *fakeLog) setFail(err error) { l.mu.Lock(); l.fail = err; l.mu.Unlock() }

func (l *fakeLog) records() []fakeRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]fakeRecord(nil), l.recs...)
}

func readManifest(t *testing.T, dir, pin string) *manifest.Verified {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, hsm.ManifestFile))
	require.NoError(t, err)
	v, err := manifest.Verify(data, pin)
	require.NoError(t, err)
	return v
}

// TestPolicyKept: the algorithm and max age given at init are the manifest's
// policy; manual, scheduled and start-time rotations follow it, whatever the
// later service's config says; a policy change is explicit.
func TestPolicyKept(t *testing.T) {
	tok, _ := hsmtest.Open(t)
	ctx := context.Background()
	dir := t.TempDir()
	clk := &fakeClock{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	_, err := hsm.Init(ctx, tok, hsm.ServiceConfig{Dir: dir, Algorithm: hsm.ECDSAP256, MaxAge: 2 * time.Minute, Now: clk.Now})
	require.NoError(t, err)
	// A later service with a default config (what `keys rotate` and the
	// signer run).
	svc, closeSvc, err := hsm.NewService(ctx, tok, hsm.ServiceConfig{Dir: dir, Now: clk.Now, CheckInterval: -1, RefreshInterval: -1})
	require.NoError(t, err)
	defer closeSvc()
	k0 := svc.Active()
	assert.Equal(t, hsm.ECDSAP256, k0.Algorithm)
	assert.Equal(t, k0.ActiveFrom.Add(2*time.Minute), k0.Expires)

	k1, err := svc.Rotate(ctx)
	require.NoError(t, err)
	assert.Equal(t, hsm.ECDSAP256, k1.Algorithm, "manual rotation keeps the algorithm")
	assert.Equal(t, k1.ActiveFrom.Add(2*time.Minute), k1.Expires, "and the max age")

	clk.Set(k1.Expires)
	sig, err := svc.Sign(ctx, []byte("m"))
	require.NoError(t, err)
	k2 := svc.Active()
	assert.Equal(t, k2.ID, sig.KeyID)
	assert.NotEqual(t, k1.ID, k2.ID, "rotated at its age")
	assert.Equal(t, hsm.ECDSAP256, k2.Algorithm, "scheduled rotation keeps the algorithm")
	assert.Equal(t, 2*time.Minute, k2.Expires.Sub(k2.ActiveFrom))

	k3, err := svc.RotateToPolicy(ctx, manifest.Policy{Algorithm: hsm.Ed25519, MaxAgeSeconds: 3600})
	require.NoError(t, err)
	assert.Equal(t, hsm.Ed25519, k3.Algorithm)
	assert.Equal(t, time.Hour, k3.Expires.Sub(k3.ActiveFrom))
	k4, err := svc.Rotate(ctx)
	require.NoError(t, err)
	assert.Equal(t, hsm.Ed25519, k4.Algorithm, "the new policy holds for later rotations")
	v := readManifest(t, dir, k0.ID)
	assert.Equal(t, manifest.Policy{Algorithm: hsm.Ed25519, MaxAgeSeconds: 3600}, v.Policy)
}

// TestRetiredAndRevokedKeysAreDestroyed: once a key is retired or revoked its
// private object is gone from the token (so nothing, not even a PIN holder
// with pkcs11-tool, can sign with it), and the manifest says so.
func TestRetiredAndRevokedKeysAreDestroyed(t *testing.T) {
	tok, _ := hsmtest.Open(t)
	ctx := context.Background()
	dir := t.TempDir()
	clk := &fakeClock{now: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	svc := newService(t, tok, dir, clk, hsm.Ed25519)
	k0 := svc.Active()
	k1, err := svc.Rotate(ctx)
	require.NoError(t, err)
	_, err = tok.FindKey(ctx, k0.ID)
	require.ErrorIs(t, err, hsm.ErrKeyNotFound, "retired private key destroyed")

	clk.Set(clk.Now().Add(time.Minute))
	k2, err := svc.Revoke(ctx, k1.ID, time.Time{}, "stolen laptop")
	require.NoError(t, err)
	_, err = tok.FindKey(ctx, k1.ID)
	require.ErrorIs(t, err, hsm.ErrKeyNotFound, "revoked private key destroyed")
	_, err = tok.FindKey(ctx, k2.ID)
	require.NoError(t, err)

	// Revoking a retired key leaves the active key in place.
	k3, err := svc.Revoke(ctx, k0.ID, time.Time{}, "found on a backup")
	require.NoError(t, err)
	assert.Equal(t, k2.ID, k3.ID, "revoking a retired key does not replace the active one")

	v := readManifest(t, dir, k0.ID)
	for _, id := range []string{k0.ID, k1.ID} {
		assert.NotZero(t, v.Key(id).DestroyedSeq, "manifest records the destruction of %s", id)
	}
	assert.Zero(t, v.Key(k2.ID).DestroyedSeq)
}

// TestEveryEntryIsRecorded: each manifest entry becomes one audit record of
// the matching type, with the entry's hash and no key material; a failing
// audit log stops the new key from signing until the entry is recorded.
func TestEveryEntryIsRecorded(t *testing.T) {
	tok, _ := hsmtest.Open(t)
	ctx := context.Background()
	dir := t.TempDir()
	log := &fakeLog{}
	cfg := hsm.ServiceConfig{Dir: dir, CheckInterval: -1, RefreshInterval: -1, Recorder: log}
	_, err := hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	svc, closeSvc, err := hsm.NewService(ctx, tok, cfg)
	require.NoError(t, err)
	defer closeSvc()
	k0 := svc.Active()
	_, err = svc.Rotate(ctx)
	require.NoError(t, err)
	_, err = svc.Revoke(ctx, svc.Active().ID, time.Time{}, "stolen <laptop> & bag")
	require.NoError(t, err)

	v := readManifest(t, dir, k0.ID)
	recs := log.records()
	require.Len(t, recs, len(v.Manifest.Entries), "one record per entry")
	wantType := map[manifest.Event]string{manifest.EventInit: hsm.RecordKeysInit, manifest.EventRotate: hsm.RecordKeysRotated,
		manifest.EventRevoke: hsm.RecordKeysRevoked, manifest.EventDestroy: hsm.RecordKeysDestroyed}
	for i, r := range recs {
		e := v.Manifest.Entries[i]
		assert.Equal(t, wantType[e.Event], r.typ)
		var body hsm.KeyRecord
		require.NoError(t, json.Unmarshal(r.body, &body))
		assert.Equal(t, uint64(i), body.Seq)
		assert.Equal(t, v.EntryHash(i), body.EntryHash)
		assert.Equal(t, k0.ID, body.FirstKeyID)
		assert.NotContains(t, string(r.body), "PUBLIC KEY")
		assert.NotContains(t, string(r.body), "PRIVATE")
		assert.NotContains(t, string(r.body), `"sig"`)
	}

	// The audit log fails: the rotation is written but refused for signing.
	log.setFail(errors.New("disk full"))
	k, err := svc.Rotate(ctx)
	require.ErrorIs(t, err, hsm.ErrNotRecorded)
	_, err = svc.Sign(ctx, []byte("m"))
	require.ErrorIs(t, err, hsm.ErrNotRecorded, "an unrecorded key does not sign")
	log.setFail(nil)
	sig, err := svc.Sign(ctx, []byte("m"))
	require.NoError(t, err, "recorded at the next refresh, then it signs")
	assert.Equal(t, k.ID, sig.KeyID)
	assert.Len(t, log.records(), len(readManifest(t, dir, k0.ID).Manifest.Entries))

	// A restart with the same audit state records nothing twice.
	n := len(log.records())
	_, closeSvc2, err := hsm.NewService(ctx, tok, cfg)
	require.NoError(t, err)
	require.NoError(t, closeSvc2())
	assert.Len(t, log.records(), n)
}

// TestTwoServicesShareTheManifest is the in-process version of the issue's
// first finding: two services (as two processes would) on one manifest. A
// revocation by one takes effect in the other's next signature, and the
// other's rotation keeps the revocation.
func TestTwoServicesShareTheManifest(t *testing.T) {
	tokA, st := hsmtest.Open(t)
	ctx := context.Background()
	tokB, closeB, err := hsm.Open(ctx, hsmtest.Config(st))
	require.NoError(t, err)
	defer closeB()
	dir := t.TempDir()
	cfg := hsm.ServiceConfig{Dir: dir, CheckInterval: -1, RefreshInterval: -1}
	_, err = hsm.Init(ctx, tokA, cfg)
	require.NoError(t, err)
	a, closeA, err := hsm.NewService(ctx, tokA, cfg)
	require.NoError(t, err)
	defer closeA()
	b, closeSvcB, err := hsm.NewService(ctx, tokB, cfg)
	require.NoError(t, err)
	defer closeSvcB()
	k0 := b.Active()

	_, err = a.Revoke(ctx, k0.ID, time.Time{}, "stolen laptop")
	require.NoError(t, err)
	sig, err := b.Sign(ctx, []byte("m"))
	require.NoError(t, err)
	assert.NotEqual(t, k0.ID, sig.KeyID, "b never signs with the key a revoked")
	assert.Equal(t, a.Active().ID, sig.KeyID)

	_, err = b.Rotate(ctx)
	require.NoError(t, err)
	v := readManifest(t, dir, k0.ID)
	assert.Equal(t, "stolen laptop", v.Key(k0.ID).RevokeReason, "b's rotation keeps a's revocation")
	_, err = a.Sign(ctx, []byte("m"))
	require.NoError(t, err)
	assert.Equal(t, b.Active().ID, a.Active().ID)
}

// TestServiceRefusesAnOlderManifest: replacing the file with an older copy
// (a restored backup, an attacker's cut) stops signing instead of rolling
// the service back.
func TestServiceRefusesAnOlderManifest(t *testing.T) {
	tok, _ := hsmtest.Open(t)
	ctx := context.Background()
	dir := t.TempDir()
	svc := newService(t, tok, dir, &fakeClock{now: time.Now()}, hsm.Ed25519)
	path := filepath.Join(dir, hsm.ManifestFile)
	old, err := os.ReadFile(path)
	require.NoError(t, err)
	_, err = svc.Rotate(ctx)
	require.NoError(t, err)
	require.NoError(t, atomicfile.WriteFile(path, old, 0o644))
	_, err = svc.Sign(ctx, []byte("m"))
	require.ErrorIs(t, err, manifest.ErrStale)
	_, err = svc.Rotate(ctx)
	require.ErrorIs(t, err, manifest.ErrStale, "and never writes on top of it")
	require.NoError(t, os.Remove(path))
	_, err = svc.Sign(ctx, []byte("m"))
	require.Error(t, err, "a deleted manifest stops signing too")
}

// TestInitRefusesWhenTheManifestIsMissing: deleting manifest.json does not
// make a new root while the token holds keys; --new-root does, deliberately,
// after destroying the old private keys.
func TestInitRefusesWhenTheManifestIsMissing(t *testing.T) {
	tok, _ := hsmtest.Open(t)
	ctx := context.Background()
	dir := t.TempDir()
	cfg := hsm.ServiceConfig{Dir: dir}
	_, err := hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	old := readManifest(t, dir, firstID(t, dir)).Keys[0].ID
	require.NoError(t, os.Remove(filepath.Join(dir, hsm.ManifestFile)))

	created, err := hsm.Init(ctx, tok, cfg)
	require.ErrorIs(t, err, hsm.ErrManifestMissing)
	assert.False(t, created)
	assert.Contains(t, err.Error(), "--new-root")
	assert.NoFileExists(t, filepath.Join(dir, hsm.ManifestFile))

	cfg.NewRoot = true
	created, err = hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	assert.True(t, created)
	assert.NotEqual(t, old, firstID(t, dir))
	_, err = tok.FindKey(ctx, old)
	require.ErrorIs(t, err, hsm.ErrKeyNotFound, "the lost manifest's keys cannot sign")
}

func firstID(t *testing.T, dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, hsm.ManifestFile))
	require.NoError(t, err)
	m, err := manifest.Parse(data)
	require.NoError(t, err)
	return m.Entries[0].Key.ID
}

// TestRestoredTokenBackupCannotResurrectAKey: a backup of the token taken
// while a key was active brings its private object back when restored; the
// next service start (or key command) destroys it again.
func TestRestoredTokenBackupCannotResurrectAKey(t *testing.T) {
	st := hsmtest.NewToken(t)
	ctx := context.Background()
	dir := t.TempDir()
	cfg := hsm.ServiceConfig{Dir: dir, CheckInterval: -1, RefreshInterval: -1}
	open := func() (*hsm.Token, *hsm.Service, func()) {
		tok, closeTok, err := hsm.Open(ctx, hsmtest.Config(st))
		require.NoError(t, err)
		svc, closeSvc, err := hsm.NewService(ctx, tok, cfg)
		require.NoError(t, err)
		return tok, svc, func() { closeSvc(); closeTok() }
	}
	tok, closeTok, err := hsm.Open(ctx, hsmtest.Config(st))
	require.NoError(t, err)
	_, err = hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	closeTok()
	backup := t.TempDir()
	copyTree(t, st.TokenDir, backup) // the first key is active here

	_, svc, closeAll := open()
	stolen := svc.Active().ID
	_, err = svc.Rotate(ctx)
	require.NoError(t, err)
	_, err = svc.Revoke(ctx, stolen, time.Time{}, "stolen laptop")
	require.NoError(t, err)
	active := svc.Active().ID
	closeAll()

	// Restore the old token files, keeping the newer ones (the active key's).
	copyTree(t, backup, st.TokenDir)
	raw, closeRaw, err := hsm.Open(ctx, hsmtest.Config(st))
	require.NoError(t, err)
	_, err = raw.FindKey(ctx, stolen)
	require.NoError(t, err, "the restore brought the revoked private key back")
	closeRaw()
	tok, svc, closeAll = open()
	defer closeAll()
	_, err = tok.FindKey(ctx, stolen)
	require.ErrorIs(t, err, hsm.ErrKeyNotFound, "the restored revoked key is destroyed again at start")
	assert.Equal(t, active, svc.Active().ID)
	_, err = svc.Sign(ctx, []byte("m"))
	require.NoError(t, err)
}

// TestServiceSignsC2SPNotes is the audit log's use: a checkpoint note signed
// through the service verifies with the active key's note_verifier from the
// manifest (golang.org/x/mod/sumdb/note), and the key is the one KeyAt gives
// for the newest manifest entry.
func TestServiceSignsC2SPNotes(t *testing.T) {
	tok, _ := hsmtest.Open(t)
	ctx := context.Background()
	svc := newService(t, tok, t.TempDir(), &fakeClock{now: time.Now()}, hsm.Ed25519)
	_, err := svc.Rotate(ctx)
	require.NoError(t, err)
	text := []byte("tradecore\n42\nq5BZ6X1Cn1GbxiTAbGdW0Ax3ekD7tcHFpw3Y5zNVxLo=\n")
	sig, err := svc.Sign(ctx, text)
	require.NoError(t, err)
	m, err := svc.Manifest(ctx)
	require.NoError(t, err)
	v, err := manifest.Verify(m, svc.FirstKeyID())
	require.NoError(t, err)
	k := v.Key(sig.KeyID)
	require.NotNil(t, k)
	assert.Equal(t, k.ID, v.KeyAt(uint64(len(v.Manifest.Entries)-1)).ID)
	verifier, err := note.NewVerifier(k.NoteVerifier)
	require.NoError(t, err)
	assert.True(t, verifier.Verify(text, sig.Sig))
}

// TestRestartOnAnOlderManifestIsRefused: an older manifest put back while no
// service runs names an active key whose private object was destroyed at the
// rotation, so a restart refuses instead of signing; with an audit recorder
// the audit state refuses it as well.
func TestRestartOnAnOlderManifestIsRefused(t *testing.T) {
	tok, _ := hsmtest.Open(t)
	ctx := context.Background()
	dir := t.TempDir()
	log := &fakeLog{}
	cfg := hsm.ServiceConfig{Dir: dir, CheckInterval: -1, RefreshInterval: -1, Recorder: log}
	_, err := hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	path := filepath.Join(dir, hsm.ManifestFile)
	old, err := os.ReadFile(path)
	require.NoError(t, err)
	svc, closeSvc, err := hsm.NewService(ctx, tok, cfg)
	require.NoError(t, err)
	_, err = svc.Rotate(ctx)
	require.NoError(t, err)
	require.NoError(t, closeSvc())

	require.NoError(t, atomicfile.WriteFile(path, old, 0o644))
	_, _, err = hsm.NewService(ctx, tok, cfg)
	require.Error(t, err, "restart on an older manifest")
	cfg.Recorder = nil
	_, _, err = hsm.NewService(ctx, tok, cfg)
	require.ErrorIs(t, err, hsm.ErrKeyNotFound, "its active key was destroyed at the rotation")
}
