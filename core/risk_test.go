package core_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
)

// riskConfig: instrument 1 (tick value 100, reference 100, collar ±10 ticks),
// instrument 2 a threshold security, instrument 3 halted, instrument 4
// restricted; account 1 with every limit set and a long position.
func riskConfig() core.Config {
	return core.Config{
		Instruments: []core.Instrument{
			{ID: 1, BandLow: 1, BandHigh: 1000, TickValue: 100, RefPrice: 100, CollarTicks: 10},
			{ID: 2, BandLow: 1, BandHigh: 1000, Threshold: true},
			{ID: 3, BandLow: 1, BandHigh: 1000, Halted: true},
			{ID: 4, BandLow: 1, BandHigh: 1000, Restricted: true},
		},
		Accounts: []core.Account{
			{ID: 1, Cash: 1_000_000, Positions: []core.Position{{Instrument: 1, Lots: 30}}, Limits: core.Limits{
				MaxOrderQty: 50, MaxOrderNotional: 400_000, MaxPosition: 100, DailyCredit: 900_000,
				OrdersPerSec: 3, CancelsPerSec: 1,
			}},
			{ID: 2, Status: core.AccountSuspended},
			{ID: 3, Status: core.AccountClosed},
			{ID: 4, Cash: 1_000_000, Proprietary: true},
			{ID: 5, Cash: 1_000_000, Locates: []core.Locate{{Instrument: 1, Qty: 5}}},
		},
	}
}

func buy(acct uint32, inst uint32, px, qty int64) core.Command {
	return core.Command{Kind: core.CmdNew, Instrument: inst, Account: acct, ClOrdID: 1000, Side: core.Buy,
		Type: core.Limit, TIF: core.DAY, Price: px, Qty: qty}
}

func sell(acct uint32, inst uint32, px, qty int64) core.Command {
	c := buy(acct, inst, px, qty)
	c.Side = core.Sell
	return c
}

// TestRiskChecks drives each pre-trade check to its reject (and the accept
// path) on a fresh engine; setup commands run first and must not be rejected.
func TestRiskChecks(t *testing.T) {
	market := buy(1, 1, 0, 5)
	market.Type, market.TIF = core.Market, core.IOC
	cancel := core.Command{Kind: core.CmdCancel, Account: 1, OrigClOrdID: 1}
	order := func(c core.Command, cl uint64) core.Command { c.ClOrdID = cl; return c }
	cases := []struct {
		name  string
		setup []core.Command
		cmd   core.Command
		want  core.Reason // ReasonNone: accepted
	}{
		{"accept-buy", nil, buy(1, 1, 100, 10), core.ReasonNone},
		{"accept-long-sell", nil, sell(1, 1, 100, 30), core.ReasonNone},
		{"accept-market-within-collar", nil, market, core.ReasonNone},
		{"unknown-account", nil, buy(9, 1, 100, 1), core.RejectUnknownAccount},
		{"suspended", nil, buy(2, 1, 100, 1), core.RejectAccountSuspended},
		{"closed", nil, buy(3, 1, 100, 1), core.RejectAccountClosed},
		{"killed", []core.Command{{Kind: core.CmdKill, Account: 1, Operator: 7, Cause: core.CauseOperator}}, buy(1, 1, 100, 1), core.RejectAccountKilled},
		{"kill-released", []core.Command{{Kind: core.CmdKill, Account: 1, Operator: 7, Cause: core.CauseOperator}, {Kind: core.CmdKillRelease, Account: 1, Operator: 7, Cause: core.CauseOperator}}, buy(1, 1, 100, 1), core.ReasonNone},
		{"market-halted", []core.Command{{Kind: core.CmdMarketHalt, Operator: 7, Cause: core.CauseOperator}}, buy(1, 1, 100, 1), core.RejectMarketHalted},
		{"instrument-halted-config", nil, buy(1, 3, 100, 1), core.RejectInstrumentHalted},
		{"instrument-halted-admin", []core.Command{{Kind: core.CmdHalt, Instrument: 1, Operator: 7, Cause: core.CauseOperator}}, buy(1, 1, 100, 1), core.RejectInstrumentHalted},
		{"instrument-resumed", []core.Command{{Kind: core.CmdResume, Instrument: 3, Operator: 7, Cause: core.CauseOperator}}, buy(1, 3, 100, 1), core.ReasonNone},
		{"restricted", nil, buy(1, 4, 100, 1), core.RejectRestricted},
		{"order-qty", nil, buy(1, 1, 100, 51), core.RejectOrderQtyLimit},
		{"order-notional", nil, buy(1, 1, 100, 41), core.RejectOrderNotionalLimit},
		{"collar-high", nil, buy(1, 1, 111, 1), core.RejectOutsideCollar},
		{"collar-low", nil, sell(1, 1, 89, 1), core.RejectOutsideCollar},
		{"collar-edge", nil, buy(1, 1, 110, 1), core.ReasonNone},
		{"funds", []core.Command{order(buy(5, 1, 100, 40), 1), order(buy(5, 1, 100, 40), 2)}, buy(5, 1, 100, 21), core.RejectInsufficientFunds},
		{"funds-exact", []core.Command{order(buy(5, 1, 100, 40), 1), order(buy(5, 1, 100, 40), 2)}, buy(5, 1, 100, 20), core.ReasonNone},
		{"short-no-locate", nil, sell(1, 1, 100, 31), core.RejectShortNoLocate},
		{"short-open-sells-count", []core.Command{order(sell(1, 1, 105, 30), 1)}, sell(1, 1, 100, 1), core.RejectShortNoLocate},
		{"short-with-locate", nil, sell(5, 1, 100, 5), core.ReasonNone},
		{"short-beyond-locate", nil, sell(5, 1, 100, 6), core.RejectShortNoLocate},
		{"short-prop-exempt", nil, sell(4, 1, 100, 5), core.ReasonNone},
		{"threshold-prop-not-exempt", nil, sell(4, 2, 100, 5), core.RejectThresholdShort},
		{"threshold-with-locate", []core.Command{{Kind: core.CmdLocate, Account: 4, Instrument: 2, Qty: 5, Operator: 7, Cause: core.CauseOperator}}, sell(4, 2, 100, 5), core.ReasonNone},
		{"position-limit", []core.Command{order(buy(1, 1, 95, 40), 1)}, buy(1, 1, 95, 31), core.RejectPositionLimit},
		{"position-limit-edge", []core.Command{order(buy(1, 1, 95, 40), 1)}, buy(1, 1, 95, 30), core.ReasonNone},
		{"position-limit-short", []core.Command{{Kind: core.CmdLocate, Account: 1, Instrument: 1, Qty: 200, Operator: 7, Cause: core.CauseOperator}, order(sell(1, 1, 90, 44), 1), order(sell(1, 1, 90, 44), 2)}, sell(1, 1, 90, 43), core.RejectPositionLimit},
		{"credit-limit", []core.Command{order(buy(1, 1, 100, 30), 1), order(sell(1, 1, 105, 30), 2)}, buy(1, 1, 95, 31), core.RejectCreditLimit},
		{"credit-limit-edge", []core.Command{order(buy(1, 1, 100, 30), 1), order(sell(1, 1, 105, 30), 2)}, buy(1, 1, 95, 30), core.ReasonNone},
		{"order-rate", []core.Command{order(buy(1, 1, 90, 1), 1), order(buy(1, 1, 90, 1), 2), order(buy(1, 1, 90, 1), 3)}, buy(1, 1, 90, 1), core.RejectOrderRate},
		{"order-rate-next-second", []core.Command{order(buy(1, 1, 90, 1), 1), order(buy(1, 1, 90, 1), 2), order(buy(1, 1, 90, 1), 3)}, func() core.Command { c := buy(1, 1, 90, 1); c.Time = 1e9; return c }(), core.ReasonNone},
		{"cancel-rate", []core.Command{order(buy(1, 1, 90, 1), 1), order(buy(1, 1, 90, 1), 2), {Kind: core.CmdCancel, Account: 1, OrigClOrdID: 2}}, cancel, core.RejectCancelRate},
		{"limit-change", []core.Command{{Kind: core.CmdSetLimit, Account: 1, OrigClOrdID: uint64(core.LimitOrderQty), Qty: 5, Operator: 7, Cause: core.CauseOperator}}, buy(1, 1, 100, 6), core.RejectOrderQtyLimit},
		{"replace-collar", []core.Command{order(buy(1, 1, 100, 1), 1)}, core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 1, ClOrdID: 2, Price: 120, Qty: 1}, core.RejectOutsideCollar},
		{"replace-qty", []core.Command{order(buy(1, 1, 100, 40), 1)}, core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 1, ClOrdID: 3, Price: 100, Qty: 60}, core.RejectOrderQtyLimit},
		{"replace-funds", []core.Command{order(buy(5, 1, 100, 40), 1), order(buy(5, 1, 100, 40), 2)}, core.Command{Kind: core.CmdReplace, Account: 5, OrigClOrdID: 2, ClOrdID: 3, Price: 100, Qty: 61}, core.RejectInsufficientFunds},
		{"replace-reduce-skips-limits", []core.Command{order(buy(1, 1, 100, 40), 1), {Kind: core.CmdSetLimit, Account: 1, OrigClOrdID: uint64(core.LimitOrderQty), Qty: 5, Operator: 7, Cause: core.CauseOperator}}, core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 1, ClOrdID: 3, Price: 100, Qty: 20}, core.ReasonNone},
		{"replace-reduce-halted", []core.Command{order(buy(1, 1, 100, 40), 1), {Kind: core.CmdHalt, Instrument: 1, Operator: 7, Cause: core.CauseOperator}}, core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 1, ClOrdID: 3, Price: 100, Qty: 20}, core.RejectInstrumentHalted},
		{"replace-reduce-rate", []core.Command{order(buy(1, 1, 90, 1), 1), order(buy(1, 1, 90, 5), 2), order(buy(1, 1, 90, 1), 3)}, core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 2, ClOrdID: 4, Price: 90, Qty: 4}, core.RejectOrderRate},
		{"replace-same-qty-restricted", []core.Command{order(buy(1, 1, 100, 40), 1), {Kind: core.CmdRestrict, Instrument: 1, Qty: 1, Operator: 7, Cause: core.CauseOperator}}, core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 1, ClOrdID: 3, Price: 100, Qty: 40}, core.RejectRestricted},
		{"replace-ok", []core.Command{order(buy(1, 1, 100, 40), 1)}, core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 1, ClOrdID: 3, Price: 101, Qty: 39}, core.ReasonNone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var evs []core.Event
			eng, err := core.New(riskConfig(), func(b []core.Event) { evs = append(evs, b...) })
			require.NoError(t, err)
			refs := refBook{}
			for i, c := range append(tc.setup, tc.cmd) {
				c.Seq = uint64(i + 1)
				evs = evs[:0]
				refs.name(&c)
				eng.Apply(&c)
				eng.Flush()
				refs.learn(evs)
				require.NotEmpty(t, evs)
				if i < len(tc.setup) {
					require.NotEqual(t, core.KindRejected, evs[0].Kind, "setup %d: %v", i, evs[0])
				}
			}
			if tc.want == core.ReasonNone {
				assert.NotEqual(t, core.KindRejected, evs[0].Kind, "%v", evs[0])
			} else {
				require.Equal(t, core.KindRejected, evs[0].Kind, "%v", evs[0])
				assert.Equal(t, tc.want, evs[0].Reason)
			}
			require.NoError(t, eng.CheckInvariants())
		})
	}
}

// TestRiskConservation feeds random orders, cancels, replaces, market and
// stop orders, expiries, kill switches and halts to an engine with accounts
// and checks after every command: each account's cash and position equal a
// reference built from the Executed events alone (cash moves by qty x trade
// price x tick value); total cash and each instrument's total position never
// change; held cash equals the open buy orders' lots x risk price x tick
// value; and buying power is never negative (CheckInvariants checks the
// holds, open notional and open lots against the open orders too).
func TestRiskConservation(t *testing.T) {
	seeds := []uint64{1, 2, 3, 4, 5, 6}
	ops := 20_000
	if testing.Short() {
		seeds, ops = seeds[:2], 5_000
	}
	for _, shorts := range []bool{false, true} {
		for _, seed := range seeds {
			name := fmt.Sprintf("shorts=%v/%d", shorts, seed)
			t.Run(name, func(t *testing.T) {
				if err := runConservation(seed, ops, shorts); err != nil {
					t.Fatalf("seed %d: %v\nreproduce: go test ./core -run 'TestRiskConservation/%s$'", seed, err, name)
				}
			})
		}
	}
}

// runConservation runs the randomised conservation test. With shorts, the
// accounts have little cash, small positions and large locates, so short
// sales, their margin, buys to cover on the short's collateral and
// short-while-covering rejects happen often.
func runConservation(seed uint64, ops int, shorts bool) error {
	r := rand.New(rand.NewPCG(seed, 0x715c))
	insts := []core.Instrument{
		{ID: 1, BandLow: 50, BandHigh: 150, TickValue: 7, RefPrice: 100, CollarBps: 800},
		{ID: 2, BandLow: 1, BandHigh: 200, TickValue: 1, CollarTicks: 15, Threshold: true},
	}
	const nAcct = 6
	var accts []core.Account
	for a := uint32(1); a <= nAcct; a++ {
		ac := core.Account{ID: a, Cash: int64(r.IntN(200_000)), Proprietary: a == 6,
			Positions: []core.Position{{Instrument: 1, Lots: int64(r.IntN(100))}, {Instrument: 2, Lots: int64(r.IntN(100))}},
			Locates:   []core.Locate{{Instrument: 1, Qty: int64(r.IntN(20))}},
			Limits:    core.Limits{MaxPosition: 400, CancelsPerSec: 50, OrdersPerSec: 200}}
		if shorts {
			ac.Cash = int64(r.IntN(30_000))
			ac.Positions = []core.Position{{Instrument: 1, Lots: int64(r.IntN(10))}, {Instrument: 2, Lots: int64(r.IntN(10))}}
			ac.Locates = []core.Locate{{Instrument: 1, Qty: 5000}, {Instrument: 2, Qty: 5000}}
			ac.ShortMarginPct = []int64{0, 100, 150, 300}[a%4]
		}
		accts = append(accts, ac)
	}
	var covering int // short-while-covering rejects: buys to cover on collateral were open
	var evs []core.Event
	eng, err := core.New(core.Config{Instruments: insts, Accounts: accts, MaxOrders: 512}, func(b []core.Event) { evs = append(evs, b...) })
	if err != nil {
		return err
	}
	tv := map[uint32]int64{1: 7, 2: 1}
	cash := map[uint32]int64{}
	pos := map[[2]uint32]int64{}
	var totalCash int64
	totalPos := map[uint32]int64{}
	for _, a := range accts {
		cash[a.ID] = a.Cash
		totalCash += a.Cash
		for _, p := range a.Positions {
			pos[[2]uint32{a.ID, p.Instrument}] = p.Lots
			totalPos[p.Instrument] += p.Lots
		}
	}
	nextCl := map[uint32]uint64{}
	nextDate := weekdays()
	refs := refBook{}
	var trades, rejects, halts int
	var blocked []core.Command // the releases of halts and kill switches in force
	for i := range ops {
		a := 1 + uint32(r.IntN(nAcct))
		inst := uint32(1 + r.IntN(2))
		c := core.Command{Seq: uint64(i + 1), Time: int64(i) * 10_000_000, Account: a, Instrument: inst, STP: core.STPMode(r.IntN(5))}
		side := core.Side(1 + r.IntN(2))
		px := 100 + int64(r.IntN(21)) - 10
		switch p := r.IntN(100); {
		case p < 10 && len(blocked) > 0: // lift a halt or kill switch soon after it was set
			c = blocked[0]
			c.Seq, c.Time = uint64(i+1), int64(i)*10_000_000
			blocked = blocked[1:]
		case p < 45:
			nextCl[a]++
			c.Kind, c.ClOrdID, c.Side, c.Type, c.TIF, c.Price, c.Qty = core.CmdNew, nextCl[a], side, core.Limit, core.TIF(1+r.IntN(4)), px, 1+int64(r.IntN(20))
			if r.IntN(5) == 0 && c.TIF <= core.GTC {
				c.DisplayQty = 1 + int64(r.IntN(int(c.Qty)))
			}
		case p < 52:
			nextCl[a]++
			c.Kind, c.ClOrdID, c.Side, c.Type, c.TIF, c.Qty = core.CmdNew, nextCl[a], side, core.Market, core.IOC, 1+int64(r.IntN(20))
		case p < 58:
			nextCl[a]++
			c.Kind, c.ClOrdID, c.Side, c.TIF, c.Qty, c.StopPrice = core.CmdNew, nextCl[a], side, core.GTC, 1+int64(r.IntN(10)), px
			c.Type = core.Stop
			if r.IntN(2) == 0 {
				c.Type, c.Price = core.StopLimit, px
			}
		case p < 72:
			c.Kind, c.OrigClOrdID = core.CmdCancel, 1+uint64(r.IntN(int(nextCl[a]+1)))
			c.Instrument = 0
		case p < 78:
			c.Kind, c.OrigClOrdID, c.Qty = core.CmdCancelSize, 1+uint64(r.IntN(int(nextCl[a]+1))), 1+int64(r.IntN(5))
			c.Instrument = 0
		case p < 95:
			nextCl[a]++
			c.Kind, c.OrigClOrdID, c.ClOrdID, c.Price, c.Qty = core.CmdReplace, 1+uint64(r.IntN(int(nextCl[a]))), nextCl[a], px, 1+int64(r.IntN(20))
			c.Instrument = 0
		case p < 96:
			c.Kind, c.Qty = core.CmdEndOfDay, nextDate()
		case p < 97:
			c.Kind = core.CmdKill
			blocked = append(blocked, core.Command{Kind: core.CmdKillRelease, Account: a, Operator: 7, Cause: core.CauseOperator})
		case p < 98:
			c.Kind = core.CmdHalt
			blocked = append(blocked, core.Command{Kind: core.CmdResume, Instrument: inst, Operator: 7, Cause: core.CauseOperator})
		case p < 99:
			c.Kind = core.CmdMarketHalt
			blocked = append(blocked, core.Command{Kind: core.CmdMarketResume, Operator: 7, Cause: core.CauseOperator})
		default:
			c.Kind, c.Qty = core.CmdLocate, int64(r.IntN(30))
		}
		if c.Kind >= core.CmdHalt {
			c.Operator, c.Cause = 7, core.CauseRiskLimit
		}
		if c.Kind == core.CmdReplace && r.IntN(3) == 0 {
			c.StopPrice = px // valid only for stop orders; rejected otherwise
		}
		evs = evs[:0]
		refs.name(&c)
		eng.Apply(&c)
		eng.Flush()
		refs.learn(evs)
		for _, ev := range evs {
			switch {
			case ev.Kind == core.KindRejected && ev.Reason >= 400:
				rejects++
				if ev.Reason == core.RejectShortWhileCovering {
					covering++
				}
			case ev.Reason == core.CancelMarketHalt || ev.Reason == core.CancelKillSwitch:
				halts++
			}
			if ev.Kind != core.KindExecuted {
				continue
			}
			trades++
			n := ev.Qty * ev.Price * tv[ev.Instrument]
			b, s := ev.Account, ev.ContraAccount
			if ev.Side == core.Sell {
				b, s = s, b
			}
			cash[b] -= n
			cash[s] += n
			pos[[2]uint32{b, ev.Instrument}] += ev.Qty
			pos[[2]uint32{s, ev.Instrument}] -= ev.Qty
		}
		if err := eng.CheckInvariants(); err != nil {
			return fmt.Errorf("command %d (%v): %w", i+1, c.Kind, err)
		}
		held := map[uint32]int64{}
		for _, o := range eng.OpenOrders() {
			held[o.Account] += (o.Shown + o.Hidden) * o.HoldPerLot
			if o.Side == core.Buy && o.HoldPerLot < o.RiskPrice*tv[o.Instrument] {
				return fmt.Errorf("command %d: buy %d holds %d a lot, below its value %d", i+1, o.OrderID, o.HoldPerLot, o.RiskPrice*tv[o.Instrument])
			}
		}
		var sumCash int64
		sumPos := map[uint32]int64{}
		for id := uint32(1); id <= nAcct; id++ {
			st, _ := eng.Account(id)
			switch {
			case st.Cash != cash[id]:
				return fmt.Errorf("command %d: account %d cash %d, reference %d", i+1, id, st.Cash, cash[id])
			case st.Held != held[id]:
				return fmt.Errorf("command %d: account %d held %d, open buys %d", i+1, id, st.Held, held[id])
			case st.Cash-st.Held-st.ShortReq < 0:
				return fmt.Errorf("command %d: account %d buying power %d", i+1, id, st.Cash-st.Held-st.ShortReq)
			}
			for bi, in := range insts {
				if st.Positions[bi] != pos[[2]uint32{id, in.ID}] {
					return fmt.Errorf("command %d: account %d instrument %d position %d, reference %d", i+1, id, in.ID, st.Positions[bi], pos[[2]uint32{id, in.ID}])
				}
				sumPos[in.ID] += st.Positions[bi]
			}
			sumCash += st.Cash
		}
		if sumCash != totalCash {
			return fmt.Errorf("command %d: total cash %d, was %d", i+1, sumCash, totalCash)
		}
		for id, n := range totalPos {
			if sumPos[id] != n {
				return fmt.Errorf("command %d: instrument %d total position %d, was %d", i+1, id, sumPos[id], n)
			}
		}
	}
	if trades < ops/25 || rejects < ops/50 || halts == 0 || shorts && covering == 0 {
		return fmt.Errorf("generator drifted: %d trades, %d risk rejects, %d risk cancels, %d short-while-covering in %d commands", trades, rejects, halts, covering, ops)
	}
	return nil
}

// TestRiskBenchConfigNeutral: the benchmark's risk configuration binds no
// check, so the workloads give the same events with risk off and on and the
// benchmark compares the same work.
func TestRiskBenchConfigNeutral(t *testing.T) {
	for name, cmds := range map[string][]core.Command{
		"RandomLimits": bench.RandomLimits(1, 100_000, 30),
		"MoveHeavy":    bench.MoveHeavy(1, 100_000),
	} {
		t.Run(name, func(t *testing.T) {
			var off, on []core.Event
			a, err := core.New(bench.EngineConfig(bench.ProductionMaxOrders), func(b []core.Event) { off = append(off, b...) })
			require.NoError(t, err)
			b, err := core.New(bench.RiskEngineConfig(bench.ProductionMaxOrders), func(b []core.Event) { on = append(on, b...) })
			require.NoError(t, err)
			for i := range cmds {
				c := cmds[i]
				c.Seq = uint64(i + 1)
				a.Apply(&c)
				b.Apply(&c)
			}
			a.Flush()
			b.Flush()
			for i := range off {
				require.NotEqual(t, core.KindRejected, off[i].Kind, "the workload must be all valid commands: %v", off[i])
			}
			require.Equal(t, len(off), len(on))
			for i := range off {
				require.Equal(t, off[i], on[i], "event %d", i)
			}
		})
	}
}

// pdtConfig: instrument 1; accounts 10-13 flagged PDT or not with equity
// below, at and above the $25,000 minimum; account 20 the counterparty.
func pdtConfig() core.Config {
	return core.Config{
		Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000}, {ID: 2, BandLow: 1, BandHigh: 1000}},
		Accounts: []core.Account{
			{ID: 10, Cash: 1_000_000, PDT: true, Equity: 2_499_999, Locates: []core.Locate{{Instrument: 1, Qty: 100}}},
			{ID: 11, Cash: 1_000_000, PDT: true, Equity: 2_500_000},
			{ID: 12, Cash: 1_000_000, PDT: true, Equity: 9_000_000},
			{ID: 13, Cash: 1_000_000},
			{ID: 20, Cash: 1_000_000, Proprietary: true, Positions: []core.Position{{Instrument: 1, Lots: 1000}, {Instrument: 2, Lots: 1000}}},
		},
	}
}

// TestPatternDayTrader drives the PDT rule (check 27, docs/engine.md "Day
// trades"): setup commands must not be rejected; the last command's first
// event is checked.
func TestPatternDayTrader(t *testing.T) {
	// open and close build one leg of a day trade for acct against account 20:
	// the counterparty rests, acct crosses it.
	open := func(acct uint32, side core.Side) []core.Command {
		c, m := buy(acct, 1, 100, 1), sell(20, 1, 100, 1)
		if side == core.Sell {
			c, m = sell(acct, 1, 100, 1), buy(20, 1, 100, 1)
		}
		return []core.Command{m, c}
	}
	closeBy := func(acct uint32, side core.Side) []core.Command { return open(acct, side) }
	trades := func(acct uint32, n int) []core.Command {
		var cs []core.Command
		for range n {
			cs = append(cs, open(acct, core.Buy)...)
			cs = append(cs, closeBy(acct, core.Sell)...)
		}
		return cs
	}
	eod := core.Command{Kind: core.CmdEndOfDay}
	days := func(n int) []core.Command {
		var cs []core.Command
		for range n {
			cs = append(cs, eod)
		}
		return cs
	}
	cat := func(parts ...[]core.Command) []core.Command {
		var cs []core.Command
		for _, p := range parts {
			cs = append(cs, p...)
		}
		return cs
	}
	resting := sell(10, 1, 200, 1) // accepted with two day trades; replaced with three
	// inst2DayTrade is a day trade in instrument 2, against account 20.
	inst2DayTrade := []core.Command{sell(20, 2, 100, 1), buy(10, 2, 100, 1), buy(20, 2, 100, 1), sell(10, 2, 100, 1)}
	resting.ClOrdID = 999
	lastSell := func(acct uint32) core.Command { return sell(acct, 1, 100, 1) }
	lastBuy := func(acct uint32) core.Command { return buy(acct, 1, 100, 1) }
	cases := []struct {
		name      string
		setup     []core.Command
		cmd       core.Command
		want      core.Reason // ReasonNone: accepted
		dayTrades int64       // the account's count after the last command
	}{
		{"third-day-trade-accepted", cat(trades(10, 2), open(10, core.Buy), []core.Command{buy(20, 1, 100, 1)}), lastSell(10), core.ReasonNone, 3},
		{"fourth-day-trade-rejected", cat(trades(10, 3), open(10, core.Buy), []core.Command{buy(20, 1, 100, 1)}), lastSell(10), core.RejectPatternDayTrader, 3},
		{"fourth-short-day-trade-rejected", cat(trades(10, 3), open(10, core.Sell), []core.Command{sell(20, 1, 100, 1)}), lastBuy(10), core.RejectPatternDayTrader, 3},
		{"opening-order-accepted", trades(10, 3), lastBuy(10), core.ReasonNone, 3},
		{"extending-order-accepted", cat(trades(10, 3), open(10, core.Buy)), lastBuy(10), core.ReasonNone, 3},
		{"position-from-yesterday", cat(trades(10, 3), open(10, core.Buy), days(1)), lastSell(10), core.ReasonNone, 3},
		{"fifth-day-still-counts", cat(trades(10, 3), days(4), open(10, core.Buy)), lastSell(10), core.RejectPatternDayTrader, 3},
		{"sixth-day-rolled-off", cat(trades(10, 3), days(5), open(10, core.Buy)), lastSell(10), core.ReasonNone, 0},
		{"partial-roll-off", cat(trades(10, 1), days(1), trades(10, 2), days(4), open(10, core.Buy)), lastSell(10), core.ReasonNone, 2},
		{"equity-at-minimum", cat(trades(11, 3), open(11, core.Buy)), lastSell(11), core.ReasonNone, 3},
		{"equity-above-minimum", cat(trades(12, 3), open(12, core.Buy)), lastSell(12), core.ReasonNone, 3},
		{"not-flagged", cat(trades(13, 3), open(13, core.Buy)), lastSell(13), core.ReasonNone, 3},
		{"replace-rejected", cat(trades(10, 2), open(10, core.Buy), []core.Command{resting}, inst2DayTrade),
			core.Command{Kind: core.CmdReplace, Account: 10, OrigClOrdID: 999, ClOrdID: 998, Price: 201, Qty: 1}, core.RejectPatternDayTrader, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var evs []core.Event
			eng, err := core.New(pdtConfig(), func(b []core.Event) { evs = append(evs, b...) })
			require.NoError(t, err)
			// Number every order and replace in sequence (references increase
			// per account); a test's own references (resting's 999) are aliases.
			cl, alias, refs, nextDate := uint64(0), map[uint64]uint64{}, refBook{}, weekdays()
			for i, c := range append(slices.Clone(tc.setup), tc.cmd) {
				c.Seq = uint64(i + 1)
				switch c.Kind {
				case core.CmdNew:
					cl++
					alias[c.ClOrdID] = cl
					c.ClOrdID = cl
				case core.CmdReplace:
					c.OrigClOrdID = alias[c.OrigClOrdID]
					cl++
					c.ClOrdID = cl
				case core.CmdEndOfDay:
					c.Qty = nextDate()
				}
				evs = evs[:0]
				refs.name(&c)
				eng.Apply(&c)
				eng.Flush()
				refs.learn(evs)
				if c.Kind == core.CmdEndOfDay {
					require.Equal(t, core.KindSystem, evs[len(evs)-1].Kind, "setup %d: %v", i, evs[len(evs)-1])
					continue
				}
				require.NotEmpty(t, evs)
				if i < len(tc.setup) {
					require.NotEqual(t, core.KindRejected, evs[0].Kind, "setup %d: %v", i, evs[0])
				}
			}
			if tc.want == core.ReasonNone {
				assert.NotEqual(t, core.KindRejected, evs[0].Kind, "%v", evs[0])
			} else {
				require.Equal(t, core.KindRejected, evs[0].Kind, "%v", evs[0])
				assert.Equal(t, tc.want, evs[0].Reason)
			}
			st, ok := eng.Account(tc.cmd.Account)
			require.True(t, ok)
			assert.Equal(t, tc.dayTrades, st.DayTrades)
			require.NoError(t, eng.CheckInvariants())
		})
	}
}

// TestPatternDayTraderMinEquity: Config.PDTMinEquity moves the exemption.
func TestPatternDayTraderMinEquity(t *testing.T) {
	for _, tc := range []struct {
		name   string
		min    int64
		exempt bool
	}{{"default", 0, false}, {"below-account-equity", 2_000_000, true}, {"equal-account-equity", 2_499_999, true}, {"above", 5_000_000, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pdtConfig()
			cfg.PDTMinEquity = tc.min
			eng, err := core.New(cfg, nil)
			require.NoError(t, err)
			st, ok := eng.Account(10)
			require.True(t, ok)
			assert.Equal(t, !tc.exempt, st.PDT)
		})
	}
	cfg := pdtConfig()
	cfg.PDTMinEquity = -1
	_, err := core.New(cfg, nil)
	require.ErrorIs(t, err, core.ErrConfig)
	require.ErrorContains(t, err, "PDTMinEquity")
}

// TestReplaceFastPathHolds: a same-price replace that lowers the quantity
// releases exactly the lots removed; one that raises it re-holds in full.
func TestReplaceFastPathHolds(t *testing.T) {
	var evs []core.Event
	eng, err := core.New(riskConfig(), func(b []core.Event) { evs = append(evs, b...) })
	require.NoError(t, err)
	refs := refBook{}
	for i, c := range []core.Command{
		buy(5, 1, 100, 40),
		{Kind: core.CmdReplace, Account: 5, OrigClOrdID: 1000, ClOrdID: 1001, Price: 100, Qty: 25},
		{Kind: core.CmdReplace, Account: 5, OrigClOrdID: 1001, ClOrdID: 1002, Price: 100, Qty: 25},
		{Kind: core.CmdReplace, Account: 5, OrigClOrdID: 1002, ClOrdID: 1003, Price: 100, Qty: 30},
	} {
		c.Seq = uint64(i + 1)
		refs.name(&c)
		eng.Apply(&c)
		eng.Flush()
		refs.learn(evs)
		require.NoError(t, eng.CheckInvariants())
		st, ok := eng.Account(5)
		require.True(t, ok)
		want := []int64{40, 25, 25, 30}[i]
		assert.Equal(t, want*100*100, st.Held, "step %d", i)
		assert.Equal(t, []int64{want}, st.BuyOpen[:1], "step %d", i)
	}
}
