package core_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
)

// fuzzCommands turns fuzzer bytes into commands, 12 bytes each, aimed at a
// narrow band and a handful of accounts and ids so that orders meet, cross,
// collide and get cancelled; every enum byte may also be out of range.
func fuzzCommands(data []byte) []core.Command {
	var cmds []core.Command
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
			ClOrdID:     uint64(b[7] % 8),
			OrigClOrdID: uint64(b[7] / 8 % 8),
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
		eng, err := core.New(core.Config{
			Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 16}, {ID: 2, BandLow: 5, BandHigh: 20}},
			MaxOrders:   16,
			MaxOrderQty: 9,
			EventBatch:  16,
		}, func([]core.Event) {})
		require.NoError(t, err)
		for i, c := range fuzzCommands(data) {
			c.Seq = uint64(i + 1)
			eng.Apply(&c)
			require.NoError(t, eng.CheckInvariants(), "after command %d %+v", i, c)
		}
	})
}
