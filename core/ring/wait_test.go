package ring_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core/ring"
)

func TestParseWaitStrategy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ring.WaitMode
		err  bool
	}{
		{in: "", want: ring.Park},
		{in: "park", want: ring.Park},
		{in: "spin-yield", want: ring.SpinYield},
		{in: "busy-spin", want: ring.BusySpin},
		{in: "Park", err: true},
		{in: "spin", err: true},
		{in: "busyspin", err: true},
	} {
		t.Run("in="+tc.in, func(t *testing.T) {
			got, err := ring.ParseWaitStrategy(tc.in)
			if tc.err {
				require.ErrorIs(t, err, ring.ErrWaitStrategy)
				assert.Contains(t, err.Error(), "park, spin-yield or busy-spin")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, ring.WaitStrategy{Mode: tc.want}, got)
			if tc.in != "" {
				assert.Equal(t, tc.in, got.String())
			}
		})
	}
}

func TestWaitModeText(t *testing.T) {
	for _, m := range []ring.WaitMode{ring.Park, ring.SpinYield, ring.BusySpin} {
		b, err := m.MarshalText()
		require.NoError(t, err)
		var got ring.WaitMode
		require.NoError(t, got.UnmarshalText(b))
		assert.Equal(t, m, got)
	}
	_, err := ring.WaitMode(9).MarshalText()
	require.ErrorIs(t, err, ring.ErrWaitStrategy)
	assert.Equal(t, "WaitMode(9)", ring.WaitMode(9).String())
	var m ring.WaitMode
	require.ErrorIs(t, m.UnmarshalText([]byte("nap")), ring.ErrWaitStrategy)
}

func TestZeroWaitStrategyIsPark(t *testing.T) {
	assert.Equal(t, ring.Park, ring.WaitStrategy{}.Mode)
}

func TestInvalidWaitStrategy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ws    ring.WaitStrategy
		field string
	}{
		{"mode", ring.WaitStrategy{Mode: 7}, "WaitStrategy.Mode"},
		{"spins", ring.WaitStrategy{Spins: -1}, "WaitStrategy.Spins"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ring.NewMPSC[cmd](8, tc.ws)
			require.ErrorIs(t, err, ring.ErrWaitStrategy)
			assert.Contains(t, err.Error(), tc.field)
			_, err = ring.NewRing[event](8, tc.ws)
			require.ErrorIs(t, err, ring.ErrWaitStrategy)
			assert.Contains(t, err.Error(), tc.field)
		})
	}
}
