package core_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
)

// allocEngine returns an engine with a standing book on instrument 1: bids
// 900..999 and asks 1001..1100, ten orders a level, some icebergs, plus
// waiting stops, and a non-allocating sink. Instrument 2 starts empty.
func allocEngine(t *testing.T, risk bool) (*core.Engine, *driver) {
	t.Helper()
	d := &driver{}
	cfg := core.Config{
		Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 4000}, {ID: 2, BandLow: 1, BandHigh: 200}},
		MaxOrders:   1 << 16,
	}
	if risk { // every check on, none binding
		cfg.Instruments[0].TickValue, cfg.Instruments[0].RefPrice, cfg.Instruments[0].CollarBps = 10, 1000, 5000
		cfg.Instruments[1].TickValue, cfg.Instruments[1].RefPrice, cfg.Instruments[1].CollarBps = 10, 100, 5000
		for id := uint32(1); id <= 100; id++ {
			cfg.Accounts = append(cfg.Accounts, core.Account{ID: id, Cash: 1 << 50, AllowSTPOff: true,
				Positions: []core.Position{{Instrument: 1, Lots: 1 << 30}, {Instrument: 2, Lots: 1 << 30}},
				Limits: core.Limits{MaxOrderQty: 1 << 20, MaxOrderNotional: 1 << 50, MaxPosition: 1 << 40,
					DailyCredit: 1 << 60, OrdersPerSec: 1 << 40, CancelsPerSec: 1 << 40}})
		}
	}
	var err error
	d.eng, err = core.New(cfg, d.sink)
	require.NoError(t, err)
	cl := uint64(1 << 32)
	for p := int64(0); p < 100; p++ {
		for k := range int64(10) {
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: uint32(1 + k), ClOrdID: cl, Side: core.Buy,
				Type: core.Limit, TIF: core.GTC, Price: 999 - p, Qty: 100, DisplayQty: 10 * (k % 2)})
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: uint32(1 + k), ClOrdID: cl, Side: core.Sell,
				Type: core.Limit, TIF: core.GTC, Price: 1001 + p, Qty: 100, DisplayQty: 10 * (k % 2)})
		}
	}
	return d.eng, d
}

// driver stamps and applies commands; a concrete type, so commands built on
// the caller's stack stay there (a func value would make them escape).
type driver struct {
	eng      *core.Engine
	seq      uint64
	events   int
	kinds    [32]int // events by kind
	accepted uint64  // OrderID of the last Accepted event
}

func (d *driver) sink(evs []core.Event) {
	d.events += len(evs)
	for i := range evs {
		d.kinds[evs[i].Kind&31]++
		if evs[i].Kind == core.KindAccepted {
			d.accepted = evs[i].OrderID
		}
	}
}

func (d *driver) apply(c *core.Command) {
	d.seq++
	c.Seq = d.seq
	d.eng.Apply(c)
	d.eng.Flush()
}

// TestNoAllocations proves the steady-state order paths allocate nothing:
// new (resting), cancel, replace (keep and lose priority), cancel-to-size,
// and matching with iceberg refills, stop triggers and STP.
func TestNoAllocations(t *testing.T) {
	for _, risk := range []bool{false, true} {
		t.Run(map[bool]string{false: "risk-off", true: "risk-on"}[risk], func(t *testing.T) { testNoAllocations(t, risk) })
	}
}

func testNoAllocations(t *testing.T, risk bool) {
	eng, d := allocEngine(t, risk)
	cl := uint64(1 << 33) // above the references the set-up used
	cases := []struct {
		name string
		run  func()
		want []core.EventKind // each must occur in every run: the path was taken
	}{
		{"new-rest-and-cancel", func() {
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 77, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 950, Qty: 5})
			d.apply(&core.Command{Kind: core.CmdCancel, Account: 77, OrderID: d.accepted, OrigClOrdID: cl})
		}, []core.EventKind{core.KindAccepted, core.KindCancelled}},
		{"replace-move-size-and-cancel", func() {
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 77, ClOrdID: cl, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 1050, Qty: 5, DisplayQty: 2})
			id := d.accepted
			cl++
			d.apply(&core.Command{Kind: core.CmdReplace, Account: 77, OrderID: id, OrigClOrdID: cl - 1, ClOrdID: cl, Price: 1060, Qty: 8})
			cl++
			d.apply(&core.Command{Kind: core.CmdReplace, Account: 77, OrderID: id, OrigClOrdID: cl - 1, ClOrdID: cl, Price: 1060, Qty: 6})
			d.apply(&core.Command{Kind: core.CmdCancelSize, Account: 77, OrderID: id, OrigClOrdID: cl, Qty: 3})
			d.apply(&core.Command{Kind: core.CmdCancel, Account: 77, OrderID: id, OrigClOrdID: cl})
		}, []core.EventKind{core.KindAccepted, core.KindReplaced, core.KindBookReplace, core.KindReduced, core.KindCancelled}},
		{"match-refill-and-replenish", func() {
			// Take 25 lots at the best ask (crossing icebergs), then put them back.
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 88, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.IOC, Price: 1001, Qty: 25, STP: core.STPOff})
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 88, ClOrdID: cl, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 1001, Qty: 25})
		}, []core.EventKind{core.KindExecuted, core.KindTrade, core.KindBookAdd}},
		{"market-and-stp", func() {
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 1, ClOrdID: cl, Side: core.Sell, Type: core.Market, TIF: core.IOC, Qty: 3, STP: core.STPDecrement})
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 99, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.GTC, Price: 999, Qty: 3})
		}, []core.EventKind{core.KindReduced, core.KindCancelled}}, // STP decrement against account 1's own best bid
		{"stop-trigger", func() {
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 66, ClOrdID: cl, Side: core.Buy, Type: core.StopLimit, TIF: core.DAY, StopPrice: 1001, Price: 1001, Qty: 1})
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 65, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.IOC, Price: 1001, Qty: 1})
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 64, ClOrdID: cl, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: 1001, Qty: 2})
		}, []core.EventKind{core.KindTriggered}},
		{"sweep-elects-stops-and-cascades", func() {
			// On instrument 2: the last trade at 100; asks at 101..105; buy
			// stop-limits at 102 and 103 (limit 104) and at 104 (limit 105).
			// A buy for 3 at 103 prints 101, 102 (electing the first) and 103
			// (the second); they buy at 104, which elects the third.
			sellAt := func(px, qty int64) {
				cl++
				d.apply(&core.Command{Kind: core.CmdNew, Instrument: 2, Account: 70, ClOrdID: cl, Side: core.Sell, Type: core.Limit, TIF: core.GTC, Price: px, Qty: qty})
			}
			stopAt := func(acct uint32, stop, px int64) {
				cl++
				d.apply(&core.Command{Kind: core.CmdNew, Instrument: 2, Account: acct, ClOrdID: cl, Side: core.Buy, Type: core.StopLimit, TIF: core.DAY, StopPrice: stop, Price: px, Qty: 1})
			}
			sellAt(100, 1)
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 2, Account: 71, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.IOC, Price: 100, Qty: 1})
			for px := int64(101); px <= 103; px++ {
				sellAt(px, 1)
			}
			sellAt(104, 2)
			sellAt(105, 1)
			stopAt(61, 102, 104)
			stopAt(62, 103, 104)
			stopAt(63, 104, 105)
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 2, Account: 64, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.IOC, Price: 103, Qty: 3})
		}, []core.EventKind{core.KindTriggered}},
		{"admin", func() {
			if !risk {
				return
			}
			d.apply(&core.Command{Kind: core.CmdHalt, Instrument: 1, Operator: 7, Cause: core.CauseOperator})
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 77, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 950, Qty: 5})
			d.apply(&core.Command{Kind: core.CmdResume, Instrument: 1, Operator: 7, Cause: core.CauseOperator})
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 78, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 950, Qty: 5})
			d.apply(&core.Command{Kind: core.CmdKill, Account: 78, Operator: 7, Cause: core.CauseOperator})
			d.apply(&core.Command{Kind: core.CmdKillRelease, Account: 78, Operator: 7, Cause: core.CauseOperator})
			d.apply(&core.Command{Kind: core.CmdLocate, Account: 78, Instrument: 1, Qty: 5, Operator: 7, Cause: core.CauseOperator})
			d.apply(&core.Command{Kind: core.CmdSetLimit, Account: 78, OrigClOrdID: uint64(core.LimitOrderQty), Qty: 1 << 20, Operator: 7, Cause: core.CauseOperator})
		}, nil},
		{"rejects", func() {
			cl++
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 77, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 9999, Qty: 5})
			d.apply(&core.Command{Kind: core.CmdNew, Instrument: 1, Account: 77, ClOrdID: cl, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 950, Qty: 5})
			d.apply(&core.Command{Kind: core.CmdCancel, Account: 77, OrderID: 1 << 34, OrigClOrdID: cl})
		}, []core.EventKind{core.KindRejected}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run() // warm up: the first run may set up the book the next ones use
			before := d.kinds
			tc.run() // check the paths it means to take
			for _, k := range tc.want {
				require.Greater(t, d.kinds[k], before[k], "%v never happened: the case does not test what it says", k)
			}
			require.Zero(t, testing.AllocsPerRun(200, tc.run))
			require.NoError(t, eng.CheckInvariants())
		})
	}
}
