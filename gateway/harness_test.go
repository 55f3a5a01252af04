package gateway_test

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/gateway/gatewaytest"
	"github.com/tradecore/tradecore/proto"
)

func TestMain(m *testing.M) { gatewaytest.Main(m) }

type key = gatewaytest.Key

// harness wraps gatewaytest.Server with the names the tests use.
type harness struct {
	*gatewaytest.Server
	t      *testing.T
	oe, md string
	store  *apikey.Store
	clock  *gatewaytest.Clock
	ctl    interface{ TryPush(*core.Command) bool }
}

func newHarness(t *testing.T, cfg gateway.Config) *harness {
	t.Helper()
	s := gatewaytest.Start(t, cfg)
	h := &harness{Server: s, t: t, store: s.Store, clock: s.Clock, ctl: s.Control}
	h.sync()
	return h
}

func (h *harness) sync()                                            { h.oe, h.md = h.OE, h.MD }
func (h *harness) stop()                                            { h.Stop() }
func (h *harness) restart()                                         { h.Restart(); h.sync() }
func (h *harness) trader(name string, account uint32) key           { return h.Trader(name, account) }
func (h *harness) addKey(name string, req apikey.CreateRequest) key { return h.AddKey(req) }
func (h *harness) waitRecord(typ, field string, value any) map[string]any {
	return h.WaitRecord(typ, field, value)
}

// conn is a raw protocol client.
type conn struct {
	t  *testing.T
	c  net.Conn
	fr *proto.FrameReader
}

func dialRaw(t *testing.T, addr string, tc *tls.Config) *conn {
	t.Helper()
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.Dial("tcp", addr, tc)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &conn{t: t, c: c, fr: proto.NewFrameReader(c, 0)}
}

func (c *conn) send(m proto.Message) {
	c.t.Helper()
	_, err := c.c.Write(m.AppendFrame(nil))
	require.NoError(c.t, err)
}

// loginMsg builds a signed login for k.
func loginMsg(k key, nextSeq uint64, mutate ...func(*proto.Login)) *proto.Login {
	l := &proto.Login{Timestamp: time.Now().UnixNano(), NextSeq: nextSeq}
	copy(l.KeyID[:], k.ID)
	_, _ = rand.Read(l.Nonce[:])
	for _, f := range mutate {
		f(l)
	}
	proto.SignLogin(l, k.Secret)
	return l
}

// next returns the next message, skipping heartbeats, failing after 5 s.
func (c *conn) next() proto.Message {
	c.t.Helper()
	m, err := c.tryNext(5 * time.Second)
	require.NoError(c.t, err)
	return m
}

func (c *conn) tryNext(d time.Duration) (proto.Message, error) {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	for {
		f, err := c.fr.Next()
		if err != nil {
			return nil, err
		}
		m, err := proto.Decode(f)
		if err != nil {
			return nil, err
		}
		if _, hb := m.(*proto.Heartbeat); hb {
			continue
		}
		return m, nil
	}
}

// login logs in and returns the answer.
func (c *conn) login(k key, nextSeq uint64, mutate ...func(*proto.Login)) proto.Message {
	c.t.Helper()
	c.send(loginMsg(k, nextSeq, mutate...))
	return c.next()
}

// session dials the order-entry port and logs in, expecting success.
func (h *harness) session(k key, nextSeq uint64) (*conn, *proto.LoginAccepted) {
	h.t.Helper()
	c := dialRaw(h.t, h.oe, nil)
	m := c.login(k, nextSeq)
	la, ok := m.(*proto.LoginAccepted)
	require.True(h.t, ok, "login answered %#v", m)
	return c, la
}

// closed reports whether the server closed the connection (reading only
// heartbeats and a Logout until EOF) and returns the Logout, if any.
func (c *conn) closed() *proto.Logout {
	c.t.Helper()
	var lo *proto.Logout
	for {
		m, err := c.tryNext(5 * time.Second)
		if err != nil {
			var ne net.Error
			require.False(c.t, errors.As(err, &ne) && ne.Timeout(), "the server did not close the connection")
			return lo
		}
		if l, ok := m.(*proto.Logout); ok {
			lo = l
		}
	}
}

func isReason(m proto.Message) core.Reason {
	switch v := m.(type) {
	case *proto.LoginRejected:
		return v.Reason
	case *proto.Logout:
		return v.Reason
	case *proto.SessionReject:
		return v.Reason
	case *proto.Rejected:
		return v.Reason
	}
	return 0
}

// relogin dials and logs in, retrying while the server still holds the
// account's previous session (session-active): a client that drops and
// reconnects at once can meet it.
func (h *harness) relogin(k key, nextSeq uint64) (*conn, *proto.LoginAccepted) {
	h.t.Helper()
	for range 100 {
		c := dialRaw(h.t, h.oe, nil)
		m := c.login(k, nextSeq)
		if la, ok := m.(*proto.LoginAccepted); ok {
			return c, la
		}
		require.Equal(h.t, proto.ReasonSessionActive, isReason(m), "%#v", m)
		time.Sleep(10 * time.Millisecond)
	}
	h.t.Fatal("the account's old session never ended")
	return nil, nil
}
