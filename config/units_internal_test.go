package config

import (
	"math/rand/v2"
	"testing"

	"github.com/shopspring/decimal"
	"github.com/stretchr/testify/require"
)

// TestToUnitsFastMatchesBig compares the uint64 path with the big.Int path
// on random operands the fast path takes.
func TestToUnitsFastMatchesBig(t *testing.T) {
	const seed = 20240611
	r := rand.New(rand.NewPCG(seed, 3))
	taken, exacts := 0, 0
	for i := range 200_000 {
		v := decimal.New(r.Int64N(1e18)*int64(1-2*r.IntN(2))>>r.IntN(60), int32(r.IntN(50)-30))
		unit := decimal.New(1+r.Int64N(1e18)>>r.IntN(62), int32(r.IntN(30)-20))
		if r.IntN(2) == 0 { // an exact multiple, with a rescaled coefficient
			v = decimal.New(r.Int64N(1e9)-5e8, 0).Mul(unit)
			v = v.Add(decimal.New(0, v.Exponent()-int32(r.IntN(3)))) // same value, more places
		}
		if v.IsZero() {
			continue
		}
		n, exact, ok := toUnitsFast(v, unit)
		if !ok {
			continue
		}
		taken++
		m, err := toUnitsBig(v, unit)
		if !exact {
			require.Error(t, err, "seed %d case %d: %s / %s", seed, i, v, unit)
			require.True(t, err.(*unitError).notMultiple, "seed %d case %d: %s / %s", seed, i, v, unit)
			continue
		}
		exacts++
		require.NoError(t, err, "seed %d case %d: %s / %s", seed, i, v, unit)
		require.Equal(t, m, n, "seed %d case %d: %s / %s", seed, i, v, unit)
	}
	require.Greater(t, taken, 50_000)
	require.Greater(t, exacts, 20_000)
}
