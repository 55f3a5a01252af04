package audit

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
)

// Scale converts an instrument's integer ticks and lots to the decimal
// prices and quantities a leaf carries, and back. A tick (or lot) size is
// Mant × 10^-Exp, for example 0.05 = 5 × 10^-2. The zero Scale is the unit
// scale (tick 1, lot 1): values are written as the raw integer counts. An
// instrument the log has no scale for uses the unit scale.
type Scale struct {
	TickMant int64
	TickExp  uint8
	LotMant  int64
	LotExp   uint8
}

// maxExp bounds a scale's decimal places.
const maxExp = 18

// ErrDecimal is wrapped when a decimal string is not canonical or not an
// exact multiple of the instrument's tick or lot size.
var ErrDecimal = errors.New("audit: bad decimal")

// ParseScale builds a Scale from decimal tick and lot sizes such as "0.01"
// and "100". Both must be positive, plain decimals with at most 18 decimal
// places (for example from the config file).
func ParseScale(tick, lot string) (Scale, error) {
	tm, te, err := parseUnit(tick)
	if err != nil {
		return Scale{}, fmt.Errorf("audit: tick size %q: %w", tick, err)
	}
	lm, le, err := parseUnit(lot)
	if err != nil {
		return Scale{}, fmt.Errorf("audit: lot size %q: %w", lot, err)
	}
	return Scale{TickMant: tm, TickExp: te, LotMant: lm, LotExp: le}, nil
}

// parseUnit parses a positive decimal into mantissa and exponent, stripping
// trailing fraction zeros so that one size has one representation.
func parseUnit(s string) (int64, uint8, error) {
	intPart, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			intPart, frac = s[:i], s[i+1:]
			break
		}
	}
	for len(frac) > 0 && frac[len(frac)-1] == '0' {
		frac = frac[:len(frac)-1]
	}
	if intPart == "" || len(frac) > maxExp {
		return 0, 0, errors.New("want a plain positive decimal with at most 18 decimal places, like 0.01")
	}
	m, err := strconv.ParseInt(intPart+frac, 10, 64)
	if err != nil || m <= 0 {
		return 0, 0, errors.New("want a plain positive decimal with at most 18 decimal places, like 0.01")
	}
	return m, uint8(len(frac)), nil
}

// String renders the scale as "tick=… lot=…".
func (s Scale) String() string {
	return "tick=" + unitString(s.TickMant, s.TickExp) + " lot=" + unitString(s.LotMant, s.LotExp)
}

// Tick returns the tick size as a decimal string ("1" for the unit scale).
func (s Scale) Tick() string { return unitString(s.TickMant, s.TickExp) }

// Lot returns the lot size as a decimal string ("1" for the unit scale).
func (s Scale) Lot() string { return unitString(s.LotMant, s.LotExp) }

func unitString(m int64, e uint8) string {
	if m == 0 {
		m, e = 1, 0
	}
	return string(appendDecimal(nil, m, 1, e))
}

// AppendPrice appends ticks as a canonical decimal price.
func (s Scale) AppendPrice(dst []byte, ticks int64) []byte {
	return appendDecimal(dst, ticks, s.TickMant, s.TickExp)
}

// AppendQty appends lots as a canonical decimal quantity.
func (s Scale) AppendQty(dst []byte, lots int64) []byte {
	return appendDecimal(dst, lots, s.LotMant, s.LotExp)
}

// ParsePrice parses a canonical decimal price into ticks.
func (s Scale) ParsePrice(b []byte) (int64, error) { return parseDecimal(b, s.TickMant, s.TickExp) }

// ParseQty parses a canonical decimal quantity into lots.
func (s Scale) ParseQty(b []byte) (int64, error) { return parseDecimal(b, s.LotMant, s.LotExp) }

// appendDecimal appends n × mant × 10^-exp in canonical form: an optional
// minus sign, the integer digits without leading zeros, and a fraction only
// when non-zero, without trailing zeros ("0", "12", "-0.5", "101.25").
func appendDecimal(dst []byte, n, mant int64, exp uint8) []byte {
	if mant == 0 {
		mant, exp = 1, 0
	}
	var digits [40]byte
	var ds []byte
	neg := n < 0
	if v, ok := mulFits(n, mant); ok {
		if neg {
			ds = strconv.AppendUint(digits[:0], uint64(-(v+1))+1, 10)
		} else {
			ds = strconv.AppendUint(digits[:0], uint64(v), 10)
		}
	} else {
		p := new(big.Int).Mul(big.NewInt(n), big.NewInt(mant))
		ds = p.Abs(p).Append(digits[:0], 10)
	}
	if neg {
		dst = append(dst, '-')
	}
	e := int(exp)
	if len(ds) <= e {
		dst = append(dst, '0')
		frac := trimZeros(ds)
		if len(frac) == 0 {
			return dst
		}
		dst = append(dst, '.')
		for i := len(ds); i < e; i++ {
			dst = append(dst, '0')
		}
		return append(dst, frac...)
	}
	dst = append(dst, ds[:len(ds)-e]...)
	if frac := trimZeros(ds[len(ds)-e:]); len(frac) > 0 {
		dst = append(dst, '.')
		dst = append(dst, frac...)
	}
	return dst
}

func trimZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	return b
}

// mulFits returns n*m and whether it fit in an int64 (m > 0).
func mulFits(n, m int64) (int64, bool) {
	if m == 1 {
		return n, true
	}
	p := n * m
	if n != 0 && (p/m != n || (n == -1 && m == -1)) {
		return 0, false
	}
	return p, true
}

// parseDecimal is the inverse of appendDecimal; it accepts exactly the
// canonical form and fails unless the value is n × mant × 10^-exp for an
// int64 n.
func parseDecimal(b []byte, mant int64, exp uint8) (int64, error) {
	if mant == 0 {
		mant, exp = 1, 0
	}
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("%w: %q %s", ErrDecimal, b, why)
	}
	s := b
	neg := len(s) > 0 && s[0] == '-'
	if neg {
		s = s[1:]
	}
	intPart, frac := s, []byte(nil)
	for i, c := range s {
		if c == '.' {
			intPart, frac = s[:i], s[i+1:]
			if len(frac) == 0 {
				return bad("ends in a point")
			}
			break
		}
	}
	if len(intPart) == 0 || (len(intPart) > 1 && intPart[0] == '0') {
		return bad("is not a canonical decimal (leading zeros or no digits)")
	}
	if len(frac) > 0 && frac[len(frac)-1] == '0' {
		return bad("has trailing zeros in its fraction")
	}
	for _, c := range intPart {
		if c < '0' || c > '9' {
			return bad("has a non-digit")
		}
	}
	for _, c := range frac {
		if c < '0' || c > '9' {
			return bad("has a non-digit")
		}
	}
	if len(frac) > int(exp) {
		return bad("has more decimal places than the tick or lot size")
	}
	if neg && len(frac) == 0 && len(intPart) == 1 && intPart[0] == '0' {
		return bad("is negative zero")
	}
	// units = digits scaled to exp decimal places.
	var buf [64]byte
	u := append(buf[:0], intPart...)
	u = append(u, frac...)
	for i := len(frac); i < int(exp); i++ {
		u = append(u, '0')
	}
	if len(u) <= 18 {
		v, _ := strconv.ParseInt(string(u), 10, 64)
		if v%mant != 0 {
			return bad("is not a multiple of the tick or lot size")
		}
		v /= mant
		if neg {
			v = -v
		}
		return v, nil
	}
	z, ok := new(big.Int).SetString(string(u), 10)
	if !ok {
		return bad("is not a number")
	}
	if neg {
		z.Neg(z)
	}
	q, r := new(big.Int).QuoRem(z, big.NewInt(mant), new(big.Int))
	if r.Sign() != 0 {
		return bad("is not a multiple of the tick or lot size")
	}
	if !q.IsInt64() {
		return bad("does not fit a 64-bit count")
	}
	return q.Int64(), nil
}
