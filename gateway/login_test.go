package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/proto"
)

// TestLoginRefusals tries every way around the login: each is refused with
// its reason code and an audit record, and the connection is closed.
func TestLoginRefusals(t *testing.T) {
	h := newHarness(t, gateway.Config{MaxConnsPerAddr: 50, LoginsPerAddr: 1000})
	trader := h.trader("t", 1)
	data := h.addKey("d", apikey.CreateRequest{User: "u-d", Scopes: []apikey.Scope{apikey.ScopeData}})
	fenced := h.addKey("f", apikey.CreateRequest{User: "u-f", Account: 2, Scopes: []apikey.Scope{apikey.ScopeTrade}, Allow: []string{"10.0.0.0/8"}})
	revoked := h.trader("r", 3)
	_, err := h.store.Revoke(context.Background(), revoked.ID, "test")
	require.NoError(t, err)
	unknown := key{ID: "aaaaaaaaaaaaaaaa", Secret: make([]byte, 32), Account: 1}

	tests := []struct {
		name   string
		port   string
		k      key
		mutate []func(*proto.Login)
		want   core.Reason
	}{
		{"unknown key", "oe", unknown, nil, proto.ReasonUnknownKey},
		{"forged MAC", "oe", key{ID: trader.ID, Secret: make([]byte, 32)}, nil, proto.ReasonBadMAC},
		{"revoked key", "oe", revoked, nil, proto.ReasonRevokedKey},
		{"data key on order entry", "oe", data, nil, proto.ReasonNoScope},
		{"trade key on market data", "md", trader, nil, proto.ReasonNoScope},
		{"source not allowed", "oe", fenced, nil, proto.ReasonSourceNotAllowed},
		{"stale timestamp", "oe", trader, []func(*proto.Login){func(l *proto.Login) { l.Timestamp -= int64(6 * time.Second) }}, proto.ReasonClockSkew},
		{"future timestamp", "oe", trader, []func(*proto.Login){func(l *proto.Login) { l.Timestamp += int64(6 * time.Second) }}, proto.ReasonClockSkew},
		{"replay beyond the stream", "oe", trader, []func(*proto.Login){func(l *proto.Login) { l.NextSeq = 1000 }}, proto.ReasonReplayUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := h.oe
			if tt.port == "md" {
				addr = h.md
			}
			c := dialRaw(t, addr, nil)
			m := c.login(tt.k, 0, tt.mutate...)
			require.Equal(t, tt.want, isReason(m), "answer %#v", m)
			require.IsType(t, &proto.LoginRejected{}, m)
			require.Nil(t, c.closed())
			h.waitRecord("gateway.login_rejected", "code", float64(tt.want))
		})
	}

	t.Run("replayed nonce", func(t *testing.T) {
		// An earlier subtest's session of the account may still be ending:
		// log in (a fresh nonce each try) until accepted.
		var l *proto.Login
		var c *conn
		for try := 0; ; try++ {
			l = loginMsg(trader, 0)
			c = dialRaw(t, h.oe, nil)
			c.send(l)
			m := c.next()
			if _, ok := m.(*proto.LoginAccepted); ok {
				break
			}
			require.Equal(t, proto.ReasonSessionActive, isReason(m), "answer %#v", m)
			require.Less(t, try, 100, "the account's earlier session never ended")
			time.Sleep(10 * time.Millisecond)
		}
		c.send(&proto.LogoutRequest{})
		require.Equal(t, proto.ReasonLogoutByUser, c.closed().Reason)
		// The same frame again, byte for byte.
		c2 := dialRaw(t, h.oe, nil)
		c2.send(l)
		require.Equal(t, proto.ReasonNonceReplay, isReason(c2.next()))
		h.waitRecord("gateway.login_rejected", "code", float64(proto.ReasonNonceReplay))
	})

	t.Run("second session of the account", func(t *testing.T) {
		c1, _ := h.session(trader, 0)
		c2 := dialRaw(t, h.oe, nil)
		require.Equal(t, proto.ReasonSessionActive, isReason(c2.login(trader, 0)))
		c1.send(&proto.LogoutRequest{})
		c1.closed()
	})

	t.Run("expired key", func(t *testing.T) {
		k := h.trader("e", 4)
		h.clock.Shift(91 * 24 * time.Hour)
		defer h.clock.Shift(-91 * 24 * time.Hour)
		c := dialRaw(t, h.oe, nil)
		require.Equal(t, proto.ReasonExpiredKey, isReason(c.login(k, 0, func(l *proto.Login) { l.Timestamp += int64(91 * 24 * time.Hour) })))
	})

	t.Run("first frame not a login", func(t *testing.T) {
		c := dialRaw(t, h.oe, nil)
		c.send(&proto.Heartbeat{})
		require.Equal(t, proto.ReasonMalformed, isReason(c.next()))
	})

	t.Run("version 2", func(t *testing.T) {
		c := dialRaw(t, h.oe, nil)
		f := loginMsg(trader, 0).AppendFrame(nil)
		f[3] = 2
		_, err := c.c.Write(f)
		require.NoError(t, err)
		require.Equal(t, proto.ReasonUnsupportedVersion, isReason(c.next()))
	})

	t.Run("a successful login is recorded", func(t *testing.T) {
		c, la := h.session(trader, 0)
		require.Equal(t, uint32(1), la.Account)
		require.Equal(t, uint32(1000), la.HeartbeatMs)
		h.waitRecord("gateway.login", "key_id", trader.ID)
		c.send(&proto.LogoutRequest{})
		c.closed()
	})
}

// TestLoginTimeout: a connection that sends no login within the login
// timeout is told so (LoginRejected login-timeout) and closed.
func TestLoginTimeout(t *testing.T) {
	h := newHarness(t, gateway.Config{LoginTimeout: 300 * time.Millisecond})
	c := dialRaw(t, h.oe, nil)
	m, err := c.tryNext(5 * time.Second)
	require.NoError(t, err, "the refusal reaches the client although the login deadline passed")
	require.Equal(t, proto.ReasonLoginTimeout, isReason(m))
	h.waitRecord("gateway.login_rejected", "code", float64(proto.ReasonLoginTimeout))
}
