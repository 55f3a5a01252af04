package apikey_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/gateway/internal/gwtest"
	"github.com/tradecore/tradecore/proto"
)

func TestMain(m *testing.M) { gwtest.Main(m) }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestStoreLifecycle(t *testing.T) {
	ctx := context.Background()
	v := gwtest.Vault(t)
	dir := t.TempDir()
	clk := &clock{time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	st, err := apikey.Open(ctx, apikey.Config{Dir: dir, Sealer: apikey.VaultSealer(v), Now: clk.now})
	require.NoError(t, err)

	k, secret, err := st.Create(ctx, apikey.CreateRequest{User: "u-7f3a", Account: 17, Scopes: []apikey.Scope{apikey.ScopeTrade}, Allow: []string{"10.0.0.0/8", "127.0.0.1"}})
	require.NoError(t, err)
	require.Len(t, secret, proto.SecretSize)
	require.True(t, proto.ValidKeyID([]byte(k.ID)), k.ID)
	require.Equal(t, clk.t.Add(90*24*time.Hour), k.Expires)

	t.Run("no plaintext secret on disk", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(dir, apikey.File))
		require.NoError(t, err)
		assert.NotContains(t, string(data), string(secret))
		for _, enc := range []string{hexOf(secret)} {
			assert.NotContains(t, string(data), enc)
		}
		fi, err := os.Stat(filepath.Join(dir, apikey.File))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	})

	t.Run("a second process sees it", func(t *testing.T) {
		other, err := apikey.Open(ctx, apikey.Config{Dir: dir, Sealer: apikey.VaultSealer(v), Now: clk.now})
		require.NoError(t, err)
		got, sec, err := other.Lookup(ctx, k.ID)
		require.NoError(t, err)
		require.Equal(t, secret, sec)
		require.NoError(t, got.State(clk.t))
		require.True(t, got.Has(apikey.ScopeTrade))
		require.False(t, got.Has(apikey.ScopeData))
		require.True(t, got.Allows(netip.MustParseAddr("10.1.2.3")))
		require.True(t, got.Allows(netip.MustParseAddr("::ffff:127.0.0.1")))
		require.False(t, got.Allows(netip.MustParseAddr("192.168.1.1")))
	})

	t.Run("one active key per user and scope", func(t *testing.T) {
		_, _, err := st.Create(ctx, apikey.CreateRequest{User: "u-7f3a", Account: 17, Scopes: []apikey.Scope{apikey.ScopeTrade}})
		require.ErrorIs(t, err, apikey.ErrExists)
		_, _, err = st.Create(ctx, apikey.CreateRequest{User: "u-7f3a", Scopes: []apikey.Scope{apikey.ScopeData}})
		require.NoError(t, err, "another scope is fine")
	})

	t.Run("invalid requests", func(t *testing.T) {
		for name, r := range map[string]apikey.CreateRequest{
			"no user":           {Account: 1, Scopes: []apikey.Scope{apikey.ScopeTrade}},
			"no scope":          {User: "u"},
			"bad scope":         {User: "u", Scopes: []apikey.Scope{"admin"}},
			"trade no acct":     {User: "u", Scopes: []apikey.Scope{apikey.ScopeTrade}},
			"bad allow":         {User: "u", Account: 1, Scopes: []apikey.Scope{apikey.ScopeTrade}, Allow: []string{"nope"}},
			"lifetime too long": {User: "u", Account: 1, Scopes: []apikey.Scope{apikey.ScopeTrade}, Lifetime: 91 * 24 * time.Hour},
		} {
			_, _, err := st.Create(ctx, r)
			require.ErrorIs(t, err, apikey.ErrInvalid, name)
		}
	})

	t.Run("rotate with grace", func(t *testing.T) {
		clk.t = clk.t.Add(80 * 24 * time.Hour)
		nk, nsec, err := st.Rotate(ctx, k.ID, time.Hour)
		require.NoError(t, err)
		require.NotEqual(t, secret, nsec)
		require.Equal(t, k.ID, nk.RotatedFrom)
		old, _, err := st.Lookup(ctx, k.ID)
		require.NoError(t, err)
		require.Equal(t, nk.ID, old.RotatedTo)
		require.NoError(t, old.State(clk.t))
		require.ErrorIs(t, old.State(clk.t.Add(time.Hour)), apikey.ErrExpired)
		require.NoError(t, nk.State(clk.t.Add(89*24*time.Hour)))
		_, _, err = st.Rotate(ctx, k.ID, 0)
		require.ErrorIs(t, err, apikey.ErrInvalid, "rotate the successor, not the old key")
		k = nk
	})

	t.Run("revoke", func(t *testing.T) {
		_, err := st.Revoke(ctx, k.ID, "")
		require.ErrorIs(t, err, apikey.ErrInvalid)
		_, err = st.Revoke(ctx, k.ID, "left the firm")
		require.NoError(t, err)
		got, sec, err := st.Lookup(ctx, k.ID)
		require.NoError(t, err)
		require.NotNil(t, sec, "the MAC is still checked before the state is told")
		require.ErrorIs(t, got.State(clk.t), apikey.ErrRevoked)
		_, _, err = st.Rotate(ctx, k.ID, 0)
		require.ErrorIs(t, err, apikey.ErrRevoked)
		_, _, err = st.Lookup(ctx, "zzzzzzzzzzzzzzzz")
		require.ErrorIs(t, err, apikey.ErrNotFound)
	})

	t.Run("changes for the audit log", func(t *testing.T) {
		ch, err := st.Changes(ctx, 0)
		require.NoError(t, err)
		var acts []string
		for _, c := range ch {
			acts = append(acts, c.Action)
		}
		require.Equal(t, []string{"created", "created", "rotated", "created", "revoked"}, acts)
		ch, err = st.Changes(ctx, 4)
		require.NoError(t, err)
		require.Len(t, ch, 1)
		require.Equal(t, uint64(5), ch[0].Seq)
	})

	t.Run("list hides sealed secrets", func(t *testing.T) {
		keys, err := st.List(ctx)
		require.NoError(t, err)
		require.Len(t, keys, 3)
		for _, k := range keys {
			require.Nil(t, k.Sealed)
		}
	})

	t.Run("a damaged file is refused", func(t *testing.T) {
		d2 := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(d2, apikey.File), []byte("{"), 0o600))
		_, err := apikey.Open(ctx, apikey.Config{Dir: d2, Sealer: apikey.VaultSealer(v)})
		require.ErrorIs(t, err, apikey.ErrCorrupt)
	})
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	var s strings.Builder
	for _, c := range b {
		s.WriteByte(digits[c>>4])
		s.WriteByte(digits[c&15])
	}
	return s.String()
}

func TestAPIKeyRequireDevice(t *testing.T) {
	ctx := context.Background()
	v := gwtest.Vault(t)
	dir := t.TempDir()
	st, err := apikey.Open(ctx, apikey.Config{Dir: dir, Sealer: apikey.VaultSealer(v)})
	require.NoError(t, err)
	version := func() float64 {
		var f map[string]any
		data, err := os.ReadFile(filepath.Join(dir, apikey.File))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &f))
		return f["version"].(float64)
	}

	plain, _, err := st.Create(ctx, apikey.CreateRequest{User: "u-plain", Account: 1, Scopes: []apikey.Scope{apikey.ScopeTrade}})
	require.NoError(t, err)
	require.Empty(t, plain.RequireDevice)
	require.EqualValues(t, 1, version(), "no device requirement: version 1, readable by older builds")

	const dev = "00112233445566778899aabbccddeeff"
	for name, tc := range map[string]struct {
		req string
		err bool
	}{
		"any":        {apikey.AnyDevice, false},
		"one device": {dev, false},
		"upper hex":  {strings.ToUpper(dev), true},
		"short":      {dev[:30], true},
		"not hex":    {strings.Repeat("g", 32), true},
		"other word": {"all", true},
	} {
		t.Run(name, func(t *testing.T) {
			k, _, err := st.Create(ctx, apikey.CreateRequest{User: "u-" + strings.ReplaceAll(name, " ", "-"), Account: 2,
				Scopes: []apikey.Scope{apikey.ScopeTrade}, RequireDevice: tc.req})
			if tc.err {
				require.ErrorIs(t, err, apikey.ErrInvalid)
				return
			}
			require.NoError(t, err)
			got, _, err := st.Lookup(ctx, k.ID)
			require.NoError(t, err)
			require.Equal(t, tc.req, got.RequireDevice)
			require.EqualValues(t, 2, version(), "a device requirement makes the file version 2: builds that would ignore it refuse it")

			rotated, _, err := st.Rotate(ctx, k.ID, time.Hour)
			require.NoError(t, err)
			require.Equal(t, tc.req, rotated.RequireDevice, "rotation keeps the requirement")
		})
	}

	changes, err := st.Changes(ctx, 0)
	require.NoError(t, err)
	var created []string
	for _, c := range changes {
		if c.Action == "created" && c.RequireDevice != "" {
			created = append(created, c.RequireDevice)
		}
	}
	assert.ElementsMatch(t, []string{apikey.AnyDevice, apikey.AnyDevice, dev, dev}, created, "the audit trail names the requirement")

	// A hand-edited requirement of the wrong form is a damaged store, not
	// a key without a requirement.
	data, err := os.ReadFile(filepath.Join(dir, apikey.File))
	require.NoError(t, err)
	bad := strings.Replace(string(data), `"require_device": "any"`, `"require_device": "ANY"`, 1)
	require.NotEqual(t, string(data), bad)
	require.NoError(t, os.WriteFile(filepath.Join(dir, apikey.File), []byte(bad), 0o600))
	_, _, err = st.Lookup(ctx, plain.ID)
	require.ErrorIs(t, err, apikey.ErrCorrupt)
}
