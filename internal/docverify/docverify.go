// Package docverify is a second verifier of tradecore key manifests,
// written from docs/keys.md ("Key manifest") alone: its own JSON parser,
// canonical encoder and rules, and no code of package hsm/manifest. Tests use
// it as an independent check of what tradecore writes and of what
// manifest.Verify accepts (they are fuzzed against each other). It is not a
// promise to users: auditors use manifest.Verify or `tradecore keys verify`.
package docverify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

type jv struct {
	kind  string // "str", "int", "bool", "obj", "arr"
	s     string
	n     uint64
	b     bool
	names []string
	obj   map[string]*jv
	arr   []*jv
}

type jparser struct {
	in  []byte
	pos int
}

func (p *jparser) ws() {
	for p.pos < len(p.in) && strings.IndexByte(" \t\r\n", p.in[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *jparser) value(depth int) (*jv, error) {
	if depth > 100 {
		return nil, errors.New("too deep")
	}
	p.ws()
	if p.pos >= len(p.in) {
		return nil, errors.New("unexpected end")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		p.pos++
		o := &jv{kind: "obj", obj: map[string]*jv{}}
		p.ws()
		if p.pos < len(p.in) && p.in[p.pos] == '}' {
			p.pos++
			return o, nil
		}
		for {
			p.ws()
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			if _, dup := o.obj[k]; dup {
				return nil, errors.New("duplicate name")
			}
			p.ws()
			if p.pos >= len(p.in) || p.in[p.pos] != ':' {
				return nil, errors.New("want a colon after a member name")
			}
			p.pos++
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			o.obj[k], o.names = v, append(o.names, k)
			p.ws()
			if p.pos < len(p.in) && p.in[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.in) && p.in[p.pos] == '}' {
				p.pos++
				return o, nil
			}
			return nil, errors.New("want , or }")
		}
	case c == '[':
		p.pos++
		a := &jv{kind: "arr"}
		p.ws()
		if p.pos < len(p.in) && p.in[p.pos] == ']' {
			p.pos++
			return a, nil
		}
		for {
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a.arr = append(a.arr, v)
			p.ws()
			if p.pos < len(p.in) && p.in[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.in) && p.in[p.pos] == ']' {
				p.pos++
				return a, nil
			}
			return nil, errors.New("want , or ]")
		}
	case c == '"':
		s, err := p.str()
		return &jv{kind: "str", s: s}, err
	case c >= '0' && c <= '9':
		start := p.pos
		for p.pos < len(p.in) && p.in[p.pos] >= '0' && p.in[p.pos] <= '9' {
			p.pos++
		}
		lit := string(p.in[start:p.pos])
		if p.pos < len(p.in) && strings.IndexByte(".eE", p.in[p.pos]) >= 0 {
			return nil, errors.New("not an integer")
		}
		if len(lit) > 1 && lit[0] == '0' {
			return nil, errors.New("leading zero")
		}
		n, err := strconv.ParseUint(lit, 10, 64)
		if err != nil || n > 1<<53-1 {
			return nil, errors.New("integer too large")
		}
		return &jv{kind: "int", n: n}, nil
	case bytes.HasPrefix(p.in[p.pos:], []byte("true")):
		p.pos += 4
		return &jv{kind: "bool", b: true}, nil
	case bytes.HasPrefix(p.in[p.pos:], []byte("false")):
		p.pos += 5
		return &jv{kind: "bool"}, nil
	}
	return nil, errors.New("unexpected character (null is refused)")
}

func (p *jparser) str() (string, error) {
	if p.pos >= len(p.in) || p.in[p.pos] != '"' {
		return "", errors.New("want string")
	}
	p.pos++
	var sb strings.Builder
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		switch {
		case c == '"':
			p.pos++
			s := sb.String()
			if strings.ContainsRune(s, '\uFFFD') {
				return "", errors.New("U+FFFD")
			}
			return s, nil
		case c < 0x20:
			return "", errors.New("control character in string")
		case c == '\\':
			if p.pos+1 >= len(p.in) {
				return "", errors.New("bad escape")
			}
			e := p.in[p.pos+1]
			p.pos += 2
			simple := map[byte]rune{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}
			if r, ok := simple[e]; ok {
				sb.WriteRune(r)
				continue
			}
			if e != 'u' {
				return "", errors.New("bad escape")
			}
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				if !bytes.HasPrefix(p.in[p.pos:], []byte(`\u`)) {
					return "", errors.New("lone surrogate")
				}
				p.pos += 2
				r2, err := p.hex4()
				if err != nil {
					return "", err
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", errors.New("bad surrogate pair")
				}
			}
			sb.WriteRune(r)
		default:
			r, size := utf8.DecodeRune(p.in[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", errors.New("invalid UTF-8")
			}
			sb.WriteString(string(p.in[p.pos : p.pos+size]))
			p.pos += size
		}
	}
	return "", errors.New("unterminated string")
}

func (p *jparser) hex4() (rune, error) {
	if p.pos+4 > len(p.in) {
		return 0, errors.New("short \\u")
	}
	n, err := strconv.ParseUint(string(p.in[p.pos:p.pos+4]), 16, 16)
	p.pos += 4
	return rune(n), err
}

// canon is the documented canonical encoding; skip leaves out one member.
func canon(v *jv, skip string) []byte {
	var out []byte
	switch v.kind {
	case "str":
		out = append(out, '"')
		for _, r := range v.s {
			switch r {
			case '"':
				out = append(out, `\"`...)
			case '\\':
				out = append(out, `\\`...)
			case '\b':
				out = append(out, `\b`...)
			case '\t':
				out = append(out, `\t`...)
			case '\n':
				out = append(out, `\n`...)
			case '\f':
				out = append(out, `\f`...)
			case '\r':
				out = append(out, `\r`...)
			default:
				if r < 0x20 {
					out = append(out, fmt.Sprintf(`\u%04x`, r)...)
				} else {
					out = utf8.AppendRune(out, r)
				}
			}
		}
		return append(out, '"')
	case "int":
		return strconv.AppendUint(out, v.n, 10)
	case "bool":
		return strconv.AppendBool(out, v.b)
	case "arr":
		out = append(out, '[')
		for i, e := range v.arr {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, canon(e, "")...)
		}
		return append(out, ']')
	}
	names := []string{}
	for _, n := range v.names {
		if n != skip {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	out = append(out, '{')
	for i, n := range names {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, canon(&jv{kind: "str", s: n}, "")...)
		out = append(out, ':')
		out = append(out, canon(v.obj[n], "")...)
	}
	return append(out, '}')
}

type docKey struct {
	id, alg          string
	pub              any
	activeFrom, exps time.Time
	revoked, gone    bool
}

// Verify checks manifest bytes against the pinned first key id by the rules
// of docs/keys.md and returns the first rule broken, or nil.
func Verify(data []byte, pin string) (err error) {
	p := &jparser{in: data}
	root, err := p.value(0)
	if err != nil {
		return err
	}
	p.ws()
	if p.pos != len(data) {
		return errors.New("trailing data")
	}
	fail := func(f string, a ...any) error { return fmt.Errorf(f, a...) }
	// Field access with type checks; a wrong type panics into an error.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	members := func(o *jv, required, optional string) {
		if o == nil || o.kind != "obj" {
			panic("want an object")
		}
		allowed := map[string]bool{}
		for _, n := range strings.Fields(required + " " + optional) {
			allowed[n] = true
		}
		for _, n := range o.names {
			if !allowed[n] {
				panic("unknown member " + n)
			}
		}
		for _, n := range strings.Fields(required) {
			if o.obj[n] == nil {
				panic("missing member " + n)
			}
		}
	}
	str := func(o *jv, n string) string {
		v := o.obj[n]
		if v == nil || v.kind != "str" {
			panic(n + " is not a string")
		}
		return v.s
	}
	num := func(o *jv, n string) uint64 {
		v := o.obj[n]
		if v == nil || v.kind != "int" {
			panic(n + " is not an integer")
		}
		return v.n
	}
	tm := func(o *jv, n string) time.Time {
		t, err := time.Parse(time.RFC3339Nano, str(o, n))
		if err != nil {
			panic(n + " is not RFC 3339")
		}
		return t
	}
	members(root, "format name entries", "")
	if str(root, "format") != "tradecore-key-manifest/v2" {
		return fail("format")
	}
	name := str(root, "name")
	if name == "" || strings.ContainsAny(name, "+") || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return fail("name")
	}
	ents := root.obj["entries"]
	if ents.kind != "arr" || len(ents.arr) == 0 {
		return fail("entries")
	}
	var keys []*docKey
	byID := map[string]*docKey{}
	var policyAlg string
	var policyAge uint64
	var prevHash string
	var prevTime time.Time
	for i, e := range ents.arr {
		members(e, "seq event time prev signatures", "policy key revoked destroyed")
		if num(e, "seq") != uint64(i) {
			return fail("seq")
		}
		ev := str(e, "event")
		et := tm(e, "time")
		if i > 0 && et.Before(prevTime) {
			return fail("time backwards")
		}
		if str(e, "prev") != prevHash {
			return fail("prev")
		}
		if (i == 0) != (ev == "init") {
			return fail("init must be first and only first")
		}
		var active *docKey
		if len(keys) > 0 {
			active = keys[len(keys)-1]
		}
		has := func(n string) bool { return e.obj[n] != nil }
		wantKey := ev == "init" || ev == "rotate"
		if ev == "revoke" {
			members(e.obj["revoked"], "key_id at reason", "")
			wantKey = active != nil && str(e.obj["revoked"], "key_id") == active.id
		}
		if has("key") != wantKey || has("revoked") != (ev == "revoke") || has("destroyed") != (ev == "destroy") ||
			(ev == "init" && !has("policy")) || (has("policy") && ev != "init" && ev != "rotate") {
			return fail("members of a %s entry", ev)
		}
		if ev != "init" && ev != "rotate" && ev != "revoke" && ev != "destroy" {
			return fail("event")
		}
		if has("policy") {
			pol := e.obj["policy"]
			members(pol, "algorithm max_age_seconds", "")
			policyAlg, policyAge = str(pol, "algorithm"), num(pol, "max_age_seconds")
			if (policyAlg != "ed25519" && policyAlg != "ecdsa-p256") || policyAge < 1 || policyAge > 3155760000 {
				return fail("policy")
			}
		}
		if has("revoked") {
			r := e.obj["revoked"]
			k := byID[str(r, "key_id")]
			reason := str(r, "reason")
			if k == nil || k.revoked || reason == "" || len(reason) > 1024 || tm(r, "at").After(et) {
				return fail("revocation")
			}
		}
		if has("destroyed") {
			d := e.obj["destroyed"]
			members(d, "key_id", "")
			k := byID[str(d, "key_id")]
			if k == nil || k == active || k.gone {
				return fail("destruction")
			}
		}
		var nk *docKey
		if has("key") {
			k := e.obj["key"]
			members(k, "id algorithm label public_key_pem created active_from expires", "note_verifier")
			str(k, "label")
			blk, rest := pem.Decode([]byte(str(k, "public_key_pem")))
			if blk == nil || blk.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) > 0 {
				return fail("pem")
			}
			pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
			if err != nil {
				return err
			}
			alg := ""
			switch pk := pub.(type) {
			case ed25519.PublicKey:
				alg = "ed25519"
				h := sha256.Sum256(append([]byte(name+"\n\x01"), pk...))
				want := name + "+" + hex.EncodeToString(h[:4]) + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, pk...))
				if nv := k.obj["note_verifier"]; nv == nil || nv.kind != "str" || nv.s != want {
					return fail("note_verifier")
				}
			case *ecdsa.PublicKey:
				if pk.Curve != elliptic.P256() {
					return fail("curve")
				}
				alg = "ecdsa-p256"
				if has := k.obj["note_verifier"] != nil; has {
					return fail("note_verifier on ECDSA")
				}
			default:
				return fail("key type")
			}
			sum := sha256.Sum256(blk.Bytes)
			id := hex.EncodeToString(sum[:16])
			created, af, exp := tm(k, "created"), tm(k, "active_from"), tm(k, "expires")
			if str(k, "id") != id || str(k, "algorithm") != alg || alg != policyAlg || byID[id] != nil ||
				!af.Equal(et) || af.Before(created) || !exp.Equal(af.Add(time.Duration(policyAge)*time.Second)) {
				return fail("key")
			}
			nk = &docKey{id: id, alg: alg, pub: pub, activeFrom: af, exps: exp}
		}
		// Signatures: active key before the entry, then the new key.
		var signers []*docKey
		if active != nil {
			signers = append(signers, active)
		}
		if nk != nil {
			signers = append(signers, nk)
		}
		sigs := e.obj["signatures"]
		if sigs.kind != "arr" || len(sigs.arr) != len(signers) {
			return fail("signature count")
		}
		input := append([]byte("tradecore key manifest v2\n"+name+"\n"), canon(e, "signatures")...)
		for j, s := range sigs.arr {
			members(s, "key_id sig", "")
			sig, err := base64.StdEncoding.DecodeString(str(s, "sig"))
			if err != nil || str(s, "key_id") != signers[j].id {
				return fail("signature %d", j)
			}
			ok := false
			switch pk := signers[j].pub.(type) {
			case ed25519.PublicKey:
				ok = ed25519.Verify(pk, input, sig)
			case *ecdsa.PublicKey:
				d := sha256.Sum256(input)
				ok = ecdsa.VerifyASN1(pk, d[:], sig)
			}
			if !ok {
				return fail("signature %d does not verify", j)
			}
		}
		if has("revoked") {
			byID[str(e.obj["revoked"], "key_id")].revoked = true
		}
		if has("destroyed") {
			byID[str(e.obj["destroyed"], "key_id")].gone = true
		}
		if nk != nil {
			keys = append(keys, nk)
			byID[nk.id] = nk
		}
		h := sha256.Sum256(canon(e, ""))
		prevHash, prevTime = hex.EncodeToString(h[:]), et
	}
	if keys[0].id != pin {
		return fail("not the pinned first key")
	}
	return nil
}
