package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxSafeInt is the largest integer a canonical number may have (2^53−1), so
// that every JSON implementation reads it exactly.
const maxSafeInt = 1<<53 - 1

// value is a parsed JSON value kept exactly as far as canonical encoding
// needs: strings decoded, numbers as their literal, member order as read.
type value struct {
	kind    byte   // 's' string, 'n' number, 't' true, 'f' false, 'o' object, 'a' array
	str     string // string value or number literal
	members []member
	elems   []value
}

type member struct {
	name string
	val  value
}

// get returns the member name of an object, or nil.
func (v *value) get(name string) *value {
	for i := range v.members {
		if v.members[i].name == name {
			return &v.members[i].val
		}
	}
	return nil
}

// parseValue parses one JSON document under the manifest's restrictions:
// valid UTF-8, no null, no duplicate member names, numbers only as
// non-negative integers at most 2^53−1 without leading zeros, no U+FFFD
// (which Go's decoder substitutes for invalid escapes), nothing after it.
func parseValue(data []byte) (value, error) {
	if !utf8.Valid(data) {
		return value{}, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readValue(dec)
	if err != nil {
		return value{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return value{}, errors.New("trailing data after the document")
	}
	return v, nil
}

func readValue(dec *json.Decoder) (value, error) {
	tok, err := dec.Token()
	if err != nil {
		return value{}, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := value{kind: 'o'}
			names := map[string]struct{}{}
			for dec.More() {
				nt, err := dec.Token()
				if err != nil {
					return value{}, err
				}
				name, ok := nt.(string)
				if !ok {
					return value{}, errors.New("object member name is not a string")
				}
				if strings.ContainsRune(name, utf8.RuneError) {
					return value{}, errors.New("U+FFFD in a member name")
				}
				if _, dup := names[name]; dup {
					return value{}, fmt.Errorf("duplicate member %q", name)
				}
				names[name] = struct{}{}
				mv, err := readValue(dec)
				if err != nil {
					return value{}, err
				}
				v.members = append(v.members, member{name, mv})
			}
			if _, err := dec.Token(); err != nil {
				return value{}, err
			}
			return v, nil
		case '[':
			v := value{kind: 'a'}
			for dec.More() {
				ev, err := readValue(dec)
				if err != nil {
					return value{}, err
				}
				v.elems = append(v.elems, ev)
			}
			if _, err := dec.Token(); err != nil {
				return value{}, err
			}
			return v, nil
		}
		return value{}, fmt.Errorf("unexpected %v", t)
	case string:
		if strings.ContainsRune(t, utf8.RuneError) {
			return value{}, errors.New("U+FFFD in a string")
		}
		return value{kind: 's', str: t}, nil
	case json.Number:
		if !canonicalInt(string(t)) {
			return value{}, fmt.Errorf("number %s is not a non-negative integer of at most 2^53-1 without leading zeros", t)
		}
		return value{kind: 'n', str: string(t)}, nil
	case bool:
		if t {
			return value{kind: 't'}, nil
		}
		return value{kind: 'f'}, nil
	case nil:
		return value{}, errors.New("null is not allowed: omit the member instead")
	}
	return value{}, fmt.Errorf("unexpected token %v", tok)
}

func canonicalInt(s string) bool {
	if s == "" || len(s) > 16 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + uint64(c-'0')
	}
	return n <= maxSafeInt
}

// appendCanonical appends the canonical encoding of v, leaving out object
// members named in skip (top level only).
func appendCanonical(dst []byte, v *value, skip string) []byte {
	switch v.kind {
	case 's':
		return appendString(dst, v.str)
	case 'n':
		return append(dst, v.str...)
	case 't':
		return append(dst, "true"...)
	case 'f':
		return append(dst, "false"...)
	case 'a':
		dst = append(dst, '[')
		for i := range v.elems {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCanonical(dst, &v.elems[i], "")
		}
		return append(dst, ']')
	case 'o':
		ms := make([]*member, 0, len(v.members))
		for i := range v.members {
			if skip != "" && v.members[i].name == skip {
				continue
			}
			ms = append(ms, &v.members[i])
		}
		slices.SortFunc(ms, func(a, b *member) int { return strings.Compare(a.name, b.name) })
		dst = append(dst, '{')
		for i, m := range ms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, m.name)
			dst = append(dst, ':')
			dst = appendCanonical(dst, &m.val, "")
		}
		return append(dst, '}')
	}
	panic("manifest: unknown value kind")
}

// appendString writes s as a JSON string: only '"', '\\' and the control
// characters below U+0020 are escaped (\b \t \n \f \r, others \u00xx in
// lower-case hex); everything else, '<', '>', '&', U+2028 and U+2029
// included, is written as its UTF-8 bytes.
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			if c < 0x20 {
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			} else {
				dst = append(dst, c)
			}
		}
	}
	return append(dst, '"')
}

// Canonical returns the canonical encoding of one JSON document (see
// docs/keys.md, "Canonical encoding"): members sorted by name, no
// whitespace, minimal string escapes, integers as written. It refuses what
// the manifest format does not allow: invalid UTF-8, null, duplicate member
// names, numbers other than non-negative integers up to 2^53−1.
func Canonical(data []byte) ([]byte, error) {
	v, err := parseValue(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return appendCanonical(nil, &v, ""), nil
}
