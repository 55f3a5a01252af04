package netseg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Limits on a policy file. They keep every structure the kernel programs
// search small and bounded.
const (
	MaxPolicyBytes     = 256 << 10 // file size, and canonical JSON size
	MaxSegments        = 64
	MaxRulesPerSegment = 1024
	maxNoteLen         = 200
)

// Load reads and parses a policy file; path "-" reads standard input. Errors
// carry the path, the line and the field.
func Load(file string) (*Policy, error) {
	var (
		data []byte
		err  error
	)
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, MaxPolicyBytes+1))
	} else {
		var f *os.File
		f, err = os.Open(file)
		if err == nil {
			data, err = io.ReadAll(io.LimitReader(f, MaxPolicyBytes+1))
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("netseg: read policy: %w (check the -f path)", err)
	}
	p, err := Parse(data)
	var pe *PolicyError
	if errors.As(err, &pe) {
		pe.File = file
	}
	return p, err
}

// Parse parses and validates a policy in YAML or JSON (JSON is read as the
// YAML it also is). Every error is a *PolicyError naming the line and the
// field; on error nothing else is returned.
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxPolicyBytes {
		return nil, &PolicyError{Msg: fmt.Sprintf("file is larger than %d KiB; split the policy or remove unused rules", MaxPolicyBytes>>10)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &PolicyError{Msg: "file is empty; write a policy as described in docs/netseg.md"}
	}
	if t := bytes.TrimSpace(data); t[0] == '{' && !json.Valid(t) {
		return nil, jsonSyntaxError(data)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, syntaxError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &PolicyError{Line: extra.Line, Msg: "a second YAML document; a policy file holds exactly one"}
	} else if !errors.Is(err, io.EOF) {
		return nil, syntaxError(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &PolicyError{Msg: "no policy document; write a policy as described in docs/netseg.md"}
	}
	if err := rejectAliases(&doc); err != nil {
		return nil, err
	}
	return parsePolicy(doc.Content[0])
}

// syntaxError turns a YAML decoder error into a *PolicyError, keeping the
// line the decoder reports ("yaml: line 3: ...").
func syntaxError(err error) error {
	msg := err.Error()
	line := 0
	if rest, ok := strings.CutPrefix(msg, "yaml: line "); ok {
		if n, tail, ok := strings.Cut(rest, ":"); ok {
			if v, e := strconv.Atoi(n); e == nil {
				line, msg = v, strings.TrimSpace(tail)
			}
		}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	return &PolicyError{Line: line, Msg: msg + "; fix the YAML/JSON syntax"}
}

// jsonSyntaxError locates a JSON syntax error: the YAML decoder reports
// some without a line.
func jsonSyntaxError(data []byte) error {
	var v any
	err := json.Unmarshal(data, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return &PolicyError{Msg: fmt.Sprintf("not valid JSON (%v); fix the JSON syntax", err)}
	}
	i := min(max(se.Offset-1, 0), int64(len(data)))
	line := 1 + bytes.Count(data[:i], []byte("\n"))
	col := int(i) - bytes.LastIndexByte(data[:i], '\n')
	return &PolicyError{Line: line, Column: col, Msg: fmt.Sprintf("column %d: %v; fix the JSON syntax", col, se)}
}

// rejectAliases refuses anchors, aliases and merge keys: a policy is read by
// auditors, and every rule must appear where it applies.
func rejectAliases(n *yaml.Node) error {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return &PolicyError{Line: n.Line, Msg: "YAML anchors and aliases are not allowed; write each rule out"}
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Tag == "!!merge" {
				return &PolicyError{Line: n.Content[i].Line, Msg: "YAML merge keys (<<) are not allowed; write each field out"}
			}
		}
	}
	for _, c := range n.Content {
		if err := rejectAliases(c); err != nil {
			return err
		}
	}
	return nil
}

func bad(n *yaml.Node, field, format string, args ...any) *PolicyError {
	e := &PolicyError{Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	return e
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!str":
			return "a string"
		case "!!int":
			return "a number"
		case "!!float":
			return "a decimal number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "null"
		}
		return "a scalar " + n.Tag
	}
	return "something else"
}

// fields splits a mapping node into its values by key, refusing unknown
// and repeated keys. A key whose value is null counts as absent.
func fields(n *yaml.Node, field string, known ...string) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, bad(n, field, "is %s; write a mapping with the fields %s", kindName(n), strings.Join(known, ", "))
	}
	out := make(map[string]*yaml.Node, len(known))
	seen := make(map[string]bool, len(known))
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			return nil, bad(k, field, "a key is %s; keys are field names (%s)", kindName(k), strings.Join(known, ", "))
		}
		name := join(field, k.Value)
		if !slices.Contains(known, k.Value) {
			return nil, bad(k, name, "unknown field; the fields here are %s", strings.Join(known, ", "))
		}
		if seen[k.Value] {
			return nil, bad(k, name, "given twice; keep one")
		}
		seen[k.Value] = true
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			continue
		}
		out[k.Value] = v
	}
	return out, nil
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func str(n *yaml.Node, field string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return "", bad(n, field, "is %s; write a string", kindName(n))
	}
	return n.Value, nil
}

func list(n *yaml.Node, field string) ([]*yaml.Node, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, bad(n, field, "is %s; write a list", kindName(n))
	}
	return n.Content, nil
}

func parsePolicy(root *yaml.Node) (*Policy, error) {
	f, err := fields(root, "", "version", "segments")
	if err != nil {
		return nil, err
	}
	v, ok := f["version"]
	if !ok {
		return nil, bad(root, "version", "missing; add \"version: %d\" at the top", FormatVersion)
	}
	if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || v.Value != strconv.Itoa(FormatVersion) {
		return nil, bad(v, "version", "is %q; this tradecore reads format version %d only", v.Value, FormatVersion)
	}
	sn, ok := f["segments"]
	if !ok {
		return nil, bad(root, "segments", "missing; list at least one segment (to remove segmentation run `tradecore netseg detach`)")
	}
	items, err := list(sn, "segments")
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, bad(sn, "segments", "empty; list at least one segment (to remove segmentation run `tradecore netseg detach`)")
	}
	if len(items) > MaxSegments {
		return nil, bad(sn, "segments", "%d segments; at most %d are supported", len(items), MaxSegments)
	}
	p := &Policy{Segments: make([]Segment, 0, len(items))}
	lines := make([]*yaml.Node, 0, len(items))
	for i, it := range items {
		s, err := parseSegment(it, fmt.Sprintf("segments[%d]", i))
		if err != nil {
			return nil, err
		}
		for j, o := range p.Segments {
			field := fmt.Sprintf("segments[%d]", i)
			switch {
			case o.Name == s.Name:
				return nil, bad(it, field+".name", "%q is also the name of segments[%d] (line %d); names are unique", s.Name, j, lines[j].Line)
			case o.Cgroup == s.Cgroup:
				return nil, bad(it, field+".cgroup", "%s is also the cgroup of segment %q (line %d); give each segment its own cgroup", s.Cgroup, o.Name, lines[j].Line)
			case inside(s.Cgroup, o.Cgroup), inside(o.Cgroup, s.Cgroup):
				return nil, bad(it, field+".cgroup", "%s and segment %q's cgroup %s are nested; nested segments are not supported (a process would be confined by both): use sibling cgroups", s.Cgroup, o.Name, o.Cgroup)
			}
		}
		p.Segments = append(p.Segments, s)
		lines = append(lines, it)
	}
	slices.SortFunc(p.Segments, func(a, b Segment) int { return strings.Compare(a.Name, b.Name) })
	if _, err := compile(p); err != nil {
		return nil, err
	}
	return p, nil
}

// inside reports whether cgroup path a lies strictly below b.
func inside(a, b string) bool {
	return strings.HasPrefix(a, b+"/")
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func parseSegment(n *yaml.Node, field string) (Segment, error) {
	f, err := fields(n, field, "name", "cgroup", "default", "allow", "deny")
	if err != nil {
		return Segment{}, err
	}
	var s Segment
	nn, ok := f["name"]
	if !ok {
		return s, bad(n, field+".name", "missing; name the segment (a-z, 0-9, '-', up to 32 characters)")
	}
	if s.Name, err = str(nn, field+".name"); err != nil {
		return s, err
	}
	if !validName(s.Name) {
		return s, bad(nn, field+".name", "%q is not a segment name; use 1 to 32 characters of a-z, 0-9 and '-', starting with a letter", s.Name)
	}
	cn, ok := f["cgroup"]
	if !ok {
		return s, bad(n, field+".cgroup", "missing; give the segment's cgroup v2 path, such as /tradecore/%s", s.Name)
	}
	if s.Cgroup, err = str(cn, field+".cgroup"); err != nil {
		return s, err
	}
	if err := checkCgroup(s.Cgroup); err != "" {
		return s, bad(cn, field+".cgroup", "%q %s", s.Cgroup, err)
	}
	s.Default = Deny
	if dn, ok := f["default"]; ok {
		d, err := str(dn, field+".default")
		if err != nil {
			return s, err
		}
		switch d {
		case "deny":
		case "allow":
			s.Default = Allow
		default:
			return s, bad(dn, field+".default", "is %q; write allow or deny", d)
		}
	}
	for _, kind := range []string{"allow", "deny"} {
		rn, ok := f[kind]
		if !ok {
			continue
		}
		items, err := list(rn, field+"."+kind)
		if err != nil {
			return s, err
		}
		rules := make([]Rule, 0, len(items))
		at := make([]*yaml.Node, 0, len(items))
		for i, it := range items {
			rf := fmt.Sprintf("%s.%s[%d]", field, kind, i)
			r, err := parseRule(it, rf)
			if err != nil {
				return s, err
			}
			for j, o := range rules {
				if sameRule(o, r) {
					return s, bad(it, rf, "same destination as %s[%d] (line %d); remove one", kind, j, at[j].Line)
				}
			}
			rules = append(rules, r)
			at = append(at, it)
		}
		slices.SortFunc(rules, Rule.Compare)
		if kind == "allow" {
			s.Allow = rules
		} else {
			s.Deny = rules
		}
	}
	if len(s.Allow)+len(s.Deny) > MaxRulesPerSegment {
		return s, bad(n, field, "%d rules; at most %d per segment are supported", len(s.Allow)+len(s.Deny), MaxRulesPerSegment)
	}
	if s.Allow == nil {
		s.Allow = []Rule{}
	}
	if s.Deny == nil {
		s.Deny = []Rule{}
	}
	return s, nil
}

func sameRule(a, b Rule) bool {
	a.Note, b.Note = "", ""
	return a.Compare(b) == 0
}

// checkCgroup returns why p is not an acceptable segment cgroup, or "".
func checkCgroup(p string) string {
	switch {
	case !strings.HasPrefix(p, "/"):
		return "is not absolute; write the path inside the cgroup v2 hierarchy starting with /, as /proc/PID/cgroup shows it after \"0::\""
	case p == "/":
		return "is the root cgroup, which holds every process on the machine; give the service its own cgroup"
	case path.Clean(p) != p:
		return fmt.Sprintf("is not a clean path; write %s", path.Clean(p))
	case len(p) > 512:
		return "is longer than 512 bytes"
	}
	for _, part := range strings.Split(p[1:], "/") {
		if part == "." || part == ".." {
			return "has a . or .. component; write the resolved path"
		}
	}
	for _, c := range p {
		if !unicode.IsPrint(c) || c == ' ' {
			return "has a space or control character; cgroup names here must be printable without spaces"
		}
	}
	return ""
}

func parseRule(n *yaml.Node, field string) (Rule, error) {
	f, err := fields(n, field, "cidr", "protocol", "ports", "note")
	if err != nil {
		return Rule{}, err
	}
	var r Rule
	cn, ok := f["cidr"]
	if !ok {
		return r, bad(n, field+".cidr", "missing; give the destination as a CIDR (10.0.0.0/8, 2001:db8::/32) or one address")
	}
	c, err := str(cn, field+".cidr")
	if err != nil {
		return r, err
	}
	if r.CIDR, err = parseCIDR(c); err != nil {
		return r, bad(cn, field+".cidr", "%v", err)
	}
	r.Protocol = AnyProtocol
	if pn, ok := f["protocol"]; ok {
		ps, err := str(pn, field+".protocol")
		if err != nil {
			return r, err
		}
		switch ps {
		case "tcp":
			r.Protocol = TCP
		case "udp":
			r.Protocol = UDP
		case "icmp":
			r.Protocol = ICMP
		case "any":
		default:
			return r, bad(pn, field+".protocol", "is %q; write tcp, udp, icmp or any", ps)
		}
	}
	if pn, ok := f["ports"]; ok {
		if r.Protocol == ICMP {
			return r, bad(pn, field+".ports", "ICMP has no ports; remove ports or set protocol to tcp, udp or any")
		}
		if r.Ports, err = parsePorts(pn, field+".ports"); err != nil {
			return r, err
		}
	}
	if nn, ok := f["note"]; ok {
		if r.Note, err = str(nn, field+".note"); err != nil {
			return r, err
		}
		if len(r.Note) > maxNoteLen {
			return r, bad(nn, field+".note", "longer than %d bytes; shorten it", maxNoteLen)
		}
		for _, c := range r.Note {
			if !unicode.IsPrint(c) {
				return r, bad(nn, field+".note", "has a control character; notes are one line of printable text")
			}
		}
	}
	return r, nil
}

var mapped4 = netip.MustParsePrefix("::ffff:0:0/96")

func parseCIDR(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return p, fmt.Errorf("%q is not a CIDR; write it as 10.0.0.0/8 or 2001:db8::/32", s)
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return p, fmt.Errorf("%q is not an address or CIDR; write it as 10.0.0.5, 10.0.0.0/8 or 2001:db8::/32", s)
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() || (p.Bits() >= 96 && mapped4.Contains(p.Addr())) {
		a := p.Addr().Unmap()
		return p, fmt.Errorf("%q is an IPv4-mapped IPv6 range; write the IPv4 form %s (mapped destinations are checked as IPv4)", s, netip.PrefixFrom(a, max(p.Bits()-96, 0)).Masked())
	}
	if m := p.Masked(); m != p {
		return p, fmt.Errorf("%q has host bits set; write %s", s, m)
	}
	return p, nil
}

func parsePorts(n *yaml.Node, field string) ([]PortRange, error) {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
		if len(items) == 0 {
			return nil, bad(n, field, "empty list; remove ports to match every port, or list some")
		}
	}
	var out []PortRange
	for i, it := range items {
		f := field
		if n.Kind == yaml.SequenceNode {
			f = fmt.Sprintf("%s[%d]", field, i)
		}
		if it.Kind != yaml.ScalarNode || (it.Tag != "!!int" && it.Tag != "!!str") {
			return nil, bad(it, f, "is %s; write a port (443) or a range (\"8000-8999\")", kindName(it))
		}
		lo, hi, ok := strings.Cut(it.Value, "-")
		if !ok {
			hi = lo
		}
		a, errA := port(lo)
		b, errB := port(hi)
		if errA != nil || errB != nil || a > b {
			return nil, bad(it, f, "%q is not a port or range; write 1 to 65535, or LO-HI with LO <= HI", it.Value)
		}
		out = append(out, PortRange{a, b})
	}
	slices.SortFunc(out, func(a, b PortRange) int { return int(a.Lo) - int(b.Lo) })
	merged := out[:1]
	for _, r := range out[1:] {
		last := &merged[len(merged)-1]
		if uint32(r.Lo) <= uint32(last.Hi)+1 {
			last.Hi = max(last.Hi, r.Hi)
			continue
		}
		merged = append(merged, r)
	}
	return merged, nil
}

func port(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '+' || (len(s) > 1 && s[0] == '0') {
		return 0, errors.New("not a port")
	}
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 {
		return 0, errors.New("not a port")
	}
	return uint16(v), nil
}
