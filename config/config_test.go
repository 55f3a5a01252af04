package config_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/core"
)

// doc returns a valid two-instrument file, changed by the mods.
func doc(t *testing.T, mods ...func(m map[string]any)) []byte {
	t.Helper()
	m := map[string]any{
		"risk":   "off",
		"engine": map[string]any{},
		"instruments": []any{
			map[string]any{"symbol": "AAPL", "id": 1, "tick_size": "0.01", "lot_size": "1",
				"price_band": map[string]any{"low": "1.00", "high": "1000.00"}},
			map[string]any{"symbol": "MSFT", "id": 2, "tick_size": "0.01", "lot_size": "1",
				"price_band": map[string]any{"low": "1.00", "high": "1000.00"}},
		},
	}
	for _, mod := range mods {
		mod(m)
	}
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

func engine(key string, v any) func(map[string]any) {
	return func(m map[string]any) { m["engine"].(map[string]any)[key] = v }
}

func inst(i int, key string, v any) func(map[string]any) {
	return func(m map[string]any) {
		in := m["instruments"].([]any)[i].(map[string]any)
		if v == nil {
			delete(in, key)
		} else {
			in[key] = v
		}
	}
}

func band(i int, key string, v any) func(map[string]any) {
	return func(m map[string]any) {
		b := m["instruments"].([]any)[i].(map[string]any)["price_band"].(map[string]any)
		if v == nil {
			delete(b, key)
		} else {
			b[key] = v
		}
	}
}

func top(key string, v any) func(map[string]any) {
	return func(m map[string]any) {
		if v == nil {
			delete(m, key)
		} else {
			m[key] = v
		}
	}
}

func TestParseInvalid(t *testing.T) {
	raw := func(s string) func(*testing.T) []byte { return func(*testing.T) []byte { return []byte(s) } }
	mods := func(mods ...func(map[string]any)) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return doc(t, mods...) }
	}
	tests := []struct {
		name  string
		data  func(*testing.T) []byte
		field string // the field the error names; "" for the whole file
		msg   string // a fragment of the message: the problem and the fix
	}{
		// The file as a whole.
		{"empty file", raw(" \n"), "", "the file is empty"},
		{"syntax error", raw("{\n  \"instruments\": [,]\n}"), "", "line 2, column 19: invalid character ','"},
		{"trailing data", raw(`{} {}`), "", "line 1, column 4"},
		{"array at top", raw(`[]`), "", "got an array; want an object"},
		{"null at top", raw(`null`), "", "got null; want an object"},
		{"unknown top-level field", mods(top("instrument", []any{})), "", `unknown field "instrument" at the top level; the fields are engine, risk, instruments, accounts`},
		{"duplicate top-level key", raw(`{"instruments": [], "instruments": []}`), "", `the key "instruments" appears twice`},
		{"duplicate instrument key", raw(`{"instruments": [{"symbol": "A", "tick_size": "0.01", "tick_size": "0.05"}]}`), "instruments[0]", `the key "tick_size" appears twice`},
		{"duplicate band key", raw(`{"instruments": [{"price_band": {"low": "1", "low": "2"}}]}`), "instruments[0].price_band", `the key "low" appears twice`},

		// engine
		{"engine not an object", mods(top("engine", 5)), "engine", "got a number; want an object"},
		{"engine unknown field", mods(engine("max_order", 1)), "engine", `unknown field "max_order"; the fields are max_orders,`},
		{"max_orders negative", mods(engine("max_orders", -1)), "engine.max_orders", "-1 is out of range; set 1 to 1073741824"},
		{"max_orders too large", mods(engine("max_orders", 1<<30+1)), "engine.max_orders", "out of range"},
		{"max_orders fraction", mods(engine("max_orders", 1.5)), "engine.max_orders", "want a whole number"},
		{"max_orders exponent", raw(`{"engine": {"max_orders": 1e6}, "instruments": []}`), "engine.max_orders", "want a whole number without a fraction or exponent"},
		{"max_orders string", mods(engine("max_orders", "1024")), "engine.max_orders", "write the integer without quotes"},
		{"max_orders bool", mods(engine("max_orders", true)), "engine.max_orders", "got a boolean; want an integer"},
		{"max_orders beyond int64", raw(`{"engine": {"max_orders": 99999999999999999999}, "instruments": []}`), "engine.max_orders", "out of range"},
		{"max_order_qty too large", mods(engine("max_order_qty", int64(1)<<53+1)), "engine.max_order_qty", "set 1 to 9007199254740992"},
		{"event_batch too small", mods(engine("event_batch", 8)), "engine.event_batch", "set 16 to 1048576"},
		{"cpus negative", mods(engine("cpus", []any{-1})), "engine.cpus[0]", "from 0 to 1023"},
		{"cpus too large", mods(engine("cpus", []any{1, 1024})), "engine.cpus[1]", "from 0 to 1023"},
		{"cpus twice", mods(engine("cpus", []any{1, 1})), "engine.cpus[1]", "listed twice"},
		{"cpus not a list", mods(engine("cpus", 1)), "engine.cpus", "write a list of CPU numbers"},
		{"cpus without pin", mods(engine("pin", false), engine("cpus", []any{1})), "engine.cpus", "engine.pin is false"},
		{"pin not a bool", mods(engine("pin", "yes")), "engine.pin", "want true or false"},
		{"threading unknown", mods(engine("threading", "single")), "engine.threading", `"single" is not a threading mode`},
		{"engine idle unknown", mods(engine("engine_idle", "spin")), "engine.engine_idle", `"spin" is not an idle strategy; use "busy-spin"`},
		{"others idle number", mods(engine("others_idle", 1)), "engine.others_idle", "got a number; want a string"},
		{"old wait field", mods(engine("wait", "park")), "engine", `unknown field "wait"`},
		{"audit durability unknown", mods(top("audit", map[string]any{"durability": "sync"})), "audit.durability", `"sync" is not a durability level`},
		{"audit unknown field", mods(top("audit", map[string]any{"dir": "/x"})), "audit", `unknown field "dir"`},
		{"netseg required not bool", mods(top("netseg", map[string]any{"required": "no"})), "netseg.required", "want true or false"},
		{"netseg policy not string", mods(top("netseg", map[string]any{"policy": 3})), "netseg.policy", "want a string"},
		{"inbound_ring not a power of two", mods(engine("inbound_ring", 1000)), "engine.inbound_ring", "not a power of two from 2 to 1073741824 (2^30); round it up to one, such as 1024"},
		{"inbound_ring one", mods(engine("inbound_ring", 1)), "engine.inbound_ring", "not a power of two"},
		{"inbound_ring negative", mods(engine("inbound_ring", -4)), "engine.inbound_ring", "not a power of two"},
		{"outbound_ring too large", mods(engine("outbound_ring", 1<<31)), "engine.outbound_ring", "not a power of two from 2 to 1073741824"},

		// instruments
		{"instruments missing", mods(top("instruments", nil)), "instruments", "missing; configure at least one instrument"},
		{"instruments null", raw(`{"instruments": null}`), "instruments", "missing"},
		{"instruments empty", mods(top("instruments", []any{})), "instruments", "empty; configure at least one instrument"},
		{"instruments object", mods(top("instruments", map[string]any{})), "instruments", "got an object; want an array"},
		{"instrument not an object", raw(`{"instruments": ["AAPL"]}`), "instruments[0]", "got a string; want an object with the fields symbol, id,"},
		{"instrument null", raw(`{"instruments": [null]}`), "instruments[0]", "got null; want an object"},
		{"instrument unknown field", mods(inst(1, "tick", "0.01")), "instruments[1]", `unknown field "tick"; the fields are symbol, id, tick_size, lot_size, price_band`},

		{"symbol missing", mods(inst(0, "symbol", nil)), "instruments[0].symbol", `missing; set the ticker, such as "AAPL"`},
		{"symbol empty", mods(inst(0, "symbol", "")), "instruments[0].symbol", "missing"},
		{"symbol lower case", mods(inst(0, "symbol", "aapl")), "instruments[0].symbol", `"aapl" is not a symbol; use 1 to 16 characters of A-Z, 0-9, '.' and '-'`},
		{"symbol too long", mods(inst(0, "symbol", "ABCDEFGHIJKLMNOPQ")), "instruments[0].symbol", "is not a symbol"},
		{"symbol with space", mods(inst(0, "symbol", "BRK B")), "instruments[0].symbol", "is not a symbol"},
		{"symbol with non-ASCII", mods(inst(0, "symbol", "ÄPPL")), "instruments[0].symbol", "is not a symbol"},
		{"symbol number", mods(inst(0, "symbol", 7)), "instruments[0].symbol", "got a number; want a string"},
		{"symbol duplicate", mods(inst(1, "symbol", "AAPL")), "instruments[1].symbol", `"AAPL" is also the symbol of instruments[0]`},

		{"id missing", mods(inst(1, "id", nil)), "instruments[1].id", "missing; set a number from 1 to 65535"},
		{"id zero", mods(inst(1, "id", 0)), "instruments[1].id", "0 is out of range; use 1 to 65535"},
		{"id too large", mods(inst(1, "id", 65536)), "instruments[1].id", "65536 is out of range"},
		{"id negative", mods(inst(1, "id", -1)), "instruments[1].id", "out of range"},
		{"id string", mods(inst(1, "id", "2")), "instruments[1].id", "write the integer without quotes"},
		{"id fraction", mods(inst(1, "id", 2.5)), "instruments[1].id", "want a whole number"},
		{"id duplicate", mods(inst(1, "id", 1)), "instruments[1].id", "1 is also the id of instruments[0]; give each instrument its own id"},

		{"tick_size missing", mods(inst(0, "tick_size", nil)), "instruments[0].tick_size", `missing; set the price increment as a decimal string, such as "0.01"`},
		{"tick_size zero", mods(inst(0, "tick_size", "0")), "instruments[0].tick_size", "0 is not positive; set the price increment above zero"},
		{"tick_size zero with places", mods(inst(0, "tick_size", "0.00")), "instruments[0].tick_size", "0.00 is not positive"},
		{"tick_size negative", mods(inst(0, "tick_size", "-0.01")), "instruments[0].tick_size", "-0.01 is not positive"},
		{"tick_size JSON number", mods(inst(0, "tick_size", 0.01)), "instruments[0].tick_size", `got the JSON number 0.01; quote it as a string ("0.01")`},
		{"tick_size JSON integer", mods(inst(0, "tick_size", 1)), "instruments[0].tick_size", "quote it as a string"},
		{"tick_size exponent", mods(inst(0, "tick_size", "1e-2")), "instruments[0].tick_size", `"1e-2" is not a plain decimal`},
		{"tick_size plus sign", mods(inst(0, "tick_size", "+0.01")), "instruments[0].tick_size", "is not a plain decimal"},
		{"tick_size no leading digit", mods(inst(0, "tick_size", ".01")), "instruments[0].tick_size", "is not a plain decimal"},
		{"tick_size trailing dot", mods(inst(0, "tick_size", "1.")), "instruments[0].tick_size", "is not a plain decimal"},
		{"tick_size spaces", mods(inst(0, "tick_size", " 0.01")), "instruments[0].tick_size", "is not a plain decimal"},
		{"tick_size text", mods(inst(0, "tick_size", "one cent")), "instruments[0].tick_size", "is not a plain decimal"},
		{"tick_size too long", mods(inst(0, "tick_size", "0."+strings.Repeat("0", 40)+"1")), "instruments[0].tick_size", "at most 38 characters"},
		{"tick_size object", mods(inst(0, "tick_size", map[string]any{})), "instruments[0].tick_size", `got an object; want a decimal string such as "0.01"`},

		{"lot_size missing", mods(inst(0, "lot_size", nil)), "instruments[0].lot_size", "missing; set the number of shares per lot"},
		{"lot_size zero", mods(inst(0, "lot_size", "0")), "instruments[0].lot_size", "0 is not positive"},
		{"lot_size negative", mods(inst(0, "lot_size", "-100")), "instruments[0].lot_size", "-100 is not positive"},
		{"lot_size JSON number", mods(inst(0, "lot_size", 100)), "instruments[0].lot_size", "got the JSON number 100; quote it"},

		{"price_band missing", mods(inst(0, "price_band", nil)), "instruments[0].price_band", "missing; set the lowest and highest price"},
		{"price_band array", mods(inst(0, "price_band", []any{"1", "2"})), "instruments[0].price_band", "got an array; want an object with the fields low, high"},
		{"price_band unknown field", mods(band(0, "mid", "5")), "instruments[0].price_band", `unknown field "mid"; the fields are low, high`},
		{"low missing", mods(band(0, "low", nil)), "instruments[0].price_band.low", "missing; set the low end of the band"},
		{"high missing", mods(band(0, "high", nil)), "instruments[0].price_band.high", "missing; set the high end"},
		{"low zero", mods(band(0, "low", "0.00")), "instruments[0].price_band.low", "0.00 is not positive; set a price of at least one tick (0.01)"},
		{"low negative", mods(band(0, "low", "-1.00")), "instruments[0].price_band.low", "-1.00 is not positive"},
		{"low JSON number", mods(band(0, "low", 1.0)), "instruments[0].price_band.low", "quote it as a string"},
		{"high JSON number", mods(band(1, "high", 1000)), "instruments[1].price_band.high", `got the JSON number 1000; quote it as a string ("1000")`},
		{"low not a multiple of the tick", mods(inst(0, "tick_size", "0.05"), band(0, "low", "1.02")), "instruments[0].price_band.low", "1.02 is not a multiple of the tick size 0.05; use 1.00 or 1.05"},
		{"high not a multiple of the tick", mods(band(0, "high", "1000.005")), "instruments[0].price_band.high", "1000.005 is not a multiple of the tick size 0.01; use 1000.00 or 1000.01"},
		{"high below low", mods(band(0, "low", "10.00"), band(0, "high", "9.99")), "instruments[0].price_band.high", "9.99 is below low 10.00; set high >= low"},
		// 0.01 .. 167772.16 is 16777215 ticks wide, the limit (see TestParseValid); one more tick fails.
		{"band one tick too wide", mods(band(1, "low", "0.01"), band(1, "high", "167772.17")), "instruments[1].price_band",
			"spans 16777216 ticks of 0.01 (high - low); narrow it to at most 16777215 ticks (the engine preallocates about 97 bytes per tick"},
		{"band ticks beyond int64", mods(inst(0, "tick_size", "0.000000000000000001"), band(0, "low", "1"), band(0, "high", "100")), "instruments[0].price_band.high",
			"too many ticks of 0.000000000000000001 for an int64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse(tc.data(t))
			require.Error(t, err)
			assert.Nil(t, f)
			require.ErrorIs(t, err, config.ErrInvalid)
			var e *config.Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tc.field, e.Field)
			assert.Empty(t, e.File)
			assert.Contains(t, err.Error(), tc.msg)
			if tc.field != "" {
				assert.True(t, strings.HasPrefix(err.Error(), "config: "+tc.field+": "), "%q", err.Error())
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		mods  []func(map[string]any)
		check func(t *testing.T, f *config.File)
	}{
		{"engine defaults", nil, func(t *testing.T, f *config.File) {
			assert.Equal(t, config.Engine{Threading: "shared", Pin: true, EngineIdle: "busy-spin", OthersIdle: "backoff", InboundRing: 1 << 14, OutboundRing: 1 << 15}, f.Engine)
		}},
		{"engine left out", []func(map[string]any){top("engine", nil)}, func(t *testing.T, f *config.File) {
			assert.Equal(t, config.Engine{Threading: "shared", Pin: true, EngineIdle: "busy-spin", OthersIdle: "backoff", InboundRing: 1 << 14, OutboundRing: 1 << 15}, f.Engine)
		}},
		{"engine null", []func(map[string]any){func(m map[string]any) { m["engine"] = nil }}, func(t *testing.T, f *config.File) {
			assert.True(t, f.Engine.Pin)
		}},
		{"engine zeros and empty strings mean defaults", []func(map[string]any){
			engine("max_orders", 0), engine("max_order_qty", 0), engine("event_batch", 0), engine("threading", ""),
			engine("engine_idle", ""), engine("others_idle", ""), engine("inbound_ring", 0), engine("outbound_ring", 0),
		}, func(t *testing.T, f *config.File) {
			assert.Equal(t, config.Engine{Threading: "shared", Pin: true, EngineIdle: "busy-spin", OthersIdle: "backoff", InboundRing: 1 << 14, OutboundRing: 1 << 15}, f.Engine)
		}},
		{"engine set", []func(map[string]any){
			engine("max_orders", 1<<30), engine("max_order_qty", int64(1)<<53), engine("event_batch", 16), engine("cpus", []any{3, 0}),
			engine("threading", "dedicated"), engine("engine_idle", "yield"), engine("others_idle", "sleep"), engine("inbound_ring", 2), engine("outbound_ring", 1<<30),
		}, func(t *testing.T, f *config.File) {
			assert.Equal(t, config.Engine{MaxOrders: 1 << 30, MaxOrderQty: 1 << 53, EventBatch: 16, Threading: "dedicated", Pin: true, CPUs: []int{3, 0},
				EngineIdle: "yield", OthersIdle: "sleep", InboundRing: 2, OutboundRing: 1 << 30}, f.Engine)
			cfg := f.Core()
			assert.Equal(t, 1<<30, cfg.MaxOrders)
			assert.Equal(t, int64(1)<<53, cfg.MaxOrderQty)
			assert.Equal(t, 16, cfg.EventBatch)
		}},
		{"pin off", []func(map[string]any){engine("pin", false)}, func(t *testing.T, f *config.File) {
			assert.False(t, f.Engine.Pin)
		}},
		{"services default", nil, func(t *testing.T, f *config.File) {
			assert.Equal(t, config.Audit{Durability: "write"}, f.Audit)
			assert.Equal(t, config.Netseg{Required: true}, f.Netseg, "segmentation is required unless a file says otherwise")
		}},
		{"services set", []func(map[string]any){top("audit", map[string]any{"durability": "fsync"}), top("netseg", map[string]any{"policy": "/etc/p.yaml", "required": false})}, func(t *testing.T, f *config.File) {
			assert.Equal(t, config.Audit{Durability: "fsync"}, f.Audit)
			assert.Equal(t, config.Netseg{Policy: "/etc/p.yaml"}, f.Netseg)
		}},
		{"symbols with dot, dash and digits, 16 characters", []func(map[string]any){inst(0, "symbol", "BRK.B"), inst(1, "symbol", "ABCDEFGH-1234.XY")}, func(t *testing.T, f *config.File) {
			assert.Equal(t, "BRK.B", f.Instruments[0].Symbol)
			assert.Equal(t, "ABCDEFGH-1234.XY", f.Instruments[1].Symbol)
		}},
		{"id 65535", []func(map[string]any){inst(1, "id", 65535)}, func(t *testing.T, f *config.File) {
			assert.Equal(t, uint32(65535), f.Core().Instruments[1].ID)
		}},
		{"band of one tick", []func(map[string]any){band(0, "low", "5.00"), band(0, "high", "5.00")}, func(t *testing.T, f *config.File) {
			in := f.Core().Instruments[0]
			assert.Equal(t, int64(500), in.BandLow)
			assert.Equal(t, int64(500), in.BandHigh)
		}},
		{"band at the width limit", []func(map[string]any){band(1, "low", "0.01"), band(1, "high", "167772.16")}, func(t *testing.T, f *config.File) {
			in := f.Core().Instruments[1]
			assert.Equal(t, int64(config.MaxBandTicks), in.BandHigh-in.BandLow)
		}},
		{"fractional lot and fine tick", []func(map[string]any){inst(0, "tick_size", "0.0001"), inst(0, "lot_size", "0.001"), band(0, "low", "0.0001"), band(0, "high", "1.5")}, func(t *testing.T, f *config.File) {
			in := f.Core().Instruments[0]
			assert.Equal(t, core.Instrument{ID: 1, Symbol: "AAPL", BandLow: 1, BandHigh: 15000}, in)
			assert.True(t, f.Instruments[0].LotSize.Equal(decimal.RequireFromString("0.001")))
		}},
		{"coarse tick", []func(map[string]any){inst(0, "tick_size", "5"), band(0, "low", "5"), band(0, "high", "1000")}, func(t *testing.T, f *config.File) {
			in := f.Core().Instruments[0]
			assert.Equal(t, int64(1), in.BandLow)
			assert.Equal(t, int64(200), in.BandHigh)
		}},
		{"band with extra places", []func(map[string]any){band(0, "low", "1.000000"), band(0, "high", "2.5")}, func(t *testing.T, f *config.File) {
			in := f.Core().Instruments[0]
			assert.Equal(t, int64(100), in.BandLow)
			assert.Equal(t, int64(250), in.BandHigh)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := config.Parse(doc(t, tc.mods...))
			require.NoError(t, err)
			tc.check(t, f)
		})
	}
}

func TestParseWhitespace(t *testing.T) {
	f, err := config.Parse(append(append([]byte("\n\t \r\n"), doc(t)...), "\n\n"...))
	require.NoError(t, err)
	assert.Len(t, f.Instruments, 2)
}

func TestParseUnicodeMinus(t *testing.T) {
	// decimal.NewFromString accepts U+2212 as a minus sign; the file format
	// does not.
	_, err := config.Parse(doc(t, inst(0, "tick_size", "\u22120.01")))
	require.ErrorIs(t, err, config.ErrInvalid)
	assert.Contains(t, err.Error(), "is not a plain decimal")
}

func TestDefault(t *testing.T) {
	f := config.Default()
	require.NotNil(t, f)
	require.NotSame(t, f, config.Default(), "each call returns a new File")

	// The embedded file is the one on disk, and it parses.
	data, err := os.ReadFile("default.json")
	require.NoError(t, err)
	g, err := config.Parse(data)
	require.NoError(t, err)
	assert.Equal(t, g.Engine, f.Engine)
	assert.Equal(t, g.Core(), f.Core())

	require.GreaterOrEqual(t, len(f.Instruments), 4)
	require.LessOrEqual(t, len(f.Instruments), 6)
	cfg := f.Core()
	require.Len(t, cfg.Instruments, len(f.Instruments))
	aapl, ok := f.BySymbol("AAPL")
	require.True(t, ok)
	assert.Equal(t, "100", aapl.BandLow.String())
	assert.Equal(t, "400", aapl.BandHigh.String())

	// Memory budget: modest bands, and the whole engine in a few hundred MB.
	const bytesPerOrder = 120
	maxOrders := cmpOr(f.Engine.MaxOrders, 1<<20)
	total := int64(maxOrders) * bytesPerOrder
	for i, in := range cfg.Instruments {
		t.Run(in.Symbol, func(t *testing.T) {
			src := f.Instruments[i]
			assert.Equal(t, "0.01", src.TickSize.String())
			assert.Equal(t, "1", src.LotSize.String())
			assert.Equal(t, src.ID, in.ID)
			assert.GreaterOrEqual(t, in.BandLow, int64(1))
			assert.LessOrEqual(t, in.BandHigh-in.BandLow+1, int64(100_000), "band ticks")
			p, err := src.PriceToTicks(src.BandHigh)
			require.NoError(t, err)
			assert.Equal(t, in.BandHigh, p)
		})
		total += (in.BandHigh - in.BandLow + 1) * config.BandBytesPerTick
	}
	assert.Less(t, total, int64(300<<20), "estimated engine memory")
	t.Logf("default config: estimated engine memory %d MiB", total>>20)

	// core accepts it (with fewer order slots, to keep the test small).
	cfg.MaxOrders = 1024
	eng, err := core.New(cfg, nil)
	require.NoError(t, err)
	require.NotNil(t, eng)
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func TestLoad(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.json")
		f, err := config.Load(path)
		assert.Nil(t, f)
		require.ErrorIs(t, err, fs.ErrNotExist)
		assert.NotErrorIs(t, err, config.ErrInvalid)
		var pe *fs.PathError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, path, pe.Path)
		assert.True(t, strings.HasPrefix(err.Error(), "config: open "), err.Error())
	})
	t.Run("a folder", func(t *testing.T) {
		_, err := config.Load(t.TempDir())
		require.Error(t, err)
		assert.NotErrorIs(t, err, config.ErrInvalid)
	})
	t.Run("invalid file names the file and the field", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "tradecore.json")
		require.NoError(t, os.WriteFile(path, doc(t, inst(1, "tick_size", 0.01)), 0o600))
		_, err := config.Load(path)
		require.ErrorIs(t, err, config.ErrInvalid)
		var e *config.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, path, e.File)
		assert.Equal(t, "instruments[1].tick_size", e.Field)
		assert.Equal(t, "config: "+path+`: instruments[1].tick_size: got the JSON number 0.01; quote it as a string ("0.01") so that no float rounds it`, err.Error())
	})
	t.Run("valid file", func(t *testing.T) {
		f, err := config.Load(filepath.Join("testdata", "full.json"))
		require.NoError(t, err)
		assert.Len(t, f.Instruments, 3)
	})
}

func TestLookup(t *testing.T) {
	f, err := config.Parse(doc(t))
	require.NoError(t, err)

	in, ok := f.Instrument(2)
	require.True(t, ok)
	assert.Equal(t, "MSFT", in.Symbol)
	assert.Same(t, &f.Instruments[1], in)
	in, ok = f.BySymbol("AAPL")
	require.True(t, ok)
	assert.Equal(t, uint32(1), in.ID)

	for _, id := range []uint32{0, 3, 65535} {
		_, ok = f.Instrument(id)
		assert.False(t, ok, "id %d", id)
	}
	for _, sym := range []string{"", "aapl", "TSLA"} {
		_, ok = f.BySymbol(sym)
		assert.False(t, ok, "symbol %q", sym)
	}

	t.Run("after the instruments changed", func(t *testing.T) {
		f.Instruments[0], f.Instruments[1] = f.Instruments[1], f.Instruments[0]
		in, ok := f.BySymbol("AAPL")
		require.True(t, ok)
		assert.Same(t, &f.Instruments[1], in)
		in, ok = f.Instrument(2)
		require.True(t, ok)
		assert.Same(t, &f.Instruments[0], in)
	})
	t.Run("built by hand", func(t *testing.T) {
		h := &config.File{Instruments: []config.Instrument{{Symbol: "X", ID: 9}}}
		in, ok := h.Instrument(9)
		require.True(t, ok)
		assert.Equal(t, "X", in.Symbol)
		_, ok = h.BySymbol("X")
		assert.True(t, ok)
		var empty config.File
		_, ok = empty.Instrument(1)
		assert.False(t, ok)
	})
}

func TestCoreHandBuilt(t *testing.T) {
	// A band that is not a whole number of ticks becomes [0, 0], which
	// core.New rejects instead of trading on a wrong band.
	f := &config.File{Instruments: []config.Instrument{{
		Symbol: "X", ID: 1, TickSize: decimal.RequireFromString("0.05"), LotSize: decimal.NewFromInt(1),
		BandLow: decimal.RequireFromString("1.02"), BandHigh: decimal.RequireFromString("2.00"),
	}}}
	cfg := f.Core()
	assert.Equal(t, core.Instrument{ID: 1, Symbol: "X"}, cfg.Instruments[0])
	cfg.MaxOrders = 16
	_, err := core.New(cfg, nil)
	require.ErrorIs(t, err, core.ErrConfig)
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  config.Error
		want string
	}{
		{"field", config.Error{Field: "engine.cpu", Msg: "bad"}, "config: engine.cpu: bad"},
		{"file and field", config.Error{File: "a.json", Field: "instruments", Msg: "bad"}, "config: a.json: instruments: bad"},
		{"whole file", config.Error{File: "a.json", Msg: "bad"}, "config: a.json: bad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.err.Error())
			assert.True(t, errors.Is(&tc.err, config.ErrInvalid))
		})
	}
}

// TestAccountsCore: the accounts of testdata/accounts.json build an engine
// whose risk state holds the file's money in minor units and holdings in
// lots; the default file has no accounts (risk layer off).
func TestAccountsCore(t *testing.T) {
	f, err := config.Load(filepath.Join("testdata", "accounts.json"))
	require.NoError(t, err)
	cfg := f.Core()
	cfg.MaxOrders = 1024
	eng, err := core.New(cfg, nil)
	require.NoError(t, err)
	st, ok := eng.Account(1001)
	require.True(t, ok)
	assert.Equal(t, int64(10_000_000), st.Cash)
	assert.Equal(t, []int64{-20, 3, 0}, st.Positions)
	assert.Equal(t, []int64{500, 0, 0}, st.Locates)
	assert.True(t, st.PDT, "equity 24999.99 is below the file's pdt_min_equity 30000")
	assert.Equal(t, int64(3_000_000), cfg.PDTMinEquity)
	st, ok = eng.Account(2002)
	require.True(t, ok)
	assert.Equal(t, core.AccountSuspended, st.Status)

	def := config.Default().Core()
	assert.NotEmpty(t, def.Accounts, "the default runs with the risk layer on")
	assert.Equal(t, int64(2_500_000), def.PDTMinEquity, "default $25,000 in cents")
}

// TestDefaultFailsClosed: the embedded default (what make run and serve use)
// runs with the pre-trade risk layer on: an order from an account it does not
// know, or of a billion lots, is rejected, and the market halt and the kill
// switch work. Running without risk takes an explicit "risk": "off".
func TestDefaultFailsClosed(t *testing.T) {
	f := config.Default()
	require.False(t, f.Risk.Off)
	cfg := f.Core()
	require.NotEmpty(t, cfg.Accounts, "the default ships demo accounts")
	var evs []core.Event
	eng, err := core.New(cfg, func(b []core.Event) { evs = append(evs, b...) })
	require.NoError(t, err)
	apply := func(c core.Command) core.Event {
		evs = evs[:0]
		eng.Apply(&c)
		eng.Flush()
		require.NotEmpty(t, evs)
		return evs[len(evs)-1]
	}
	big := core.Command{Kind: core.CmdNew, Instrument: 1, Account: 999_999, ClOrdID: 1, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 25000, Qty: 1_000_000_000}
	ev := apply(big)
	assert.Equal(t, core.RejectUnknownAccount, ev.Reason, "%v", ev)
	big.Account = cfg.Accounts[0].ID
	ev = apply(big)
	assert.Equal(t, core.KindRejected, ev.Kind, "%v", ev)
	assert.GreaterOrEqual(t, int(ev.Reason), 400, "a risk reject: %v", ev)
	for _, c := range []core.Command{
		{Kind: core.CmdMarketHalt, Operator: 7, Cause: core.CauseOperator},
		{Kind: core.CmdMarketResume, Operator: 7, Cause: core.CauseOperator},
		{Kind: core.CmdKill, Account: cfg.Accounts[0].ID, Operator: 7, Cause: core.CauseOperator},
	} {
		ev = apply(c)
		assert.NotEqual(t, core.KindRejected, ev.Kind, "%v", ev)
	}

	// Without accounts a file must say "risk": "off".
	_, err = config.Parse(doc(t, top("risk", nil)))
	require.ErrorIs(t, err, config.ErrInvalid)
	require.ErrorContains(t, err, `"risk": "off"`)
	off, err := config.Parse(doc(t))
	require.NoError(t, err)
	assert.True(t, off.Risk.Off)
	assert.Empty(t, off.Core().Accounts)
	_, err = config.Parse(doc(t, top("accounts", []any{map[string]any{"id": 1}})))
	require.ErrorIs(t, err, config.ErrInvalid, "risk off with accounts is a contradiction")
	_, err = config.Parse(doc(t, top("risk", "on")))
	require.ErrorIs(t, err, config.ErrInvalid)
}
