package proto_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/proto"
)

func TestBook(t *testing.T) {
	var b proto.Book
	apply := func(m proto.Message) error { return b.Apply(proto.Append(nil, m)) }
	require.NoError(t, apply(&proto.MDAdd{Seq: 1, OrderID: 1, Instrument: 1, Side: core.Buy, Price: 100, Qty: 5}))
	require.NoError(t, apply(&proto.MDAdd{Seq: 2, OrderID: 2, Instrument: 1, Side: core.Buy, Price: 101, Qty: 3}))
	require.NoError(t, apply(&proto.MDAdd{Seq: 3, OrderID: 3, Instrument: 1, Side: core.Buy, Price: 100, Qty: 2}))
	require.Equal(t, []proto.Level{{Price: 101, Qty: 3, Orders: 1}, {Price: 100, Qty: 7, Orders: 2}}, b.Levels(1, core.Buy))
	require.ErrorIs(t, apply(&proto.MDDelete{Seq: 5, OrderID: 1}), proto.ErrGap)
	require.NoError(t, apply(&proto.MDExecute{Seq: 4, OrderID: 2, Qty: 3, Leaves: 0}))
	require.NoError(t, apply(&proto.MDCancel{Seq: 5, OrderID: 1, Qty: 1, Leaves: 4}))
	require.NoError(t, apply(&proto.MDReplace{Seq: 6, OrderID: 1, Price: 100, Qty: 4}))
	q := b.Queue(1, core.Buy)
	require.Len(t, q, 2)
	require.Equal(t, uint64(3), q[0].OrderID, "a replaced order goes to the back of its level")
	require.ErrorIs(t, apply(&proto.MDDelete{Seq: 7, OrderID: 99}), proto.ErrBookState)
	require.NoError(t, apply(&proto.MDSystem{Seq: 7, Reason: core.AdminInstrumentHalt, Instrument: 1}))
	require.True(t, b.Halted[1])
	// A snapshot replaces everything.
	require.NoError(t, apply(&proto.SnapshotBegin{Seq: 40, Orders: 1}))
	require.NoError(t, apply(&proto.MDAdd{OrderID: 9, Instrument: 2, Side: core.Sell, Price: 50, Qty: 1}))
	require.ErrorIs(t, apply(&proto.MDAdd{Seq: 8, OrderID: 10}), proto.ErrBookState)
	require.NoError(t, apply(&proto.SnapshotEnd{Seq: 40}))
	require.Len(t, b.Orders, 1)
	require.Empty(t, b.Halted)
	require.Equal(t, uint64(40), b.Seq)
	require.NoError(t, apply(&proto.MDTrade{Seq: 41}))
	require.Equal(t, 1, b.Trades)
}
