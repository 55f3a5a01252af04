package core_test

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
)

func sampleCommand() core.Command {
	return core.Command{Seq: 7, Time: -3, Kind: core.CmdReplace, Side: core.Sell, Type: core.StopLimit, TIF: core.GTC,
		Flags: core.PostOnly, STP: core.STPDecrement, Mark: core.MarkShortExempt, Cause: core.CauseCredit, Operator: 11, Instrument: 9, Account: 1 << 31, STPGroup: 5, ClOrdID: 1<<63 + 1,
		OrderID: 1<<62 + 3, OrigClOrdID: 2, Price: 100, StopPrice: 99, Qty: 1 << 40, DisplayQty: 3, MinQty: 2, Tag: 42}
}

func sampleEvent() core.Event {
	return core.Event{Seq: 7, Time: 8, Kind: core.KindExecuted, Side: core.Buy, Type: core.Limit, TIF: core.IOC,
		Reason: core.CancelSTPBoth, Mark: core.MarkShort, Cause: core.CauseTechnical, Operator: 12, Instrument: 3, Account: 4, OrderID: 5, ClOrdID: 6, OrigClOrdID: 7, Price: -8,
		StopPrice: 9, Qty: 10, Leaves: 11, MatchID: 12, ContraAccount: 13, ContraOrderID: 14, ContraClOrdID: 15,
		ContraLeaves: 16, Tag: 17}
}

// TestCodecSamplesSetEveryField: the round trip below proves every field is
// encoded only if the samples set every field; a field added to Command or
// Event without a place in the encoding fails here.
func TestCodecSamplesSetEveryField(t *testing.T) {
	for _, v := range []any{sampleCommand(), sampleEvent()} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			f := rv.Type().Field(i)
			if f.IsExported() {
				require.False(t, rv.Field(i).IsZero(), "%s.%s is zero in the sample", rv.Type().Name(), f.Name)
			}
		}
	}
}

func TestCodecRoundTrip(t *testing.T) {
	c := sampleCommand()
	b, err := c.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, core.CommandSize)
	var c2 core.Command
	require.NoError(t, c2.UnmarshalBinary(b))
	require.Equal(t, c, c2)

	ev := sampleEvent()
	b, err = ev.MarshalBinary()
	require.NoError(t, err)
	require.Len(t, b, core.EventSize)
	var ev2 core.Event
	require.NoError(t, ev2.UnmarshalBinary(b))
	require.Equal(t, ev, ev2)
}

func TestCodecRejects(t *testing.T) {
	c := sampleCommand()
	b, _ := c.MarshalBinary()
	var c2 core.Command
	require.ErrorIs(t, c2.UnmarshalBinary(b[:len(b)-1]), core.ErrEncoding)
	require.ErrorIs(t, c2.UnmarshalBinary(append(b, 0)), core.ErrEncoding)
	b[0] = core.CommandVersion + 1
	require.ErrorContains(t, c2.UnmarshalBinary(b), "version")
	var ev core.Event
	require.ErrorIs(t, ev.UnmarshalBinary(nil), core.ErrEncoding)
}

// FuzzCommandDecode: any bytes either fail to decode with ErrEncoding or
// decode to a command whose encoding is exactly those bytes (canonical).
func FuzzCommandDecode(f *testing.F) {
	c := sampleCommand()
	b, _ := c.MarshalBinary()
	f.Add(b)
	f.Add([]byte{core.CommandVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		var c core.Command
		if err := c.UnmarshalBinary(data); err != nil {
			require.ErrorIs(t, err, core.ErrEncoding)
			return
		}
		again, err := c.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, data, again)
	})
}

// FuzzEventDecode is FuzzCommandDecode for events.
func FuzzEventDecode(f *testing.F) {
	ev := sampleEvent()
	b, _ := ev.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev core.Event
		if err := ev.UnmarshalBinary(data); err != nil {
			require.ErrorIs(t, err, core.ErrEncoding)
			return
		}
		again, err := ev.MarshalBinary()
		require.NoError(t, err)
		require.Equal(t, data, again)
	})
}
