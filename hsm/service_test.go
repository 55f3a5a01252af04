package hsm_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/internal/hsmtest"
)

// fakeClock is an injectable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func newService(t *testing.T, tok *hsm.Token, dir string, clk *fakeClock, alg hsm.Algorithm) *hsm.Service {
	t.Helper()
	ctx := context.Background()
	cfg := hsm.ServiceConfig{Dir: dir, Now: clk.Now, CheckInterval: -1, Algorithm: alg}
	_, err := hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	svc, closeSvc, err := hsm.NewService(ctx, tok, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { closeSvc() })
	return svc
}

func TestRotationAtExactly90Days(t *testing.T) {
	for _, alg := range []hsm.Algorithm{hsm.Ed25519, hsm.ECDSAP256} {
		t.Run(string(alg), func(t *testing.T) {
			tok, _ := hsmtest.Open(t)
			ctx := context.Background()
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			clk := &fakeClock{now: t0}
			svc := newService(t, tok, t.TempDir(), clk, alg)
			first := svc.Active()
			assert.Equal(t, t0.Add(90*24*time.Hour), first.Expires)
			assert.Equal(t, alg, first.Algorithm)

			clk.Set(t0.Add(90*24*time.Hour - time.Nanosecond))
			rotated, err := svc.CheckRotation(ctx)
			require.NoError(t, err)
			assert.False(t, rotated, "not rotated at 90d-1ns")
			assert.Equal(t, first.ID, svc.Active().ID)

			clk.Set(t0.Add(90 * 24 * time.Hour))
			rotated, err = svc.CheckRotation(ctx)
			require.NoError(t, err)
			assert.True(t, rotated, "rotated at 90d")
			second := svc.Active()
			assert.NotEqual(t, first.ID, second.ID)

			// The retired version never signs again; the new one does.
			_, err = svc.SignWith(ctx, first.ID, []byte("m"))
			require.ErrorIs(t, err, hsm.ErrKeyRetired)
			_, err = svc.SignWith(ctx, "00000000000000000000000000000000", []byte("m"))
			require.ErrorIs(t, err, hsm.ErrKeyNotFound)
			sig, err := svc.Sign(ctx, []byte("m"))
			require.NoError(t, err)
			assert.Equal(t, second.ID, sig.KeyID)
			assert.True(t, manifest.VerifyMessage(svc.Active().Public, []byte("m"), sig.Sig))

			// Sign itself rotates when the key is due and nobody checked.
			clk.Set(second.Expires)
			sig, err = svc.Sign(ctx, []byte("m"))
			require.NoError(t, err)
			assert.NotEqual(t, second.ID, sig.KeyID)

			m, err := svc.Manifest(ctx)
			require.NoError(t, err)
			v, err := manifest.Verify(m, first.ID)
			require.NoError(t, err)
			require.Len(t, v.Keys, 3)
			assert.Equal(t, t0.Add(90*24*time.Hour), v.Keys[0].RetiredAt)
		})
	}
}

func TestServiceRestartRotateRevoke(t *testing.T) {
	tok, st := hsmtest.Open(t)
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clk := &fakeClock{now: t0}
	cfg := hsm.ServiceConfig{Dir: dir, Now: clk.Now, CheckInterval: -1}

	_, _, err := hsm.NewService(ctx, tok, cfg)
	require.ErrorIs(t, err, hsm.ErrNotInitialized)
	created, err := hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	require.True(t, created)
	created, err = hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	require.False(t, created, "Init is idempotent")

	svc, closeSvc, err := hsm.NewService(ctx, tok, cfg)
	require.NoError(t, err)
	k0 := svc.Active()
	clk.Set(t0.Add(time.Hour))
	k1, err := svc.Rotate(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, k0.ID, k1.ID)
	require.NoError(t, closeSvc())

	// Restart: close and reopen the token and the service.
	tok2, closeTok2, err := hsm.Open(ctx, hsmtest.Config(st))
	require.NoError(t, err)
	defer closeTok2()
	svc, closeSvc, err = hsm.NewService(ctx, tok2, cfg)
	require.NoError(t, err)
	defer closeSvc()
	assert.Equal(t, k1.ID, svc.Active().ID, "active key found again after restart")

	// Revoke the active key from an earlier time: a new key takes over.
	clk.Set(t0.Add(2 * time.Hour))
	compromisedAt := t0.Add(90 * time.Minute)
	k2, err := svc.Revoke(ctx, k1.ID, compromisedAt, "key compromise")
	require.NoError(t, err)
	assert.NotEqual(t, k1.ID, k2.ID)
	_, err = svc.SignWith(ctx, k1.ID, []byte("x"))
	require.ErrorIs(t, err, hsm.ErrKeyRetired)
	_, err = svc.Revoke(ctx, k1.ID, time.Time{}, "again")
	require.ErrorIs(t, err, hsm.ErrAlreadyRevoked)
	_, err = svc.Revoke(ctx, k2.ID, clk.Now().Add(time.Hour), "future")
	require.Error(t, err)
	_, err = svc.Revoke(ctx, "ffffffffffffffffffffffffffffffff", time.Time{}, "unknown")
	require.ErrorIs(t, err, hsm.ErrKeyNotFound)

	data, err := os.ReadFile(filepath.Join(dir, hsm.ManifestFile))
	require.NoError(t, err)
	v, err := manifest.Verify(data, k0.ID)
	require.NoError(t, err)
	require.Len(t, v.Keys, 3)
	rk := v.Key(k1.ID)
	require.NotNil(t, rk)
	assert.Equal(t, compromisedAt, rk.RevokedAt)
	assert.Equal(t, "key compromise", rk.RevokeReason)
	assert.True(t, rk.ValidAt(t0.Add(80*time.Minute)), "signatures before the compromise stay valid")
	assert.False(t, rk.ValidAt(t0.Add(100*time.Minute)), "signatures after the compromise are invalid")
	events := []manifest.Event{}
	for _, e := range v.Manifest.Entries {
		events = append(events, e.Event)
	}
	assert.Equal(t, []manifest.Event{manifest.EventInit, manifest.EventRotate, manifest.EventDestroy, manifest.EventRevoke, manifest.EventDestroy}, events)
	assert.Equal(t, k2.ID, v.Active().ID)
	fi, err := os.Stat(filepath.Join(dir, hsm.ManifestFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	tmp, _ := filepath.Glob(filepath.Join(dir, ".manifest.json.tmp*"))
	assert.Empty(t, tmp, "no temp files left")
}

func TestServiceBackgroundRotation(t *testing.T) {
	tok, _ := hsmtest.Open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &fakeClock{now: t0}
	cfg := hsm.ServiceConfig{Dir: t.TempDir(), Now: clk.Now, CheckInterval: 5 * time.Millisecond, MaxAge: time.Hour}
	_, err := hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	svc, closeSvc, err := hsm.NewService(ctx, tok, cfg)
	require.NoError(t, err)
	defer closeSvc()
	first := svc.Active().ID
	clk.Set(t0.Add(time.Hour))
	require.Eventually(t, func() bool { return svc.Active().ID != first }, 5*time.Second, 5*time.Millisecond)
}

func TestServiceRotatesAtStart(t *testing.T) {
	tok, _ := hsmtest.Open(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &fakeClock{now: t0}
	cfg := hsm.ServiceConfig{Dir: t.TempDir(), Now: clk.Now, CheckInterval: -1}
	_, err := hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	clk.Set(t0.Add(100 * 24 * time.Hour))
	svc, closeSvc, err := hsm.NewService(ctx, tok, cfg)
	require.NoError(t, err)
	defer closeSvc()
	assert.Len(t, svc.Verified().Keys, 2, "an overdue key is rotated when the service starts")
}

func TestServiceConfigErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		cfg  hsm.ServiceConfig
		want string
	}{
		{hsm.ServiceConfig{}, "ServiceConfig.Dir"},
		{hsm.ServiceConfig{Dir: "x", Algorithm: "rsa"}, "ServiceConfig.Algorithm"},
		{hsm.ServiceConfig{Dir: "x", MaxAge: -1}, "ServiceConfig.MaxAge"},
		{hsm.ServiceConfig{Dir: "x", MaxAge: 1500 * time.Millisecond}, "whole seconds"},
	} {
		_, err := hsm.Init(ctx, nil, tc.cfg)
		require.ErrorContains(t, err, tc.want)
	}
}
