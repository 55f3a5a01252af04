package gateway_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/proto"
)

// expect reads the next message and requires it to be a T.
func expect[T any](t *testing.T, c *conn) *T {
	t.Helper()
	var m any = c.next()
	v, ok := m.(*T)
	require.True(t, ok, "want %T, got %#v", v, m)
	return v
}

// seqOf returns a sequenced message's Seq.
func seqOf(m proto.Message) uint64 {
	s, _ := proto.Sequenced(m.AppendFrame(nil))
	return s
}

// TestEveryMessage drives every inbound message type through real loopback
// sockets and checks every outbound type on both ports, with their
// sequence numbers gapless; then a snapshot login rebuilds the same book
// as the live feed.
func TestEveryMessage(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	ka, kb := h.trader("a", 1), h.trader("b", 2)
	kd := h.addKey("d", apikey.CreateRequest{User: "u-d", Scopes: []apikey.Scope{apikey.ScopeData}})
	md := dialRaw(t, h.md, nil)
	mla, ok := md.login(kd, 0, func(l *proto.Login) { l.Flags = proto.FlagSnapshot }).(*proto.LoginAccepted)
	require.True(t, ok)
	require.Equal(t, uint64(1), mla.NextSeq)
	var book proto.Book
	applyMD := func(n int) []proto.Type {
		var types []proto.Type
		for range n {
			m := md.next()
			require.NoError(t, book.Apply(m.AppendFrame(nil)), "%#v", m)
			types = append(types, m.Type())
		}
		return types
	}
	require.Equal(t, []proto.Type{proto.TSnapshotBegin, proto.TSnapshotEnd}, applyMD(2))

	a, la := h.session(ka, 0)
	require.Equal(t, uint64(1), la.NextSeq)
	require.Equal(t, uint64(1), la.NextClOrdID)
	b, _ := h.session(kb, 0)
	seqA, seqB := uint64(0), uint64(0)
	nextA := func() proto.Message {
		m := a.next()
		seqA++
		require.Equal(t, seqA, seqOf(m), "account 1's sequence is gapless")
		return m
	}
	nextB := func() proto.Message {
		m := b.next()
		seqB++
		require.Equal(t, seqB, seqOf(m), "account 2's sequence is gapless")
		return m
	}

	// New order, resting.
	a.send(&proto.NewOrder{ClOrdID: 1, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 500, Qty: 10})
	acc := nextA().(*proto.Accepted)
	require.Equal(t, int64(10), acc.Qty)
	oa := acc.OrderID
	require.Equal(t, []proto.Type{proto.TMDAdd}, applyMD(1))

	// A crossing order: the taker and the maker each get their Executed.
	b.send(&proto.NewOrder{ClOrdID: 1, Instrument: 1, Side: core.Sell, OrdType: core.Limit, TIF: core.DAY, Price: 500, Qty: 4})
	m := nextB()
	require.IsType(t, &proto.Accepted{}, m, "%#v", m)
	ex := nextB().(*proto.Executed)
	require.Equal(t, proto.Executed{Seq: ex.Seq, Time: ex.Time, OrderID: ex.OrderID, ClOrdID: 1, Instrument: 1, Side: core.Sell, Liquidity: 'R', MatchID: 1, Price: 500, Qty: 4, Leaves: 0}, *ex)
	mex := nextA().(*proto.Executed)
	require.Equal(t, proto.Executed{Seq: mex.Seq, Time: mex.Time, OrderID: oa, ClOrdID: 1, Instrument: 1, Side: core.Buy, Liquidity: 'A', MatchID: 1, Price: 500, Qty: 4, Leaves: 6}, *mex)
	require.Equal(t, []proto.Type{proto.TMDExecute, proto.TMDTrade}, applyMD(2))

	// Cancel to size, replace, a resent and a stale reference, cancel.
	a.send(&proto.CancelToSize{OrderID: oa, OrigClOrdID: 1, Qty: 3})
	red := nextA().(*proto.Reduced)
	require.Equal(t, core.CancelRequested, red.Reason)
	require.Equal(t, [2]int64{3, 3}, [2]int64{red.Qty, red.Leaves})
	require.Equal(t, []proto.Type{proto.TMDCancel}, applyMD(1))
	a.send(&proto.Replace{OrderID: oa, OrigClOrdID: 1, ClOrdID: 2, Instrument: 1, Price: 510, Qty: 3})
	rep := nextA().(*proto.Replaced)
	require.Equal(t, [3]uint64{oa, 2, 1}, [3]uint64{rep.OrderID, rep.ClOrdID, rep.OrigClOrdID})
	require.Equal(t, []proto.Type{proto.TMDReplace}, applyMD(1))
	a.send(&proto.Replace{OrderID: oa, OrigClOrdID: 2, ClOrdID: 2, Instrument: 1, Price: 520, Qty: 3})
	require.Equal(t, core.RejectDuplicateClOrdID, nextA().(*proto.Rejected).Reason)
	a.send(&proto.NewOrder{ClOrdID: 1, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 500, Qty: 1})
	require.Equal(t, core.RejectStaleClOrdID, nextA().(*proto.Rejected).Reason)
	a.send(&proto.Cancel{OrderID: oa, OrigClOrdID: 2})
	can := nextA().(*proto.Cancelled)
	require.Equal(t, core.CancelRequested, can.Reason)
	require.Equal(t, []proto.Type{proto.TMDDelete}, applyMD(1))

	// A stop order triggered by a trade.
	a.send(&proto.NewOrder{ClOrdID: 3, Instrument: 1, Side: core.Buy, OrdType: core.Stop, TIF: core.DAY, StopPrice: 520, Qty: 1})
	stop := nextA().(*proto.Accepted)
	b.send(&proto.NewOrder{ClOrdID: 2, Instrument: 1, Side: core.Sell, OrdType: core.Limit, TIF: core.DAY, Price: 520, Qty: 2})
	require.IsType(t, &proto.Accepted{}, nextB())
	a.send(&proto.NewOrder{ClOrdID: 4, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.IOC, Price: 520, Qty: 1})
	require.IsType(t, &proto.Accepted{}, nextA())
	require.Equal(t, byte('R'), nextA().(*proto.Executed).Liquidity)
	tr := nextA().(*proto.Triggered)
	require.Equal(t, stop.OrderID, tr.OrderID)
	require.Equal(t, byte('R'), nextA().(*proto.Executed).Liquidity, "the triggered stop takes the rest")
	require.Equal(t, byte('A'), nextB().(*proto.Executed).Liquidity)
	require.Equal(t, byte('A'), nextB().(*proto.Executed).Liquidity)
	applyMD(5) // add, execute, trade, execute, trade

	// Mass cancel and the reference query.
	a.send(&proto.NewOrder{ClOrdID: 5, Instrument: 2, Side: core.Buy, OrdType: core.Limit, TIF: core.GTC, Price: 400, Qty: 1})
	require.IsType(t, &proto.Accepted{}, nextA())
	a.send(&proto.MassCancel{})
	require.Equal(t, core.CancelMass, nextA().(*proto.Cancelled).Reason)
	applyMD(2)
	a.send(&proto.ReferenceQuery{})
	nr := expect[proto.NextReference](t, a)
	require.Equal(t, uint64(6), nr.NextClOrdID)
	require.Equal(t, uint32(1), nr.Account)

	// A halt reaches every account with a stream and the feed.
	h.ctl.TryPush(&core.Command{Kind: core.CmdHalt, Instrument: 2, Operator: 7, Cause: core.CauseOperator})
	require.Equal(t, core.AdminInstrumentHalt, nextA().(*proto.SystemEvent).Reason)
	require.Equal(t, core.AdminInstrumentHalt, nextB().(*proto.SystemEvent).Reason)
	require.Equal(t, []proto.Type{proto.TMDSystem}, applyMD(1))
	require.True(t, book.Halted[2])

	// The kill switch: the open order cancelled, the account alerted, new
	// orders refused with the engine's code.
	a.send(&proto.NewOrder{ClOrdID: 6, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 300, Qty: 1})
	require.IsType(t, &proto.Accepted{}, nextA())
	a.send(&proto.KillSwitch{})
	require.Equal(t, core.CancelKillSwitch, nextA().(*proto.Cancelled).Reason)
	al := nextA().(*proto.AccountAlert)
	require.Equal(t, core.AdminKill, al.Reason)
	require.Equal(t, int64(1), al.Value)
	a.send(&proto.NewOrder{ClOrdID: 7, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 300, Qty: 1})
	require.Equal(t, core.RejectAccountKilled, nextA().(*proto.Rejected).Reason)
	applyMD(2)

	// One resting order for the snapshot comparison.
	b.send(&proto.NewOrder{ClOrdID: 3, Instrument: 1, Side: core.Sell, OrdType: core.Limit, TIF: core.DAY, Price: 700, Qty: 5, DisplayQty: 2})
	require.IsType(t, &proto.Accepted{}, nextB())
	applyMD(1)
	md2 := dialRaw(t, h.md, nil)
	kd2 := h.addKey("d2", apikey.CreateRequest{User: "u-d2", Scopes: []apikey.Scope{apikey.ScopeData}})
	require.IsType(t, &proto.LoginAccepted{}, md2.login(kd2, 0, func(l *proto.Login) { l.Flags = proto.FlagSnapshot }))
	var snap proto.Book
	for {
		m := md2.next()
		require.NoError(t, snap.Apply(m.AppendFrame(nil)))
		if m.Type() == proto.TSnapshotEnd {
			break
		}
	}
	require.Equal(t, book.Seq, snap.Seq)
	require.Equal(t, len(book.Orders), len(snap.Orders))
	for _, s := range []core.Side{core.Buy, core.Sell} {
		require.Equal(t, book.Levels(1, s), snap.Levels(1, s))
	}
	require.Equal(t, book.Halted, snap.Halted)

	// Replay of the feed from a sequence number.
	md3 := dialRaw(t, h.md, nil)
	kd3 := h.addKey("d3", apikey.CreateRequest{User: "u-d3", Scopes: []apikey.Scope{apikey.ScopeData}})
	la3 := md3.login(kd3, 2).(*proto.LoginAccepted)
	require.Equal(t, uint64(2), la3.ReplayFrom)
	require.Equal(t, book.Seq+1, la3.NextSeq)
	for q := uint64(2); q <= book.Seq; q++ {
		require.Equal(t, q, seqOf(md3.next()))
	}
}
