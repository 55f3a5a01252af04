package netseg

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Policy is a parsed, validated segmentation policy: plain data in a
// canonical order, so two policies that mean the same compare equal, encode
// to the same bytes (MarshalJSON) and have the same Digest. Parse and Load
// make one; Enforcer.Apply puts one in force. The format is specified in
// docs/netseg.md.
type Policy struct {
	// Segments are sorted by Name. Names and cgroups are unique and no
	// segment's cgroup lies inside another's.
	Segments []Segment
}

// Segment confines the processes of one cgroup (and of every cgroup below
// it) to the destinations its rules allow.
type Segment struct {
	// Name is 1 to 32 characters of a-z, 0-9 and '-', starting with a
	// letter. It names the segment in pins, metrics and audit records.
	Name string
	// Cgroup is the segment's cgroup as a path inside the cgroup v2
	// hierarchy ("/tradecore/payments"; what /proc/PID/cgroup shows after
	// "0::"). Never "/": the root cgroup holds the whole machine.
	Cgroup string
	// Default is the verdict for a destination no rule matches.
	Default Action
	// Allow and Deny are the segment's rules in canonical order
	// (Rule.Compare), without duplicates. A destination any Deny rule
	// matches is denied; otherwise one any Allow rule matches is allowed;
	// otherwise Default applies.
	Allow, Deny []Rule
}

// Action is a verdict: Deny or Allow.
type Action uint8

// The two verdicts. Their values are the ones the kernel programs return.
const (
	Deny  Action = 0
	Allow Action = 1
)

func (a Action) String() string {
	if a == Allow {
		return "allow"
	}
	return "deny"
}

// Protocol selects the transport a rule matches.
type Protocol uint8

// Protocols a rule can name. Any matches every protocol; ICMP means ICMP for
// IPv4 destinations and ICMPv6 for IPv6 ones.
const (
	AnyProtocol Protocol = 0
	TCP         Protocol = 6
	UDP         Protocol = 17
	ICMP        Protocol = 1
)

func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case ICMP:
		return "icmp"
	}
	return "any"
}

// PortRange is an inclusive range of destination ports, 1 ≤ Lo ≤ Hi ≤ 65535.
type PortRange struct{ Lo, Hi uint16 }

func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// Rule matches destinations inside one CIDR, for one protocol and, for TCP
// and UDP, a set of ports.
type Rule struct {
	// CIDR is masked (no host bits). IPv4 destinations are IPv4 prefixes:
	// an IPv4-mapped IPv6 destination (::ffff:a.b.c.d) is checked as the
	// IPv4 address it maps, so policies never name ::ffff:0:0/96.
	CIDR netip.Prefix
	// Protocol is AnyProtocol, TCP, UDP or ICMP.
	Protocol Protocol
	// Ports are sorted, merged ranges; empty means every port (and, for
	// AnyProtocol, every protocol, ports or not). A rule with ports matches
	// only packets that carry a port: TCP and UDP.
	Ports []PortRange
	// Note is the operator's free text; it has no effect.
	Note string
}

// String is the rule in the canonical one-line form used by Diff:
// "tcp 10.0.0.0/8 ports 443,8000-8999".
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.Protocol.String())
	b.WriteByte(' ')
	b.WriteString(r.CIDR.String())
	if len(r.Ports) > 0 {
		b.WriteString(" ports ")
		for i, pr := range r.Ports {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(pr.String())
		}
	}
	if r.Note != "" {
		b.WriteString(" # ")
		b.WriteString(r.Note)
	}
	return b.String()
}

// Compare orders rules canonically: IPv4 before IPv6, then by address,
// prefix length, protocol, ports and note.
func (r Rule) Compare(o Rule) int {
	if c := compareIs4(r.CIDR.Addr(), o.CIDR.Addr()); c != 0 {
		return c
	}
	if c := r.CIDR.Addr().Compare(o.CIDR.Addr()); c != 0 {
		return c
	}
	if c := r.CIDR.Bits() - o.CIDR.Bits(); c != 0 {
		return c
	}
	if c := int(r.Protocol) - int(o.Protocol); c != 0 {
		return c
	}
	if c := slices.CompareFunc(r.Ports, o.Ports, func(a, b PortRange) int {
		if a.Lo != b.Lo {
			return int(a.Lo) - int(b.Lo)
		}
		return int(a.Hi) - int(b.Hi)
	}); c != 0 {
		return c
	}
	return strings.Compare(r.Note, o.Note)
}

func compareIs4(a, b netip.Addr) int {
	switch {
	case a.Is4() == b.Is4():
		return 0
	case a.Is4():
		return -1
	}
	return 1
}

// matches reports whether the rule covers a destination. port is 0 for
// packets without ports (ICMP, other protocols, later fragments).
func (r Rule) matches(addr netip.Addr, proto Protocol, port uint16) bool {
	if !r.CIDR.Contains(addr) {
		return false
	}
	if r.Protocol != AnyProtocol && r.Protocol != proto {
		return false
	}
	if len(r.Ports) == 0 {
		return true
	}
	for _, pr := range r.Ports {
		if port >= pr.Lo && port <= pr.Hi {
			return true
		}
	}
	return false
}

// Segment returns the segment named name, or false.
func (p *Policy) Segment(name string) (Segment, bool) {
	i, ok := slices.BinarySearchFunc(p.Segments, name, func(s Segment, n string) int { return strings.Compare(s.Name, n) })
	if !ok {
		return Segment{}, false
	}
	return p.Segments[i], true
}

// Decide is the policy's verdict for a process of the segment connecting or
// sending to addr (IPv4-mapped IPv6 addresses count as IPv4) with the given
// protocol and destination port (0 when the packet has none). It is the
// specification the kernel programs implement, evaluated in Go.
func (s *Segment) Decide(addr netip.Addr, proto Protocol, port uint16) Action {
	addr = addr.Unmap()
	if proto != TCP && proto != UDP {
		port = 0
	}
	for _, r := range s.Deny {
		if r.matches(addr, proto, port) {
			return Deny
		}
	}
	for _, r := range s.Allow {
		if r.matches(addr, proto, port) {
			return Allow
		}
	}
	return s.Default
}

// The canonical JSON form: the file format's field names, every field
// present, in the canonical order.
type policyJSON struct {
	Version  int           `json:"version"`
	Segments []segmentJSON `json:"segments"`
}

type segmentJSON struct {
	Name    string     `json:"name"`
	Cgroup  string     `json:"cgroup"`
	Default string     `json:"default"`
	Allow   []ruleJSON `json:"allow"`
	Deny    []ruleJSON `json:"deny"`
}

type ruleJSON struct {
	CIDR     string   `json:"cidr"`
	Protocol string   `json:"protocol"`
	Ports    []string `json:"ports,omitempty"`
	Note     string   `json:"note,omitempty"`
}

// FormatVersion is the policy file format version this package reads.
const FormatVersion = 1

// MarshalJSON encodes the policy canonically: the same policy always gives
// the same bytes, which Parse reads back to an equal Policy.
func (p *Policy) MarshalJSON() ([]byte, error) {
	out := policyJSON{Version: FormatVersion, Segments: make([]segmentJSON, 0, len(p.Segments))}
	for _, s := range p.Segments {
		out.Segments = append(out.Segments, segmentJSON{
			Name: s.Name, Cgroup: s.Cgroup, Default: s.Default.String(),
			Allow: rulesJSON(s.Allow), Deny: rulesJSON(s.Deny),
		})
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func rulesJSON(rs []Rule) []ruleJSON {
	out := make([]ruleJSON, 0, len(rs))
	for _, r := range rs {
		ports := make([]string, 0, len(r.Ports))
		for _, pr := range r.Ports {
			ports = append(ports, pr.String())
		}
		out = append(out, ruleJSON{CIDR: r.CIDR.String(), Protocol: r.Protocol.String(), Ports: ports, Note: r.Note})
	}
	return out
}

// Digest is "sha256:" and the hex SHA-256 of the canonical JSON encoding. It
// identifies the policy in status output and audit records.
func (p *Policy) Digest() string {
	b, err := p.MarshalJSON()
	if err != nil { // cannot happen: only strings and ints
		panic(err)
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Diff lists, one line each, what changes when policy from is replaced by
// to: "+ segment payments (cgroup /x, default deny)", "- segment trading",
// "~ payments default allow -> deny", "+ payments allow tcp 10.0.0.0/8 ports
// 443". A nil from or to is the empty policy. Equal policies give no lines.
func Diff(from, to *Policy) []string {
	if from == nil {
		from = &Policy{}
	}
	if to == nil {
		to = &Policy{}
	}
	var out []string
	i, j := 0, 0
	for i < len(from.Segments) || j < len(to.Segments) {
		switch {
		case j == len(to.Segments) || (i < len(from.Segments) && from.Segments[i].Name < to.Segments[j].Name):
			s := from.Segments[i]
			out = append(out, fmt.Sprintf("- segment %s (cgroup %s, default %s, %d allow, %d deny)", s.Name, s.Cgroup, s.Default, len(s.Allow), len(s.Deny)))
			i++
		case i == len(from.Segments) || to.Segments[j].Name < from.Segments[i].Name:
			s := to.Segments[j]
			out = append(out, fmt.Sprintf("+ segment %s (cgroup %s, default %s)", s.Name, s.Cgroup, s.Default))
			out = append(out, diffRules(s.Name, "allow", nil, s.Allow)...)
			out = append(out, diffRules(s.Name, "deny", nil, s.Deny)...)
			j++
		default:
			a, b := from.Segments[i], to.Segments[j]
			if a.Cgroup != b.Cgroup {
				out = append(out, fmt.Sprintf("~ %s cgroup %s -> %s", a.Name, a.Cgroup, b.Cgroup))
			}
			if a.Default != b.Default {
				out = append(out, fmt.Sprintf("~ %s default %s -> %s", a.Name, a.Default, b.Default))
			}
			out = append(out, diffRules(a.Name, "allow", a.Allow, b.Allow)...)
			out = append(out, diffRules(a.Name, "deny", a.Deny, b.Deny)...)
			i++
			j++
		}
	}
	return out
}

// diffRules merges two canonically sorted rule lists.
func diffRules(seg, kind string, from, to []Rule) []string {
	var out []string
	i, j := 0, 0
	for i < len(from) || j < len(to) {
		c := 0
		switch {
		case i == len(from):
			c = 1
		case j == len(to):
			c = -1
		default:
			c = from[i].Compare(to[j])
		}
		switch {
		case c < 0:
			out = append(out, fmt.Sprintf("- %s %s %s", seg, kind, from[i]))
			i++
		case c > 0:
			out = append(out, fmt.Sprintf("+ %s %s %s", seg, kind, to[j]))
			j++
		default:
			i++
			j++
		}
	}
	return out
}
