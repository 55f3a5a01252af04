package netseg

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// attempt is one way of reaching a destination, made by a helper process.
type attempt struct {
	// Kind: tcp (connect), udp (sendto), udpconn (connect then write),
	// udpconn4on6 (an AF_INET6 socket connected with an AF_INET address),
	// raw (raw UDP socket, kernel-built IP header), rawicmp (raw ICMP echo),
	// hdrincl (raw socket with its own IPv4 header whose destination is
	// Addr, routed through Via), tfo (TCP Fast Open sendto).
	Kind string
	Addr string // destination; IPv6 for AF_INET6 sockets (::ffff:a.b.c.d for mapped)
	Port int
	Via  string `json:",omitempty"`
}

func (a attempt) String() string { return fmt.Sprintf("%s %s port %d", a.Kind, a.Addr, a.Port) }

type outcome struct {
	Attempt attempt
	Err     string // "" when it went through, else the errno name
}

func errName(err error) string {
	if err == nil {
		return ""
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		if n := unix.ErrnoName(en); n != "" {
			return n
		}
	}
	return err.Error()
}

func sockaddr(a attempt) (unix.Sockaddr, int, error) {
	ip, err := netip.ParseAddr(a.Addr)
	if err != nil {
		return nil, 0, err
	}
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: a.Port, Addr: ip.As4()}, unix.AF_INET, nil
	}
	return &unix.SockaddrInet6{Port: a.Port, Addr: ip.As16()}, unix.AF_INET6, nil
}

// open creates the socket of an attempt; do performs it.
func open(a attempt) (int, unix.Sockaddr, error) {
	sa, fam, err := sockaddr(a)
	if err != nil {
		return -1, nil, err
	}
	typ, proto := unix.SOCK_STREAM, 0
	switch a.Kind {
	case "udp", "udpconn":
		typ = unix.SOCK_DGRAM
	case "udpconn4on6":
		typ, fam = unix.SOCK_DGRAM, unix.AF_INET6
	case "raw":
		typ, proto = unix.SOCK_RAW, unix.IPPROTO_UDP
	case "rawicmp":
		typ, proto = unix.SOCK_RAW, unix.IPPROTO_ICMP
		if fam == unix.AF_INET6 {
			proto = unix.IPPROTO_ICMPV6
		}
	case "hdrincl":
		typ, proto = unix.SOCK_RAW, unix.IPPROTO_RAW
	case "tfo":
		typ |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(fam, typ|unix.SOCK_CLOEXEC, proto)
	return fd, sa, err
}

func do(fd int, sa unix.Sockaddr, a attempt) error {
	switch a.Kind {
	case "tcp":
		return unix.Connect(fd, sa)
	case "udp":
		return unix.Sendto(fd, []byte("netseg"), 0, sa)
	case "udpconn", "udpconn4on6":
		if err := unix.Connect(fd, sa); err != nil {
			return err
		}
		_, err := unix.Write(fd, []byte("netseg"))
		return err
	case "raw":
		hdr := make([]byte, 8+6)
		binary.BigEndian.PutUint16(hdr[0:], 40000)
		binary.BigEndian.PutUint16(hdr[2:], uint16(a.Port))
		binary.BigEndian.PutUint16(hdr[4:], uint16(len(hdr)))
		copy(hdr[8:], "netseg")
		raw := sa
		switch s := sa.(type) {
		case *unix.SockaddrInet4:
			raw = &unix.SockaddrInet4{Addr: s.Addr}
		case *unix.SockaddrInet6:
			raw = &unix.SockaddrInet6{Addr: s.Addr}
		}
		return unix.Sendto(fd, hdr, 0, raw)
	case "rawicmp":
		msg := []byte{8, 0, 0, 0, 0, 1, 0, 1} // echo request
		if _, ok := sa.(*unix.SockaddrInet6); ok {
			msg[0] = 128
		}
		sum := checksum(msg)
		binary.BigEndian.PutUint16(msg[2:], sum)
		switch s := sa.(type) {
		case *unix.SockaddrInet4:
			sa = &unix.SockaddrInet4{Addr: s.Addr}
		case *unix.SockaddrInet6:
			sa = &unix.SockaddrInet6{Addr: s.Addr}
		}
		return unix.Sendto(fd, msg, 0, sa)
	case "hdrincl":
		dst := netip.MustParseAddr(a.Addr).As4()
		via := netip.MustParseAddr(a.Via).As4()
		pkt := make([]byte, 20+8)
		pkt[0] = 0x45
		binary.BigEndian.PutUint16(pkt[2:], uint16(len(pkt)))
		pkt[8] = 64
		pkt[9] = unix.IPPROTO_UDP
		copy(pkt[12:], []byte{127, 0, 0, 1})
		copy(pkt[16:], dst[:])
		binary.BigEndian.PutUint16(pkt[10:], checksum(pkt[:20]))
		binary.BigEndian.PutUint16(pkt[20:], 40000)
		binary.BigEndian.PutUint16(pkt[22:], uint16(a.Port))
		binary.BigEndian.PutUint16(pkt[24:], 8)
		return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: via})
	case "tfo":
		err := unix.Sendto(fd, []byte("netseg"), unix.MSG_FASTOPEN, sa)
		if errors.Is(err, unix.EINPROGRESS) {
			return nil
		}
		return err
	}
	return fmt.Errorf("unknown attempt kind %q", a.Kind)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func try(a attempt) outcome {
	fd, sa, err := open(a)
	if err != nil {
		return outcome{a, "socket: " + errName(err)}
	}
	defer unix.Close(fd)
	return outcome{a, errName(do(fd, sa, a))}
}

type loopResult struct {
	Iterations, AllowedFailed, DeniedPassed int
	FirstProblem                            string
}

type agentArgs struct {
	Pin, Mount, Policy, RecordFile string
}

// fileRecorder appends records to a file, for the agent helper whose
// records the parent reads back.
type fileRecorder struct{ path string }

func (r fileRecorder) Record(_ context.Context, typ string, body any) (uint64, error) {
	b, err := json.Marshal(fakeRecord{Type: typ, Body: mustJSON(body)})
	if err != nil {
		return 0, err
	}
	f, err := os.OpenFile(r.path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	_, err = f.Write(append(b, '\n'))
	return 0, err
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// runHelper is the body of a re-executed test binary.
func runHelper(mode, args string) int {
	out := json.NewEncoder(os.Stdout)
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	switch mode {
	case "attempts":
		var as []attempt
		if err := json.Unmarshal([]byte(args), &as); err != nil {
			return fail(err)
		}
		res := make([]outcome, 0, len(as))
		for _, a := range as {
			res = append(res, try(a))
		}
		_ = out.Encode(res)
	case "moved":
		// Create the socket here, let the parent move this process to
		// another cgroup, then use it.
		var a attempt
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			return fail(err)
		}
		fd, sa, err := open(a)
		if err != nil {
			return fail(err)
		}
		fmt.Println("ready")
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return fail(err)
		}
		fresh := try(a)
		_ = out.Encode([]outcome{{a, errName(do(fd, sa, a))}, fresh})
	case "loop":
		// Alternate an allowed and a denied attempt until stdin closes.
		var as [2]attempt
		if err := json.Unmarshal([]byte(args), &as); err != nil {
			return fail(err)
		}
		stop := make(chan struct{})
		go func() {
			_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
			close(stop)
		}()
		fmt.Println("ready")
		var r loopResult
		for {
			select {
			case <-stop:
				_ = out.Encode(r)
				return 0
			default:
			}
			r.Iterations++
			if o := try(as[0]); o.Err != "" {
				r.AllowedFailed++
				if r.FirstProblem == "" {
					r.FirstProblem = fmt.Sprintf("allowed %s failed: %s", as[0], o.Err)
				}
			}
			if o := try(as[1]); o.Err != "EPERM" {
				r.DeniedPassed++
				if r.FirstProblem == "" {
					r.FirstProblem = fmt.Sprintf("denied %s gave %q", as[1], o.Err)
				}
			}
		}
	case "bench":
		var a struct {
			Attempt attempt
			N       int
		}
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			return fail(err)
		}
		lat := make([]int64, 0, a.N)
		for range a.N {
			fd, sa, err := open(a.Attempt)
			if err != nil {
				return fail(err)
			}
			t0 := time.Now()
			err = do(fd, sa, a.Attempt)
			lat = append(lat, int64(time.Since(t0)))
			unix.Close(fd)
			if err != nil {
				return fail(err)
			}
		}
		_ = out.Encode(lat)
	case "probe":
		err := Probe()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		_ = out.Encode(map[string]any{"err": msg, "no_root": errors.Is(err, ErrNoRoot), "no_bpf": errors.Is(err, ErrNoBPF)})
	case "start":
		var a struct {
			Optional bool
			Pin      string
		}
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			return fail(err)
		}
		r, err := StartDaemon(context.Background(), DaemonConfig{Config: Config{PinPath: a.Pin}, Optional: a.Optional})
		res := map[string]any{"err": "", "off": "", "no_root": errors.Is(err, ErrNoRoot)}
		if err != nil {
			res["err"] = err.Error()
		} else if r.Off != nil {
			res["off"] = r.Off.Error()
			res["no_root"] = errors.Is(r.Off, ErrNoRoot)
		}
		_ = out.Encode(res)
	case "agent":
		var a agentArgs
		if err := json.Unmarshal([]byte(args), &a); err != nil {
			return fail(err)
		}
		p, err := Parse([]byte(a.Policy))
		if err != nil {
			return fail(err)
		}
		e, err := New(Config{PinPath: a.Pin, CgroupMount: a.Mount, Recorder: fileRecorder{a.RecordFile}})
		if err != nil {
			return fail(err)
		}
		res, err := e.Apply(context.Background(), p)
		if err != nil {
			return fail(err)
		}
		_ = out.Encode(res)
	default:
		return fail(fmt.Errorf("unknown helper mode %q", mode))
	}
	return 0
}
