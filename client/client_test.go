package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/client"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/gateway/gatewaytest"
	"github.com/tradecore/tradecore/proto"
)

func TestMain(m *testing.M) { gatewaytest.Main(m) }

func dial(t *testing.T, addr string, k gatewaytest.Key, mutate ...func(*client.Config)) *client.Client {
	t.Helper()
	cfg := client.Config{Addr: addr, KeyID: k.ID, Secret: k.Secret, Plain: true}
	for _, f := range mutate {
		f(&cfg)
	}
	c, err := client.Dial(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func recv[T any](t *testing.T, c *client.Client) *T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := c.Recv(ctx)
	require.NoError(t, err)
	var v any = m
	out, ok := v.(*T)
	require.True(t, ok, "want %T, got %#v", out, m)
	return out
}

func TestOrdersAndEvents(t *testing.T) {
	s := gatewaytest.Start(t, gateway.Config{})
	a := dial(t, s.OE, s.Trader("a", 1))
	b := dial(t, s.OE, s.Trader("b", 2))
	ref := a.NewRef()
	require.Equal(t, uint64(1), ref)
	require.NoError(t, a.NewOrder(&proto.NewOrder{ClOrdID: ref, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 500, Qty: 10}))
	acc := recv[proto.Accepted](t, a)
	require.NoError(t, b.NewOrder(&proto.NewOrder{ClOrdID: b.NewRef(), Instrument: 1, Side: core.Sell, OrdType: core.Limit, TIF: core.DAY, Price: 500, Qty: 3}))
	recv[proto.Accepted](t, b)
	require.Equal(t, byte('R'), recv[proto.Executed](t, b).Liquidity)
	ex := recv[proto.Executed](t, a)
	require.Equal(t, [2]int64{3, 7}, [2]int64{ex.Qty, ex.Leaves})
	require.NoError(t, a.CancelToSize(acc.OrderID, ref, 1, 5))
	require.Equal(t, int64(5), recv[proto.Reduced](t, a).Leaves)
	nref := a.NewRef()
	require.NoError(t, a.Replace(&proto.Replace{OrderID: acc.OrderID, OrigClOrdID: ref, ClOrdID: nref, Instrument: 1, Price: 490, Qty: 5}))
	require.Equal(t, nref, recv[proto.Replaced](t, a).ClOrdID)
	require.NoError(t, a.Cancel(acc.OrderID, nref, 1))
	require.Equal(t, core.CancelRequested, recv[proto.Cancelled](t, a).Reason)
	require.NoError(t, a.QueryReference())
	require.Equal(t, a.NewRef(), recv[proto.NextReference](t, a).NextClOrdID)
	require.Equal(t, uint64(5), a.LastSeq())
	require.NoError(t, a.Logout())
	_, err := a.Recv(context.Background())
	var lo *client.LogoutError
	require.ErrorAs(t, err, &lo)
	require.Equal(t, proto.ReasonLogoutByUser, lo.Reason)
}

// TestReconnectWithReplay: a client with Reconnect keeps one gapless stream
// across a server restart; what it sends while down fails with
// ErrDisconnected and goes through once it is back.
func TestReconnectWithReplay(t *testing.T) {
	s := gatewaytest.Start(t, gateway.Config{})
	k := s.Trader("a", 1)
	a := dial(t, s.OE, k, func(c *client.Config) { c.Reconnect = true })
	// The receiver: every message as bytes, in order.
	got := make(chan []byte, 1000)
	go func() {
		for {
			m, err := a.Recv(context.Background())
			if err != nil {
				close(got)
				return
			}
			got <- m.AppendFrame(nil)
		}
	}()
	next := func() proto.Message {
		t.Helper()
		select {
		case f, ok := <-got:
			require.True(t, ok, "the receiver stopped")
			m, err := proto.Decode(f)
			require.NoError(t, err)
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no message")
		}
		return nil
	}
	for range 20 {
		require.NoError(t, a.NewOrder(&proto.NewOrder{ClOrdID: a.NewRef(), Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.GTC, Price: 300, Qty: 1}))
	}
	for i := range 5 {
		require.Equal(t, uint64(i+1), next().(*proto.Accepted).Seq)
	}
	oe := s.OE
	s.Restart()
	// The restarted server listens elsewhere: forward the old address.
	ln, err := net.Listen("tcp", oe)
	require.NoError(t, err)
	defer ln.Close()
	go forward(ln, s.OE)
	for i := 5; i < 20; i++ {
		require.Equal(t, uint64(i+1), next().(*proto.Accepted).Seq, "gapless across the restart")
	}
	for a.Logins() < 2 {
		time.Sleep(10 * time.Millisecond)
	}
	// The new session may still refuse at the gateway for a moment (the
	// restarted engine busy replaying, on a loaded machine): a refused
	// order used no reference and is sent again (docs/protocol.md).
	var acc *proto.Accepted
	for try := 0; acc == nil; try++ {
		require.NoError(t, a.NewOrder(&proto.NewOrder{ClOrdID: a.NewRef(), Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.GTC, Price: 300, Qty: 1}))
		switch m := next().(type) {
		case *proto.Accepted:
			acc = m
		case *proto.SessionReject:
			require.Less(t, try, 50, "refused at the gateway: %#v", m)
			time.Sleep(20 * time.Millisecond)
		default:
			t.Fatalf("unexpected answer %#v", m)
		}
	}
	require.Equal(t, uint64(21), acc.Seq)
	require.Greater(t, acc.ClOrdID, uint64(20))
	require.Equal(t, uint64(21), a.LastSeq())
}

// forward copies connections from ln to addr.
func forward(ln net.Listener, addr string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			d, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				return
			}
			go func() { _, _ = copyConn(d, c); d.Close() }()
			_, _ = copyConn(c, d)
			c.Close()
		}()
	}
}

func copyConn(dst, src net.Conn) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err != nil {
			return n, err
		}
	}
}

func TestLoginRefused(t *testing.T) {
	s := gatewaytest.Start(t, gateway.Config{})
	k := s.Trader("a", 1)
	k.Secret = make([]byte, 32)
	_, err := client.Dial(context.Background(), client.Config{Addr: s.OE, KeyID: k.ID, Secret: k.Secret, Plain: true})
	var le *client.LoginError
	require.ErrorAs(t, err, &le)
	require.Equal(t, proto.ReasonBadMAC, le.Reason)
	require.ErrorIs(t, err, client.ErrRejected)
}

func TestPinning(t *testing.T) {
	certPEM, keyPEM, err := gateway.SelfSigned([]string{"127.0.0.1"}, time.Hour)
	require.NoError(t, err)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	pin, err := gateway.PinOf(cert.Certificate[0])
	require.NoError(t, err)
	s := gatewaytest.Start(t, gateway.Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	k := s.Trader("a", 1)
	c, err := client.Dial(context.Background(), client.Config{Addr: s.OE, KeyID: k.ID, Secret: k.Secret, PinSHA256: pin})
	require.NoError(t, err)
	require.NoError(t, c.NewOrder(&proto.NewOrder{ClOrdID: 1, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 300, Qty: 1}))
	recv[proto.Accepted](t, c)
	c.Close()
	_, err = client.Dial(context.Background(), client.Config{Addr: s.OE, KeyID: k.ID, Secret: k.Secret, PinSHA256: "00" + pin[2:]})
	require.ErrorIs(t, err, client.ErrPin)
	_, err = client.Dial(context.Background(), client.Config{Addr: s.OE, KeyID: k.ID, Secret: k.Secret})
	require.Error(t, err, "an unknown self-signed certificate without a pin is refused")
}

func TestMarketData(t *testing.T) {
	s := gatewaytest.Start(t, gateway.Config{})
	a := dial(t, s.OE, s.Trader("a", 1))
	require.NoError(t, a.NewOrder(&proto.NewOrder{ClOrdID: 1, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 300, Qty: 4}))
	recv[proto.Accepted](t, a)
	md := dial(t, s.MD, s.Reader("r"), func(c *client.Config) { c.Snapshot = true })
	var book proto.Book
	for {
		m, err := md.Recv(context.Background())
		require.NoError(t, err)
		require.NoError(t, book.Apply(m.AppendFrame(nil)))
		if m.Type() == proto.TSnapshotEnd {
			break
		}
	}
	require.Equal(t, []proto.Level{{Price: 300, Qty: 4, Orders: 1}}, book.Levels(1, core.Buy))
	require.NoError(t, a.NewOrder(&proto.NewOrder{ClOrdID: 2, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 301, Qty: 1}))
	m := recv[proto.MDAdd](t, md)
	require.NoError(t, book.Apply(m.AppendFrame(nil)))
	require.Equal(t, int64(301), book.Levels(1, core.Buy)[0].Price)
}

// TestNoAllocs: sending an order and receiving its answer allocate nothing
// (against a scripted server that answers every order with a prepared
// Accepted).
func TestNoAllocs(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fr := proto.NewFrameReader(c, 0)
		if _, err := fr.Next(); err != nil { // the login
			return
		}
		_, _ = c.Write((&proto.LoginAccepted{NextSeq: 1, ReplayFrom: 1, NextClOrdID: 1}).AppendFrame(nil))
		ack := make([]byte, 0, 128)
		seq := uint64(0)
		for {
			f, err := fr.Next()
			if err != nil {
				return
			}
			if proto.Type(f[2]) != proto.TNewOrder {
				continue
			}
			seq++
			a := proto.Accepted{Seq: seq}
			ack = a.AppendFrame(ack[:0])
			if _, err := c.Write(ack); err != nil {
				return
			}
		}
	}()
	k := gatewaytest.Key{ID: "0123456789abcdef", Secret: make([]byte, 32)}
	c := dial(t, ln.Addr().String(), k)
	o := &proto.NewOrder{Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 300, Qty: 1}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		o.ClOrdID = c.NewRef()
		if err := c.NewOrder(o); err != nil {
			panic(err)
		}
		m, err := c.Recv(ctx)
		if err != nil {
			panic(err)
		}
		if m.Type() != proto.TAccepted {
			panic(errors.New("not an ack"))
		}
	})
	require.Zero(t, allocs)
}
