package netseg

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const examplePolicy = `# payment services reach only the processor and their database
version: 1
segments:
  - name: payments
    cgroup: /tradecore/payments
    default: deny
    allow:
      - cidr: 10.20.0.0/16
        protocol: tcp
        ports: [443, "8443", 9000-9100, 9050]
        note: payment processor
      - cidr: 10.30.0.5
        protocol: tcp
        ports: 5432
        note: own database
      - cidr: 2001:db8::/32
        protocol: tcp
        ports: 443
    deny:
      - cidr: 10.20.9.0/24
        note: processor's admin network
  - name: trading
    cgroup: /tradecore/trading
    default: allow
    deny:
      - cidr: 10.30.0.0/16
        note: customer and payment data
      - cidr: 10.20.0.0/16
`

func TestParseExample(t *testing.T) {
	p, err := Parse([]byte(examplePolicy))
	require.NoError(t, err)
	require.Len(t, p.Segments, 2)
	pay := p.Segments[0]
	assert.Equal(t, "payments", pay.Name)
	assert.Equal(t, Deny, pay.Default)
	require.Len(t, pay.Allow, 3)
	assert.Equal(t, "tcp 10.20.0.0/16 ports 443,8443,9000-9100 # payment processor", pay.Allow[0].String())
	assert.Equal(t, "tcp 10.30.0.5/32 ports 5432 # own database", pay.Allow[1].String())
	assert.Equal(t, "tcp 2001:db8::/32 ports 443", pay.Allow[2].String())

	cases := []struct {
		seg   string
		addr  string
		proto Protocol
		port  uint16
		want  Action
	}{
		{"payments", "10.20.1.1", TCP, 443, Allow},
		{"payments", "10.20.1.1", TCP, 9050, Allow},
		{"payments", "10.20.1.1", TCP, 80, Deny},
		{"payments", "10.20.1.1", UDP, 443, Deny},
		{"payments", "10.20.9.7", TCP, 443, Deny}, // deny wins
		{"payments", "::ffff:10.30.0.5", TCP, 5432, Allow},
		{"payments", "8.8.8.8", UDP, 53, Deny},
		{"payments", "2001:db8::1", TCP, 443, Allow},
		{"trading", "10.30.0.5", TCP, 5432, Deny},
		{"trading", "8.8.8.8", UDP, 53, Allow},
		{"trading", "10.20.0.1", ICMP, 0, Deny},
	}
	for _, c := range cases {
		s, ok := p.Segment(c.seg)
		require.True(t, ok)
		assert.Equal(t, c.want, s.Decide(netip.MustParseAddr(c.addr), c.proto, c.port), "%s %s %s %d", c.seg, c.addr, c.proto, c.port)
	}
}

func TestCanonicalRoundTrip(t *testing.T) {
	p, err := Parse([]byte(examplePolicy))
	require.NoError(t, err)
	b, err := p.MarshalJSON()
	require.NoError(t, err)
	q, err := Parse(b)
	require.NoError(t, err)
	assert.Equal(t, p, q)
	assert.Equal(t, p.Digest(), q.Digest())
	// Golden canonical form: the diffable value operators review.
	golden := filepath.Join("testdata", "example.canonical.json")
	if *rewrite {
		require.NoError(t, os.WriteFile(golden, b, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(b), "canonical form changed; review and rerun with -rewrite")

	// Order, spelling and duplicate ports do not change the value.
	shuffled := `{"segments": [
	  {"name": "trading", "cgroup": "/tradecore/trading", "default": "allow",
	   "deny": [{"cidr": "10.20.0.0/16"}, {"cidr": "10.30.0.0/16", "note": "customer and payment data"}]},
	  {"cgroup": "/tradecore/payments", "name": "payments",
	   "deny": [{"cidr": "10.20.9.0/24", "note": "processor's admin network"}],
	   "allow": [{"cidr": "2001:db8::/32", "protocol": "tcp", "ports": 443},
	             {"cidr": "10.30.0.5/32", "protocol": "tcp", "ports": "5432", "note": "own database"},
	             {"cidr": "10.20.0.0/16", "protocol": "tcp", "ports": ["9000-9050", 9051, "9052-9100", 8443, 443, 443], "note": "payment processor"}]}],
	  "version": 1}`
	r, err := Parse([]byte(shuffled))
	require.NoError(t, err)
	assert.Equal(t, p.Digest(), r.Digest())
	assert.Empty(t, Diff(p, r))
}

func TestDiff(t *testing.T) {
	a, err := Parse([]byte(examplePolicy))
	require.NoError(t, err)
	b, err := Parse([]byte(strings.NewReplacer(
		"ports: 5432", "ports: 5433",
		"default: allow", "default: deny",
		"  - name: trading", "  - name: reports\n    cgroup: /tradecore/reports\n  - name: trading",
	).Replace(examplePolicy)))
	require.NoError(t, err)
	assert.Equal(t, []string{
		"- payments allow tcp 10.30.0.5/32 ports 5432 # own database",
		"+ payments allow tcp 10.30.0.5/32 ports 5433 # own database",
		"+ segment reports (cgroup /tradecore/reports, default deny)",
		"~ trading default allow -> deny",
	}, Diff(a, b))
	assert.Equal(t, []string{"- segment reports (cgroup /tradecore/reports, default deny, 0 allow, 0 deny)"}, Diff(b, &Policy{Segments: []Segment{b.Segments[0], b.Segments[2]}}))
}

func TestParseErrors(t *testing.T) {
	seg := func(body string) string {
		return "version: 1\nsegments:\n  - name: pay\n    cgroup: /tc/pay\n" + body
	}
	cases := []struct {
		name, src, field string
		line             int
		msg              string
	}{
		{"empty", "", "", 0, "file is empty"},
		{"syntax", "version: 1\nsegments: [\n", "", 2, "fix the YAML/JSON syntax"},
		{"json-syntax", "{\"version\": 1,\n \"segments\": [}", "", 2, "column 15"},
		{"two-documents", "version: 1\n---\nversion: 1\n", "", 2, "second YAML document"},
		{"not-mapping", "- a\n", "", 1, "write a mapping"},
		{"no-version", "segments: []\n", "version", 1, "add \"version: 1\""},
		{"bad-version", "version: 2\nsegments: []\n", "version", 1, "format version 1 only"},
		{"unknown-top", "version: 1\nsegment: []\n", "segment", 2, "unknown field"},
		{"no-segments", "version: 1\n", "segments", 1, "list at least one segment"},
		{"empty-segments", "version: 1\nsegments: []\n", "segments", 2, "list at least one segment"},
		{"duplicate-key", "version: 1\nversion: 1\nsegments: []\n", "version", 2, "given twice"},
		{"alias", "version: 1\nsegments:\n  - &a {name: a, cgroup: /a}\n  - *a\n", "", 3, "anchors and aliases"},
		{"bad-name", "version: 1\nsegments:\n  - name: Pay\n    cgroup: /a\n", "segments[0].name", 3, "not a segment name"},
		{"no-cgroup", "version: 1\nsegments:\n  - name: pay\n", "segments[0].cgroup", 3, "missing"},
		{"root-cgroup", "version: 1\nsegments:\n  - name: pay\n    cgroup: /\n", "segments[0].cgroup", 4, "root cgroup"},
		{"relative-cgroup", "version: 1\nsegments:\n  - name: pay\n    cgroup: tc/pay\n", "segments[0].cgroup", 4, "not absolute"},
		{"unclean-cgroup", "version: 1\nsegments:\n  - name: pay\n    cgroup: /tc//pay/\n", "segments[0].cgroup", 4, "write /tc/pay"},
		{"dotdot-cgroup", "version: 1\nsegments:\n  - name: pay\n    cgroup: /../etc\n", "segments[0].cgroup", 4, "write /etc"},
		{"bad-default", seg("    default: maybe\n"), "segments[0].default", 5, "write allow or deny"},
		{"unknown-seg-field", seg("    defualt: deny\n"), "segments[0].defualt", 5, "unknown field"},
		{"allow-not-list", seg("    allow: {cidr: 10.0.0.0/8}\n"), "segments[0].allow", 5, "write a list"},
		{"no-cidr", seg("    allow:\n      - protocol: tcp\n"), "segments[0].allow[0].cidr", 6, "missing"},
		{"bad-cidr", seg("    allow:\n      - cidr: 10.0.0.0/33\n"), "segments[0].allow[0].cidr", 6, "not a CIDR"},
		{"host-bits", seg("    allow:\n      - cidr: 10.1.2.3/8\n"), "segments[0].allow[0].cidr", 6, "write 10.0.0.0/8"},
		{"mapped", seg("    allow:\n      - cidr: ::ffff:10.0.0.0/104\n"), "segments[0].allow[0].cidr", 6, "write the IPv4 form 10.0.0.0/8"},
		{"zone", seg("    allow:\n      - cidr: fe80::1%eth0\n"), "segments[0].allow[0].cidr", 6, "not an address"},
		{"cidr-number", seg("    allow:\n      - cidr: 10\n"), "segments[0].allow[0].cidr", 6, "write a string"},
		{"bad-proto", seg("    allow:\n      - cidr: 10.0.0.0/8\n        protocol: sctp\n"), "segments[0].allow[0].protocol", 7, "tcp, udp, icmp or any"},
		{"icmp-ports", seg("    allow:\n      - cidr: 10.0.0.0/8\n        protocol: icmp\n        ports: 1\n"), "segments[0].allow[0].ports", 8, "ICMP has no ports"},
		{"port-zero", seg("    allow:\n      - cidr: 10.0.0.0/8\n        ports: 0\n"), "segments[0].allow[0].ports", 7, "not a port"},
		{"port-big", seg("    allow:\n      - cidr: 10.0.0.0/8\n        ports: [1, 70000]\n"), "segments[0].allow[0].ports[1]", 7, "not a port"},
		{"port-range-backwards", seg("    allow:\n      - cidr: 10.0.0.0/8\n        ports: 9-1\n"), "segments[0].allow[0].ports", 7, "LO <= HI"},
		{"port-float", seg("    allow:\n      - cidr: 10.0.0.0/8\n        ports: 1.5\n"), "segments[0].allow[0].ports", 7, "decimal number"},
		{"ports-empty", seg("    allow:\n      - cidr: 10.0.0.0/8\n        ports: []\n"), "segments[0].allow[0].ports", 7, "empty list"},
		{"dup-rule", seg("    deny:\n      - cidr: 10.0.0.0/8\n      - cidr: 10.0.0.0/8\n        note: again\n"), "segments[0].deny[1]", 7, "same destination as deny[0] (line 6)"},
		{"dup-name", seg("  - name: pay\n    cgroup: /tc/other\n"), "segments[1].name", 5, "names are unique"},
		{"dup-cgroup", seg("  - name: other\n    cgroup: /tc/pay\n"), "segments[1].cgroup", 5, "its own cgroup"},
		{"nested-cgroup", seg("  - name: other\n    cgroup: /tc/pay/sub\n"), "segments[1].cgroup", 5, "nested"},
		{"note-control", seg("    allow:\n      - cidr: 10.0.0.0/8\n        note: \"a\\tb\"\n"), "segments[0].allow[0].note", 7, "control character"},
		{"too-many-entries", seg("    allow:\n" + manyPorts(40)), "segments", 0, "more than 32 rules"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := Parse([]byte(c.src))
			require.Error(t, err)
			assert.Nil(t, p)
			var pe *PolicyError
			require.ErrorAs(t, err, &pe)
			assert.ErrorIs(t, err, ErrPolicy)
			assert.Equal(t, c.field, pe.Field)
			assert.Equal(t, c.line, pe.Line)
			assert.Contains(t, pe.Msg, c.msg)
		})
	}
}

func manyPorts(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "      - {cidr: 10.0.0.0/8, protocol: tcp, ports: %d}\n", 2*i+1)
	}
	return b.String()
}

func TestLoadNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.yaml")
	require.NoError(t, os.WriteFile(path, []byte("version: 1\nsegments:\n  - name: x\n    cgroup: /x\n    default: open\n"), 0o600))
	_, err := Load(path)
	require.Error(t, err)
	assert.Equal(t, "netseg: policy "+path+" line 5 segments[0].default: is \"open\"; write allow or deny", err.Error())
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorContains(t, err, "check the -f path")
}

// TestCompiledTableMatchesSpec is a randomised differential test: the
// table the kernel programs search, looked up the way they do (longest
// prefix, then the value's rules in order), against Segment.Decide, the
// specification read straight off the rules.
func TestCompiledTableMatchesSpec(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for iter := range 300 {
		p := randomPolicy(r)
		table, err := compile(p)
		if err != nil {
			continue // too many overlapping rules for one value: refused, fine
		}
		for range 200 {
			s := p.Segments[r.IntN(len(p.Segments))]
			addr := randomAddr(r)
			proto := []Protocol{TCP, UDP, ICMP, 47}[r.IntN(4)]
			port := uint16(r.IntN(12))
			if r.IntN(4) == 0 {
				port = uint16(r.IntN(65536))
			}
			want := s.Decide(addr, proto, port)
			got := lookupTable(table, s.Name, addr, proto, port)
			if want != got {
				t.Fatalf("seed %d iteration %d: segment %s, %s %s port %d: table says %s, spec says %s\npolicy: %+v",
					seed, iter, s.Name, addr, proto, port, got, want, s)
			}
		}
	}
}

// lookupTable does in Go what the programs do in the kernel.
func lookupTable(table []tableEntry, seg string, addr netip.Addr, proto Protocol, port uint16) Action {
	addr = addr.Unmap()
	var best *tableEntry
	for i := range table {
		e := &table[i]
		if e.segment == seg && e.prefix.Contains(addr) && (best == nil || e.prefix.Bits() > best.prefix.Bits()) {
			best = e
		}
	}
	if best == nil {
		return Deny
	}
	kp := kernelProto(proto, familyOf(addr))
	return evalValue(&best.value, kp, port)
}

var addrPool = []string{"10.0.0.0", "10.0.1.0", "10.1.0.0", "192.168.0.0", "0.0.0.0", "2001:db8::", "2001:db8:1::", "::"}

func randomAddr(r *rand.Rand) netip.Addr {
	base := netip.MustParseAddr(addrPool[r.IntN(len(addrPool))])
	b := base.AsSlice()
	for i := len(b) - 2; i < len(b); i++ {
		b[i] = byte(r.IntN(4))
	}
	a, _ := netip.AddrFromSlice(b)
	if a.Is4() && r.IntN(5) == 0 {
		return netip.AddrFrom16(a.As16()) // IPv4-mapped
	}
	return a
}

func randomPolicy(r *rand.Rand) *Policy {
	p := &Policy{}
	for i := range 1 + r.IntN(3) {
		s := Segment{Name: fmt.Sprintf("s%d", i), Cgroup: fmt.Sprintf("/s%d", i), Default: Action(r.IntN(2)), Allow: []Rule{}, Deny: []Rule{}}
		for range r.IntN(8) {
			a := randomAddr(r).Unmap()
			bits := r.IntN(a.BitLen() + 1)
			if r.IntN(3) == 0 {
				bits = a.BitLen() - r.IntN(3)
			}
			ru := Rule{CIDR: netip.PrefixFrom(a, bits).Masked(), Protocol: []Protocol{AnyProtocol, TCP, UDP, ICMP}[r.IntN(4)]}
			if ru.Protocol != ICMP && r.IntN(2) == 0 {
				lo := uint16(1 + r.IntN(10))
				ru.Ports = []PortRange{{lo, lo + uint16(r.IntN(3))}}
			}
			if r.IntN(2) == 0 {
				s.Allow = append(s.Allow, ru)
			} else {
				s.Deny = append(s.Deny, ru)
			}
		}
		p.Segments = append(p.Segments, s)
	}
	return p
}
