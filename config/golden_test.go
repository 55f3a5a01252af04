package config_test

import (
	"flag"
	"fmt"
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

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files under testdata/")

// TestGolden parses every testdata/*.json and compares the outcome (the
// parsed file and its core.Config, or the error) with testdata/*.golden.
// Review the diff after `go test ./config -run TestGolden -rewrite`.
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, paths)
	for _, path := range paths {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		t.Run(name, func(t *testing.T) {
			got := describe(path)
			golden := strings.TrimSuffix(path, ".json") + ".golden"
			if *rewrite {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -rewrite to create it")
			assert.Equal(t, string(want), got)
			assert.Equal(t, strings.HasPrefix(name, "bad-"), strings.HasPrefix(got, "error: "), "files named bad-* and only those fail")
		})
	}
}

// describe loads path and prints the result in a stable, reviewable form.
func describe(path string) string {
	f, err := config.Load(path)
	if err != nil {
		return "error: " + filepath.ToSlash(err.Error()) + "\n"
	}
	var b strings.Builder
	e := f.Engine
	fmt.Fprintf(&b, "engine: max_orders=%d max_order_qty=%d event_batch=%d threading=%s pin=%t cpus=%v engine_idle=%s others_idle=%s inbound_ring=%d outbound_ring=%d\n",
		e.MaxOrders, e.MaxOrderQty, e.EventBatch, e.Threading, e.Pin, e.CPUs, e.EngineIdle, e.OthersIdle, e.InboundRing, e.OutboundRing)
	cfg := f.Core()
	fmt.Fprintf(&b, "core: MaxOrders=%d MaxOrderQty=%d EventBatch=%d\n", cfg.MaxOrders, cfg.MaxOrderQty, cfg.EventBatch)
	for i, in := range f.Instruments {
		c := cfg.Instruments[i]
		fmt.Fprintf(&b, "instrument %s id=%d tick=%s lot=%s band=[%s, %s] -> core id=%d band=[%d, %d] ticks (%d levels, ~%d KiB)\n",
			in.Symbol, in.ID, in.TickSize, in.LotSize,
			in.BandLow.StringFixed(-in.TickSize.Exponent()), in.BandHigh.StringFixed(-in.TickSize.Exponent()),
			c.ID, c.BandLow, c.BandHigh, c.BandHigh-c.BandLow+1, (c.BandHigh-c.BandLow+1)*config.BandBytesPerTick>>10)
		if !in.TickValue.IsZero() || !in.ReferencePrice.IsZero() || !in.CollarPercent.IsZero() || !in.CollarAbsolute.IsZero() ||
			in.Restricted || in.Threshold || len(f.Accounts) > 0 {
			fmt.Fprintf(&b, "  risk tick_value=%s reference=%s collar=%s%%/%s restricted=%v threshold=%v previous_close=%s short_sale_test=%v -> core TickValue=%d RefPrice=%d CollarBps=%d CollarTicks=%d PrevClose=%d ShortSaleTest=%v\n",
				in.TickValue, in.ReferencePrice, in.CollarPercent, in.CollarAbsolute, in.Restricted, in.Threshold, in.PreviousClose, in.ShortSaleTest,
				c.TickValue, c.RefPrice, c.CollarBps, c.CollarTicks, c.PrevClose, c.ShortSaleTest)
		}
	}
	if f.Risk.Off {
		b.WriteString("risk: off\n")
	}
	if !f.Calendar.TradingDate.IsZero() || len(f.Calendar.Holidays) > 0 {
		fmt.Fprintf(&b, "calendar: -> core %+v\n", cfg.Calendar)
	}
	if len(f.Accounts) > 0 {
		fmt.Fprintf(&b, "risk: minor_unit=%s pdt_min_equity=%s short_margin_percent=%d account_types=%v locate_policy=%d -> core PDTMinEquity=%d ShortMarginPct=%d LocatePolicy=%d\n",
			f.Risk.MinorUnit, f.Risk.PDTMinEquity, f.Risk.ShortMarginPct, f.Risk.AccountTypes, f.Risk.LocatePolicy, cfg.PDTMinEquity, cfg.ShortMarginPct, cfg.LocatePolicy)
	}
	for i, a := range f.Accounts {
		c := cfg.Accounts[i]
		l := a.Limits
		fmt.Fprintf(&b, "account id=%d firm=%d owner=%d stp_group=%d status=%d type=%q cash=%s equity=%s proprietary=%v allow_stp_off=%v pdt=%v positions=%v locates=%v\n",
			a.ID, a.Firm, a.Owner, a.STPGroup, a.Status, a.Type, a.Cash, a.Equity, a.Proprietary, a.AllowSTPOff, a.PDT, a.Positions, a.Locates)
		fmt.Fprintf(&b, "  limits max_order_qty=%d max_order_notional=%s max_position=%d daily_credit=%s orders_per_sec=%d cancels_per_sec=%d duplicate_window_ms=%d\n",
			l.MaxOrderQty, l.MaxOrderNotional, l.MaxPosition, l.DailyCredit, l.OrdersPerSec, l.CancelsPerSec, l.DuplicateWindowMS)
		fmt.Fprintf(&b, "  -> core %+v\n", c)
	}
	if g := f.Gateway; g != config.Default().Gateway {
		fmt.Fprintf(&b, "gateway: %+v\n", g)
	}
	return b.String()
}

// TestDocExample parses the example in docs/config.md, so the page and the
// parser cannot drift apart.
func TestDocExample(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("..", "docs", "config.md"))
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(page), "```json\n")
	require.True(t, ok, "no ```json block in docs/config.md")
	example, _, ok := strings.Cut(rest, "```")
	require.True(t, ok)
	f, err := config.Parse([]byte(example))
	require.NoError(t, err)
	c := f.Core()
	require.Equal(t, "AAPL", c.Instruments[0].Symbol)
	assert.Equal(t, int64(10000), c.Instruments[0].BandLow)
	assert.Equal(t, int64(40000), c.Instruments[0].BandHigh)
	assert.Equal(t, "backoff", f.Engine.OthersIdle)
	brk, ok := f.Instrument(7)
	require.True(t, ok)
	lots, err := brk.QtyToLots(decimal.NewFromInt(300))
	require.NoError(t, err)
	assert.Equal(t, int64(3), lots)
}

// TestDocExamples parses every JSON example in docs/config.md and builds an
// engine from it.
func TestDocExamples(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("..", "docs", "config.md"))
	require.NoError(t, err)
	blocks := strings.Split(string(page), "```json\n")[1:]
	require.GreaterOrEqual(t, len(blocks), 2)
	for i, b := range blocks {
		example, _, ok := strings.Cut(b, "```")
		require.True(t, ok)
		f, err := config.Parse([]byte(example))
		require.NoError(t, err, "example %d", i)
		cfg := f.Core()
		cfg.MaxOrders = 1024
		eng, err := core.New(cfg, nil)
		require.NoError(t, err, "example %d", i)
		for _, a := range f.Accounts {
			_, ok := eng.Account(a.ID)
			require.True(t, ok, "example %d account %d", i, a.ID)
		}
	}
}
