package netseg

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

// The policy table the kernel programs search is one LPM trie shared by all
// segments. A key is the segment's cgroup id, the address family and the
// destination prefix; the value of the longest matching key lists every rule
// whose CIDR contains that prefix, deny rules first, so the first rule that
// matches the protocol and port decides, and the segment's default decides
// when none does. Every (segment, family) has a root entry (the /0 prefix),
// so a destination of a segment in the policy always finds a value; a
// segment missing from the table (a cgroup whose program outlived its
// policy) finds none and the programs deny.

const (
	maxEntries = 32 // rules in one table value
	// valueSize is the size of a table value: default, count, 2 bytes of
	// padding, then maxEntries entries of 8 bytes: low port, high port
	// (u16, host order), protocol (0 = any), action, 2 bytes of padding.
	valueSize = 4 + 8*maxEntries
	// keySize is the size of a table key: prefix length (u32), then the
	// data the prefix covers: cgroup id (u64), family (u32), address (16
	// bytes, network order; IPv4 in the first 4).
	keySize = 4 + 8 + 4 + 16
	// keyFixedBits is the part of every prefix that covers cgroup id and
	// family.
	keyFixedBits = 8*8 + 4*8
	// maxTable bounds the number of table entries of one policy.
	maxTable = 16384
)

// IANA protocol numbers as the kernel reports them.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// family codes in table keys and destination counters.
const (
	family4 = 4
	family6 = 6
)

type tableEntry struct {
	segment string
	prefix  netip.Prefix // IPv4 prefixes for family 4
	value   [valueSize]byte
}

// compile turns a validated policy into its table. It fails, with a
// *PolicyError, when a value would need more than maxEntries rules or the
// table more than maxTable entries.
func compile(p *Policy) ([]tableEntry, error) {
	var out []tableEntry
	for _, s := range p.Segments {
		for _, fam := range []int{family4, family6} {
			prefixes := []netip.Prefix{netip.PrefixFrom(zeroAddr(fam), 0)}
			for _, r := range slices.Concat(s.Deny, s.Allow) {
				if familyOf(r.CIDR.Addr()) == fam {
					prefixes = append(prefixes, r.CIDR)
				}
			}
			slices.SortFunc(prefixes, func(a, b netip.Prefix) int {
				if c := a.Addr().Compare(b.Addr()); c != 0 {
					return c
				}
				return a.Bits() - b.Bits()
			})
			prefixes = slices.Compact(prefixes)
			for _, pre := range prefixes {
				e := tableEntry{segment: s.Name, prefix: pre}
				e.value[0] = byte(s.Default)
				n := 0
				add := func(r Rule, act Action) error {
					if r.CIDR.Bits() > pre.Bits() || !r.CIDR.Contains(pre.Addr()) {
						return nil
					}
					ranges := r.Ports
					if len(ranges) == 0 {
						ranges = []PortRange{{0, 65535}}
					}
					for _, pr := range ranges {
						ent := entryBytes(pr, kernelProto(r.Protocol, fam), act)
						if dupEntry(e.value[4:4+8*n], ent) {
							continue
						}
						if n == maxEntries {
							return &PolicyError{Field: "segments", Msg: fmt.Sprintf(
								"segment %q: destinations in %s are covered by more than %d rules and port ranges; merge overlapping rules", s.Name, pre, maxEntries)}
						}
						copy(e.value[4+8*n:], ent[:])
						n++
					}
					return nil
				}
				for _, r := range s.Deny {
					if err := add(r, Deny); err != nil {
						return nil, err
					}
				}
				for _, r := range s.Allow {
					if err := add(r, Allow); err != nil {
						return nil, err
					}
				}
				e.value[1] = byte(n)
				out = append(out, e)
			}
		}
	}
	if len(out) > maxTable {
		return nil, &PolicyError{Field: "segments", Msg: fmt.Sprintf("the policy needs %d kernel table entries; at most %d are supported: merge rules", len(out), maxTable)}
	}
	return out, nil
}

func zeroAddr(fam int) netip.Addr {
	if fam == family4 {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return family4
	}
	return family6
}

func kernelProto(p Protocol, fam int) uint8 {
	if p == ICMP && fam == family6 {
		return protoICMPv6
	}
	return uint8(p)
}

func entryBytes(pr PortRange, proto uint8, act Action) [8]byte {
	var b [8]byte
	binary.NativeEndian.PutUint16(b[0:], pr.Lo)
	binary.NativeEndian.PutUint16(b[2:], pr.Hi)
	b[4] = proto
	b[5] = byte(act)
	return b
}

func dupEntry(entries []byte, ent [8]byte) bool {
	for i := 0; i+8 <= len(entries); i += 8 {
		if [8]byte(entries[i:i+8]) == ent {
			return true
		}
	}
	return false
}

// tableKey encodes the key of a table entry, or a lookup key (a full-length
// prefix), for the segment's cgroup id.
func tableKey(cgroupID uint64, pre netip.Prefix) [keySize]byte {
	var k [keySize]byte
	a := pre.Addr()
	fam := familyOf(a)
	binary.NativeEndian.PutUint32(k[0:], uint32(keyFixedBits+pre.Bits()))
	binary.NativeEndian.PutUint64(k[4:], cgroupID)
	binary.NativeEndian.PutUint32(k[12:], uint32(fam))
	if fam == family4 {
		a4 := a.As4()
		copy(k[16:], a4[:])
	} else {
		a16 := a.As16()
		copy(k[16:], a16[:])
	}
	return k
}

// evalValue is what the programs do with a table value.
func evalValue(v *[valueSize]byte, proto uint8, port uint16) Action {
	if proto != protoTCP && proto != protoUDP {
		port = 0
	}
	n := min(int(v[1]), maxEntries)
	for i := range n {
		e := v[4+8*i:]
		lo, hi := binary.NativeEndian.Uint16(e[0:]), binary.NativeEndian.Uint16(e[2:])
		if (e[4] == 0 || e[4] == proto) && port >= lo && port <= hi {
			return Action(e[5] & 1)
		}
	}
	return Action(v[0] & 1)
}
