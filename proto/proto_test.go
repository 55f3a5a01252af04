package proto_test

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/proto"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/frames.golden")

// samples are one realistic message of every type; testdata/frames.golden
// holds their frames.
func samples() []proto.Message {
	login := &proto.Login{Timestamp: 1_767_225_600_000_000_000, NextSeq: 42, Flags: proto.FlagSnapshot}
	_ = login.SetKeyID("0123456789abcdef")
	copy(login.Nonce[:], "nonce-0123456789")
	proto.SignLogin(login, bytes.Repeat([]byte{7}, proto.SecretSize))
	deviceID, _ := proto.ParseDeviceID("0f1e2d3c4b5a69788796a5b4c3d2e1f0")
	quote := &proto.AttestQuote{DeviceID: deviceID, Nonce: [32]byte{1, 2, 3, 31: 32}}
	if err := quote.SetQuote(bytes.Repeat([]byte{0xa5}, 145), bytes.Repeat([]byte{0x5a}, 72)); err != nil {
		panic(err)
	}
	return []proto.Message{
		login,
		&proto.LogoutRequest{},
		&proto.Heartbeat{},
		&proto.NewOrder{ClOrdID: 1001, Instrument: 1, Side: core.Buy, OrdType: core.StopLimit, TIF: core.GTC, Flags: 0, STP: core.STPDecrement, STPGroup: 9, Price: 15_000, StopPrice: 14_990, Qty: 500, DisplayQty: 100, MinQty: 0},
		&proto.Cancel{OrderID: 77, OrigClOrdID: 1001, Instrument: 1},
		&proto.CancelToSize{OrderID: 77, OrigClOrdID: 1001, Instrument: 1, Qty: 250},
		&proto.Replace{OrderID: 77, OrigClOrdID: 1001, ClOrdID: 1002, Instrument: 1, Price: 15_010, StopPrice: 14_995, Qty: 400},
		&proto.MassCancel{Instrument: 3},
		&proto.KillSwitch{},
		&proto.ReferenceQuery{},
		&proto.LoginAccepted{SessionID: 1_767_225_600_123_456_789, NextSeq: 43, ReplayFrom: 42, NextClOrdID: 1003, Account: 17, HeartbeatMs: 1000, ServerTime: 1_767_225_600_000_500_000},
		&proto.LoginRejected{Reason: proto.ReasonBadMAC},
		&proto.Logout{Reason: proto.ReasonSlowReader, NextSeq: 99},
		&proto.SessionReject{Reason: proto.ReasonSessionRate, MsgType: proto.TNewOrder, ClOrdID: 1004},
		&proto.NextReference{NextClOrdID: 1005, Account: 17},
		&proto.Accepted{Seq: 43, Time: 1_767_225_600_000_600_000, OrderID: 77, ClOrdID: 1001, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 15_000, Qty: 500},
		&proto.Rejected{Seq: 44, Time: 1_767_225_600_000_700_000, Reason: core.RejectStaleClOrdID, Side: core.Sell, OrdType: core.Market, TIF: core.IOC, Instrument: 2, ClOrdID: 900, Qty: 10},
		&proto.Executed{Seq: 45, Time: 1_767_225_600_000_800_000, OrderID: 77, ClOrdID: 1001, Instrument: 1, Side: core.Buy, Liquidity: 'A', MatchID: 5, Price: 15_000, Qty: 100, Leaves: 400},
		&proto.Cancelled{Seq: 46, Time: 1_767_225_600_000_900_000, Reason: core.CancelRequested, Side: core.Buy, Instrument: 1, OrderID: 77, ClOrdID: 1001, Qty: 400},
		&proto.Reduced{Seq: 47, Time: 1_767_225_600_001_000_000, Reason: core.CancelSTPDecrement, Side: core.Sell, Instrument: 1, OrderID: 78, ClOrdID: 1006, Qty: 50, Leaves: 150},
		&proto.Replaced{Seq: 48, Time: 1_767_225_600_001_100_000, OrderID: 78, ClOrdID: 1007, OrigClOrdID: 1006, Instrument: 1, Side: core.Sell, Price: 15_020, Leaves: 150},
		&proto.Triggered{Seq: 49, Time: 1_767_225_600_001_200_000, OrderID: 79, ClOrdID: 1008, Instrument: 1, Side: core.Buy, OrdType: core.Stop, TIF: core.DAY, StopPrice: 15_010, Leaves: 20},
		&proto.SystemEvent{Seq: 50, Time: 1_767_225_600_001_300_000, Reason: core.AdminInstrumentHalt, Instrument: 2},
		&proto.AccountAlert{Seq: 51, Time: 1_767_225_600_001_400_000, Reason: core.AdminKill, Account: 17, Value: 3},
		&proto.MDAdd{Seq: 1, Time: 1_767_225_600_000_600_000, OrderID: 77, Instrument: 1, Side: core.Buy, Price: 15_000, Qty: 100},
		&proto.MDExecute{Seq: 2, Time: 1_767_225_600_000_800_000, OrderID: 77, Instrument: 1, Side: core.Buy, Price: 15_000, Qty: 100, Leaves: 0, MatchID: 5},
		&proto.MDCancel{Seq: 3, Time: 1_767_225_600_001_000_000, OrderID: 78, Instrument: 1, Side: core.Sell, Qty: 50, Leaves: 50},
		&proto.MDDelete{Seq: 4, Time: 1_767_225_600_000_900_000, OrderID: 77, Instrument: 1, Side: core.Buy},
		&proto.MDReplace{Seq: 5, Time: 1_767_225_600_001_100_000, OrderID: 78, Instrument: 1, Side: core.Sell, Price: 15_020, Qty: 50},
		&proto.MDTrade{Seq: 6, Time: 1_767_225_600_000_800_000, MatchID: 5, Instrument: 1, Side: core.Sell, Price: 15_000, Qty: 100},
		&proto.MDSystem{Seq: 7, Time: 1_767_225_600_001_300_000, Reason: core.AdminInstrumentHalt, Instrument: 2},
		&proto.SnapshotBegin{Seq: 7, Orders: 2},
		&proto.SnapshotEnd{Seq: 7},
		&proto.AttestHello{DeviceID: deviceID},
		&proto.AttestChallenge{DeviceID: deviceID, Nonce: [32]byte{1, 2, 3, 31: 32}, Expires: 1_767_225_660_000_000_000,
			PCRs: 0xff, Bank: proto.BankSHA256},
		quote,
		&proto.AttestAccepted{DeviceID: deviceID, Expires: 1_767_226_500_000_000_000, RenewAt: 1_767_226_200_000_000_000},
	}
}

// TestGoldenFrames pins every message's bytes (testdata/frames.golden,
// rewritten with -rewrite and reviewed in the diff).
func TestGoldenFrames(t *testing.T) {
	var b strings.Builder
	for _, m := range samples() {
		f := proto.Append(nil, m)
		fmt.Fprintf(&b, "%s %T\n", m.Type(), m)
		for i := 0; i < len(f); i += 16 {
			fmt.Fprintf(&b, "  %04x  % x\n", i, f[i:min(i+16, len(f))])
		}
	}
	const path = "testdata/frames.golden"
	if *rewrite {
		require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run with -rewrite to create it")
	require.Equal(t, string(want), b.String())
	require.Len(t, samples(), len(proto.Types()), "a sample per type")
}

func TestRoundTrip(t *testing.T) {
	for _, m := range samples() {
		t.Run(m.Type().String(), func(t *testing.T) {
			f := proto.Append(nil, m)
			back, err := proto.Decode(f)
			require.NoError(t, err)
			require.Equal(t, m, back)
			into := proto.New(m.Type())
			require.NoError(t, proto.DecodeInto(f, into))
			require.Equal(t, m, into)
			// The wrong type, a truncated frame, a longer one: refused.
			other := &proto.Heartbeat{}
			if m.Type() == proto.THeartbeat {
				other2 := &proto.LogoutRequest{}
				require.ErrorIs(t, proto.DecodeInto(f, other2), proto.ErrMalformed)
			} else {
				require.ErrorIs(t, proto.DecodeInto(f, other), proto.ErrMalformed)
			}
			require.ErrorIs(t, into.UnmarshalFrame(f[:len(f)-1]), proto.ErrMalformed)
			require.ErrorIs(t, into.UnmarshalFrame(append(f, 0)), proto.ErrMalformed)
		})
	}
}

func TestParseHeader(t *testing.T) {
	hb := proto.Append(nil, &proto.Heartbeat{})
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"ok", hb, nil},
		{"short", hb[:3], proto.ErrMalformed},
		{"length below header", []byte{3, 0, 'H', 1}, proto.ErrMalformed},
		{"oversized", []byte{0x01, 0x02, 'N', 1}, proto.ErrOversized},
		{"unknown type", []byte{4, 0, '?', 1}, proto.ErrMalformed},
		{"version 2", []byte{4, 0, 'H', 2}, proto.ErrVersion},
		{"wrong length for type", []byte{8, 0, 'H', 1}, proto.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := proto.ParseHeader(tt.b)
			if tt.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.err)
		})
	}
	assert.Equal(t, proto.ReasonOversized, proto.ReasonOf(proto.ErrOversized))
	assert.Equal(t, proto.ReasonUnsupportedVersion, proto.ReasonOf(fmt.Errorf("x: %w", proto.ErrVersion)))
	assert.Equal(t, proto.ReasonMalformed, proto.ReasonOf(proto.ErrMalformed))
}

func TestFrameReader(t *testing.T) {
	var stream []byte
	ms := samples()
	for range 50 {
		for _, m := range ms {
			stream = proto.Append(stream, m)
		}
	}
	for _, name := range []string{"whole", "one byte at a time", "half"} {
		t.Run(name, func(t *testing.T) {
			var r io.Reader = bytes.NewReader(stream)
			switch name {
			case "one byte at a time":
				r = iotest.OneByteReader(r)
			case "half":
				r = iotest.HalfReader(r)
			}
			fr := proto.NewFrameReader(r, proto.MaxFrame)
			for i := range 50 * len(ms) {
				f, err := fr.Next()
				require.NoError(t, err)
				want := proto.Append(nil, ms[i%len(ms)])
				require.Equal(t, want, f)
			}
			_, err := fr.Next()
			require.ErrorIs(t, err, io.EOF)
		})
	}
	t.Run("truncated", func(t *testing.T) {
		fr := proto.NewFrameReader(bytes.NewReader(stream[:10]), 0)
		_, err := fr.Next()
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	})
	t.Run("garbage", func(t *testing.T) {
		fr := proto.NewFrameReader(bytes.NewReader([]byte{0xff, 0xff, 'N', 1, 0, 0}), 0)
		_, err := fr.Next()
		require.ErrorIs(t, err, proto.ErrOversized)
	})
}

func TestLoginMAC(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, proto.SecretSize)
	l := samples()[0].(*proto.Login)
	f := proto.Append(nil, l)
	require.True(t, proto.VerifyLogin(f, secret))
	require.False(t, proto.VerifyLogin(f, bytes.Repeat([]byte{8}, proto.SecretSize)), "another secret")
	for i := range f {
		g := bytes.Clone(f)
		g[i] ^= 1
		require.False(t, proto.VerifyLogin(g, secret), "a flipped bit at byte %d", i)
	}
	var back proto.Login
	require.NoError(t, proto.ParseLogin(f, &back))
	require.Equal(t, *l, back)
	bad := *l
	bad.KeyID[0] = 'Z'
	require.ErrorIs(t, proto.ParseLogin(proto.Append(nil, &bad), &back), proto.ErrMalformed)
	require.ErrorIs(t, (&proto.Login{}).SetKeyID("short"), proto.ErrKeyID)
}

// TestNoAllocs: the encode and decode paths of the hot messages allocate
// nothing.
func TestNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 1024)
	no := &proto.NewOrder{ClOrdID: 1, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 100, Qty: 1}
	ack := &proto.Accepted{Seq: 1, OrderID: 1}
	var m proto.Message = ack
	fr := proto.NewFrameReader(&loop{b: proto.Append(nil, no)}, 0)
	var into proto.NewOrder
	allocs := testing.AllocsPerRun(1000, func() {
		buf = no.AppendFrame(buf[:0])
		if err := into.UnmarshalFrame(buf); err != nil {
			panic(err)
		}
		buf = proto.Append(buf[:0], m)
		if err := proto.DecodeInto(buf, m); err != nil {
			panic(err)
		}
		f, err := fr.Next()
		if err != nil {
			panic(err)
		}
		if _, err := proto.ParseHeader(f); err != nil {
			panic(err)
		}
	})
	require.Zero(t, allocs)
}

// loop is a reader that repeats b forever.
type loop struct {
	b []byte
	i int
}

func (l *loop) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.b[l.i:])
		n += c
		l.i = (l.i + c) % len(l.b)
	}
	return n, nil
}

func BenchmarkNewOrder(b *testing.B) {
	buf := make([]byte, 0, 128)
	no := &proto.NewOrder{ClOrdID: 1, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 100, Qty: 1}
	var into proto.NewOrder
	b.ReportAllocs()
	for b.Loop() {
		buf = no.AppendFrame(buf[:0])
		if err := into.UnmarshalFrame(buf); err != nil {
			b.Fatal(err)
		}
	}
}
