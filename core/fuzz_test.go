package core_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
)

// fuzzCommands turns fuzzer bytes into commands, 12 bytes each, aimed at a
// narrow band and a handful of accounts and ids so that orders meet, cross,
// collide and get cancelled; every enum byte may also be out of range.
//
// Client references mostly increase (as clients must send them), with resends
// and zeros mixed in; cancels and replaces are aimed afterwards, by aim.
func fuzzCommands(data []byte) []core.Command {
	var cmds []core.Command
	var cl uint64
	for len(data) >= 12 {
		b := data[:12]
		data = data[12:]
		c := core.Command{
			Kind:        core.CmdKind(b[0] % 8),
			Side:        core.Side(b[1] % 4),
			Type:        core.OrderType(b[2] % 6),
			TIF:         core.TIF(b[3] % 6),
			Flags:       core.Flags(b[4] % 3),
			STP:         core.STPMode(b[4] / 3 % 6),
			Instrument:  uint32(b[5] % 3),
			Account:     uint32(b[6] % 4),
			STPGroup:    uint32(b[6] / 4 % 3),
			OrigClOrdID: uint64(b[7] / 8 % 8),  // which known order to aim at (see aim)
			OrderID:     uint64(b[5] / 3 % 16), // how to spoil the aim, sometimes
			Price:       int64(b[8]%24) - 2,
			StopPrice:   int64(b[9]%24) - 2,
			Qty:         int64(b[10]%12) - 1,
			DisplayQty:  int64(b[11] % 5),
			MinQty:      int64(b[11] / 5 % 6),
		}
		if c.Type == core.Market || c.Type == core.Stop {
			c.Price = 0
		}
		if c.Type == core.Limit || c.Type == core.Market {
			c.StopPrice = 0
		}
		switch r := uint64(b[7] % 8); r {
		case 0: // invalid
			c.ClOrdID = 0
		case 7: // a resend of the last reference
			c.ClOrdID = cl
		default:
			cl += r
			c.ClOrdID = cl
		}
		cmds = append(cmds, c)
	}
	return cmds
}

// FuzzEngine applies arbitrary command sequences: the engine must never
// panic, and its whole state must stay consistent after every command.
func FuzzEngine(f *testing.F) {
	f.Add([]byte("\x01\x01\x01\x01\x00\x01\x01\x01\x0a\x00\x05\x00\x01\x02\x01\x01\x00\x01\x02\x02\x09\x00\x07\x00"))
	f.Add([]byte("\x01\x01\x04\x01\x00\x01\x01\x01\x0a\x08\x05\x00\x01\x02\x01\x03\x00\x01\x02\x02\x07\x00\x09\x0c\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var known aimer
		eng, err := core.New(core.Config{
			Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 16}, {ID: 2, BandLow: 5, BandHigh: 20}},
			MaxOrders:   16,
			MaxOrderQty: 9,
			EventBatch:  16,
		}, func(evs []core.Event) { known.learn(evs) })
		require.NoError(t, err)
		for i, c := range fuzzCommands(data) {
			c.Seq = uint64(i + 1)
			known.aim(&c)
			eng.Apply(&c)
			eng.Flush()
			require.NoError(t, eng.CheckInvariants(), "after command %d %+v", i, c)
		}
	})
}

// aimer remembers the orders the engine accepted (OrderID, account, current
// reference), so fuzzed cancels and replaces can name real ones.
type aimer struct{ orders []core.OrderState }

func (a *aimer) learn(evs []core.Event) {
	for i := range evs {
		e := &evs[i]
		switch e.Kind {
		case core.KindAccepted:
			a.orders = append(a.orders, core.OrderState{OrderID: e.OrderID, Account: e.Account, ClOrdID: e.ClOrdID})
		case core.KindReplaced:
			for j := range a.orders {
				if a.orders[j].OrderID == e.OrderID {
					a.orders[j].ClOrdID = e.ClOrdID
				}
			}
		}
	}
}

// aim points a cancel, cancel-to-size or replace at known order number
// OrigClOrdID (mod the known count), spoiled one way or another when the
// command's OrderID byte says so.
func (a *aimer) aim(c *core.Command) {
	switch c.Kind {
	case core.CmdCancel, core.CmdCancelSize, core.CmdReplace:
	default:
		c.OrigClOrdID, c.OrderID = 0, 0
		return
	}
	spoil := c.OrderID
	if len(a.orders) == 0 {
		c.OrderID = spoil
		return
	}
	o := a.orders[int(c.OrigClOrdID)%len(a.orders)]
	c.OrderID, c.OrigClOrdID = o.OrderID, o.ClOrdID
	switch spoil {
	case 0:
		c.Account = o.Account
	case 1:
		c.OrderID++
	case 2:
		c.OrigClOrdID++
	case 3: // keep the fuzzed account: maybe another account's order
	default:
		c.Account = o.Account
	}
}
