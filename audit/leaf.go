package audit

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// A leaf is one record's canonical JSON bytes:
//
//	{"i":<index>,"t":<unix ns>,"type":"<record type>","body":<object>}
//
// with exactly these four fields in this order and no whitespace. The leaf
// hash is RFC 6962's SHA-256(0x00 || leaf). docs/audit-format.md specifies
// the bodies.

// MaxLeafSize bounds one leaf (a service record body is small; core records
// are a few hundred bytes).
const MaxLeafSize = 64 << 10

// MaxTypeLen bounds a record type.
const MaxTypeLen = 64

// LeafHeader is a parsed leaf: its index, time, type and body (sub-slices of
// the leaf).
type LeafHeader struct {
	Index uint64
	Time  int64
	Type  []byte
	Body  []byte
}

// AppendLeafHeader appends the leaf's opening up to and including "body":;
// the caller appends the body object and a closing '}'.
func AppendLeafHeader(dst []byte, idx uint64, t int64, typ string) []byte {
	dst = append(dst, `{"i":`...)
	dst = strconv.AppendUint(dst, idx, 10)
	dst = append(dst, `,"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, typ...)
	return append(dst, `","body":`...)
}

// AppendLeaf appends a whole leaf with an already-encoded body object.
func AppendLeaf(dst []byte, idx uint64, t int64, typ string, body []byte) []byte {
	dst = AppendLeafHeader(dst, idx, t, typ)
	dst = append(dst, body...)
	return append(dst, '}')
}

// ValidType reports whether typ is a record type: 1–64 bytes of lower-case
// letters, digits, '-' and '_' in dot-separated non-empty parts.
func ValidType(typ string) bool {
	if len(typ) == 0 || len(typ) > MaxTypeLen {
		return false
	}
	prevDot := true
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		switch {
		case c == '.':
			if prevDot {
				return false
			}
			prevDot = true
			continue
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
		prevDot = false
	}
	return !prevDot
}

// ParseLeaf parses a leaf's fixed header and returns its parts. It checks
// the header's form strictly but not the body's content (see CheckLeaf).
func ParseLeaf(leaf []byte) (LeafHeader, error) {
	var h LeafHeader
	bad := func(why string) (LeafHeader, error) { return h, fmt.Errorf("%w: %s", ErrLeaf, why) }
	if len(leaf) > MaxLeafSize {
		return bad("longer than the maximum leaf size")
	}
	p := parser{b: leaf}
	if !p.lit(`{"i":`) {
		return bad(`does not start with {"i":`)
	}
	x, err := p.integer(false)
	if err != nil {
		return bad("index: " + err.Error())
	}
	h.Index = x
	if !p.lit(`,"t":`) {
		return bad(`want ,"t": after the index`)
	}
	if x, err = p.integer(true); err != nil {
		return bad("time: " + err.Error())
	}
	h.Time = int64(x)
	if !p.lit(`,"type":`) {
		return bad(`want ,"type": after the time`)
	}
	typ, ok := p.plainString()
	if !ok || !ValidType(string(typ)) {
		return bad("type is not a record type (lower-case dotted name)")
	}
	h.Type = typ
	if !p.lit(`,"body":{`) {
		return bad(`want ,"body":{ after the type`)
	}
	if len(leaf) < p.i+1 || leaf[len(leaf)-1] != '}' {
		return bad("does not end with }")
	}
	h.Body = leaf[p.i-1 : len(leaf)-1]
	return h, nil
}

func (p *parser) lit(s string) bool {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return false
	}
	p.i += len(s)
	return true
}

// CheckBody checks that b is one JSON object in the log's canonical subset:
// valid UTF-8 JSON, no insignificant whitespace, integers only (no
// fraction or exponent, no leading zeros, no -0, within 64 bits), no
// duplicate keys in an object, nesting at most 16 deep.
func CheckBody(b []byte) error {
	c := checker{b: b}
	if !c.peek('{') {
		return fmt.Errorf("%w: body is not a JSON object", ErrLeaf)
	}
	if err := c.value(0); err != nil {
		return fmt.Errorf("%w: body offset %d: %w", ErrLeaf, c.i, err)
	}
	if c.i != len(b) {
		return fmt.Errorf("%w: body offset %d: trailing bytes", ErrLeaf, c.i)
	}
	return nil
}

type checker struct {
	b []byte
	i int
}

func (c *checker) peek(x byte) bool { return c.i < len(c.b) && c.b[c.i] == x }

var (
	errSyntax = errors.New("not canonical JSON")
	errFloat  = errors.New("a number with a fraction or exponent (floats are not allowed)")
)

func (c *checker) value(depth int) error {
	if depth > 16 {
		return errors.New("nested deeper than 16")
	}
	if c.i >= len(c.b) {
		return errSyntax
	}
	switch x := c.b[c.i]; {
	case x == '{':
		c.i++
		var keys [][]byte
		for n := 0; ; n++ {
			if c.peek('}') {
				c.i++
				return nil
			}
			if n > 0 {
				if !c.peek(',') {
					return errSyntax
				}
				c.i++
			}
			start := c.i
			if err := c.str(); err != nil {
				return err
			}
			k := c.b[start:c.i]
			for _, o := range keys {
				if string(o) == string(k) {
					return fmt.Errorf("duplicate key %s", k)
				}
			}
			keys = append(keys, k)
			if !c.peek(':') {
				return errSyntax
			}
			c.i++
			if err := c.value(depth + 1); err != nil {
				return err
			}
		}
	case x == '[':
		c.i++
		for n := 0; ; n++ {
			if c.peek(']') {
				c.i++
				return nil
			}
			if n > 0 {
				if !c.peek(',') {
					return errSyntax
				}
				c.i++
			}
			if err := c.value(depth + 1); err != nil {
				return err
			}
		}
	case x == '"':
		return c.str()
	case x == '-' || (x >= '0' && x <= '9'):
		p := parser{b: c.b, i: c.i}
		if _, err := p.integer(true); err != nil {
			if p.i < len(c.b) && (c.b[p.i] == '.' || c.b[p.i] == 'e' || c.b[p.i] == 'E') {
				return errFloat
			}
			// Large unsigned values are integers too.
			p = parser{b: c.b, i: c.i}
			if _, err2 := p.integer(false); err2 != nil {
				return err
			}
		}
		c.i = p.i
		return nil
	default:
		for _, lit := range []string{"true", "false", "null"} {
			if len(c.b)-c.i >= len(lit) && string(c.b[c.i:c.i+len(lit)]) == lit {
				c.i += len(lit)
				return nil
			}
		}
		return errSyntax
	}
}

// str checks one string: valid UTF-8, control characters escaped, only
// JSON's escapes.
func (c *checker) str() error {
	if !c.peek('"') {
		return errSyntax
	}
	c.i++
	for c.i < len(c.b) {
		x := c.b[c.i]
		switch {
		case x == '"':
			c.i++
			return nil
		case x < 0x20:
			return errors.New("unescaped control character in a string")
		case x == '\\':
			if c.i+1 >= len(c.b) {
				return errSyntax
			}
			switch c.b[c.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				c.i += 2
			case 'u':
				if c.i+6 > len(c.b) {
					return errSyntax
				}
				for _, h := range c.b[c.i+2 : c.i+6] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return errSyntax
					}
				}
				c.i += 6
			default:
				return errors.New("unknown escape in a string")
			}
		case x < utf8.RuneSelf:
			c.i++
		default:
			r, n := utf8.DecodeRune(c.b[c.i:])
			if r == utf8.RuneError && n <= 1 {
				return errors.New("invalid UTF-8 in a string")
			}
			c.i += n
		}
	}
	return errSyntax
}
