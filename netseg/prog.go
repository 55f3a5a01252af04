package netseg

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// hook is one of the five places a segment's programs attach to its cgroup.
type hook uint8

const (
	hookConnect4 hook = iota // connect() of AF_INET TCP and UDP sockets
	hookConnect6             // connect() of AF_INET6 sockets (IPv4-mapped destinations too)
	hookSendmsg4             // sendto()/sendmsg() with an address, AF_INET UDP
	hookSendmsg6             // the same for AF_INET6 UDP
	hookEgress               // every packet leaving a socket of the cgroup: the backstop for raw sockets
	numHooks
)

var hookNames = [numHooks]string{"connect4", "connect6", "sendmsg4", "sendmsg6", "egress"}

func (h hook) String() string {
	if h < numHooks {
		return hookNames[h]
	}
	return fmt.Sprintf("hook(%d)", h)
}

func (h hook) attachType() ebpf.AttachType {
	return [numHooks]ebpf.AttachType{
		ebpf.AttachCGroupInet4Connect, ebpf.AttachCGroupInet6Connect,
		ebpf.AttachCGroupUDP4Sendmsg, ebpf.AttachCGroupUDP6Sendmsg,
		ebpf.AttachCGroupInetEgress,
	}[h]
}

func (h hook) programType() ebpf.ProgramType {
	if h == hookEgress {
		return ebpf.CGroupSKB
	}
	return ebpf.CGroupSockAddr
}

// sharedMaps are the maps every segment's programs use.
type sharedMaps struct {
	policy *ebpf.Map // array of maps, one slot: the current table (an LPM trie)
	totals *ebpf.Map // hash: counterKey -> u64, one entry per segment, hook and verdict
	dests  *ebpf.Map // LRU hash: destKey -> u64, per destination
}

// Offsets into struct bpf_sock_addr, struct __sk_buff and struct bpf_sock
// (include/uapi/linux/bpf.h).
const (
	saUserIP4  = 4
	saUserIP6  = 8
	saUserPort = 24
	saProtocol = 36

	skbProtocol = 16
	skbSk       = 168

	bpfSockType     = 8
	bpfSockProtocol = 12
	bpfSockState    = 72

	tcpSynSent = 2

	sockStream = 1
)

// Stack layout of the programs (offsets from the frame pointer R10).
const (
	stKey       = -32 // table key, keySize bytes: prefixlen, cgroup id, family, address
	stKeyFam    = stKey + 12
	stKeyAddr   = stKey + 16
	stZero      = -40  // u32 0: the policy slot
	stDest      = -72  // destination counter key, 32 bytes
	stTotal     = -88  // total counter key, 16 bytes
	stOne       = -96  // u64 1 for inserting a destination counter
	stPkt       = -136 // packet header buffer, 40 bytes
	stL4        = -144 // 4 bytes of transport header
	stStreamSyn = -148 // u8 1: the packet is a stream socket's SYN
	stLowest    = -152
	destKeyLen  = 32
)

// Registers kept across helper calls.
const (
	rCtx     = asm.R6
	rPort    = asm.R7 // destination port, host order, 0 when none
	rProto   = asm.R8 // IANA protocol number
	rVerdict = asm.R9
)

// Destination counter key layout (destKeyLen bytes): cgroup id u64, family
// u8, verdict u8, protocol u8, hook u8, port u16 (host order), 2 bytes of
// padding, address 16 bytes.

func htons(v uint16) int32 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return int32(binary.NativeEndian.Uint16(b[:]))
}

func htonl(v uint32) int32 {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return int32(binary.NativeEndian.Uint32(b[:]))
}

// cgroupWords splits a cgroup id into the two u32 words stored at key
// offsets 0 and 4, so the bytes match binary.NativeEndian.PutUint64.
func cgroupWords(id uint64) (int64, int64) {
	var b [8]byte
	binary.NativeEndian.PutUint64(b[:], id)
	return int64(int32(binary.NativeEndian.Uint32(b[0:]))), int64(int32(binary.NativeEndian.Uint32(b[4:])))
}

// program builds the instructions of one hook for the segment whose cgroup
// has the given id. The id is built in: the kernel runs a cgroup's programs
// for sockets created in it wherever their process is now, while
// bpf_get_current_cgroup_id() would report the process's current cgroup.
func program(h hook, cgroupID uint64, m sharedMaps) asm.Instructions {
	lo, hi := cgroupWords(cgroupID)
	insns := asm.Instructions{asm.Mov.Reg(rCtx, asm.R1)}
	// Zero every stack slot a helper reads, then fill the fixed key fields.
	for off := int16(stLowest); off < 0; off += 8 {
		insns = append(insns, storeDWord(off, 0))
	}
	insns = append(insns,
		asm.StoreImm(asm.RFP, stKey+4, lo, asm.Word),
		asm.StoreImm(asm.RFP, stKey+8, hi, asm.Word),
		asm.Mov.Imm(rPort, 0),
		asm.Mov.Imm(rVerdict, 0),
	)
	switch h {
	case hookConnect4, hookSendmsg4:
		insns = append(insns, sockAddr4()...)
	case hookConnect6, hookSendmsg6:
		insns = append(insns, sockAddr6()...)
	case hookEgress:
		insns = append(insns, egress()...)
	}
	insns = append(insns, decide(m)...)
	insns = append(insns, count(h, lo, hi, m)...)
	insns = append(insns,
		asm.Mov.Reg(asm.R0, rVerdict).WithSymbol("return"),
		asm.And.Imm(asm.R0, 1),
		asm.Return(),
	)
	return insns
}

// setFamily4 and setFamily6 write the family and the full-length prefix
// into the key.
func setFamily(fam int) asm.Instructions {
	bits := 32
	if fam == family6 {
		bits = 128
	}
	return asm.Instructions{
		asm.StoreImm(asm.RFP, stKey, int64(keyFixedBits+bits), asm.Word),
		asm.StoreImm(asm.RFP, stKeyFam, int64(fam), asm.Word),
	}
}

// portFromCtx loads the destination port (network order in the low 16 bits)
// and the protocol; ports count only for TCP and UDP.
func portFromCtx() asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(rProto, rCtx, saProtocol, asm.Word),
		asm.LoadMem(rPort, rCtx, saUserPort, asm.Word),
		asm.HostTo(asm.BE, rPort, asm.Half),
		asm.JEq.Imm(rProto, protoTCP, "ports_done"),
		asm.JEq.Imm(rProto, protoUDP, "ports_done"),
		asm.Mov.Imm(rPort, 0),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("ports_done"), // no-op landing pad
	}
}

func sockAddr4() asm.Instructions {
	insns := setFamily(family4)
	insns = append(insns,
		asm.LoadMem(asm.R1, rCtx, saUserIP4, asm.Word),
		asm.StoreMem(asm.RFP, stKeyAddr, asm.R1, asm.Word),
	)
	return append(insns, portFromCtx()...)
}

// sockAddr6 checks an IPv4-mapped destination (::ffff:a.b.c.d, which the
// kernel sends as IPv4) as the IPv4 address it maps.
func sockAddr6() asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R1, rCtx, saUserIP6, asm.Word),
		asm.JNE.Imm32(asm.R1, 0, "v6"),
		asm.LoadMem(asm.R1, rCtx, saUserIP6+4, asm.Word),
		asm.JNE.Imm32(asm.R1, 0, "v6"),
		asm.LoadMem(asm.R1, rCtx, saUserIP6+8, asm.Word),
		asm.JNE.Imm32(asm.R1, htonl(0xffff), "v6"),
	}
	insns = append(insns, setFamily(family4)...)
	insns = append(insns,
		asm.LoadMem(asm.R1, rCtx, saUserIP6+12, asm.Word),
		asm.StoreMem(asm.RFP, stKeyAddr, asm.R1, asm.Word),
		asm.Ja.Label("addr_done"),
	)
	v6 := setFamily(family6)
	v6[0] = v6[0].WithSymbol("v6")
	insns = append(insns, v6...)
	for i := int16(0); i < 16; i += 4 {
		insns = append(insns,
			asm.LoadMem(asm.R1, rCtx, saUserIP6+i, asm.Word),
			asm.StoreMem(asm.RFP, stKeyAddr+i, asm.R1, asm.Word),
		)
	}
	pc := portFromCtx()
	pc[0] = pc[0].WithSymbol("addr_done")
	return append(insns, pc...)
}

// egress checks every packet leaving a socket of the cgroup, except those of
// a TCP stream socket once it has left SYN_SENT (its connect() hook checked
// the destination; accepted connections answer their clients). It parses the
// IPv4 or IPv6 header the packet really carries (for raw sockets with
// IP_HDRINCL, the header the sender wrote, not the address it routed by),
// then the ports of TCP and UDP. Malformed packets are denied.
func egress() asm.Instructions {
	insns := asm.Instructions{
		// A TCP stream socket past SYN_SENT sends only packets of a
		// connection its connect() hook checked, or one it accepted:
		// pass them without parsing. Its SYN is checked again here, but
		// only counted when denied.
		asm.LoadMem(asm.R1, rCtx, skbSk, asm.DWord),
		asm.JEq.Imm(asm.R1, 0, "parse"),
		asm.FnSkFullsock.Call(),
		asm.JEq.Imm(asm.R0, 0, "parse"),
		asm.LoadMem(asm.R1, asm.R0, bpfSockType, asm.Word),
		asm.JNE.Imm(asm.R1, sockStream, "parse"),
		asm.LoadMem(asm.R1, asm.R0, bpfSockProtocol, asm.Word),
		asm.JNE.Imm(asm.R1, protoTCP, "parse"),
		asm.LoadMem(asm.R1, asm.R0, bpfSockState, asm.Word),
		asm.JEq.Imm(asm.R1, tcpSynSent, "stream_syn"),
		asm.Mov.Imm(asm.R0, 1),
		asm.Return(),
		asm.StoreImm(asm.RFP, stStreamSyn, 1, asm.Byte).WithSymbol("stream_syn"),
		asm.LoadMem(asm.R1, rCtx, skbProtocol, asm.Word).WithSymbol("parse"),
		asm.JEq.Imm(asm.R1, htons(0x0800), "ip4"),
		asm.JEq.Imm(asm.R1, htons(0x86dd), "ip6"),
		asm.Ja.Label("deny"),
	}
	load := func(off asm.Register, offImm int32, useReg bool, stackOff int16, n int32) asm.Instructions {
		var i asm.Instructions
		i = append(i, asm.Mov.Reg(asm.R1, rCtx))
		if useReg {
			i = append(i, asm.Mov.Reg(asm.R2, off))
			if offImm != 0 {
				i = append(i, asm.Add.Imm(asm.R2, offImm))
			}
		} else {
			i = append(i, asm.Mov.Imm(asm.R2, offImm))
		}
		return append(i,
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, int32(stackOff)),
			asm.Mov.Imm(asm.R4, n),
			asm.FnSkbLoadBytes.Call(),
			asm.JNE.Imm(asm.R0, 0, "deny"),
		)
	}
	// IPv4: 20-byte header; rVerdict holds the header length until the
	// transport header is read.
	ip4 := load(asm.R0, 0, false, stPkt, 20)
	ip4[0] = ip4[0].WithSymbol("ip4")
	ip4 = append(ip4, setFamily(family4)...)
	ip4 = append(ip4,
		asm.LoadMem(asm.R1, asm.RFP, stPkt, asm.Byte),
		asm.Mov.Reg(asm.R2, asm.R1),
		asm.RSh.Imm(asm.R2, 4),
		asm.JNE.Imm(asm.R2, 4, "deny"),
		asm.And.Imm(asm.R1, 0x0f),
		asm.LSh.Imm(asm.R1, 2),
		asm.JLT.Imm(asm.R1, 20, "deny"),
		asm.Mov.Reg(rVerdict, asm.R1),
		asm.LoadMem(rProto, asm.RFP, stPkt+9, asm.Byte),
		asm.LoadMem(asm.R1, asm.RFP, stPkt+16, asm.Word),
		asm.StoreMem(asm.RFP, stKeyAddr, asm.R1, asm.Word),
		// A later fragment carries no transport header: no port.
		asm.LoadMem(asm.R1, asm.RFP, stPkt+6, asm.Half),
		asm.HostTo(asm.BE, asm.R1, asm.Half),
		asm.And.Imm(asm.R1, 0x1fff),
		asm.JNE.Imm(asm.R1, 0, "l4_done"),
		asm.Ja.Label("l4"),
	)
	insns = append(insns, ip4...)
	// IPv6: fixed 40-byte header. A packet whose next header is an
	// extension header is checked with no port.
	ip6 := load(asm.R0, 0, false, stPkt, 40)
	ip6[0] = ip6[0].WithSymbol("ip6")
	ip6 = append(ip6, setFamily(family6)...)
	ip6 = append(ip6,
		asm.LoadMem(asm.R1, asm.RFP, stPkt, asm.Byte),
		asm.RSh.Imm(asm.R1, 4),
		asm.JNE.Imm(asm.R1, 6, "deny"),
		asm.Mov.Imm(rVerdict, 40),
		asm.LoadMem(rProto, asm.RFP, stPkt+6, asm.Byte),
	)
	for i := int16(0); i < 16; i += 4 {
		ip6 = append(ip6,
			asm.LoadMem(asm.R1, asm.RFP, stPkt+24+i, asm.Word),
			asm.StoreMem(asm.RFP, stKeyAddr+i, asm.R1, asm.Word),
		)
	}
	insns = append(insns, ip6...)
	// Transport header at offset rVerdict: ports for TCP and UDP.
	l4 := asm.Instructions{
		asm.JEq.Imm(rProto, protoTCP, "l4_ports").WithSymbol("l4"),
		asm.JEq.Imm(rProto, protoUDP, "l4_ports"),
		asm.Ja.Label("l4_done"),
	}
	ports := load(rVerdict, 0, true, stL4, 4)
	ports[0] = ports[0].WithSymbol("l4_ports")
	l4 = append(l4, ports...)
	l4 = append(l4,
		asm.LoadMem(rPort, asm.RFP, stL4+2, asm.Half),
		asm.HostTo(asm.BE, rPort, asm.Half),
	)
	insns = append(insns, l4...)
	insns = append(insns,
		asm.Mov.Imm(rVerdict, 0).WithSymbol("l4_done"),
		asm.Ja.Label("check"),
		// Malformed or not IP: deny, uncounted (there is no destination
		// to count it against).
		asm.Mov.Imm(asm.R0, 0).WithSymbol("deny"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("check"), // landing pad
	)
	return insns
}

// decide looks the key up in the current table and scans the value's rules;
// rVerdict gets the verdict. No table, or no entry for this cgroup, denies.
func decide(m sharedMaps) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMapPtr(asm.R1, m.policy.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stZero),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "no_policy"),
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "no_policy"),
		asm.LoadMem(rVerdict, asm.R0, 0, asm.Byte),
		asm.LoadMem(asm.R4, asm.R0, 1, asm.Byte),
	}
	for i := range maxEntries {
		next := fmt.Sprintf("next_%d", i)
		off := int16(4 + 8*i)
		insns = append(insns,
			asm.JLE.Imm(asm.R4, int32(i), "decided"),
			asm.LoadMem(asm.R1, asm.R0, off+4, asm.Byte),
			asm.JEq.Imm(asm.R1, 0, fmt.Sprintf("port_%d", i)),
			asm.JNE.Reg(asm.R1, rProto, next),
			asm.LoadMem(asm.R1, asm.R0, off, asm.Half).WithSymbol(fmt.Sprintf("port_%d", i)),
			asm.JGT.Reg(asm.R1, rPort, next),
			asm.LoadMem(asm.R1, asm.R0, off+2, asm.Half),
			asm.JLT.Reg(asm.R1, rPort, next),
			asm.LoadMem(rVerdict, asm.R0, off+5, asm.Byte),
			asm.Ja.Label("decided"),
		)
		insns = append(insns, asm.Mov.Imm(asm.R1, 0).WithSymbol(next)) // landing pad
	}
	insns = append(insns,
		asm.Ja.Label("decided"),
		asm.Mov.Imm(rVerdict, 0).WithSymbol("no_policy"),
		asm.And.Imm(rVerdict, 1).WithSymbol("decided"),
	)
	return insns
}

// count adds one to the segment's total for this hook and verdict, and to
// the destination's counter (inserting it when new).
func count(h hook, lo, hi int64, m sharedMaps) asm.Instructions {
	var insns asm.Instructions
	if h == hookEgress {
		// An allowed SYN was counted by the connect hook.
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.RFP, stStreamSyn, asm.Byte),
			asm.JEq.Imm(asm.R1, 0, "count"),
			asm.JEq.Imm(rVerdict, 1, "return"),
		)
	}
	return append(insns, asm.Instructions{
		// Totals: cgroup id, hook, verdict.
		asm.StoreImm(asm.RFP, stTotal, lo, asm.Word).WithSymbol("count"),
		asm.StoreImm(asm.RFP, stTotal+4, hi, asm.Word),
		asm.StoreImm(asm.RFP, stTotal+8, int64(h), asm.Byte),
		asm.StoreMem(asm.RFP, stTotal+9, rVerdict, asm.Byte),
		asm.LoadMapPtr(asm.R1, m.totals.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stTotal),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "dest"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		// Destination: cgroup id, family, verdict, protocol, hook, port,
		// address.
		asm.StoreImm(asm.RFP, stDest, lo, asm.Word).WithSymbol("dest"),
		asm.StoreImm(asm.RFP, stDest+4, hi, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, stKeyFam, asm.Word),
		asm.StoreMem(asm.RFP, stDest+8, asm.R1, asm.Byte),
		asm.StoreMem(asm.RFP, stDest+9, rVerdict, asm.Byte),
		asm.StoreMem(asm.RFP, stDest+10, rProto, asm.Byte),
		asm.StoreImm(asm.RFP, stDest+11, int64(h), asm.Byte),
		asm.StoreMem(asm.RFP, stDest+12, rPort, asm.Half),
		asm.LoadMem(asm.R1, asm.RFP, stKeyAddr, asm.DWord),
		asm.StoreMem(asm.RFP, stDest+16, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, stKeyAddr+8, asm.DWord),
		asm.StoreMem(asm.RFP, stDest+24, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, m.dests.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stDest),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "dest_new"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Ja.Label("return"),
		storeDWord(stOne, 1).WithSymbol("dest_new"),
		asm.LoadMapPtr(asm.R1, m.dests.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stDest),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, stOne),
		asm.Mov.Imm(asm.R4, 1), // BPF_NOEXIST
		asm.FnMapUpdateElem.Call(),
	}...)
}

// storeDWord stores a sign-extended 32-bit immediate as a u64 on the stack
// (asm.StoreImm refuses DWord, which the kernel accepts).
func storeDWord(off int16, v int32) asm.Instruction {
	return asm.Instruction{OpCode: asm.StoreImmOp(asm.DWord), Dst: asm.RFP, Offset: off, Constant: int64(v)}
}
