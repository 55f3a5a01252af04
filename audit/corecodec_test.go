package audit

import (
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
)

// TestCoreFieldCoverage fails when core.Command or core.Event gains a field
// the leaf encoding does not carry: add it to cmdSlots / evSlots in
// corecodec.go (and to docs/audit-format.md).
func TestCoreFieldCoverage(t *testing.T) {
	check := func(typ reflect.Type, covered map[string]bool) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			if f.Name == "_" {
				continue
			}
			assert.True(t, covered[f.Name], "%s.%s is not in the audit leaf encoding: add it to corecodec.go", typ.Name(), f.Name)
		}
		for name := range covered {
			_, ok := typ.FieldByName(name)
			assert.True(t, ok, "corecodec.go names %s.%s, which no longer exists", typ.Name(), name)
		}
	}
	cc := map[string]bool{}
	for _, s := range cmdSlots {
		cc[s.field] = true
	}
	for _, f := range cmdHeaderFields {
		cc[f] = true
	}
	check(reflect.TypeOf(core.Command{}), cc)
	ec := map[string]bool{}
	for _, s := range evSlots {
		ec[s.field] = true
	}
	for _, f := range evHeaderFields {
		ec[f] = true
	}
	check(reflect.TypeOf(core.Event{}), ec)

	// Each slot's accessors touch exactly its field: setting a value through
	// the slot shows up in that field and only there.
	for _, s := range cmdSlots {
		var c core.Command
		s.set(&c, 1)
		v := reflect.ValueOf(c)
		for i := 0; i < v.NumField(); i++ {
			name := v.Type().Field(i).Name
			if name == "_" {
				continue
			}
			assert.Equal(t, name == s.field, !v.Field(i).IsZero(), "slot %s sets %s", s.name, name)
		}
	}
	for _, s := range evSlots {
		var e core.Event
		s.set(&e, 1)
		v := reflect.ValueOf(e)
		for i := 0; i < v.NumField(); i++ {
			name := v.Type().Field(i).Name
			if name == "_" {
				continue
			}
			assert.Equal(t, name == s.field, !v.Field(i).IsZero(), "slot %s sets %s", s.name, name)
		}
	}
	// Every kind the engine knows has a named record type.
	for k := core.CmdKind(1); k.String() != "17" && k < 64; k++ {
		if _, ok := cmdKinds[k]; !ok && !strings.ContainsAny(k.String(), "0123456789") {
			t.Errorf("command kind %s has no record type in cmdKinds", k)
		}
	}
	for k := core.EventKind(1); k < 64; k++ {
		if _, ok := evKinds[k]; !ok && !strings.ContainsAny(k.String(), "0123456789") {
			t.Errorf("event kind %s has no record type in evKinds", k)
		}
	}
}

func randCommand(r *rand.Rand) core.Command {
	pick := func() uint64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return uint64(r.IntN(5))
		case 2:
			return r.Uint64()
		}
		return uint64(r.Int64N(1000000)) - 500000
	}
	var c core.Command
	for _, s := range cmdSlots {
		s.set(&c, pick())
	}
	c.Kind = core.CmdKind(r.IntN(20))
	c.Time = int64(r.Uint64())
	return c
}

func randEvent(r *rand.Rand) core.Event {
	var e core.Event
	for _, s := range evSlots {
		if r.IntN(2) == 0 {
			s.set(&e, r.Uint64()>>uint(r.IntN(64)))
		}
	}
	e.Kind = core.EventKind(r.IntN(20))
	e.Time = int64(r.Uint64())
	return e
}

var testScales = Scales{0: {}, 1: {TickMant: 1, TickExp: 2, LotMant: 100}, 2: {TickMant: 5, TickExp: 2, LotMant: 1, LotExp: 3}, 3: {TickMant: 25, TickExp: 18, LotMant: 7}}

func TestCoreRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 20000; i++ {
		c := randCommand(r)
		c.Instrument = uint32(r.IntN(5))
		leaf := AppendCommand(nil, uint64(i), &c, testScales)
		require.NoError(t, CheckBody(mustBody(t, leaf)), "%s", leaf)
		var got core.Command
		h, err := DecodeCommand(leaf, &got, testScales)
		require.NoError(t, err, "%s", leaf)
		require.Equal(t, c, got, "%s", leaf)
		require.EqualValues(t, i, h.Index)

		e := randEvent(r)
		e.Instrument = uint32(r.IntN(5))
		leaf = AppendEvent(nil, uint64(i), &e, testScales)
		var ge core.Event
		_, err = DecodeEvent(leaf, &ge, testScales)
		require.NoError(t, err, "%s", leaf)
		require.Equal(t, e, ge, "%s", leaf)
	}
}

func mustBody(t *testing.T, leaf []byte) []byte {
	h, err := ParseLeaf(leaf)
	require.NoError(t, err)
	return h.Body
}

func TestCoreGolden(t *testing.T) {
	c := core.Command{Seq: 7, Time: 1700000000000000001, Kind: core.CmdNew, Side: core.Buy, Type: core.Limit, TIF: core.DAY,
		Instrument: 1, Account: 42, ClOrdID: 9, Price: 10125, Qty: 5, Tag: 3}
	assert.Equal(t, `{"i":12,"t":1700000000000000001,"type":"cmd.new","body":{"seq":7,"inst":1,"acct":42,"clordid":9,"side":"buy","ord_type":"limit","tif":"day","stp":"cancel-newest","price":"101.25","qty":"500","tag":3}}`,
		string(AppendCommand(nil, 12, &c, testScales)))
	e := core.Event{Seq: 7, Time: 5, Kind: core.KindExecuted, Side: core.Sell, Instrument: 2, Account: 42, OrderID: 100, Price: 3, Qty: 1500, Leaves: 0, MatchID: 1, ContraAccount: 43, ContraOrderID: 99, ContraLeaves: 1}
	assert.Equal(t, `{"i":0,"t":5,"type":"event.executed","body":{"seq":7,"inst":2,"acct":42,"order_id":100,"side":"sell","price":"0.15","qty":"1.5","leaves":"0","match_id":1,"contra_acct":43,"contra_order_id":99,"contra_leaves":"0.001"}}`,
		string(AppendEvent(nil, 0, &e, testScales)))
	a := core.Command{Seq: 8, Time: 6, Kind: core.CmdSetLimit, Account: 42, OrigClOrdID: uint64(core.LimitOrderNotional), Qty: 1000000,
		Operator: 77, Cause: core.CauseRiskLimit}
	assert.Equal(t, `{"i":1,"t":6,"type":"cmd.set-limit","body":{"seq":8,"acct":42,"limit":"order-notional","operator":77,"cause":"risk-limit","value":1000000}}`,
		string(AppendCommand(nil, 1, &a, testScales)))
}

func TestCoreDecodeRejectsNonCanonical(t *testing.T) {
	c := core.Command{Seq: 7, Time: 1, Kind: core.CmdNew, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Instrument: 1, Account: 42, ClOrdID: 9, Price: 10125, Qty: 5}
	good := string(AppendCommand(nil, 0, &c, testScales))
	var got core.Command
	for name, mut := range map[string]func(string) string{
		"space":           func(s string) string { return strings.Replace(s, `"seq":7`, `"seq": 7`, 1) },
		"leading zero":    func(s string) string { return strings.Replace(s, `"seq":7`, `"seq":07`, 1) },
		"float":           func(s string) string { return strings.Replace(s, `"seq":7`, `"seq":7.0`, 1) },
		"price trailing0": func(s string) string { return strings.Replace(s, `"101.25"`, `"101.250"`, 1) },
		"price off tick":  func(s string) string { return strings.Replace(s, `"101.25"`, `"101.255"`, 1) },
		"price number":    func(s string) string { return strings.Replace(s, `"101.25"`, `101.25`, 1) },
		"qty off lot":     func(s string) string { return strings.Replace(s, `"500"`, `"550"`, 1) },
		"reordered":       func(s string) string { return strings.Replace(s, `"seq":7,"inst":1`, `"inst":1,"seq":7`, 1) },
		"zero written":    func(s string) string { return strings.Replace(s, `"tif":"day"`, `"tif":"day","flags":0`, 1) },
		"missing":         func(s string) string { return strings.Replace(s, `"acct":42,`, ``, 1) },
		"enum as number":  func(s string) string { return strings.Replace(s, `"side":"buy"`, `"side":1`, 1) },
		"unknown name":    func(s string) string { return strings.Replace(s, `"side":"buy"`, `"side":"long"`, 1) },
		"out of range":    func(s string) string { return strings.Replace(s, `"inst":1`, `"inst":4294967296`, 1) },
		"unknown field":   func(s string) string { return strings.Replace(s, `"qty"`, `"bogus"`, 1) },
		"trailing":        func(s string) string { return s + " " },
		"negative uint":   func(s string) string { return strings.Replace(s, `"seq":7`, `"seq":-7`, 1) },
		"escape":          func(s string) string { return strings.Replace(s, `"buy"`, `"b\u0075y"`, 1) },
	} {
		bad := mut(good)
		require.NotEqual(t, good, bad, name)
		_, err := DecodeCommand([]byte(bad), &got, testScales)
		assert.ErrorIs(t, err, ErrLeaf, name)
	}
}

func TestDecimal(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		s    Scale
		want string
	}{
		{0, Scale{TickMant: 1, TickExp: 2}, "0"},
		{1, Scale{TickMant: 1, TickExp: 2}, "0.01"},
		{-1, Scale{TickMant: 1, TickExp: 2}, "-0.01"},
		{10000, Scale{TickMant: 1, TickExp: 2}, "100"},
		{3, Scale{TickMant: 5, TickExp: 2}, "0.15"},
		{math.MaxInt64, Scale{TickMant: 5, TickExp: 2}, "461168601842738790.35"},
		{math.MinInt64, Scale{TickMant: 25, TickExp: 18}, "-230.5843009213693952"},
		{7, Scale{}, "7"},
	} {
		got := string(tc.s.AppendPrice(nil, tc.n))
		assert.Equal(t, tc.want, got)
		back, err := tc.s.ParsePrice([]byte(got))
		require.NoError(t, err, got)
		assert.Equal(t, tc.n, back)
	}
	s, err := ParseScale("0.050", "100")
	require.NoError(t, err)
	assert.Equal(t, Scale{TickMant: 5, TickExp: 2, LotMant: 100}, s)
	assert.Equal(t, "0.05", s.Tick())
	for _, bad := range []string{"", "0", "-1", "1e3", "0.0000000000000000001", "abc"} {
		_, err := ParseScale(bad, "1")
		assert.Error(t, err, bad)
	}
	for _, bad := range []string{"", "-", "-0", "01", "1.", ".5", "1.50", "1.2.3", "0.001", "1e2", "+1"} {
		_, err := (Scale{TickMant: 1, TickExp: 2}).ParsePrice([]byte(bad))
		assert.ErrorIs(t, err, ErrDecimal, bad)
	}
}

func TestCommitAndRetention(t *testing.T) {
	key := make([]byte, 32)
	c1, err := Commit(key, "tax-id", "123-45-6789")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(c1, "hmac-sha256:"))
	assert.NotContains(t, c1, "6789")
	c2, _ := Commit(key, "name", "123-45-6789")
	assert.NotEqual(t, c1, c2, "the domain separates commitments")
	key[0] = 1
	c3, _ := Commit(key, "tax-id", "123-45-6789")
	assert.NotEqual(t, c1, c3, "another key, another commitment")
	_, err = Commit(key[:16], "tax-id", "x")
	assert.ErrorIs(t, err, ErrCommitKey)
	for typ, want := range map[string]int{"cmd.new": 7, "event.executed": 7, "keys.revoked": 7, "aml.alert": 5, "sanctions.screened": 10} {
		_, y := RetentionOf(typ)
		assert.Equal(t, want, y, typ)
	}
}

func FuzzDecodeLeaf(f *testing.F) {
	c := core.Command{Seq: 7, Time: 1, Kind: core.CmdNew, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Instrument: 1, Account: 42, ClOrdID: 9, Price: 10125, Qty: 5}
	f.Add(AppendCommand(nil, 0, &c, testScales))
	e := core.Event{Seq: 7, Time: 5, Kind: core.KindExecuted, Instrument: 2, Price: 3, Qty: 1500}
	f.Add(AppendEvent(nil, 3, &e, testScales))
	f.Add([]byte(`{"i":1,"t":2,"type":"keys.revoked","body":{"a":[1,{"b":"c"}],"d":true}}`))
	f.Add([]byte(`{"i":1,"t":2,"type":"x","body":{"a":1.5}}`))
	f.Fuzz(func(t *testing.T, leaf []byte) {
		var c core.Command
		if _, err := DecodeCommand(leaf, &c, testScales); err == nil {
			again := AppendCommand(nil, mustIndex(leaf), &c, testScales)
			if string(again) != string(leaf) {
				t.Fatalf("accepted a non-canonical command leaf:\n%s\n%s", leaf, again)
			}
		}
		var e core.Event
		if _, err := DecodeEvent(leaf, &e, testScales); err == nil {
			again := AppendEvent(nil, mustIndex(leaf), &e, testScales)
			if string(again) != string(leaf) {
				t.Fatalf("accepted a non-canonical event leaf:\n%s\n%s", leaf, again)
			}
		}
		if h, err := ParseLeaf(leaf); err == nil {
			_ = CheckBody(h.Body)
		}
		_, _ = parseInstruments(leaf)
	})
}

func mustIndex(leaf []byte) uint64 {
	h, _ := ParseLeaf(leaf)
	return h.Index
}
