package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/config"
)

// FuzzParse feeds Parse untrusted bytes (an operator's file). It must never
// panic; an error must be an *Error wrapping ErrInvalid; an accepted file
// must convert to a core.Config the engine accepts and round-trip its bands.
func FuzzParse(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(f, err)
	paths = append(paths, "default.json")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte(`{"instruments":[{"symbol":"A","id":1,"tick_size":"0.000000000000000001","lot_size":"1","price_band":{"low":"9.223372036854775807","high":"9.223372036854775807"}}]}`))
	f.Add([]byte(`{"instruments":[{"price_band":{"low":"1","low":"2"}}]}`))
	f.Add([]byte(`{"engine":{"threading":"shared","pin":false,"engine_idle":"busy-spin"},"instruments":[{"symbol":"A","id":1,"tick_size":0.01}]}`))
	f.Add([]byte(`{"risk":{"minor_unit":"0.01"},"instruments":[{"symbol":"A","id":1,"tick_size":"0.01","lot_size":"1","price_band":{"low":"1","high":"2"},"collar_percent":"1.5","reference_price":"1.50"}],"accounts":[{"id":1,"cash":"1.00","positions":{"A":"-3"},"locates":{"A":"3"},"limits":{"max_order_qty":1,"daily_credit":"2.50"}}]}`))
	f.Add([]byte(`{"instruments":[{"symbol":"A","id":1,"tick_size":"0.01","lot_size":"1","price_band":{"low":"1","high":"2"}}],"accounts":[{"id":1,"positions":{"A":"1","A":"2"}},{"id":16777216}]}`))
	f.Add([]byte(`{"instruments":[{"symbol":"A","id":1,"tick_size":"0.01","lot_size":"1","price_band":{"low":"1","high":"2"}}],"accounts":{"id":1}}`))

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := config.Parse(data)
		if err != nil {
			require.Nil(t, file)
			require.ErrorIs(t, err, config.ErrInvalid)
			var e *config.Error
			require.True(t, errors.As(err, &e))
			return
		}
		cfg := file.Core()
		require.Len(t, cfg.Instruments, len(file.Instruments))
		require.NotEmpty(t, cfg.Instruments)
		for i, c := range cfg.Instruments {
			in := &file.Instruments[i]
			require.Equal(t, in.ID, c.ID)
			require.Equal(t, in.Symbol, c.Symbol)
			require.GreaterOrEqual(t, c.BandLow, int64(1))
			require.LessOrEqual(t, c.BandLow, c.BandHigh)
			require.LessOrEqual(t, c.BandHigh-c.BandLow, int64(config.MaxBandTicks))
			require.True(t, in.TicksToPrice(c.BandLow).Equal(in.BandLow))
			require.True(t, in.TicksToPrice(c.BandHigh).Equal(in.BandHigh))
			got, ok := file.Instrument(c.ID)
			require.True(t, ok)
			require.Same(t, in, got)
			got, ok = file.BySymbol(c.Symbol)
			require.True(t, ok)
			require.Same(t, in, got)
		}
		require.Len(t, cfg.Accounts, len(file.Accounts))
		for i, c := range cfg.Accounts {
			a := &file.Accounts[i]
			require.Equal(t, a.ID, c.ID)
			require.GreaterOrEqual(t, c.Cash, int64(0))
			require.GreaterOrEqual(t, c.Equity, int64(0))
			require.Len(t, c.Positions, len(a.Positions))
			for _, p := range c.Positions {
				_, ok := file.Instrument(p.Instrument)
				require.True(t, ok)
			}
			for _, l := range c.Locates {
				_, ok := file.Instrument(l.Instrument)
				require.True(t, ok)
				require.GreaterOrEqual(t, l.Qty, int64(0))
			}
		}
		if len(cfg.Accounts) > 0 {
			for _, c := range cfg.Instruments {
				require.Positive(t, c.TickValue)
			}
		}
		e := file.Engine
		require.Contains(t, []string{"shared", "dedicated"}, e.Threading)
		require.Contains(t, []string{"busy-spin", "backoff", "yield", "sleep"}, e.EngineIdle)
		require.Contains(t, []string{"busy-spin", "backoff", "yield", "sleep"}, e.OthersIdle)
		for _, c := range e.CPUs {
			require.True(t, e.Pin && c >= 0 && c <= 1023)
		}
		require.True(t, e.InboundRing >= 2 && e.InboundRing&(e.InboundRing-1) == 0)
		require.True(t, e.OutboundRing >= 2 && e.OutboundRing&(e.OutboundRing-1) == 0)
	})
}
