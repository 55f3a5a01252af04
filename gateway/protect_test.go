package gateway_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/proto"
)

func order(ref uint64) *proto.NewOrder {
	return &proto.NewOrder{ClOrdID: ref, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 100 + int64(ref%100), Qty: 1}
}

// TestSlowReader: a session that stops reading is disconnected when its
// queue overflows (slow-reader, with an audit record); another session is
// answered all along; the slow one reconnects and replays everything.
func TestSlowReader(t *testing.T) {
	h := newHarness(t, gateway.Config{OutboundQueue: 4096})
	ka, kb := h.trader("a", 1), h.trader("b", 2)
	a, _ := h.session(ka, 0)
	_ = a.c.(*net.TCPConn).SetReadBuffer(4096)
	b, _ := h.session(kb, 0)
	const n = 60_000
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 0, 64<<10)
		for ref := uint64(1); ref <= n; ref++ {
			o := order(ref)
			o.TIF = core.IOC // no counterparty: Accepted and Cancelled, two messages an order
			buf = o.AppendFrame(buf)
			if len(buf) > 60<<10 || ref == n {
				if _, err := a.c.Write(buf); err != nil {
					return // disconnected mid-flood
				}
				buf = buf[:0]
			}
		}
	}()
	// Meanwhile account 2 is answered as usual (asked to retry while the
	// flood keeps the engine's queue deep).
	for ref := uint64(1); ref <= 50; ref++ {
		for {
			b.send(order(ref))
			m := b.next()
			if sr, ok := m.(*proto.SessionReject); ok {
				require.Equal(t, proto.ReasonEngineBusy, sr.Reason)
				time.Sleep(time.Millisecond)
				continue
			}
			require.IsType(t, &proto.Accepted{}, m)
			break
		}
	}
	h.waitRecord("gateway.session_closed", "code", float64(proto.ReasonSlowReader))
	<-done
	// The slow session reads what it had, then the connection ends. Every
	// order the engine took is answered Accepted then Cancelled, in
	// reference order.
	var last, lastRef uint64
	check := func(m proto.Message) {
		s, ok := proto.Sequenced(m.AppendFrame(nil))
		if !ok {
			return
		}
		require.Equal(t, last+1, s)
		last = s
		switch v := m.(type) {
		case *proto.Accepted:
			require.Greater(t, v.ClOrdID, lastRef)
			lastRef = v.ClOrdID
		case *proto.Cancelled:
			require.Equal(t, lastRef, v.ClOrdID)
		default:
			t.Fatalf("unexpected %#v", m)
		}
	}
	for {
		m, err := a.tryNext(5 * time.Second)
		if err != nil {
			break
		}
		check(m)
	}
	require.Less(t, lastRef, uint64(n), "it was cut off before the end")
	// Reconnect and replay the rest.
	c, la := h.relogin(ka, last+1)
	for last+1 < la.NextSeq {
		check(c.next())
	}
	c.send(&proto.ReferenceQuery{})
	nr := expect[proto.NextReference](t, c)
	require.Equal(t, lastRef, nr.NextClOrdID-1, "the last order the engine took is answered: none lost")
}

// TestMalformedFrames: a bad frame ends only its session, with the reason
// in a Logout and an audit record.
func TestMalformedFrames(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	ka, kb := h.trader("a", 1), h.trader("b", 2)
	b, _ := h.session(kb, 0)
	tests := []struct {
		name  string
		frame []byte
		want  core.Reason
	}{
		{"oversized", []byte{0xff, 0xff, 'N', 1}, proto.ReasonOversized},
		{"unknown type", []byte{4, 0, '?', 1}, proto.ReasonMalformed},
		{"wrong length", []byte{8, 0, 'H', 1, 0, 0, 0, 0}, proto.ReasonMalformed},
		{"bad version", []byte{4, 0, 'H', 9}, proto.ReasonUnsupportedVersion},
		{"login again", loginMsg(ka, 0).AppendFrame(nil), proto.ReasonMalformed},
		{"server message", (&proto.Accepted{}).AppendFrame(nil), proto.ReasonMalformed},
	}
	ref := uint64(0)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, _ := h.session(ka, 0)
			_, err := a.c.Write(tt.frame)
			require.NoError(t, err)
			lo := a.closed()
			require.NotNil(t, lo)
			require.Equal(t, tt.want, lo.Reason)
			h.waitRecord("gateway.session_closed", "code", float64(tt.want))
			ref++
			b.send(order(ref))
			require.IsType(t, &proto.Accepted{}, b.next(), "the other session is unaffected")
		})
	}
}

// TestHeartbeats: the server sends heartbeats to a quiet client and ends a
// session that sends nothing for the timeout.
func TestHeartbeats(t *testing.T) {
	h := newHarness(t, gateway.Config{HeartbeatInterval: 100 * time.Millisecond, HeartbeatTimeout: 500 * time.Millisecond})
	a, la := h.session(h.trader("a", 1), 0)
	require.Equal(t, uint32(100), la.HeartbeatMs)
	_ = a.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	f, err := a.fr.Next()
	require.NoError(t, err)
	require.Equal(t, proto.THeartbeat, proto.Type(f[2]))
	lo := a.closed()
	require.NotNil(t, lo)
	require.Equal(t, proto.ReasonHBTimeout, lo.Reason)
	h.waitRecord("gateway.session_closed", "code", float64(proto.ReasonHBTimeout))
}

// TestRateLimits: per session, per account and per source address, each
// refusal a SessionReject with its reason; refused orders never reach the
// engine (they use no reference).
func TestRateLimits(t *testing.T) {
	tests := []struct {
		name string
		cfg  gateway.Config
		want core.Reason
	}{
		{"session", gateway.Config{SessionRate: 5}, proto.ReasonSessionRate},
		{"account", gateway.Config{SessionRate: 1000, AccountRate: 5}, proto.ReasonAccountRate},
		{"address", gateway.Config{SessionRate: 1000, AccountRate: 1000, AddressRate: 5}, proto.ReasonAddressRate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			a, _ := h.session(h.trader("a", 1), 0)
			for ref := uint64(1); ref <= 20; ref++ {
				a.send(order(ref))
			}
			acks, rejects := 0, 0
			for range 20 {
				switch m := a.next().(type) {
				case *proto.Accepted:
					acks++
				case *proto.SessionReject:
					require.Equal(t, tt.want, m.Reason)
					require.Equal(t, proto.TNewOrder, m.MsgType)
					rejects++
				default:
					t.Fatalf("unexpected %#v", m)
				}
			}
			require.GreaterOrEqual(t, acks, 5)
			require.Positive(t, rejects)
			a.send(&proto.ReferenceQuery{})
			require.LessOrEqual(t, expect[proto.NextReference](t, a).NextClOrdID, uint64(21))
		})
	}
}

// TestConnectionLimits: connections and login attempts per address.
func TestConnectionLimits(t *testing.T) {
	t.Run("connections", func(t *testing.T) {
		h := newHarness(t, gateway.Config{MaxConnsPerAddr: 2})
		k := h.trader("a", 1)
		cs := []*conn{dialRaw(t, h.oe, nil), dialRaw(t, h.oe, nil), dialRaw(t, h.oe, nil)}
		var served []*conn
		for _, c := range cs { // one of the three, whichever the server counted third, is refused
			if m, err := c.tryNext(300 * time.Millisecond); err == nil {
				require.Equal(t, proto.ReasonTooManyConnections, isReason(m))
				continue
			}
			served = append(served, c)
		}
		require.Len(t, served, 2)
		h.waitRecord("gateway.login_rejected", "code", float64(proto.ReasonTooManyConnections))
		require.IsType(t, &proto.LoginAccepted{}, served[0].login(k, 0), "the other two are served")
	})
	t.Run("login attempts", func(t *testing.T) {
		h := newHarness(t, gateway.Config{LoginsPerAddr: 3})
		k := h.trader("a", 1)
		cs := []*conn{dialRaw(t, h.oe, nil), dialRaw(t, h.oe, nil), dialRaw(t, h.oe, nil), dialRaw(t, h.oe, nil)}
		refused := 0
		for _, c := range cs {
			c.send(loginMsg(k, 0))
			if isReason(c.next()) == proto.ReasonLoginRate {
				refused++
			}
		}
		require.Positive(t, refused)
	})
}

// TestShutdownDrains: at a stop every order the engine took is answered
// before the Logout, which carries the next sequence number.
func TestShutdownDrains(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	a, _ := h.session(h.trader("a", 1), 0)
	for ref := uint64(1); ref <= 500; ref++ {
		a.send(order(ref))
	}
	for range 10 {
		require.IsType(t, &proto.Accepted{}, a.next())
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		h.stop()
	}()
	defer func() { <-stopped }()
	var last uint64 = 10
	var lo *proto.Logout
	for lo == nil {
		m := a.next()
		switch v := m.(type) {
		case *proto.Accepted:
			last++
			require.Equal(t, last, v.Seq)
		case *proto.SessionReject:
			require.Equal(t, proto.ReasonShutdown, v.Reason)
		case *proto.Logout:
			lo = v
		default:
			t.Fatalf("unexpected %#v", m)
		}
	}
	require.Equal(t, proto.ReasonShutdown, lo.Reason)
	require.Equal(t, last+1, lo.NextSeq)
}

// tlsPair makes a CA-signed server config and a matching client config.
func tlsPair(t *testing.T) (srv *tls.Config, cli *tls.Config, caPool *x509.CertPool, caCert tls.Certificate) {
	t.Helper()
	certPEM, keyPEM, err := gateway.SelfSigned([]string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	blk, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(blk.Bytes)
	require.NoError(t, err)
	pool.AddCert(c)
	return &tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}, pool, cert
}

func TestTLS(t *testing.T) {
	srv, cli, pool, cert := tlsPair(t)
	t.Run("tls 1.3", func(t *testing.T) {
		h := newHarness(t, gateway.Config{TLS: srv})
		k := h.trader("a", 1)
		c := dialRaw(t, h.oe, cli)
		require.IsType(t, &proto.LoginAccepted{}, c.login(k, 0))
		c.send(order(1))
		require.IsType(t, &proto.Accepted{}, c.next())
		require.Equal(t, uint16(tls.VersionTLS13), c.c.(*tls.Conn).ConnectionState().Version)
		old := cli.Clone()
		old.MaxVersion = tls.VersionTLS12
		_, err := tls.Dial("tcp", h.oe, old)
		require.Error(t, err, "TLS 1.2 is refused unless configured")
	})
	t.Run("mutual", func(t *testing.T) {
		m := srv.Clone()
		m.ClientCAs, m.ClientAuth = pool, tls.RequireAndVerifyClientCert
		h := newHarness(t, gateway.Config{TLS: m})
		k := h.trader("a", 1)
		bare := dialRaw(t, h.oe, cli)
		bare.send(loginMsg(k, 0))
		_, err := bare.tryNext(2 * time.Second)
		require.Error(t, err, "no client certificate: no session")
		withCert := cli.Clone()
		withCert.Certificates = []tls.Certificate{cert}
		c := dialRaw(t, h.oe, withCert)
		require.IsType(t, &proto.LoginAccepted{}, c.login(k, 0))
		c.send(order(1))
		require.IsType(t, &proto.Accepted{}, c.next())
	})
}
