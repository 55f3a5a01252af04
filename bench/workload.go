package bench

import (
	"math/rand/v2"

	"github.com/tradecore/tradecore/core"
)

// Mid is the mid price, in ticks, around which workloads place orders.
const Mid = 100_000

// Instrument is the single instrument the workloads trade.
var Instrument = core.Instrument{ID: 1, Symbol: "BENCH", BandLow: Mid - 50_000, BandHigh: Mid + 50_000}

// ProductionMaxOrders is the open-order capacity of the engine the workloads
// run on: tradecore serve's default, so no benchmark fits in cache by being
// small.
const ProductionMaxOrders = 1 << 20

// EngineConfig is the engine configuration every workload runs on.
func EngineConfig(maxOrders int) core.Config {
	return core.Config{Instruments: []core.Instrument{Instrument}, MaxOrders: maxOrders}
}

// RandomLimits returns n random DAY limit orders around Mid: buys and sells
// alike, 1–100 lots, resting orders 1–1,000 ticks away from Mid and, with
// probability crossPct/100, a marketable limit priced 1,000 ticks through Mid.
// About crossPct percent of the orders then execute on arrival. Accounts are
// drawn from 1..1000 with STP off, so crossing orders really trade.
func RandomLimits(seed uint64, n, crossPct int) []core.Command {
	r := rand.New(rand.NewPCG(seed, 0x7c0de))
	cmds := make([]core.Command, n)
	for i := range cmds {
		c := &cmds[i]
		c.Kind, c.Type, c.TIF, c.Instrument, c.STP = core.CmdNew, core.Limit, core.DAY, Instrument.ID, core.STPOff
		c.Account = 1 + uint32(r.IntN(1000))
		c.ClOrdID = uint64(i + 1)
		c.Time = int64(i) * 1000 // 1M commands a second of command time
		c.Qty = 1 + r.Int64N(100)
		c.Side = core.Buy
		if r.IntN(2) == 1 {
			c.Side, c.Mark = core.Sell, core.MarkLong // the risk configuration's accounts hold the shares
		}
		off := 1 + r.Int64N(1000)
		if r.IntN(100) < crossPct {
			off = -1000 // priced through every resting level: a marketable limit
		}
		if c.Side == core.Buy {
			c.Price = Mid - off
		} else {
			c.Price = Mid + off
		}
	}
	return cmds
}

// MoveHeavy returns n commands of exchange-core's move-heavy mix on about
// 1,000 resting orders from 1,000 accounts: 9% GTC limit orders, 3% IOC
// orders, 6% cancels and 82% replaces that move an order by a few ticks. The
// stream is generated against a live engine so cancels and replaces name
// orders that are really open, by the OrderIDs an engine of
// ProductionMaxOrders capacity gives them: run it on that capacity.
func MoveHeavy(seed uint64, n int) []core.Command {
	r := rand.New(rand.NewPCG(seed, 0x40fe))
	type key struct {
		acct uint32
		cl   uint64
	}
	type info struct {
		side  core.Side
		price int64
		pos   int
		oid   uint64
	}
	open := make(map[key]info, 4096)
	keys := make([]key, 0, 4096)
	add := func(k key, side core.Side, price int64, oid uint64) {
		open[k] = info{side, price, len(keys), oid}
		keys = append(keys, k)
	}
	remove := func(k key) {
		in, ok := open[k]
		if !ok {
			return
		}
		last := keys[len(keys)-1]
		keys[in.pos] = last
		li := open[last]
		li.pos = in.pos
		open[last] = li
		keys = keys[:len(keys)-1]
		delete(open, k)
	}
	// OrderIDs depend on the engine's capacity (docs/engine.md, "Order ids"):
	// generate against the production capacity every benchmark runs at.
	eng, err := core.New(EngineConfig(ProductionMaxOrders), func(evs []core.Event) {
		for i := range evs {
			ev := &evs[i]
			switch ev.Kind {
			case core.KindAccepted:
				if ev.TIF == core.GTC {
					add(key{ev.Account, ev.ClOrdID}, ev.Side, ev.Price, ev.OrderID)
				}
			case core.KindCancelled:
				remove(key{ev.Account, ev.ClOrdID})
			case core.KindReplaced:
				in := open[key{ev.Account, ev.OrigClOrdID}]
				remove(key{ev.Account, ev.OrigClOrdID})
				add(key{ev.Account, ev.ClOrdID}, in.side, ev.Price, in.oid)
			case core.KindExecuted:
				if ev.Leaves == 0 {
					remove(key{ev.Account, ev.ClOrdID})
				}
				if ev.ContraLeaves == 0 {
					remove(key{ev.ContraAccount, ev.ContraClOrdID})
				}
			}
		}
	})
	if err != nil {
		panic(err) // the configuration is a constant of this package
	}
	cmds := make([]core.Command, 0, n)
	var nextCl uint64
	for len(cmds) < n {
		var c core.Command
		c.Instrument, c.STP = Instrument.ID, core.STPOff
		p := r.IntN(100)
		switch {
		case len(keys) < 500: // build the book up to its working size first
			p = 0
		case p < 9 && len(keys) >= 1100: // hold the book near 1,000 orders
			p = 12
		}
		switch {
		case p < 9 || len(keys) == 0: // GTC limit, resting near the touch
			nextCl++
			c.Kind, c.Type, c.TIF = core.CmdNew, core.Limit, core.GTC
			c.Account, c.ClOrdID = 1+uint32(r.IntN(1000)), nextCl
			c.Side = core.Side(1 + r.IntN(2))
			c.Mark = core.SaleMark(c.Side - 1) // sells are long sales: the risk configuration's accounts hold the shares
			c.Qty = 1 + r.Int64N(100)
			c.Price = Mid - 1 - r.Int64N(50)
			if c.Side == core.Sell {
				c.Price = Mid + 1 + r.Int64N(50)
			}
		case p < 12: // IOC through the touch
			nextCl++
			c.Kind, c.Type, c.TIF = core.CmdNew, core.Limit, core.IOC
			c.Account, c.ClOrdID = 1+uint32(r.IntN(1000)), nextCl
			c.Side = core.Side(1 + r.IntN(2))
			c.Mark = core.SaleMark(c.Side - 1)
			c.Qty = 1 + r.Int64N(100)
			c.Price = Mid + 5
			if c.Side == core.Sell {
				c.Price = Mid - 5
			}
		case p < 18: // cancel
			k := keys[r.IntN(len(keys))]
			c.Kind, c.Account, c.OrderID, c.OrigClOrdID = core.CmdCancel, k.acct, open[k].oid, k.cl
		default: // replace: move by up to 3 ticks, staying on its side of the mid
			k := keys[r.IntN(len(keys))]
			in := open[k]
			nextCl++
			c.Kind, c.Account, c.OrderID, c.OrigClOrdID, c.ClOrdID = core.CmdReplace, k.acct, in.oid, k.cl, nextCl
			c.Qty = 1 + r.Int64N(100)
			c.Price = in.price + r.Int64N(7) - 3
			if in.side == core.Buy {
				c.Price = min(c.Price, Mid-1)
			} else {
				c.Price = max(c.Price, Mid+1)
			}
		}
		c.Seq = uint64(len(cmds) + 1)
		c.Time = int64(len(cmds)) * 1000 // 1M commands a second of command time
		cmds = append(cmds, c)
		eng.Apply(&cmds[len(cmds)-1])
		eng.Flush()
	}
	return cmds
}

// RiskEngineConfig is EngineConfig with the pre-trade risk layer on: the
// workloads' 1,000 accounts (ids 1..1000), each with ample cash and a long
// position, every limit set but none binding, and a collar around Mid wide
// enough for every workload price. It measures the checks' cost, not their
// rejects: a workload's events are the same with either configuration.
func RiskEngineConfig(maxOrders int) core.Config {
	cfg := EngineConfig(maxOrders)
	in := Instrument
	in.TickValue, in.RefPrice, in.CollarTicks = 1, Mid, 10_000
	cfg.Instruments = []core.Instrument{in}
	for id := uint32(1); id <= 1000; id++ {
		cfg.Accounts = append(cfg.Accounts, core.Account{
			ID: id, Cash: 1 << 52, AllowSTPOff: true, Positions: []core.Position{{Instrument: in.ID, Lots: 1 << 40}},
			Limits: core.Limits{MaxOrderQty: 1 << 20, MaxOrderNotional: 1 << 50, MaxPosition: 1 << 45,
				DailyCredit: 1 << 61, OrdersPerSec: 1 << 40, CancelsPerSec: 1 << 40, DuplicateWindow: 1},
		})
	}
	return cfg
}
