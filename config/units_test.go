package config_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/config"
)

func instrument(tick, lot string) *config.Instrument {
	return &config.Instrument{Symbol: "TEST", ID: 1, TickSize: decimal.RequireFromString(tick), LotSize: decimal.RequireFromString(lot)}
}

func TestPriceToTicks(t *testing.T) {
	tests := []struct {
		tick, price string
		ticks       int64
		err         string // fragment of the error; "" for none
	}{
		{"0.01", "0", 0, ""},
		{"0.01", "0.00", 0, ""},
		{"0.01", "0.01", 1, ""},
		{"0.01", "1", 100, ""},
		{"0.01", "1.000000", 100, ""},
		{"0.01", "999.99", 99999, ""},
		{"0.01", "1000.00", 100000, ""},
		{"0.01", "-0.01", -1, ""},
		{"0.01", "-999.99", -99999, ""},
		{"0.01", "999.999", 0, "price 999.999 is not a multiple of the tick size 0.01 of TEST; use 999.99 or 1000.00"},
		{"0.01", "0.001", 0, "price 0.001 is not a multiple of the tick size 0.01 of TEST; use 0.00 or 0.01"},
		{"0.01", "-0.005", 0, "use -0.01 or 0.00"},
		{"0.01", "92233720368547758.07", math.MaxInt64, ""},
		{"0.01", "-92233720368547758.08", math.MinInt64, ""},
		{"0.01", "92233720368547758.08", 0, "price 92233720368547758.08 is too large a count of the tick size 0.01 of TEST for an int64"},
		{"0.01", "-92233720368547758.09", 0, "too large a count"},
		{"0.01", "1000000000000000000000000000000", 0, "too large a count"},
		{"0.0001", "0.0001", 1, ""},
		{"0.0001", "1.2345", 12345, ""},
		{"0.0001", "99999.9999", 999999999, ""},
		{"0.0001", "1.23456", 0, "price 1.23456 is not a multiple of the tick size 0.0001 of TEST; use 1.2345 or 1.2346"},
		{"0.05", "1.05", 21, ""},
		{"0.05", "1.00", 20, ""},
		{"0.05", "1.02", 0, "price 1.02 is not a multiple of the tick size 0.05 of TEST; use 1.00 or 1.05"},
		{"0.05", "-1.02", 0, "use -1.05 or -1.00"},
		{"0.25", "10.75", 43, ""},
		{"0.25", "10.8", 0, "tick size 0.25"},
		{"1", "5", 5, ""},
		{"1", "5.0", 5, ""},
		{"1", "5.5", 0, "use 5 or 6"},
		{"5", "10", 2, ""},
		{"5", "12", 0, "price 12 is not a multiple of the tick size 5 of TEST; use 10 or 15"},
		{"0.000000001", "123.456789012", 123456789012, ""},
		{"0.000000000000000001", "9.223372036854775807", math.MaxInt64, ""},
		{"0.000000000000000001", "9.223372036854775808", 0, "too large a count"},
		{"123456789012345678901234", "246913578024691357802468", 2, ""},
		{"123456789012345678901234", "1", 0, "use 0 or 123456789012345678901234"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s_at_tick_%s", tc.price, tc.tick), func(t *testing.T) {
			in := instrument(tc.tick, "1")
			n, err := in.PriceToTicks(decimal.RequireFromString(tc.price))
			if tc.err != "" {
				require.ErrorIs(t, err, config.ErrUnits)
				assert.NotErrorIs(t, err, config.ErrInvalid)
				assert.Contains(t, err.Error(), tc.err)
				assert.Contains(t, err.Error(), "tick size "+tc.tick)
				assert.Zero(t, n)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.ticks, n)
			back := in.TicksToPrice(n)
			assert.True(t, back.Equal(decimal.RequireFromString(tc.price)), "TicksToPrice(%d) = %s", n, back)
			assert.Equal(t, in.TickSize.Exponent(), back.Exponent())
		})
	}
}

func TestPriceToTicksExtremeExponents(t *testing.T) {
	// Values whose exponents are far from the tick's fail fast, without
	// building a power of ten with a billion digits.
	in := instrument("0.01", "1")
	tests := []struct {
		name  string
		price decimal.Decimal
		err   string
	}{
		{"huge", decimal.New(1, 1_000_000_000), "too large a count"},
		{"huge negative", decimal.New(-7, 2_000_000_000), "too large a count"},
		{"tiny", decimal.New(1, -1_000_000_000), "not a multiple of the tick size 0.01"},
		{"tiny negative", decimal.New(-1, -2_000_000_000), "not a multiple"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := in.PriceToTicks(tc.price)
			require.ErrorIs(t, err, config.ErrUnits)
			assert.Contains(t, err.Error(), tc.err)
			assert.Less(t, len(err.Error()), 300)
		})
	}
	n, err := in.PriceToTicks(decimal.New(0, 2_000_000_000))
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestUnitsUnconfigured(t *testing.T) {
	var in config.Instrument // zero tick and lot sizes: no panic, an error
	_, err := in.PriceToTicks(decimal.NewFromInt(1))
	require.ErrorIs(t, err, config.ErrUnits)
	assert.Contains(t, err.Error(), "the tick size is 0; configure a positive tick size")
	_, err = in.QtyToLots(decimal.NewFromInt(1))
	require.ErrorIs(t, err, config.ErrUnits)
	assert.Contains(t, err.Error(), "lot size")
	assert.True(t, in.TicksToPrice(5).IsZero())
	assert.True(t, in.LotsToQty(5).IsZero())
}

func TestQtyToLots(t *testing.T) {
	tests := []struct {
		lot, qty string
		lots     int64
		err      string
	}{
		{"1", "0", 0, ""},
		{"1", "1", 1, ""},
		{"1", "100", 100, ""},
		{"1", "1000000000", 1_000_000_000, ""},
		{"1", "1.5", 0, "quantity 1.5 is not a multiple of the lot size 1 of TEST; use 1 or 2"},
		{"1", "0.5", 0, "use 0 or 1"},
		{"100", "300", 3, ""},
		{"100", "150", 0, "quantity 150 is not a multiple of the lot size 100 of TEST; use 100 or 200"},
		{"0.001", "1.234", 1234, ""},
		{"0.001", "0.001", 1, ""},
		{"0.001", "1.2345", 0, "use 1.234 or 1.235"},
		{"0.5", "2.5", 5, ""},
		{"1", "9223372036854775807", math.MaxInt64, ""},
		{"1", "9223372036854775808", 0, "quantity 9223372036854775808 is too large a count of the lot size 1 of TEST for an int64"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s_at_lot_%s", tc.qty, tc.lot), func(t *testing.T) {
			in := instrument("0.01", tc.lot)
			n, err := in.QtyToLots(decimal.RequireFromString(tc.qty))
			if tc.err != "" {
				require.ErrorIs(t, err, config.ErrUnits)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.lots, n)
			assert.True(t, in.LotsToQty(n).Equal(decimal.RequireFromString(tc.qty)))
		})
	}
}

var unitSizes = []string{"0.01", "0.0001", "0.05", "0.25", "1", "5", "100", "0.001", "0.000000001",
	"0.000000000000000001", "123456789.123456789", "123456789012345678901234", "1.5"}

func TestTicksRoundTrip(t *testing.T) {
	edges := []int64{0, 1, -1, 2, 99, 100, 99999, 1 << 24, 1<<31 - 1, 1 << 53, math.MaxInt64, math.MinInt64,
		math.MaxInt64 - 1, math.MinInt64 + 1, 999_999_999_999_999_999, 1_000_000_000_000_000_000}
	for _, size := range unitSizes {
		t.Run("size_"+size, func(t *testing.T) {
			in := instrument(size, size)
			r := rand.New(rand.NewPCG(1, uint64(len(size))))
			ns := append([]int64(nil), edges...)
			for range 2000 {
				ns = append(ns, r.Int64()>>r.IntN(64)*int64(1-2*r.IntN(2)))
			}
			for _, n := range ns {
				p := in.TicksToPrice(n)
				got, err := in.PriceToTicks(p)
				require.NoError(t, err, "ticks %d price %s", n, p)
				require.Equal(t, n, got, "price %s", p)
				q := in.LotsToQty(n)
				got, err = in.QtyToLots(q)
				require.NoError(t, err, "lots %d qty %s", n, q)
				require.Equal(t, n, got, "qty %s", q)
				require.True(t, p.Equal(decimal.NewFromInt(n).Mul(in.TickSize)))
			}
		})
	}
}

// TestPriceRoundTrip converts random decimals: an accepted price converts
// back to itself, a rejected one is not a whole number of ticks in int64.
func TestPriceRoundTrip(t *testing.T) {
	for _, size := range unitSizes {
		t.Run("size_"+size, func(t *testing.T) {
			in := instrument(size, "1")
			seed := uint64(len(size)) * 7919
			r := rand.New(rand.NewPCG(2, seed))
			for range 3000 {
				p := decimal.New(r.Int64N(2_000_000_000)-1_000_000_000, int32(r.IntN(40)-25))
				n, err := in.PriceToTicks(p)
				exact := p.Div(in.TickSize) // reference, 16 places
				if err != nil {
					require.ErrorIs(t, err, config.ErrUnits, "seed %d price %s", seed, p)
					inRange := exact.Abs().LessThanOrEqual(decimal.NewFromInt(math.MaxInt64))
					require.False(t, inRange && p.Mod(in.TickSize).IsZero(), "seed %d: rejected %s: %v", seed, p, err)
					continue
				}
				require.True(t, in.TicksToPrice(n).Equal(p), "seed %d: %s -> %d -> %s", seed, p, n, in.TicksToPrice(n))
			}
		})
	}
}

func BenchmarkPriceToTicks(b *testing.B) {
	in := instrument("0.01", "1")
	p := decimal.RequireFromString("123.45")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in.PriceToTicks(p); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPriceToTicksAllocs(t *testing.T) {
	in := instrument("0.01", "1")
	p := decimal.RequireFromString("123.45")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := in.PriceToTicks(p); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}
