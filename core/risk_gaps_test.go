package core_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
)

// Tests for the risk gaps of issue 15: each drives the attack a risk officer
// found and checks that the control now holds (docs/engine.md, "Pre-trade
// risk").

// harness applies commands one at a time, numbering them, naming orders by
// reference as a gateway does, and checking the invariants after each.
type harness struct {
	t    *testing.T
	eng  *core.Engine
	evs  []core.Event
	seq  uint64
	refs refBook
}

func newHarness(t *testing.T, cfg core.Config) *harness {
	t.Helper()
	h := &harness{t: t, refs: refBook{}}
	var err error
	h.eng, err = core.New(cfg, func(b []core.Event) { h.evs = append(h.evs, b...) })
	require.NoError(t, err)
	return h
}

// do applies c and returns its events.
func (h *harness) do(c core.Command) []core.Event {
	h.t.Helper()
	h.seq++
	c.Seq = h.seq
	h.evs = h.evs[:0]
	h.refs.name(&c)
	h.eng.Apply(&c)
	h.eng.Flush()
	h.refs.learn(h.evs)
	require.NoError(h.t, h.eng.CheckInvariants(), "after %v", c.Kind)
	return append([]core.Event(nil), h.evs...)
}

// ok applies c and requires its first event not to be a reject.
func (h *harness) ok(c core.Command) []core.Event {
	h.t.Helper()
	evs := h.do(c)
	require.NotEmpty(h.t, evs)
	require.NotEqual(h.t, core.KindRejected, evs[0].Kind, "%v", evs[0])
	return evs
}

// rejected applies c and requires it to be rejected with r.
func (h *harness) rejected(c core.Command, r core.Reason) {
	h.t.Helper()
	evs := h.do(c)
	require.NotEmpty(h.t, evs)
	require.Equal(h.t, core.KindRejected, evs[0].Kind, "%v", evs[0])
	require.Equal(h.t, r, evs[0].Reason, "%v", evs[0])
}

func kinds(evs []core.Event, k core.EventKind) []core.Event {
	var out []core.Event
	for _, e := range evs {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func order(c core.Command, cl uint64) core.Command { c.ClOrdID = cl; return c }

func stopLimit(acct uint32, side core.Side, stop, px, qty int64, cl uint64) core.Command {
	c := buy(acct, 1, px, qty)
	c.Side, c.Type, c.StopPrice, c.ClOrdID, c.TIF = side, core.StopLimit, stop, cl, core.GTC
	return c
}

// collarConfig: instrument 1 with a ±10-tick collar and no reference price,
// so asks far away can rest before the first trade sets the reference.
func collarConfig() core.Config {
	return core.Config{
		Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000, TickValue: 1, CollarTicks: 10}},
		Accounts: []core.Account{
			{ID: 1, Cash: 1_000_000_000},
			{ID: 4, Cash: 1_000_000_000, Proprietary: true},
			{ID: 5, Cash: 1_000_000_000},
		},
	}
}

// collarBook rests asks at 100 and at 200..300 (before any reference exists)
// and trades 1 lot at 100: the last sale, and the collar's reference, is 100.
func collarBook(h *harness) {
	h.ok(order(sell(4, 1, 100, 1), 1))
	for i := range int64(11) {
		h.ok(order(sell(4, 1, 200+10*i, 1), uint64(2+i)))
	}
	h.ok(order(buy(5, 1, 100, 1), 1))
	last, _ := h.eng.LastPrice(1)
	require.Equal(h.t, int64(100), last)
}

// TestRiskCollarBypassByReplace: a buy stop-limit that triggers at once and
// rests, then is replaced to a far price with a stop beside it, was checked
// against the collar around the new stop (client-chosen) and swept the asks.
// A triggered stop-limit is a limit order: its replace is checked against the
// reference.
func TestRiskCollarBypassByReplace(t *testing.T) {
	h := newHarness(t, collarConfig())
	collarBook(h)
	evs := h.ok(stopLimit(1, core.Buy, 95, 105, 11, 1))
	require.Len(t, kinds(evs, core.KindTriggered), 1)
	require.Len(t, kinds(evs, core.KindBookAdd), 1, "the triggered stop-limit rests at 105")
	h.rejected(core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 1, ClOrdID: 2, Price: 500, StopPrice: 495, Qty: 11}, core.RejectOutsideCollar)
	for _, o := range h.eng.OpenOrders() {
		if o.Account == 1 {
			assert.Equal(t, int64(105), o.Price)
		}
	}
	last, _ := h.eng.LastPrice(1)
	assert.Equal(t, int64(100), last, "nothing printed outside the collar")
}

// TestRiskCollarBypassByTrigger: a sell stop-limit whose stop is already
// through the last sale triggers at once; its limit (300, collar [90, 110])
// is checked against the collar around the last sale when it triggers, and
// it is cancelled instead of resting at 300. The same holds for a waiting
// stop-limit that triggers after the price moved away from its limit.
func TestRiskCollarBypassByTrigger(t *testing.T) {
	t.Run("at-once", func(t *testing.T) {
		h := newHarness(t, collarConfig())
		collarBook(h)
		before, _ := h.eng.Account(4)
		evs := h.ok(stopLimit(4, core.Sell, 300, 300, 5, 20))
		require.Len(t, kinds(evs, core.KindTriggered), 1)
		c := kinds(evs, core.KindCancelled)
		require.Len(t, c, 1, "%v", evs)
		assert.Equal(t, core.CancelOutsideCollar, c[0].Reason)
		assert.Empty(t, kinds(evs, core.KindBookAdd))
		st, _ := h.eng.Account(4)
		assert.Equal(t, before, st, "nothing held for the cancelled order")
	})
	t.Run("after-a-gap", func(t *testing.T) {
		h := newHarness(t, collarConfig())
		collarBook(h)
		// buy stop 101 limit 91: inside the collar around its stop, [91, 111];
		// the next print is 110, where the collar [100, 120] excludes 91.
		h.ok(stopLimit(1, core.Buy, 101, 91, 1, 1))
		h.ok(order(sell(4, 1, 110, 1), 30))
		evs := h.ok(order(buy(5, 1, 110, 1), 2))
		require.Len(t, kinds(evs, core.KindTriggered), 1)
		c := kinds(evs, core.KindCancelled)
		require.Len(t, c, 1, "%v", evs)
		assert.Equal(t, core.CancelOutsideCollar, c[0].Reason)
		st, _ := h.eng.Account(1)
		assert.Zero(t, st.Held)
	})
}

// TestRiskSelfTradeByOptingOut: orders with STPOff let an account trade with
// itself although its STP group was configured, walking the last sale (the
// collar's reference) from 100 to 300 in 20 prints. An account's STP floor
// (no opting out unless the account allows it) now refuses STPOff, and the
// accounts of one beneficial owner never match each other.
func TestRiskSelfTradeByOptingOut(t *testing.T) {
	cfg := core.Config{
		Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000, TickValue: 1, CollarTicks: 10, RefPrice: 100}},
		Accounts: []core.Account{
			{ID: 1, Cash: 1_000_000_000, STPGroup: 7, Positions: []core.Position{{Instrument: 1, Lots: 1000}}},
			{ID: 2, Cash: 1_000_000_000, Owner: 9, Positions: []core.Position{{Instrument: 1, Lots: 1000}}},
			{ID: 3, Cash: 1_000_000_000, Owner: 9},
			{ID: 6, Cash: 1_000_000_000, AllowSTPOff: true, Positions: []core.Position{{Instrument: 1, Lots: 1000}}},
		},
	}
	t.Run("walk-the-reference", func(t *testing.T) {
		h := newHarness(t, cfg)
		cl, trades := uint64(0), 0
		for px := int64(100); px <= 300; px += 10 {
			cl++
			trades += len(kinds(h.do(order(sell(1, 1, px, 1), cl)), core.KindExecuted))
			cl++
			b := order(buy(1, 1, px, 1), cl)
			b.STP = core.STPOff
			evs := h.do(b)
			trades += len(kinds(evs, core.KindExecuted))
			if px == 100 {
				require.Equal(t, core.RejectSTPOffNotAllowed, evs[0].Reason, "%v", evs[0])
			}
		}
		assert.Zero(t, trades)
		last, _ := h.eng.LastPrice(1)
		assert.Zero(t, last, "the account never traded with itself")
	})
	t.Run("same-owner", func(t *testing.T) {
		h := newHarness(t, cfg)
		h.ok(order(sell(2, 1, 100, 5), 1))
		evs := h.ok(order(buy(3, 1, 100, 5), 1))
		assert.Empty(t, kinds(evs, core.KindExecuted), "accounts of one owner do not trade with each other")
		c := kinds(evs, core.KindCancelled)
		require.Len(t, c, 1)
		assert.Equal(t, core.CancelSTPNewest, c[0].Reason)
		b := order(buy(3, 1, 100, 5), 2)
		b.STP = core.STPOff
		h.rejected(b, core.RejectSTPOffNotAllowed)
	})
	t.Run("allowed-opt-out", func(t *testing.T) {
		h := newHarness(t, cfg)
		h.ok(order(sell(6, 1, 100, 5), 1))
		b := order(buy(6, 1, 100, 5), 2)
		b.STP = core.STPOff
		evs := h.ok(b)
		assert.Len(t, kinds(evs, core.KindExecuted), 1, "an omnibus account may opt out")
	})
}

// TestRiskOffHaltsAndKills: with the risk layer off (no accounts) the market
// halt, instrument halt, restricted list and kill switch were unknown
// commands. They now work whether or not risk is on; the account commands
// (status, limits, locates) need configured accounts.
func TestRiskOffHaltsAndKills(t *testing.T) {
	cfg := core.Config{Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000}, {ID: 2, BandLow: 1, BandHigh: 1000, Halted: true}}}
	h := newHarness(t, cfg)
	h.rejected(order(buy(1, 2, 100, 1), 1), core.RejectInstrumentHalted)
	h.ok(order(buy(1, 1, 100, 1), 2))
	evs := h.ok(core.Command{Kind: core.CmdMarketHalt, Operator: 7, Cause: core.CauseOperator})
	assert.Len(t, kinds(evs, core.KindCancelled), 1)
	assert.Len(t, kinds(evs, core.KindRegulatory), 1)
	h.rejected(order(buy(1, 1, 100, 1), 3), core.RejectMarketHalted)
	h.ok(core.Command{Kind: core.CmdMarketResume, Operator: 7, Cause: core.CauseOperator})
	h.ok(order(buy(1, 1, 100, 1), 4))
	h.ok(core.Command{Kind: core.CmdHalt, Instrument: 1, Operator: 7, Cause: core.CauseOperator})
	h.rejected(order(buy(1, 1, 100, 1), 5), core.RejectInstrumentHalted)
	h.rejected(core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 4, ClOrdID: 6, Price: 101, Qty: 1}, core.RejectInstrumentHalted)
	h.ok(core.Command{Kind: core.CmdCancel, Account: 1, OrigClOrdID: 4})
	h.ok(core.Command{Kind: core.CmdResume, Instrument: 1, Operator: 7, Cause: core.CauseOperator})
	h.ok(order(buy(1, 1, 100, 1), 7))
	evs = h.ok(core.Command{Kind: core.CmdKill, Account: 1, Operator: 7, Cause: core.CauseOperator})
	assert.Len(t, kinds(evs, core.KindCancelled), 1)
	h.rejected(order(buy(1, 1, 100, 1), 8), core.RejectAccountKilled)
	h.ok(order(buy(2, 1, 100, 1), 1))                                                          // another account trades on
	h.ok(core.Command{Kind: core.CmdKill, Account: 3, Operator: 7, Cause: core.CauseOperator}) // an account not seen yet
	h.rejected(order(buy(3, 1, 100, 1), 1), core.RejectAccountKilled)
	h.ok(core.Command{Kind: core.CmdKillRelease, Account: 1, Operator: 7, Cause: core.CauseOperator})
	h.ok(order(buy(1, 1, 100, 1), 9))
	h.ok(core.Command{Kind: core.CmdRestrict, Instrument: 1, Qty: 1, Operator: 7, Cause: core.CauseOperator})
	h.rejected(order(buy(1, 1, 100, 1), 10), core.RejectRestricted)
	for _, c := range []core.Command{
		{Kind: core.CmdAccountStatus, Account: 1, Qty: 1, Operator: 7, Cause: core.CauseOperator},
		{Kind: core.CmdSetLimit, Account: 1, OrigClOrdID: uint64(core.LimitOrderQty), Qty: 5, Operator: 7, Cause: core.CauseOperator},
		{Kind: core.CmdLocate, Account: 1, Instrument: 1, Qty: 5, Operator: 7, Cause: core.CauseOperator},
	} {
		h.rejected(c, core.RejectUnknownAccount)
	}
	// The state hash carries the halts and kill switches.
	a, b := newHarness(t, cfg), newHarness(t, cfg)
	a.ok(order(buy(3, 1, 100, 1), 1))
	b.ok(order(buy(3, 1, 100, 1), 1))
	require.Equal(t, a.eng.StateHash(), b.eng.StateHash())
	b.ok(core.Command{Kind: core.CmdKill, Account: 3, Operator: 7, Cause: core.CauseOperator})
	a.ok(core.Command{Kind: core.CmdCancel, Account: 3, OrigClOrdID: 1})
	require.Empty(t, a.eng.OpenOrders())
	require.Empty(t, b.eng.OpenOrders())
	assert.NotEqual(t, a.eng.StateHash(), b.eng.StateHash(), "the kill differs")
	b.ok(core.Command{Kind: core.CmdKillRelease, Account: 3, Operator: 7, Cause: core.CauseOperator})
	assert.Equal(t, a.eng.StateHash(), b.eng.StateHash())
	b.ok(core.Command{Kind: core.CmdMarketHalt, Operator: 7, Cause: core.CauseOperator})
	assert.NotEqual(t, a.eng.StateHash(), b.eng.StateHash(), "the halt differs")
}

// TestRiskMoneyOverflow: config limits let money and counters wrap. Two
// 2^62 fills wrapped a seller's cash to -2^63; a wrapped executed-notional
// counter let a sell through a daily credit limit of 1; a 100% collar near
// 2^62 collapsed to nothing. Config now bounds every product the engine
// forms (and the accounts' cash together, which fills only move between
// accounts), and the counters saturate.
func TestRiskMoneyOverflow(t *testing.T) {
	const px = 1 << 20
	inst := core.Instrument{ID: 1, BandLow: 1, BandHigh: px, TickValue: 1}
	t.Run("cash-beyond-2^62-refused", func(t *testing.T) {
		_, err := core.New(core.Config{MaxOrderQty: 1 << 42, Instruments: []core.Instrument{inst}, Accounts: []core.Account{
			{ID: 1, Cash: 1 << 62}, {ID: 2, Cash: 1 << 62}, {ID: 3, Positions: []core.Position{{Instrument: 1, Lots: 1 << 42}}},
		}}, nil)
		require.ErrorIs(t, err, core.ErrConfig)
		require.ErrorContains(t, err, "Cash")
	})
	t.Run("credit-counter-saturates", func(t *testing.T) {
		h := newHarness(t, core.Config{MaxOrderQty: 1 << 42, Instruments: []core.Instrument{inst}, Accounts: []core.Account{
			{ID: 1, Cash: 1 << 61, Positions: []core.Position{{Instrument: 1, Lots: 1 << 41}}},
			{ID: 2, Cash: 1 << 61, Positions: []core.Position{{Instrument: 1, Lots: 1 << 41}}},
		}})
		cl := uint64(0)
		for range 2 { // A sells 2^61 to B, B sells it back: 2^62 of A's executed notional a round
			cl++
			h.ok(order(sell(1, 1, px, 1<<41), cl))
			h.ok(order(buy(2, 1, px, 1<<41), cl))
			cl++
			h.ok(order(sell(2, 1, px, 1<<41), cl))
			h.ok(order(buy(1, 1, px, 1<<41), cl))
		}
		st, _ := h.eng.Account(1)
		assert.Positive(t, st.Credit, "executed notional never wraps")
		assert.Equal(t, int64(1<<61), st.Cash)
		h.ok(core.Command{Kind: core.CmdSetLimit, Account: 1, OrigClOrdID: uint64(core.LimitDailyCredit), Qty: 1, Operator: 7, Cause: core.CauseOperator})
		h.rejected(order(sell(1, 1, 1, 1), cl+1), core.RejectCreditLimit)
	})
	t.Run("collar-near-2^62", func(t *testing.T) {
		const top = 1 << 62
		h := newHarness(t, core.Config{MaxOrderQty: 1, Instruments: []core.Instrument{
			{ID: 1, BandLow: top - 1000, BandHigh: top, TickValue: 1, RefPrice: top - 500, CollarBps: 10_000}},
			Accounts: []core.Account{{ID: 1, Cash: 1 << 62}, {ID: 2, Positions: []core.Position{{Instrument: 1, Lots: 1}}}}})
		h.ok(order(buy(1, 1, top-900, 1), 1))
		h.ok(order(sell(2, 1, top-100, 1), 1))
	})
	t.Run("products-bounded", func(t *testing.T) {
		for name, cfg := range map[string]core.Config{
			"band-beyond-2^62": {Instruments: []core.Instrument{{ID: 1, BandLow: 1<<62 + 1, BandHigh: 1<<62 + 2}}, Accounts: []core.Account{{ID: 1}}},
			"position-beyond-notional": {MaxOrderQty: 1, Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1 << 40}},
				Accounts: []core.Account{{ID: 1, Positions: []core.Position{{Instrument: 1, Lots: 1 << 30}}}}},
			"limit-beyond-2^62": {Instruments: []core.Instrument{inst}, Accounts: []core.Account{{ID: 1, Limits: core.Limits{MaxPosition: 1<<62 + 1}}}},
		} {
			_, err := core.New(cfg, nil)
			assert.ErrorIs(t, err, core.ErrConfig, name)
		}
	})
}

// shortConfig: instrument 1 around 100 (tick value 1); account 1 with no
// cash, account 4 with no cash of an account type whose short requirement
// is only the proceeds (100%), account 5 with half the short's value in
// cash under Reg T's 150%; each with a locate for 20,000,000 in instrument
// 1; account 2 a buyer, account 3 a holder of both instruments.
func shortConfig() core.Config {
	loc := []core.Locate{{Instrument: 1, Qty: 20_000_000}}
	return core.Config{
		Instruments: []core.Instrument{
			{ID: 1, BandLow: 1, BandHigh: 1000, TickValue: 1, RefPrice: 100, CollarTicks: 10},
			{ID: 2, BandLow: 1, BandHigh: 1000, TickValue: 1, RefPrice: 100, CollarTicks: 10},
		},
		Accounts: []core.Account{
			{ID: 1, Locates: loc},
			{ID: 2, Cash: 3_000_000_000},
			{ID: 3, Positions: []core.Position{{Instrument: 1, Lots: 30_000_000}, {Instrument: 2, Lots: 30_000_000}}},
			{ID: 4, Locates: loc, ShortMarginPct: 100},
			{ID: 5, Cash: 500_000_000, Locates: loc},
		},
	}
}

// TestRiskShortProceedsAsBuyingPower: a zero-cash account with a locate shorted
// 10,000,000 and bought another 10,000,000 with the proceeds. Short proceeds
// are not buying power, and a short sale needs its margin (Reg T: 150% of
// the short's value, the proceeds included; configurable per account).
func TestRiskShortProceedsAsBuyingPower(t *testing.T) {
	const n = 10_000_000
	t.Run("no-cash-no-short", func(t *testing.T) {
		h := newHarness(t, shortConfig())
		h.rejected(order(sell(1, 1, 100, n), 1), core.RejectInsufficientFunds)
	})
	t.Run("proceeds-not-buying-power", func(t *testing.T) {
		h := newHarness(t, shortConfig())
		h.ok(order(sell(4, 1, 100, n), 1))
		evs := h.ok(order(buy(2, 1, 100, n), 1))
		require.Len(t, kinds(evs, core.KindExecuted), 1)
		st, _ := h.eng.Account(4)
		assert.Equal(t, int64(n*100), st.Cash, "the proceeds are in the account")
		assert.Equal(t, int64(n*100), st.ShortReq, "and held against the short")
		h.ok(order(sell(3, 2, 100, n), 1))
		h.rejected(order(buy(4, 2, 100, n), 2), core.RejectInsufficientFunds)
		h.rejected(order(buy(4, 2, 100, 1), 3), core.RejectInsufficientFunds)
		h.rejected(order(buy(4, 1, 100, n+1), 4), core.RejectInsufficientFunds) // covering, and 1 more
	})
	t.Run("reg-t-150", func(t *testing.T) {
		h := newHarness(t, shortConfig())
		h.ok(order(sell(5, 1, 100, n), 1)) // margin: half the value, all of its cash
		h.rejected(order(sell(5, 1, 100, 1), 2), core.RejectInsufficientFunds)
		h.ok(order(buy(2, 1, 100, n), 1))
		st, _ := h.eng.Account(5)
		assert.Equal(t, int64(1_500_000_000), st.Cash)
		assert.Equal(t, int64(1_500_000_000), st.ShortReq)
		h.rejected(order(buy(5, 2, 100, 1), 3), core.RejectInsufficientFunds)
		// Covering is funded by the short's collateral, even with no buying power.
		h.ok(order(buy(5, 1, 99, n), 4))
		h.rejected(order(sell(5, 1, 105, 1), 5), core.RejectShortWhileCovering)
		h.ok(order(sell(3, 1, 99, n), 2))
		st, _ = h.eng.Account(5)
		assert.Equal(t, []int64{0, 0}, st.Positions)
		assert.Equal(t, int64(500_000_000+n), st.Cash, "shorted at 100, covered at 99")
		assert.Zero(t, st.ShortReq)
		assert.Zero(t, st.Held)
	})
	t.Run("cover-bid-far-below-adds-nothing", func(t *testing.T) {
		h := newHarness(t, shortConfig())
		h.ok(order(sell(5, 1, 100, n), 1))
		h.ok(order(buy(2, 1, 100, n), 1))
		h.ok(order(buy(5, 1, 90, n), 2)) // a cover bid far below the collateral per share
		h.rejected(order(buy(5, 2, 100, 1), 3), core.RejectInsufficientFunds)
		h.ok(core.Command{Kind: core.CmdCancel, Account: 5, OrigClOrdID: 2})
		st, _ := h.eng.Account(5)
		assert.Equal(t, st.Cash, st.Held+st.ShortReq, "back to no buying power")
	})
}

// TestRiskThrottleBlindSpots: only accepted orders were counted, so 1,000
// rejected orders and 1,000 cancels of unknown orders in one second drew no
// rate reject, and the fixed one-second window let 6 orders through within
// 1 ns at a limit of 3. Every message of a configured account now takes a
// token from its bucket (OrdersPerSec, CancelsPerSec, refilled continuously).
func TestRiskThrottleBlindSpots(t *testing.T) {
	cfg := core.Config{
		Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000}},
		Accounts: []core.Account{{ID: 1, Cash: 1_000_000, Positions: []core.Position{{Instrument: 1, Lots: 1000}},
			Limits: core.Limits{OrdersPerSec: 3, CancelsPerSec: 3}}},
	}
	at := func(c core.Command, ns int64) core.Command { c.Time = ns; return c }
	t.Run("rejected-orders-count", func(t *testing.T) {
		h := newHarness(t, cfg)
		for i := range uint64(3) {
			h.rejected(at(order(buy(1, 1, 100, 0), i+1), 10), core.RejectInvalidQty)
		}
		h.rejected(at(order(buy(1, 1, 100, 1), 4), 10), core.RejectOrderRate)
	})
	t.Run("unknown-cancels-count", func(t *testing.T) {
		h := newHarness(t, cfg)
		for i := range uint64(3) {
			h.rejected(at(core.Command{Kind: core.CmdCancel, Account: 1, OrderID: 999, OrigClOrdID: i + 1}, 10), core.RejectUnknownOrder)
		}
		h.ok(at(order(buy(1, 1, 100, 1), 1), 10))
		h.rejected(at(core.Command{Kind: core.CmdCancel, Account: 1, OrigClOrdID: 1}, 10), core.RejectCancelRate)
	})
	t.Run("replaces-of-unknown-orders-count", func(t *testing.T) {
		h := newHarness(t, cfg)
		for i := range uint64(3) {
			h.rejected(at(core.Command{Kind: core.CmdReplace, Account: 1, OrderID: 999, OrigClOrdID: 1, ClOrdID: i + 1, Price: 100, Qty: 1}, 10), core.RejectUnknownOrder)
		}
		h.rejected(at(order(buy(1, 1, 100, 1), 9), 10), core.RejectOrderRate)
	})
	t.Run("no-burst-at-the-window-edge", func(t *testing.T) {
		h := newHarness(t, cfg)
		for i := range uint64(3) {
			h.ok(at(order(buy(1, 1, 100, 1), i+1), 1e9-1))
		}
		h.rejected(at(order(buy(1, 1, 100, 1), 4), 1e9), core.RejectOrderRate)
		h.ok(at(order(buy(1, 1, 100, 1), 5), 1e9-1+333_333_334)) // one token back after a third of a second
		h.rejected(at(order(buy(1, 1, 100, 1), 6), 1e9-1+333_333_334), core.RejectOrderRate)
	})
	t.Run("sustained-rate", func(t *testing.T) {
		h := newHarness(t, cfg)
		ok := 0
		for i := range int64(300) { // 300 orders over 10 s at 30 a second: 3 a second pass, plus the burst
			if evs := h.do(at(order(buy(1, 1, 100, 1), uint64(i+1)), i*(1_000_000_000/30))); evs[0].Kind != core.KindRejected {
				ok++
			}
		}
		assert.InDelta(t, 3+29, ok, 1) // the burst of 3, then 3 a second over 9.97 s
	})
}

// TestRiskPDTBypassByPendingOpening: with 3 day trades counted, placing the
// closing sell before the opening buy had filled reached 6 day trades
// against a limit of 3. Pending opening orders now count: with orders open
// on the other side, an order could complete a day trade.
func TestRiskPDTBypassByPendingOpening(t *testing.T) {
	run := func(t *testing.T, open core.Side) {
		h := newHarness(t, pdtConfig())
		cl, mm := uint64(0), uint64(0)
		next := func() uint64 { cl++; return cl }
		nextMM := func() uint64 { mm++; return mm }
		for range 3 { // three day trades against the market maker, account 20
			h.ok(order(sell(20, 1, 100, 1), nextMM()))
			h.ok(order(buy(10, 1, 100, 1), next()))
			h.ok(order(buy(20, 1, 100, 1), nextMM()))
			h.ok(order(sell(10, 1, 100, 1), next()))
		}
		st, _ := h.eng.Account(10)
		require.Equal(t, int64(3), st.DayTrades)
		for range 3 { // the attack: opening and closing orders both rest, then fill
			o, c := buy(10, 1, 99, 1), sell(10, 1, 101, 1)
			if open == core.Sell {
				o, c = sell(10, 1, 101, 1), buy(10, 1, 99, 1)
			}
			h.ok(order(o, next()))
			h.rejected(order(c, next()), core.RejectPatternDayTrader)
			h.ok(core.Command{Kind: core.CmdMassCancel, Account: 10})
		}
		st, _ = h.eng.Account(10)
		assert.Equal(t, int64(3), st.DayTrades)
	}
	t.Run("long", func(t *testing.T) { run(t, core.Buy) })
	t.Run("short", func(t *testing.T) { run(t, core.Sell) })
}

// TestRiskDuplicativeOrders: identical orders (same account, instrument,
// side, type, price, stop price and quantity) repeated within the account's
// DuplicateWindow are refused as 15c3-5 "duplicative orders", with their own
// reason code; outside the window, or differing in anything, they pass.
func TestRiskDuplicativeOrders(t *testing.T) {
	cfg := core.Config{
		Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000}, {ID: 2, BandLow: 1, BandHigh: 1000}},
		Accounts: []core.Account{{ID: 1, Cash: 1_000_000_000, Positions: []core.Position{{Instrument: 1, Lots: 100}}, Limits: core.Limits{DuplicateWindow: 1e9}},
			{ID: 2, Cash: 1_000_000_000}},
	}
	at := func(c core.Command, cl uint64, ns int64) core.Command { c.ClOrdID, c.Time = cl, ns; return c }
	h := newHarness(t, cfg)
	h.ok(at(buy(1, 1, 100, 10), 1, 0))
	h.rejected(at(buy(1, 1, 100, 10), 2, 500_000_000), core.RejectDuplicativeOrder)
	h.ok(at(buy(1, 1, 100, 11), 3, 500_000_001))
	h.ok(at(buy(1, 1, 101, 10), 4, 500_000_002))
	h.ok(at(buy(1, 2, 100, 10), 5, 500_000_003))
	h.ok(at(sell(1, 1, 200, 10), 6, 500_000_004))
	h.ok(at(buy(2, 1, 100, 10), 1, 500_000_005)) // another account, no window
	h.ok(at(buy(2, 1, 100, 10), 2, 500_000_006))
	h.ok(at(buy(1, 1, 100, 10), 7, 1_000_000_000)) // a second later
	// The account's last 16 new orders are remembered: 15 others between two
	// identical ones do not hide the repeat.
	for i := range int64(15) {
		h.ok(at(buy(1, 1, 50+i, 1), uint64(8+i), 1_100_000_000))
	}
	h.rejected(at(buy(1, 1, 50, 1), 40, 1_200_000_000), core.RejectDuplicativeOrder)
	// The window is an account limit.
	h.ok(core.Command{Kind: core.CmdSetLimit, Account: 1, OrigClOrdID: uint64(core.LimitDuplicateWindow), Qty: 0, Operator: 7, Cause: core.CauseOperator})
	h.ok(at(buy(1, 1, 50, 1), 41, 1_200_000_001))
}

// TestRiskSaleMarks: orders are marked long, short or short exempt (Reg SHO
// Rule 200(g)). A long mark the position does not cover is refused; an
// unmarked sell is marked by the position; a mark on a buy, or an unknown
// one, is invalid.
func TestRiskSaleMarks(t *testing.T) {
	cfg := core.Config{
		Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000, TickValue: 1}},
		Accounts: []core.Account{{ID: 1, Cash: 1_000_000, Positions: []core.Position{{Instrument: 1, Lots: 10}},
			Locates: []core.Locate{{Instrument: 1, Qty: 100}}}},
	}
	marked := func(c core.Command, m core.SaleMark) core.Command { c.Mark = m; return c }
	h := newHarness(t, cfg)
	h.rejected(marked(order(buy(1, 1, 100, 1), 1), core.MarkLong), core.RejectInvalidSaleMark)
	h.rejected(marked(order(sell(1, 1, 100, 1), 2), 4), core.RejectInvalidSaleMark)
	h.rejected(marked(order(sell(1, 1, 100, 11), 3), core.MarkLong), core.RejectLongSaleNotOwned)
	for i, tc := range []struct {
		mark core.SaleMark
		qty  int64
		want core.SaleMark
	}{
		{core.MarkNone, 4, core.MarkLong}, {core.MarkLong, 6, core.MarkLong}, {core.MarkNone, 1, core.MarkShort},
		{core.MarkShort, 1, core.MarkShort}, {core.MarkShortExempt, 1, core.MarkShortExempt},
	} {
		evs := h.ok(marked(order(sell(1, 1, 100+int64(i), tc.qty), uint64(10+i)), tc.mark))
		assert.Equal(t, tc.want, evs[0].Mark, "%v", evs[0])
	}
	h.rejected(marked(order(sell(1, 1, 200, 1), 20), core.MarkLong), core.RejectLongSaleNotOwned)
	// A replace keeps the mark: a long sale cannot grow beyond the position.
	h.rejected(core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 10, ClOrdID: 21, Price: 100, Qty: 5}, core.RejectLongSaleNotOwned)
}

// TestRiskShortSalePriceTest: Rule 201. A trade 10% or more below the
// previous close turns the short-sale price test on for the rest of the day
// and the next; while it is on, a short sale (not short exempt) may not
// execute or rest at or below the best bid.
func TestRiskShortSalePriceTest(t *testing.T) {
	cfg := core.Config{
		Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000, TickValue: 1, PrevClose: 100}},
		Accounts: []core.Account{
			{ID: 1, Cash: 1_000_000, Locates: []core.Locate{{Instrument: 1, Qty: 1000}}},
			{ID: 2, Cash: 1_000_000, Positions: []core.Position{{Instrument: 1, Lots: 1000}}},
			{ID: 3, Cash: 1_000_000},
		},
	}
	marked := func(c core.Command, m core.SaleMark) core.Command { c.Mark = m; return c }
	h := newHarness(t, cfg)
	h.ok(order(buy(3, 1, 91, 5), 1))
	h.ok(order(buy(3, 1, 90, 5), 2))
	h.ok(order(buy(3, 1, 89, 5), 3))
	// A short sale sweeping the bids: the print at 90 (10% down) turns the
	// test on, and the short sale stops before hitting the next bid.
	evs := h.ok(marked(order(sell(1, 1, 85, 15), 1), core.MarkShort))
	require.Len(t, kinds(evs, core.KindExecuted), 2, "%v", evs)
	sys := kinds(evs, core.KindSystem)
	require.Len(t, sys, 1)
	assert.Equal(t, core.AdminShortSaleTest, sys[0].Reason)
	require.Len(t, kinds(evs, core.KindRegulatory), 1)
	c := kinds(evs, core.KindCancelled)
	require.Len(t, c, 1)
	assert.Equal(t, core.CancelShortSalePriceTest, c[0].Reason)
	assert.Equal(t, int64(5), c[0].Qty)
	// On: the best bid is 89.
	h.rejected(marked(order(sell(1, 1, 89, 1), 2), core.MarkShort), core.RejectShortSalePriceTest)
	h.rejected(marked(order(sell(1, 1, 80, 1), 3), core.MarkNone), core.RejectShortSalePriceTest) // unmarked: short
	mkt := marked(order(sell(1, 1, 0, 1), 4), core.MarkShort)
	mkt.Type, mkt.TIF = core.Market, core.IOC
	h.rejected(mkt, core.RejectShortSalePriceTest)
	h.ok(marked(order(sell(1, 1, 90, 1), 5), core.MarkShort)) // above the bid: rests
	h.ok(marked(order(sell(1, 1, 89, 1), 6), core.MarkShortExempt))
	h.ok(marked(order(sell(2, 1, 89, 1), 1), core.MarkLong))
	h.rejected(core.Command{Kind: core.CmdReplace, Account: 1, OrigClOrdID: 5, ClOrdID: 7, Price: 89, Qty: 1}, core.RejectShortSalePriceTest)
	// A stop short sale that triggers while the test is on is stopped too.
	stop := marked(order(sell(1, 1, 0, 1), 8), core.MarkShort)
	stop.Type, stop.StopPrice = core.Stop, 95
	evs = h.ok(stop)
	c = kinds(evs, core.KindCancelled)
	require.Len(t, c, 1, "%v", evs)
	assert.Equal(t, core.CancelShortSalePriceTest, c[0].Reason)
	// The rest of the day and the next; then off.
	h.ok(eod(20260105))
	h.ok(order(buy(3, 1, 88, 5), 4))
	h.rejected(marked(order(sell(1, 1, 88, 1), 1), core.MarkShort), core.RejectShortSalePriceTest)
	h.ok(eod(20260106))
	h.ok(order(buy(3, 1, 88, 5), 5))
	h.ok(marked(order(sell(1, 1, 88, 1), 2), core.MarkShort))
}

// TestRiskLocateConsumed: the landed locate was a cap never consumed: short
// 10 on a locate of 10, buy back, and short 10 again. Locates are now used
// up by the short sales they cover (LocateConsume, the default); LocateCap
// keeps the old behaviour when an operator configures it.
func TestRiskLocateConsumed(t *testing.T) {
	for _, policy := range []core.LocatePolicy{core.LocateConsume, core.LocateCap} {
		t.Run(map[core.LocatePolicy]string{core.LocateConsume: "consume", core.LocateCap: "cap"}[policy], func(t *testing.T) {
			h := newHarness(t, core.Config{LocatePolicy: policy,
				Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000, TickValue: 1}},
				Accounts: []core.Account{
					{ID: 1, Cash: 1_000_000, Locates: []core.Locate{{Instrument: 1, Qty: 10}}},
					{ID: 2, Cash: 1_000_000, Positions: []core.Position{{Instrument: 1, Lots: 1000}}},
				}})
			h.ok(order(sell(1, 1, 100, 10), 1))
			h.ok(order(buy(2, 1, 100, 10), 1))
			h.ok(order(sell(2, 1, 100, 10), 2))
			h.ok(order(buy(1, 1, 100, 10), 2))
			st, _ := h.eng.Account(1)
			require.Equal(t, []int64{0}, st.Positions)
			if policy == core.LocateConsume {
				assert.Equal(t, []int64{0}, st.Locates)
				h.rejected(order(sell(1, 1, 100, 1), 3), core.RejectShortNoLocate)
			} else {
				assert.Equal(t, []int64{10}, st.Locates)
				h.ok(order(sell(1, 1, 100, 10), 3))
			}
		})
	}
}

// eod is an end of day for date (YYYYMMDD).
func eod(date int64) core.Command { return core.Command{Kind: core.CmdEndOfDay, Qty: date} }

// weekdays returns successive weekdays (YYYYMMDD) from Monday 2026-01-05 on,
// for tests whose calendar has no holidays.
func weekdays() func() int64 {
	d := time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC)
	return func() int64 {
		for d = d.AddDate(0, 0, 1); d.Weekday() == time.Saturday || d.Weekday() == time.Sunday; d = d.AddDate(0, 0, 1) {
		}
		return int64(d.Year())*10000 + int64(d.Month())*100 + int64(d.Day())
	}
}

// TestRiskPDTWindowByCalendar: the PDT window counted end-of-day commands,
// not business days: five in 5 ns cleared it. An end of day now names the
// date it ends; one that does not advance the trading date is refused, and
// the exchange calendar (weekends, holidays) decides which days count.
func TestRiskPDTWindowByCalendar(t *testing.T) {
	cfg := pdtConfig()
	cfg.Calendar = core.Calendar{TradingDate: 20261221, Holidays: []int64{20261225}} // Monday; Christmas a Friday
	h := newHarness(t, cfg)
	cl, mm := uint64(0), uint64(0)
	dayTrade := func() {
		mm++
		h.ok(order(sell(20, 1, 100, 1), mm))
		cl++
		h.ok(order(buy(10, 1, 100, 1), cl))
		mm++
		h.ok(order(buy(20, 1, 100, 1), mm))
		cl++
		h.ok(order(sell(10, 1, 100, 1), cl))
	}
	for range 3 {
		dayTrade()
	}
	count := func() int64 { st, _ := h.eng.Account(10); return st.DayTrades }
	require.Equal(t, int64(3), count())
	h.ok(eod(20261221))
	for i := range int64(5) { // five more in the same nanosecond: refused
		c := eod(20261221)
		c.Time = i
		h.rejected(c, core.RejectStaleTradingDay)
	}
	assert.Equal(t, int64(3), count())
	h.rejected(eod(20261226), core.RejectInvalidTradingDay) // a Saturday
	h.rejected(eod(20261225), core.RejectInvalidTradingDay) // a holiday
	h.rejected(eod(20261232), core.RejectInvalidTradingDay) // not a date
	h.ok(eod(20261222))
	h.ok(eod(20261223))
	h.ok(eod(20261224)) // Thursday: the next business day is Monday the 28th
	// The window is the 28th and the four business days before it (24, 23,
	// 22, 21): Monday's three day trades still count.
	assert.Equal(t, int64(3), count())
	h.ok(order(sell(20, 1, 100, 1), mm+1))
	h.ok(order(buy(10, 1, 100, 1), cl+1))
	h.rejected(order(sell(10, 1, 100, 1), cl+2), core.RejectPatternDayTrader)
	h.ok(eod(20261228))
	assert.Zero(t, count(), "the 21st left the window")
}

// TestRiskAdminAttribution: halt and kill events carried only an action code
// and an opaque tag. Every admin command now names its operator and a cause,
// refused admin-unattributed without them; its events carry both; an
// instrument halt writes a regulatory record as a market halt does.
func TestRiskAdminAttribution(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "risk-on", false: "risk-off"}[on], func(t *testing.T) {
			cfg := riskConfig()
			if !on {
				cfg.Accounts = nil
			}
			h := newHarness(t, cfg)
			for _, c := range []core.Command{
				{Kind: core.CmdHalt, Instrument: 1},
				{Kind: core.CmdHalt, Instrument: 1, Operator: 42},
				{Kind: core.CmdHalt, Instrument: 1, Cause: core.CauseNewsPending},
				{Kind: core.CmdHalt, Instrument: 1, Operator: 42, Cause: 200},
				{Kind: core.CmdKill, Account: 1, Cause: core.CauseRiskLimit},
				{Kind: core.CmdMarketHalt},
			} {
				h.rejected(c, core.RejectAdminUnattributed)
			}
			h.ok(order(buy(1, 1, 100, 1), 1))
			evs := h.ok(core.Command{Kind: core.CmdHalt, Instrument: 1, Operator: 42, Cause: core.CauseNewsPending})
			require.Len(t, evs, 2)
			assert.Equal(t, core.KindSystem, evs[0].Kind)
			assert.Equal(t, core.KindRegulatory, evs[1].Kind, "an instrument halt is a regulatory record")
			for _, ev := range evs {
				assert.Equal(t, core.AdminInstrumentHalt, ev.Reason)
				assert.Equal(t, uint32(42), ev.Operator)
				assert.Equal(t, core.CauseNewsPending, ev.Cause)
			}
			evs = h.ok(core.Command{Kind: core.CmdResume, Instrument: 1, Operator: 43, Cause: core.CauseNewsReleased})
			require.Len(t, evs, 2)
			assert.Equal(t, core.KindRegulatory, evs[1].Kind)
			assert.Equal(t, uint32(43), evs[1].Operator)
			evs = h.ok(core.Command{Kind: core.CmdKill, Account: 1, Operator: 44, Cause: core.CauseRiskLimit})
			require.Len(t, evs, 3, "%v", evs) // the order cancelled, its book delete, the kill
			for _, ev := range evs {
				assert.Equal(t, uint32(44), ev.Operator, "%v", ev)
				assert.Equal(t, core.CauseRiskLimit, ev.Cause, "%v", ev)
			}
			evs = h.ok(order(buy(5, 1, 100, 1), 2))
			assert.Zero(t, evs[0].Operator, "order events name no operator")
		})
	}
}
