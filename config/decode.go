package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shopspring/decimal"
)

// The file is decoded in two steps: encoding/json splits it into raw values
// (objects decoded with DisallowUnknownFields), then every leaf is converted
// here, so each error knows its field path and says how to fix it.

type fileJSON struct {
	Engine      json.RawMessage `json:"engine"`
	Risk        json.RawMessage `json:"risk"`
	Instruments json.RawMessage `json:"instruments"`
	Accounts    json.RawMessage `json:"accounts"`
	Calendar    json.RawMessage `json:"calendar"`
	Audit       json.RawMessage `json:"audit"`
	Netseg      json.RawMessage `json:"netseg"`
	Gateway     json.RawMessage `json:"gateway"`
}

const fileFields = "engine, risk, instruments, accounts, calendar, audit, netseg, gateway"

type engineJSON struct {
	MaxOrders    json.RawMessage `json:"max_orders"`
	MaxOrderQty  json.RawMessage `json:"max_order_qty"`
	EventBatch   json.RawMessage `json:"event_batch"`
	Threading    json.RawMessage `json:"threading"`
	Pin          json.RawMessage `json:"pin"`
	CPUs         json.RawMessage `json:"cpus"`
	EngineIdle   json.RawMessage `json:"engine_idle"`
	OthersIdle   json.RawMessage `json:"others_idle"`
	InboundRing  json.RawMessage `json:"inbound_ring"`
	OutboundRing json.RawMessage `json:"outbound_ring"`
}

const engineFields = "max_orders, max_order_qty, event_batch, threading, pin, cpus, engine_idle, others_idle, inbound_ring, outbound_ring"

type instrumentJSON struct {
	Symbol    json.RawMessage `json:"symbol"`
	ID        json.RawMessage `json:"id"`
	TickSize  json.RawMessage `json:"tick_size"`
	LotSize   json.RawMessage `json:"lot_size"`
	PriceBand json.RawMessage `json:"price_band"`

	TickValue      json.RawMessage `json:"tick_value"`
	ReferencePrice json.RawMessage `json:"reference_price"`
	CollarPercent  json.RawMessage `json:"collar_percent"`
	CollarAbsolute json.RawMessage `json:"collar_absolute"`
	Restricted     json.RawMessage `json:"restricted"`
	Threshold      json.RawMessage `json:"threshold_security"`
	PreviousClose  json.RawMessage `json:"previous_close"`
	ShortSaleTest  json.RawMessage `json:"short_sale_test"`
}

const instrumentFields = "symbol, id, tick_size, lot_size, price_band, tick_value, reference_price, collar_percent, collar_absolute, restricted, threshold_security, previous_close, short_sale_test"

type bandJSON struct {
	Low  json.RawMessage `json:"low"`
	High json.RawMessage `json:"high"`
}

const bandFields = "low, high"

func invalid(field, format string, args ...any) *Error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// kind names the JSON type of a raw value for error messages.
func kind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// absent reports whether a field was left out or set to null.
func absent(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// checkSyntax reports a JSON syntax error with its line and column, and an
// empty file.
func checkSyntax(data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return invalid("", "the file is empty; write a JSON object as described in docs/config.md")
	}
	if json.Valid(data) {
		return nil
	}
	var v json.RawMessage
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		// Offset counts the bytes read, the offending one included.
		i := min(max(se.Offset-1, 0), int64(len(data)))
		line := 1 + bytes.Count(data[:i], []byte("\n"))
		col := i - int64(bytes.LastIndexByte(data[:i], '\n'))
		return invalid("", "line %d, column %d: %v; fix the JSON syntax", line, col, se)
	}
	return invalid("", "not valid JSON (%v); fix the JSON syntax", err)
}

// checkDuplicates rejects an object that names a key twice: encoding/json
// would silently keep the last value. data must be valid JSON.
func checkDuplicates(data []byte) error {
	type frame struct {
		obj       bool
		expectKey bool
		path      string
		key       string
		idx       int
		keys      map[string]bool
	}
	var stack []*frame
	child := func() string {
		if len(stack) == 0 {
			return ""
		}
		top := stack[len(stack)-1]
		if top.obj {
			return joinPath(top.path, top.key)
		}
		return fmt.Sprintf("%s[%d]", top.path, top.idx)
	}
	done := func() { // a value of the innermost container is complete
		if len(stack) == 0 {
			return
		}
		if top := stack[len(stack)-1]; top.obj {
			top.expectKey = true
		} else {
			top.idx++
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // checkSyntax reports it
		}
		if n := len(stack); n > 0 && stack[n-1].obj && stack[n-1].expectKey {
			top := stack[n-1]
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				done()
				continue
			}
			key, _ := tok.(string)
			if top.keys[key] {
				field := top.path
				if field == "" {
					return invalid("", "the key %q appears twice; keep one", key)
				}
				return invalid(field, "the key %q appears twice; keep one", key)
			}
			top.keys[key] = true
			top.key, top.expectKey = key, false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, expectKey: true, path: child(), keys: map[string]bool{}})
		case json.Delim('['):
			stack = append(stack, &frame{path: child()})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			done()
		default:
			done()
		}
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decodeObject decodes the object raw into dst, a struct of json.RawMessage
// fields, rejecting unknown fields. fields lists the known ones for the
// message.
func decodeObject(raw json.RawMessage, path, fields string, dst any) error {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] != '{' {
		return invalid(path, "got %s; want an object with the fields %s", kind(raw), fields)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		msg := err.Error()
		if _, name, ok := strings.Cut(msg, "unknown field "); ok {
			name = strings.TrimSpace(name)
			if path == "" {
				return invalid("", "unknown field %s at the top level; the fields are %s (see docs/config.md)", name, fields)
			}
			return invalid(path, "unknown field %s; the fields are %s (see docs/config.md)", name, fields)
		}
		return invalid(path, "%v", err)
	}
	return nil
}

// decodeInt decodes an integer field. ok is false when it is absent or null.
func decodeInt(raw json.RawMessage, field string) (v int64, ok bool, err error) {
	if absent(raw) {
		return 0, false, nil
	}
	s := string(raw)
	if raw[0] == '"' {
		return 0, false, invalid(field, "got the string %s; write the integer without quotes", truncate(s))
	}
	if kind(raw) != "a number" {
		return 0, false, invalid(field, "got %s; want an integer", kind(raw))
	}
	if strings.ContainsAny(s, ".eE") {
		return 0, false, invalid(field, "got %s; want a whole number without a fraction or exponent", truncate(s))
	}
	v, err = strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, invalid(field, "%s is out of range", truncate(s))
	}
	return v, true, nil
}

// decodeBool decodes a boolean field. It is false when absent or null.
func decodeBool(raw json.RawMessage, field string) (bool, error) {
	switch {
	case absent(raw):
		return false, nil
	case string(raw) == "true":
		return true, nil
	case string(raw) == "false":
		return false, nil
	}
	return false, invalid(field, "got %s; want true or false", kind(raw))
}

// decodeString decodes a string field. ok is false when it is absent or null.
func decodeString(raw json.RawMessage, field string) (s string, ok bool, err error) {
	if absent(raw) {
		return "", false, nil
	}
	if raw[0] != '"' {
		return "", false, invalid(field, "got %s; want a string", kind(raw))
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, invalid(field, "%v", err)
	}
	return s, true, nil
}

// maxDecimalLen bounds the text of a decimal: 38 characters hold any int64
// count of ticks at any sensible tick size.
const maxDecimalLen = 38

// decodeDecimal decodes a decimal field: a JSON string in plain notation
// ("0.01", "-2", "100.25"). ok is false when it is absent or null.
// text is the value as written, for messages.
func decodeDecimal(raw json.RawMessage, field, example string) (d decimal.Decimal, text string, ok bool, err error) {
	if absent(raw) {
		return decimal.Decimal{}, "", false, nil
	}
	if kind(raw) == "a number" {
		return decimal.Decimal{}, "", false, invalid(field,
			"got the JSON number %s; quote it as a string (%q) so that no float rounds it", truncate(string(raw)), truncate(string(raw)))
	}
	s, _, err := decodeString(raw, field)
	if err != nil {
		return decimal.Decimal{}, "", false, invalid(field, "got %s; want a decimal string such as %q", kind(raw), example)
	}
	if !plainDecimal(s) {
		return decimal.Decimal{}, "", false, invalid(field,
			"%q is not a plain decimal; write digits with an optional sign and fraction, at most %d characters, such as %q", truncate(s), maxDecimalLen, example)
	}
	d, err = decimal.NewFromString(s)
	if err != nil { // unreachable after plainDecimal
		return decimal.Decimal{}, "", false, invalid(field, "%q: %v", truncate(s), err)
	}
	return d, s, true, nil
}

// plainDecimal reports whether s is -?[0-9]+(\.[0-9]+)? of at most
// maxDecimalLen characters: no exponent, no '+', no spaces.
func plainDecimal(s string) bool {
	if len(s) == 0 || len(s) > maxDecimalLen {
		return false
	}
	if s[0] == '-' {
		s = s[1:]
	}
	intPart, frac, hasDot := strings.Cut(s, ".")
	return digits(intPart) && (!hasDot || digits(frac))
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
