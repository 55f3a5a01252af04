package config

import (
	"fmt"
	"math"
	"math/big"
	"math/bits"

	"github.com/shopspring/decimal"
)

// PriceToTicks converts a decimal price to a count of the instrument's ticks.
// It fails, wrapping ErrUnits, when the price is not an exact multiple of the
// tick size or the count does not fit an int64. It does not check the price
// band: the engine rejects an out-of-band price with its own reason code.
func (in *Instrument) PriceToTicks(price decimal.Decimal) (int64, error) {
	n, err := toUnits(price, in.TickSize)
	if err != nil {
		return 0, unitsError(err, "price", price, "tick size", in.TickSize, in.Symbol)
	}
	return n, nil
}

// TicksToPrice converts a count of ticks to a decimal price. The result has
// the tick size's exponent: print it with
// price.StringFixed(-in.TickSize.Exponent()) to show every decimal place.
func (in *Instrument) TicksToPrice(ticks int64) decimal.Decimal {
	return fromUnits(ticks, in.TickSize)
}

// QtyToLots converts a decimal quantity (shares) to a count of the
// instrument's lots. It fails, wrapping ErrUnits, when the quantity is not an
// exact multiple of the lot size or the count does not fit an int64.
func (in *Instrument) QtyToLots(qty decimal.Decimal) (int64, error) {
	n, err := toUnits(qty, in.LotSize)
	if err != nil {
		return 0, unitsError(err, "quantity", qty, "lot size", in.LotSize, in.Symbol)
	}
	return n, nil
}

// LotsToQty converts a count of lots to a decimal quantity (shares), with the
// lot size's exponent.
func (in *Instrument) LotsToQty(lots int64) decimal.Decimal {
	return fromUnits(lots, in.LotSize)
}

// unitError is why toUnits failed; near holds the closest multiples below
// and above the value when it is not one.
type unitError struct {
	notMultiple bool
	unitInvalid bool
	near        [2]decimal.Decimal
}

func (e *unitError) Error() string { return "units" }

func unitsError(err error, what string, v decimal.Decimal, unitName string, unit decimal.Decimal, symbol string) error {
	ue := err.(*unitError)
	of := ""
	if symbol != "" {
		of = " of " + symbol
	}
	switch {
	case ue.unitInvalid:
		return fmt.Errorf("%w: the %s%s is %s; configure a positive %s", ErrUnits, unitName, of, fmtDecimal(unit), unitName)
	case ue.notMultiple:
		return fmt.Errorf("%w: %s %s is not a multiple of the %s %s%s; use %s or %s",
			ErrUnits, what, fmtDecimal(v), unitName, fmtDecimal(unit), of, fmtIn(ue.near[0], unit), fmtIn(ue.near[1], unit))
	default:
		return fmt.Errorf("%w: %s %s is too large a count of the %s %s%s for an int64",
			ErrUnits, what, fmtDecimal(v), unitName, fmtDecimal(unit), of)
	}
}

// fmtDecimal prints d in plain notation unless that would be very long.
func fmtDecimal(d decimal.Decimal) string {
	if e := d.Exponent(); e > 40 || e < -40 || d.NumDigits() > 40 {
		return d.ScientificNotationString()
	}
	return d.String()
}

// fmtIn prints a multiple of unit with unit's decimal places ("1.00", not
// "1", for a tick of 0.01).
func fmtIn(d, unit decimal.Decimal) string {
	if e := unit.Exponent(); e < 0 && e >= -40 && d.Exponent() >= -40 && d.Exponent() <= 40 {
		return d.StringFixed(-e)
	}
	return fmtDecimal(d)
}

var pow10 = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// toUnits returns v / unit when it is an integer that fits an int64. The
// common case (both coefficients below 10^18, exponents close) is exact
// uint64 arithmetic with no allocation; the rest takes big.Int.
func toUnits(v, unit decimal.Decimal) (int64, error) {
	if unit.Sign() <= 0 {
		return 0, &unitError{unitInvalid: true}
	}
	if v.Sign() == 0 {
		return 0, nil
	}
	if n, exact, ok := toUnitsFast(v, unit); ok {
		if !exact {
			return 0, notMultiple(v, unit)
		}
		return n, nil
	}
	return toUnitsBig(v, unit)
}

// toUnitsFast is toUnits in uint64 arithmetic; ok is false when the operands
// are out of its reach (the caller then takes the big.Int path).
func toUnitsFast(v, unit decimal.Decimal) (n int64, exact, ok bool) {
	if v.NumDigits() > 18 || unit.NumDigits() > 18 {
		return 0, false, false
	}
	a, b := v.CoefficientInt64(), uint64(unit.CoefficientInt64())
	neg := a < 0
	ua := uint64(a)
	if neg {
		ua = uint64(-a)
	}
	var q, r uint64
	switch e := int64(v.Exponent()) - int64(unit.Exponent()); {
	case e >= 0 && e < int64(len(pow10)):
		hi, lo := bits.Mul64(ua, pow10[e])
		if hi != 0 {
			return 0, false, false
		}
		q, r = lo/b, lo%b
	case e < 0 && -e < int64(len(pow10)):
		hi, den := bits.Mul64(b, pow10[-e])
		if hi != 0 {
			return 0, false, false
		}
		q, r = ua/den, ua%den
	default:
		return 0, false, false
	}
	if r != 0 {
		return 0, false, true
	}
	if q > math.MaxInt64 {
		return 0, false, false
	}
	if neg {
		return -int64(q), true, true
	}
	return int64(q), true, true
}

// toUnitsBig is toUnits for any operands. It bounds the quotient's
// magnitude from the operands' digit counts and exponents first, so a value
// such as 1e-2000000000 costs no huge power of ten.
func toUnitsBig(v, unit decimal.Decimal) (int64, error) {
	// |v| is in [10^(dv+ev-1), 10^(dv+ev)), and likewise unit, so
	// |v/unit| is in (10^(k-1), 10^(k+1)) with k = (dv+ev) - (du+eu).
	k := int64(v.NumDigits()) + int64(v.Exponent()) - int64(unit.NumDigits()) - int64(unit.Exponent())
	switch {
	case k-1 >= 19: // |v/unit| > 10^19 > MaxInt64
		return 0, &unitError{}
	case k+1 <= 0: // 0 < |v/unit| < 1
		return 0, notMultiple(v, unit)
	}
	q, r := v.QuoRem(unit, 0)
	if !r.IsZero() {
		return 0, notMultiple(v, unit)
	}
	bi := q.BigInt()
	if !bi.IsInt64() {
		return 0, &unitError{}
	}
	return bi.Int64(), nil
}

// notMultiple builds the error for a v that is not a multiple of unit, with
// the nearest multiples on either side.
func notMultiple(v, unit decimal.Decimal) error {
	e := &unitError{notMultiple: true}
	k := int64(v.NumDigits()) + int64(v.Exponent()) - int64(unit.NumDigits()) - int64(unit.Exponent())
	if k > 40 || k < -40 { // too far apart to be worth the arithmetic
		e.near = [2]decimal.Decimal{decimal.Zero, unit}
		if v.Sign() < 0 {
			e.near = [2]decimal.Decimal{unit.Neg(), decimal.Zero}
		}
		return e
	}
	q, _ := v.QuoRem(unit, 0) // truncated toward zero
	lo := q.Mul(unit)
	hi := lo.Add(unit)
	if v.Sign() < 0 {
		lo, hi = lo.Sub(unit), lo
	}
	e.near = [2]decimal.Decimal{lo, hi}
	return e
}

// fromUnits returns n * unit with unit's exponent.
func fromUnits(n int64, unit decimal.Decimal) decimal.Decimal {
	if unit.NumDigits() <= 18 {
		b := unit.CoefficientInt64()
		neg := (n < 0) != (b < 0)
		hi, lo := bits.Mul64(absU64(n), absU64(b))
		if hi == 0 && lo <= math.MaxInt64 {
			if neg {
				return decimal.New(-int64(lo), unit.Exponent())
			}
			return decimal.New(int64(lo), unit.Exponent())
		}
	}
	return decimal.NewFromBigInt(new(big.Int).Mul(big.NewInt(n), unit.Coefficient()), unit.Exponent())
}

func absU64(x int64) uint64 {
	if x < 0 {
		return uint64(-x) // MinInt64 maps to 1<<63, its magnitude
	}
	return uint64(x)
}
