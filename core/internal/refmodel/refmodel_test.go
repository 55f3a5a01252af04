package refmodel

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/tradecore/tradecore/core"
)

// The expected events below are derived by hand from docs/engine.md, not by
// running the model.

func testConfig() core.Config {
	return core.Config{Instruments: []core.Instrument{
		{ID: 1, Symbol: "AAA", BandLow: 1, BandHigh: 200},
		{ID: 2, Symbol: "BBB", BandLow: 50, BandHigh: 150},
	}}
}

type step struct {
	cmd  core.Command
	want []core.Event // Seq, Time and Tag are filled from the command
}

// run applies steps to m, numbering commands from Seq 1, and compares every
// command's events with the expected ones.
func run(t *testing.T, m *Model, steps []step) {
	t.Helper()
	for i, s := range steps {
		c := s.cmd
		c.Seq, c.Time, c.Tag = uint64(i+1), int64(1000*(i+1)), uint64(500+i)
		got := m.Apply(c)
		want := make([]core.Event, len(s.want))
		for j, e := range s.want {
			e.Seq, e.Time, e.Tag = c.Seq, c.Time, c.Tag
			want[j] = e
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("command %d (%+v):\n got: %s\nwant: %s", i+1, c, fmtEvents(got), fmtEvents(want))
		}
	}
}

func fmtEvents(es []core.Event) string {
	var b strings.Builder
	for _, e := range es {
		fmt.Fprintf(&b, "\n  %+v", e)
	}
	if len(es) == 0 {
		b.WriteString("(none)")
	}
	return b.String()
}

func requireOpen(t *testing.T, m *Model, want []core.OrderState) {
	t.Helper()
	got := m.OpenOrders()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("open orders:\n got: %+v\nwant: %+v", got, want)
	}
}

func limit(acct uint32, cl uint64, side core.Side, tif core.TIF, px, qty int64) core.Command {
	return core.Command{Kind: core.CmdNew, Instrument: 1, Account: acct, ClOrdID: cl,
		Side: side, Type: core.Limit, TIF: tif, Price: px, Qty: qty}
}

const (
	bAdd  = core.KindBookAdd
	bExec = core.KindBookExecute
	bCanc = core.KindBookCancel
	bDel  = core.KindBookDelete
)

func TestLimitCrossesTwoMakers(t *testing.T) {
	m := New(testConfig())
	run(t, m, []step{
		{limit(1, 11, core.Sell, core.GTC, 101, 5), []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 1, OrderID: 1, ClOrdID: 11, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 101, Qty: 5, Leaves: 5},
			{Kind: bAdd, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 101, Qty: 5, Leaves: 5},
		}},
		{limit(2, 21, core.Sell, core.DAY, 102, 4), []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 2, OrderID: 2, ClOrdID: 21, Side: core.Sell, Type: core.Limit, TIF: core.DAY, Price: 102, Qty: 4, Leaves: 4},
			{Kind: bAdd, Instrument: 1, OrderID: 2, Side: core.Sell, Price: 102, Qty: 4, Leaves: 4},
		}},
		{limit(3, 31, core.Buy, core.DAY, 102, 7), []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 3, OrderID: 3, ClOrdID: 31, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 102, Qty: 7, Leaves: 7},
			{Kind: core.KindExecuted, Instrument: 1, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 101, Qty: 5, MatchID: 1,
				Account: 3, OrderID: 3, ClOrdID: 31, Leaves: 2, ContraAccount: 1, ContraOrderID: 1, ContraClOrdID: 11, ContraLeaves: 0},
			{Kind: bExec, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 101, Qty: 5, Leaves: 0},
			{Kind: core.KindTrade, Instrument: 1, Side: core.Buy, Price: 101, Qty: 5, MatchID: 1},
			{Kind: core.KindExecuted, Instrument: 1, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 102, Qty: 2, MatchID: 2,
				Account: 3, OrderID: 3, ClOrdID: 31, Leaves: 0, ContraAccount: 2, ContraOrderID: 2, ContraClOrdID: 21, ContraLeaves: 2},
			{Kind: bExec, Instrument: 1, OrderID: 2, Side: core.Sell, Price: 102, Qty: 2, Leaves: 2},
			{Kind: core.KindTrade, Instrument: 1, Side: core.Buy, Price: 102, Qty: 2, MatchID: 2},
		}},
	})
	requireOpen(t, m, []core.OrderState{
		{OrderID: 2, ClOrdID: 21, Account: 2, Instrument: 1, Side: core.Sell, Type: core.Limit, TIF: core.DAY, Price: 102, Shown: 2},
	})
	if last, ok := m.LastPrice(1); !ok || last != 102 {
		t.Fatalf("last price = %d, %v; want 102, true", last, ok)
	}
}

func TestIcebergRefill(t *testing.T) {
	m := New(testConfig())
	ice := limit(1, 1, core.Sell, core.GTC, 100, 10)
	ice.DisplayQty = 3
	run(t, m, []step{
		{ice, []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 1, OrderID: 1, ClOrdID: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 100, Qty: 10, Leaves: 10},
			{Kind: bAdd, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 100, Qty: 3, Leaves: 3},
		}},
		{limit(2, 1, core.Sell, core.GTC, 100, 2), []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 2, OrderID: 2, ClOrdID: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 100, Qty: 2, Leaves: 2},
			{Kind: bAdd, Instrument: 1, OrderID: 2, Side: core.Sell, Price: 100, Qty: 2, Leaves: 2},
		}},
		{limit(3, 1, core.Buy, core.IOC, 100, 6), []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 3, OrderID: 3, ClOrdID: 1, Side: core.Buy, Type: core.Limit, TIF: core.IOC, Price: 100, Qty: 6, Leaves: 6},
			// The iceberg's peak goes; it refills 3 and moves behind order 2.
			{Kind: core.KindExecuted, Instrument: 1, Side: core.Buy, Type: core.Limit, TIF: core.IOC, Price: 100, Qty: 3, MatchID: 1,
				Account: 3, OrderID: 3, ClOrdID: 1, Leaves: 3, ContraAccount: 1, ContraOrderID: 1, ContraClOrdID: 1, ContraLeaves: 7},
			{Kind: bExec, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 100, Qty: 3, Leaves: 0},
			{Kind: core.KindTrade, Instrument: 1, Side: core.Buy, Price: 100, Qty: 3, MatchID: 1},
			{Kind: bAdd, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 100, Qty: 3, Leaves: 3},
			// Order 2 is now first.
			{Kind: core.KindExecuted, Instrument: 1, Side: core.Buy, Type: core.Limit, TIF: core.IOC, Price: 100, Qty: 2, MatchID: 2,
				Account: 3, OrderID: 3, ClOrdID: 1, Leaves: 1, ContraAccount: 2, ContraOrderID: 2, ContraClOrdID: 1, ContraLeaves: 0},
			{Kind: bExec, Instrument: 1, OrderID: 2, Side: core.Sell, Price: 100, Qty: 2, Leaves: 0},
			{Kind: core.KindTrade, Instrument: 1, Side: core.Buy, Price: 100, Qty: 2, MatchID: 2},
			// Then the refilled iceberg.
			{Kind: core.KindExecuted, Instrument: 1, Side: core.Buy, Type: core.Limit, TIF: core.IOC, Price: 100, Qty: 1, MatchID: 3,
				Account: 3, OrderID: 3, ClOrdID: 1, Leaves: 0, ContraAccount: 1, ContraOrderID: 1, ContraClOrdID: 1, ContraLeaves: 6},
			{Kind: bExec, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 100, Qty: 1, Leaves: 2},
			{Kind: core.KindTrade, Instrument: 1, Side: core.Buy, Price: 100, Qty: 1, MatchID: 3},
		}},
	})
	requireOpen(t, m, []core.OrderState{
		{OrderID: 1, ClOrdID: 1, Account: 1, Instrument: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 100, Shown: 2, Hidden: 4, DisplayQty: 3},
	})
}

func TestSTPDecrement(t *testing.T) {
	m := New(testConfig())
	ice := limit(1, 1, core.Sell, core.GTC, 100, 10)
	ice.DisplayQty = 4
	grouped := limit(2, 1, core.Sell, core.GTC, 100, 3)
	grouped.STPGroup = 7
	taker := limit(3, 1, core.Buy, core.DAY, 100, 8)
	taker.STPGroup, taker.STP = 7, core.STPDecrement
	own := limit(1, 2, core.Buy, core.DAY, 100, 3)
	own.STP = core.STPDecrement
	run(t, m, []step{
		{ice, []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 1, OrderID: 1, ClOrdID: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 100, Qty: 10, Leaves: 10},
			{Kind: bAdd, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 100, Qty: 4, Leaves: 4},
		}},
		{grouped, []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 2, OrderID: 2, ClOrdID: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 100, Qty: 3, Leaves: 3},
			{Kind: bAdd, Instrument: 1, OrderID: 2, Side: core.Sell, Price: 100, Qty: 3, Leaves: 3},
		}},
		{taker, []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 3, OrderID: 3, ClOrdID: 1, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 100, Qty: 8, Leaves: 8},
			// Order 1 is another account, no group: it trades its peak and refills behind order 2.
			{Kind: core.KindExecuted, Instrument: 1, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 100, Qty: 4, MatchID: 1,
				Account: 3, OrderID: 3, ClOrdID: 1, Leaves: 4, ContraAccount: 1, ContraOrderID: 1, ContraClOrdID: 1, ContraLeaves: 6},
			{Kind: bExec, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 100, Qty: 4, Leaves: 0},
			{Kind: core.KindTrade, Instrument: 1, Side: core.Buy, Price: 100, Qty: 4, MatchID: 1},
			{Kind: bAdd, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 100, Qty: 4, Leaves: 4},
			// Order 2 shares group 7: d = min(4, 3) = 3 cancels the maker, reduces the taker.
			{Kind: core.KindCancelled, Instrument: 1, Account: 2, OrderID: 2, ClOrdID: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 100, Reason: core.CancelSTPDecrement, Qty: 3},
			{Kind: bDel, Instrument: 1, OrderID: 2, Side: core.Sell, Price: 100, Qty: 3},
			{Kind: core.KindReduced, Instrument: 1, Account: 3, OrderID: 3, ClOrdID: 1, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 100, Reason: core.CancelSTPDecrement, Qty: 3, Leaves: 1},
			// The taker goes on with 1 lot against the refilled iceberg.
			{Kind: core.KindExecuted, Instrument: 1, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 100, Qty: 1, MatchID: 2,
				Account: 3, OrderID: 3, ClOrdID: 1, Leaves: 0, ContraAccount: 1, ContraOrderID: 1, ContraClOrdID: 1, ContraLeaves: 5},
			{Kind: bExec, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 100, Qty: 1, Leaves: 3},
			{Kind: core.KindTrade, Instrument: 1, Side: core.Buy, Price: 100, Qty: 1, MatchID: 2},
		}},
		// Account 1 buys against its own iceberg (3 shown + 2 hidden): d = 3
		// reduces the maker by 3, hidden first (2 hidden, then 1 shown), and
		// cancels the taker.
		{own, []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 1, OrderID: 4, ClOrdID: 2, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 100, Qty: 3, Leaves: 3},
			{Kind: core.KindReduced, Instrument: 1, Account: 1, OrderID: 1, ClOrdID: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 100, Reason: core.CancelSTPDecrement, Qty: 3, Leaves: 2},
			{Kind: bCanc, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 100, Qty: 1, Leaves: 2},
			{Kind: core.KindCancelled, Instrument: 1, Account: 1, OrderID: 4, ClOrdID: 2, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 100, Reason: core.CancelSTPDecrement, Qty: 3},
		}},
	})
	requireOpen(t, m, []core.OrderState{
		{OrderID: 1, ClOrdID: 1, Account: 1, Instrument: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 100, Shown: 2, Hidden: 0, DisplayQty: 4},
	})
}

func TestStopCascade(t *testing.T) {
	m := New(testConfig())
	buyStop := core.Command{Kind: core.CmdNew, Instrument: 1, Account: 2, ClOrdID: 1, Side: core.Buy, Type: core.Stop, TIF: core.GTC, StopPrice: 101, Qty: 2}
	buyStopLimit := core.Command{Kind: core.CmdNew, Instrument: 1, Account: 3, ClOrdID: 1, Side: core.Buy, Type: core.StopLimit, TIF: core.DAY, StopPrice: 103, Price: 104, Qty: 3}
	sellStop := core.Command{Kind: core.CmdNew, Instrument: 1, Account: 4, ClOrdID: 1, Side: core.Sell, Type: core.Stop, TIF: core.DAY, StopPrice: 90, Qty: 1}
	run(t, m, []step{
		{limit(1, 1, core.Sell, core.GTC, 101, 1), []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 1, OrderID: 1, ClOrdID: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 101, Qty: 1, Leaves: 1},
			{Kind: bAdd, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 101, Qty: 1, Leaves: 1},
		}},
		{limit(1, 2, core.Sell, core.GTC, 103, 2), []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 1, OrderID: 2, ClOrdID: 2, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 103, Qty: 2, Leaves: 2},
			{Kind: bAdd, Instrument: 1, OrderID: 2, Side: core.Sell, Price: 103, Qty: 2, Leaves: 2},
		}},
		{limit(1, 3, core.Sell, core.GTC, 105, 2), []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 1, OrderID: 3, ClOrdID: 3, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 105, Qty: 2, Leaves: 2},
			{Kind: bAdd, Instrument: 1, OrderID: 3, Side: core.Sell, Price: 105, Qty: 2, Leaves: 2},
		}},
		// No trade yet: the stops wait.
		{buyStop, []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 2, OrderID: 4, ClOrdID: 1, Side: core.Buy, Type: core.Stop, TIF: core.GTC, StopPrice: 101, Qty: 2, Leaves: 2},
		}},
		{buyStopLimit, []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 3, OrderID: 5, ClOrdID: 1, Side: core.Buy, Type: core.StopLimit, TIF: core.DAY, Price: 104, StopPrice: 103, Qty: 3, Leaves: 3},
		}},
		{sellStop, []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 4, OrderID: 6, ClOrdID: 1, Side: core.Sell, Type: core.Stop, TIF: core.DAY, StopPrice: 90, Qty: 1, Leaves: 1},
		}},
		// A trade at 101 triggers the buy stop at 101; it buys at 103, which
		// triggers the stop-limit at 103; that one rests at 104 (105 does not
		// cross). The sell stop at 90 stays.
		{limit(5, 1, core.Buy, core.IOC, 101, 1), []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 5, OrderID: 7, ClOrdID: 1, Side: core.Buy, Type: core.Limit, TIF: core.IOC, Price: 101, Qty: 1, Leaves: 1},
			{Kind: core.KindExecuted, Instrument: 1, Side: core.Buy, Type: core.Limit, TIF: core.IOC, Price: 101, Qty: 1, MatchID: 1,
				Account: 5, OrderID: 7, ClOrdID: 1, Leaves: 0, ContraAccount: 1, ContraOrderID: 1, ContraClOrdID: 1, ContraLeaves: 0},
			{Kind: bExec, Instrument: 1, OrderID: 1, Side: core.Sell, Price: 101, Qty: 1, Leaves: 0},
			{Kind: core.KindTrade, Instrument: 1, Side: core.Buy, Price: 101, Qty: 1, MatchID: 1},
			{Kind: core.KindTriggered, Instrument: 1, Account: 2, OrderID: 4, ClOrdID: 1, Side: core.Buy, Type: core.Stop, TIF: core.GTC, StopPrice: 101, Qty: 2, Leaves: 2},
			{Kind: core.KindExecuted, Instrument: 1, Side: core.Buy, Type: core.Stop, TIF: core.GTC, Price: 103, StopPrice: 101, Qty: 2, MatchID: 2,
				Account: 2, OrderID: 4, ClOrdID: 1, Leaves: 0, ContraAccount: 1, ContraOrderID: 2, ContraClOrdID: 2, ContraLeaves: 0},
			{Kind: bExec, Instrument: 1, OrderID: 2, Side: core.Sell, Price: 103, Qty: 2, Leaves: 0},
			{Kind: core.KindTrade, Instrument: 1, Side: core.Buy, Price: 103, Qty: 2, MatchID: 2},
			{Kind: core.KindTriggered, Instrument: 1, Account: 3, OrderID: 5, ClOrdID: 1, Side: core.Buy, Type: core.StopLimit, TIF: core.DAY, Price: 104, StopPrice: 103, Qty: 3, Leaves: 3},
			{Kind: bAdd, Instrument: 1, OrderID: 5, Side: core.Buy, Price: 104, Qty: 3, Leaves: 3},
		}},
	})
	requireOpen(t, m, []core.OrderState{
		{OrderID: 5, ClOrdID: 1, Account: 3, Instrument: 1, Side: core.Buy, Type: core.StopLimit, TIF: core.DAY, Price: 104, StopPrice: 103, Shown: 3},
		{OrderID: 3, ClOrdID: 3, Account: 1, Instrument: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 105, Shown: 2},
		{OrderID: 6, ClOrdID: 1, Account: 4, Instrument: 1, Side: core.Sell, Type: core.Stop, TIF: core.DAY, StopPrice: 90, Shown: 1, Waiting: true},
	})
	// A stop that already meets the last price (103) triggers at once; with
	// nothing to buy, the market remainder is cancelled.
	now := core.Command{Kind: core.CmdNew, Instrument: 1, Account: 6, ClOrdID: 1, Side: core.Sell, Type: core.Stop, TIF: core.GTC, StopPrice: 110, Qty: 4, Seq: 9, Time: 9, Tag: 9}
	got := m.Apply(now)
	want := []core.Event{
		{Kind: core.KindAccepted, Instrument: 1, Account: 6, OrderID: 8, ClOrdID: 1, Side: core.Sell, Type: core.Stop, TIF: core.GTC, StopPrice: 110, Qty: 4, Leaves: 4},
		{Kind: core.KindTriggered, Instrument: 1, Account: 6, OrderID: 8, ClOrdID: 1, Side: core.Sell, Type: core.Stop, TIF: core.GTC, StopPrice: 110, Qty: 4, Leaves: 4},
		{Kind: core.KindExecuted, Instrument: 1, Side: core.Sell, Type: core.Stop, TIF: core.GTC, Price: 104, StopPrice: 110, Qty: 3, MatchID: 3,
			Account: 6, OrderID: 8, ClOrdID: 1, Leaves: 1, ContraAccount: 3, ContraOrderID: 5, ContraClOrdID: 1, ContraLeaves: 0},
		{Kind: bExec, Instrument: 1, OrderID: 5, Side: core.Buy, Price: 104, Qty: 3, Leaves: 0},
		{Kind: core.KindTrade, Instrument: 1, Side: core.Sell, Price: 104, Qty: 3, MatchID: 3},
		{Kind: core.KindCancelled, Instrument: 1, Account: 6, OrderID: 8, ClOrdID: 1, Side: core.Sell, Type: core.Stop, TIF: core.GTC, StopPrice: 110, Reason: core.CancelMarketRemainder, Qty: 1},
	}
	for i := range want {
		want[i].Seq, want[i].Time, want[i].Tag = 9, 9, 9
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("immediate stop:\n got: %s\nwant: %s", fmtEvents(got), fmtEvents(want))
	}
}

func TestFillable(t *testing.T) {
	// Asks: order 1 (account 1) 5 lots showing 2 at 100, order 2 (account 2)
	// 3 lots at 100, order 3 (account 1) 4 lots at 101.
	setup := func() *Model {
		m := New(testConfig())
		ice := limit(1, 1, core.Sell, core.GTC, 100, 5)
		ice.DisplayQty = 2
		m.Apply(ice)
		m.Apply(limit(2, 1, core.Sell, core.GTC, 100, 3))
		m.Apply(limit(1, 2, core.Sell, core.GTC, 101, 4))
		return m
	}
	for _, tc := range []struct {
		mode  core.STPMode
		price int64
		rem   int64
		want  int64
	}{
		{core.STPOff, 101, 100, 12},
		{core.STPOff, 100, 100, 8},
		{core.STPOff, 101, 7, 7},
		{core.STPCancelOldest, 101, 100, 9}, // order 2 skipped
		{core.STPCancelNewest, 101, 100, 2}, // stops at order 2; order 1 counts its 2 shown lots
		{core.STPCancelBoth, 101, 100, 2},
		// order 1's 2 shown lots, order 2 takes 3 lots off the taker, then
		// order 1's 3 hidden lots (refilled behind order 2) and order 3's 4
		{core.STPDecrement, 100, 100, 5},
		{core.STPDecrement, 101, 100, 9},
		{core.STPDecrement, 101, 7, 4}, // 2, then 3 decremented, then 2 of the refills
		{core.STPDecrement, 101, 5, 2}, // 2, then the decrement leaves nothing
	} {
		t.Run(fmt.Sprintf("stp%d-px%d-rem%d", tc.mode, tc.price, tc.rem), func(t *testing.T) {
			m := setup()
			taker := &order{account: 2, side: core.Buy, typ: core.Limit, price: tc.price, stp: tc.mode}
			if got := fillable(m.byID[1], taker, tc.rem); got != tc.want {
				t.Fatalf("fillable = %d, want %d", got, tc.want)
			}
		})
	}

	m := setup()
	fok := limit(2, 9, core.Buy, core.FOK, 101, 3)
	got := m.Apply(fok)
	want := []core.Event{
		{Kind: core.KindAccepted, Instrument: 1, Account: 2, OrderID: 4, ClOrdID: 9, Side: core.Buy, Type: core.Limit, TIF: core.FOK, Price: 101, Qty: 3, Leaves: 3},
		{Kind: core.KindCancelled, Instrument: 1, Account: 2, OrderID: 4, ClOrdID: 9, Side: core.Buy, Type: core.Limit, TIF: core.FOK, Price: 101, Reason: core.CancelFOKNotFillable, Qty: 3},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FOK:\n got: %s\nwant: %s", fmtEvents(got), fmtEvents(want))
	}
	mq := limit(3, 9, core.Buy, core.GTC, 100, 20)
	mq.MinQty = 9
	got = m.Apply(mq)
	want = []core.Event{
		{Kind: core.KindAccepted, Instrument: 1, Account: 3, OrderID: 5, ClOrdID: 9, Side: core.Buy, Type: core.Limit, TIF: core.GTC, Price: 100, Qty: 20, Leaves: 20},
		{Kind: core.KindCancelled, Instrument: 1, Account: 3, OrderID: 5, ClOrdID: 9, Side: core.Buy, Type: core.Limit, TIF: core.GTC, Price: 100, Reason: core.CancelMinQtyNotMet, Qty: 20},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("MinQty:\n got: %s\nwant: %s", fmtEvents(got), fmtEvents(want))
	}
}

func TestRejects(t *testing.T) {
	base := func() core.Command {
		c := limit(1, 1, core.Buy, core.DAY, 100, 10)
		return c
	}
	cfg := testConfig()
	cfg.MaxOrders = 2
	cfg.MaxOrderQty = 1000
	for _, tc := range []struct {
		name string
		mod  func(*core.Command)
		want core.Reason
	}{
		{"unknown-command", func(c *core.Command) { c.Kind = 99 }, core.RejectUnknownCommand},
		{"none-command", func(c *core.Command) { c.Kind = core.CmdNone }, core.RejectUnknownCommand},
		{"account", func(c *core.Command) { c.Account, c.ClOrdID = 0, 0 }, core.RejectInvalidAccount},
		{"clordid", func(c *core.Command) { c.ClOrdID, c.Instrument = 0, 9 }, core.RejectInvalidClOrdID},
		{"instrument", func(c *core.Command) { c.Instrument, c.Side = 9, 0 }, core.RejectUnknownInstrument},
		{"side", func(c *core.Command) { c.Side, c.Type = 3, 0 }, core.RejectInvalidSide},
		{"type", func(c *core.Command) { c.Type, c.TIF = 5, 0 }, core.RejectInvalidType},
		{"tif", func(c *core.Command) { c.TIF, c.STP = 5, 5 }, core.RejectInvalidTIF},
		{"stp", func(c *core.Command) { c.STP, c.Flags = 5, 2 }, core.RejectInvalidSTP},
		{"flags-unknown", func(c *core.Command) { c.Flags, c.Qty = 2, 0 }, core.RejectInvalidFlags},
		{"flags-postonly-ioc", func(c *core.Command) { c.Flags, c.TIF = core.PostOnly, core.IOC }, core.RejectInvalidFlags},
		{"flags-postonly-stoplimit", func(c *core.Command) { c.Flags, c.Type, c.StopPrice = core.PostOnly, core.StopLimit, 100 }, core.RejectInvalidFlags},
		{"qty-zero", func(c *core.Command) { c.Qty, c.Price = 0, 0 }, core.RejectInvalidQty},
		{"qty-max", func(c *core.Command) { c.Qty = 1001 }, core.RejectInvalidQty},
		{"price-zero", func(c *core.Command) { c.Price, c.StopPrice = 0, -1 }, core.RejectInvalidPrice},
		{"price-on-market", func(c *core.Command) { c.Type = core.Market }, core.RejectInvalidPrice},
		{"price-band", func(c *core.Command) { c.Price, c.StopPrice = 201, 5 }, core.RejectPriceOutOfBand},
		{"stop-on-limit", func(c *core.Command) { c.StopPrice, c.DisplayQty = 100, -1 }, core.RejectInvalidStopPrice},
		{"stop-missing", func(c *core.Command) { c.Type = core.StopLimit }, core.RejectInvalidStopPrice},
		{"stop-band", func(c *core.Command) { c.Type, c.StopPrice = core.StopLimit, 201 }, core.RejectInvalidStopPrice},
		{"display-negative", func(c *core.Command) { c.DisplayQty, c.MinQty = -1, -1 }, core.RejectInvalidDisplayQty},
		{"display-above-qty", func(c *core.Command) { c.DisplayQty = 11 }, core.RejectInvalidDisplayQty},
		{"display-on-ioc", func(c *core.Command) { c.DisplayQty, c.TIF = 10, core.IOC }, core.RejectInvalidDisplayQty},
		{"minqty-above", func(c *core.Command) { c.MinQty = 11 }, core.RejectInvalidMinQty},
		{"minqty-on-stoplimit", func(c *core.Command) { c.MinQty, c.Type, c.StopPrice = 1, core.StopLimit, 100 }, core.RejectInvalidMinQty},
		{"duplicate", func(c *core.Command) { c.ClOrdID = 7 }, core.RejectDuplicateClOrdID},
		{"stale", func(c *core.Command) { c.ClOrdID = 6 }, core.RejectStaleClOrdID},
		{"capacity", func(c *core.Command) { c.Account = 3 }, core.RejectOrderCapacity},
		{"post-only", func(c *core.Command) { c.Account, c.Flags, c.Price = 2, core.PostOnly, 150 }, core.RejectPostOnlyWouldTake},
		{"post-only-min-qty", func(c *core.Command) { c.Account, c.Flags, c.Price, c.MinQty = 2, core.PostOnly, 150, 1 }, core.RejectPostOnlyMinQty},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(cfg)
			m.Apply(limit(1, 7, core.Sell, core.GTC, 150, 1))
			c := base()
			c.ClOrdID = 8 // above account 1's 7
			if tc.name == "capacity" {
				m.Apply(limit(2, 7, core.Sell, core.GTC, 160, 1))
			}
			tc.mod(&c)
			got := m.Apply(c)
			want := []core.Event{{Kind: core.KindRejected, Reason: tc.want, Account: c.Account, OrderID: c.OrderID, ClOrdID: c.ClOrdID,
				Instrument: c.Instrument, Side: c.Side, Type: c.Type, TIF: c.TIF, Price: c.Price, StopPrice: c.StopPrice, Qty: c.Qty}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got: %s\nwant: %s", fmtEvents(got), fmtEvents(want))
			}
		})
	}
}

func TestReplaceAndCancel(t *testing.T) {
	m := New(testConfig())
	ice := limit(1, 1, core.Buy, core.GTC, 100, 10)
	ice.DisplayQty = 4
	hdr := func(k core.EventKind, cl uint64, px int64) core.Event {
		return core.Event{Kind: k, Instrument: 1, Account: 1, OrderID: 1, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.GTC, Price: px}
	}
	with := func(e core.Event, f func(*core.Event)) core.Event { f(&e); return e }
	run(t, m, []step{
		{ice, []core.Event{
			with(hdr(core.KindAccepted, 1, 100), func(e *core.Event) { e.Qty, e.Leaves = 10, 10 }),
			{Kind: bAdd, Instrument: 1, OrderID: 1, Side: core.Buy, Price: 100, Qty: 4, Leaves: 4},
		}},
		{limit(2, 1, core.Sell, core.GTC, 105, 3), []core.Event{
			{Kind: core.KindAccepted, Instrument: 1, Account: 2, OrderID: 2, ClOrdID: 1, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 105, Qty: 3, Leaves: 3},
			{Kind: bAdd, Instrument: 1, OrderID: 2, Side: core.Sell, Price: 105, Qty: 3, Leaves: 3},
		}},
		// Cancel to 5: 6 hidden go first... 10 open = 4 shown + 6 hidden; to 5 removes 5 hidden.
		{core.Command{Kind: core.CmdCancelSize, Account: 1, OrderID: 1, OrigClOrdID: 1, Qty: 5}, []core.Event{
			with(hdr(core.KindReduced, 1, 100), func(e *core.Event) { e.Reason, e.Qty, e.Leaves = core.CancelRequested, 5, 5 }),
		}},
		// Same price, 3 lots: keeps priority, 1 hidden + 1 shown go.
		{core.Command{Kind: core.CmdReplace, Account: 1, OrderID: 1, OrigClOrdID: 1, ClOrdID: 2, Price: 100, Qty: 3}, []core.Event{
			with(hdr(core.KindReplaced, 2, 100), func(e *core.Event) { e.OrigClOrdID, e.Qty, e.Leaves = 1, 3, 3 }),
			{Kind: bCanc, Instrument: 1, OrderID: 1, Side: core.Buy, Price: 100, Qty: 1, Leaves: 3},
		}},
		// Keeping its own reference is a reused reference: refused, nothing changes.
		{core.Command{Kind: core.CmdReplace, Account: 1, OrderID: 1, OrigClOrdID: 2, ClOrdID: 2, Price: 101, Qty: 6}, []core.Event{
			{Kind: core.KindRejected, Reason: core.RejectDuplicateClOrdID, Account: 1, OrderID: 1, ClOrdID: 2, OrigClOrdID: 2, Price: 101, Qty: 6},
		}},
		// New price, not crossing: back of the level at 101, 6 lots showing 4.
		{core.Command{Kind: core.CmdReplace, Account: 1, OrderID: 1, OrigClOrdID: 2, ClOrdID: 3, Price: 101, Qty: 6}, []core.Event{
			with(hdr(core.KindReplaced, 3, 101), func(e *core.Event) { e.OrigClOrdID, e.Qty, e.Leaves = 2, 6, 6 }),
			{Kind: core.KindBookReplace, Instrument: 1, OrderID: 1, Side: core.Buy, Price: 101, Qty: 4, Leaves: 4},
		}},
		// Crossing: off the book, trades 3 at 105, rests 3 showing 3.
		{core.Command{Kind: core.CmdReplace, Account: 1, OrderID: 1, OrigClOrdID: 3, ClOrdID: 4, Instrument: 1, Price: 106, Qty: 6}, []core.Event{
			with(hdr(core.KindReplaced, 4, 106), func(e *core.Event) { e.OrigClOrdID, e.Qty, e.Leaves = 3, 6, 6 }),
			{Kind: bDel, Instrument: 1, OrderID: 1, Side: core.Buy, Price: 101, Qty: 4},
			{Kind: core.KindExecuted, Instrument: 1, Side: core.Buy, Type: core.Limit, TIF: core.GTC, Price: 105, Qty: 3, MatchID: 1,
				Account: 1, OrderID: 1, ClOrdID: 4, Leaves: 3, ContraAccount: 2, ContraOrderID: 2, ContraClOrdID: 1},
			{Kind: bExec, Instrument: 1, OrderID: 2, Side: core.Sell, Price: 105, Qty: 3},
			{Kind: core.KindTrade, Instrument: 1, Side: core.Buy, Price: 105, Qty: 3, MatchID: 1},
			{Kind: bAdd, Instrument: 1, OrderID: 1, Side: core.Buy, Price: 106, Qty: 3, Leaves: 3},
		}},
		{core.Command{Kind: core.CmdCancel, Account: 1, OrderID: 1, OrigClOrdID: 4, Instrument: 2}, []core.Event{
			{Kind: core.KindRejected, Reason: core.RejectInstrumentMismatch, Account: 1, OrderID: 1, OrigClOrdID: 4, Instrument: 2},
		}},
		// The old reference no longer names the order; another account cannot cancel it.
		{core.Command{Kind: core.CmdCancel, Account: 1, OrderID: 1, OrigClOrdID: 3}, []core.Event{
			{Kind: core.KindRejected, Reason: core.RejectUnknownOrder, Account: 1, OrderID: 1, OrigClOrdID: 3},
		}},
		{core.Command{Kind: core.CmdCancel, Account: 2, OrderID: 1, OrigClOrdID: 4}, []core.Event{
			{Kind: core.KindRejected, Reason: core.RejectUnknownOrder, Account: 2, OrderID: 1, OrigClOrdID: 4},
		}},
		{core.Command{Kind: core.CmdCancel, Account: 1, OrderID: 1, OrigClOrdID: 4}, []core.Event{
			with(hdr(core.KindCancelled, 4, 106), func(e *core.Event) { e.Reason, e.Qty = core.CancelRequested, 3 }),
			{Kind: bDel, Instrument: 1, OrderID: 1, Side: core.Buy, Price: 106, Qty: 3},
		}},
		{core.Command{Kind: core.CmdCancel, Account: 1, OrderID: 1, OrigClOrdID: 4}, []core.Event{
			{Kind: core.KindRejected, Reason: core.RejectUnknownOrder, Account: 1, OrderID: 1, OrigClOrdID: 4},
		}},
	})
	requireOpen(t, m, nil)
}

func TestTraversalMassCancelEndOfDay(t *testing.T) {
	cfg := testConfig()
	cfg.Instruments[0], cfg.Instruments[1] = cfg.Instruments[1], cfg.Instruments[0] // 2 before 1
	m := New(cfg)
	in := func(c core.Command, inst uint32) core.Command { c.Instrument = inst; return c }
	stop := func(acct uint32, cl uint64, side core.Side, tif core.TIF, sp int64) core.Command {
		return core.Command{Kind: core.CmdNew, Instrument: 1, Account: acct, ClOrdID: cl, Side: side, Type: core.Stop, TIF: tif, StopPrice: sp, Qty: 1}
	}
	for _, c := range []core.Command{
		limit(1, 1, core.Buy, core.DAY, 99, 1),        // 1
		limit(2, 1, core.Buy, core.GTC, 100, 1),       // 2
		limit(1, 2, core.Buy, core.GTC, 99, 1),        // 3
		limit(1, 3, core.Sell, core.DAY, 110, 1),      // 4
		limit(2, 2, core.Sell, core.DAY, 108, 1),      // 5
		stop(1, 4, core.Buy, core.DAY, 130),           // 6
		stop(2, 3, core.Buy, core.GTC, 120),           // 7
		stop(1, 5, core.Sell, core.DAY, 50),           // 8
		stop(2, 4, core.Sell, core.IOC, 60),           // 9
		in(limit(1, 6, core.Buy, core.DAY, 70, 1), 2), // 10
	} {
		if es := m.Apply(c); es[0].Kind != core.KindAccepted {
			t.Fatalf("setup %+v: %+v", c, es)
		}
	}
	var ids []uint64
	for _, o := range m.OpenOrders() {
		ids = append(ids, o.OrderID)
	}
	if want := []uint64{10, 2, 1, 3, 5, 4, 7, 6, 9, 8}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("traversal %v, want %v", ids, want)
	}
	kinds := func(es []core.Event) (s []string) {
		for _, e := range es {
			s = append(s, fmt.Sprintf("%d:%d", e.Kind, e.OrderID))
		}
		return s
	}
	got := kinds(m.Apply(core.Command{Kind: core.CmdEndOfDay, Qty: 20260105}))
	want := []string{"8:10", "12:10", "8:1", "12:1", "8:5", "12:5", "8:4", "12:4", "8:6", "8:8", "16:0"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("end of day %v, want %v", got, want)
	}
	if es := m.Apply(core.Command{Kind: core.CmdMassCancel, Instrument: 3}); len(es) != 1 || es[0].Reason != core.RejectUnknownInstrument {
		t.Fatalf("mass cancel of unknown instrument: %+v", es)
	}
	got = kinds(m.Apply(core.Command{Kind: core.CmdMassCancel, Account: 2, Instrument: 1}))
	want = []string{"4:2", "12:2", "4:7", "4:9"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("mass cancel %v, want %v", got, want)
	}
	if n := m.OpenCount(); n != 1 {
		t.Fatalf("%d open orders left, want 1 (order 3)", n)
	}
}

// TestStopElection checks, from the specification's Stops section, which
// stops enter and in what order: the OrderIDs of the Triggered events of the
// last command, and of the Executed events of each (as "oid@price").
func TestStopElection(t *testing.T) {
	stop := func(acct uint32, side core.Side, px int64) core.Command {
		return core.Command{Kind: core.CmdNew, Instrument: 1, Account: acct, ClOrdID: 1, Side: side, Type: core.Stop, TIF: core.DAY, StopPrice: px, Qty: 1}
	}
	for _, tc := range []struct {
		name string
		cmds []core.Command
		want []string
	}{
		{"sweep-elects-on-its-way", []core.Command{ // last 105; the buy prints 99 then 101
			limit(1, 1, core.Sell, core.DAY, 105, 1), limit(2, 1, core.Buy, core.DAY, 105, 1),
			stop(3, core.Sell, 100), limit(4, 1, core.Buy, core.DAY, 95, 5),
			limit(1, 2, core.Sell, core.DAY, 99, 1), limit(1, 3, core.Sell, core.DAY, 101, 1),
			limit(5, 1, core.Buy, core.DAY, 101, 2),
		}, []string{"7@99", "7@101", "T3", "3@95"}},
		{"first-print-furthest-through", []core.Command{ // buy stop 98 (2 through), sell stop 105 (5 through)
			stop(1, core.Buy, 98), stop(2, core.Sell, 105),
			limit(8, 1, core.Sell, core.DAY, 110, 9), limit(8, 2, core.Buy, core.DAY, 90, 9),
			limit(9, 1, core.Sell, core.DAY, 100, 1), limit(7, 1, core.Buy, core.DAY, 100, 1),
		}, []string{"6@100", "T2", "2@90", "T1", "1@110"}},
		{"first-print-tie-aggressor-side", []core.Command{ // sell stop 102 and buy stop 98: 2 through each; aggressor sells
			stop(2, core.Sell, 102), stop(1, core.Buy, 98),
			limit(8, 1, core.Sell, core.DAY, 110, 9), limit(8, 2, core.Buy, core.DAY, 90, 9),
			limit(9, 1, core.Buy, core.DAY, 100, 1), limit(7, 1, core.Sell, core.DAY, 100, 1),
		}, []string{"6@100", "T1", "1@90", "T2", "2@110"}},
		{"cascade-queues-behind", []core.Command{ // the sell stop's print at 90 elects the stop at 91, behind the buy stop
			stop(1, core.Buy, 98), stop(2, core.Sell, 105), stop(3, core.Sell, 91),
			limit(8, 1, core.Sell, core.DAY, 110, 9), limit(8, 2, core.Buy, core.DAY, 90, 9),
			limit(9, 1, core.Sell, core.DAY, 100, 1), limit(7, 1, core.Buy, core.DAY, 100, 1),
		}, []string{"7@100", "T2", "2@90", "T1", "1@110", "T3", "3@90"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(testConfig())
			var got []core.Event
			for i, c := range tc.cmds {
				c.Seq = uint64(i + 1)
				got = m.Apply(c)
			}
			var seen []string
			for _, e := range got {
				switch e.Kind {
				case core.KindTriggered:
					seen = append(seen, fmt.Sprintf("T%d", e.OrderID))
				case core.KindExecuted:
					seen = append(seen, fmt.Sprintf("%d@%d", e.OrderID, e.Price))
				}
			}
			if !reflect.DeepEqual(seen, tc.want) {
				t.Fatalf("got %v, want %v", seen, tc.want)
			}
			if n := len(m.elected); n != 0 {
				t.Fatalf("%d stops left in the election queue", n)
			}
		})
	}
}
