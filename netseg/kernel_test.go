package netseg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// targets are loopback listeners in the test process (which stays in its
// own cgroup, never a segment's).
type targets struct {
	tcp4a, tcp4b int // 127.0.0.2 (allowed to pay), 127.0.0.3 (denied to both)
	tcp6a, tcp6b int // ::1, allowed and denied ports
	udp4a, udp4b int
	udp6a, udp6b int
	udp4aConn    net.PacketConn
}

func listen(t testing.TB) *targets {
	t.Helper()
	tg := &targets{}
	tcp := func(addr string) int {
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		return l.Addr().(*net.TCPAddr).Port
	}
	udp := func(addr string) (int, net.PacketConn) {
		c, err := net.ListenPacket("udp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		return c.LocalAddr().(*net.UDPAddr).Port, c
	}
	tg.tcp4a, tg.tcp4b = tcp("127.0.0.2:0"), tcp("127.0.0.3:0")
	tg.tcp6a, tg.tcp6b = tcp("[::1]:0"), tcp("[::1]:0")
	tg.udp4a, tg.udp4aConn = udp("127.0.0.2:0")
	tg.udp4b, _ = udp("127.0.0.3:0")
	tg.udp6a, _ = udp("[::1]:0")
	tg.udp6b, _ = udp("[::1]:0")
	return tg
}

// testPolicy confines two segments: pay (default deny: 127.0.0.2, and ::1
// on the "a" ports) and trade (default allow, but never 127.0.0.3 or the
// "b" ports of ::1).
func testPolicy(env *kernelEnv, tg *targets, extra string) string {
	return fmt.Sprintf(`version: 1
segments:
  - name: pay
    cgroup: %[1]s/pay
    default: deny
    allow:
      - cidr: 127.0.0.2
        note: processor and own database
      - cidr: ::1
        protocol: tcp
        ports: [%[2]d]
      - cidr: ::1
        protocol: udp
        ports: [%[3]d]
%[6]s
  - name: trade
    cgroup: %[1]s/trade
    default: allow
    deny:
      - cidr: 127.0.0.3/32
      - cidr: ::1
        ports: [%[4]d, %[5]d]
`, env.base, tg.tcp6a, tg.udp6a, tg.tcp6b, tg.udp6b, extra)
}

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src))
	require.NoError(t, err)
	return p
}

// expectation is an attempt and the errno it must give ("" = success).
type expectation struct {
	a    attempt
	want string
}

func (env *kernelEnv) check(t *testing.T, rel string, exps []expectation) {
	t.Helper()
	as := make([]attempt, len(exps))
	for i, e := range exps {
		as[i] = e.a
	}
	var got []outcome
	env.runChild(t, rel, "attempts", as, &got)
	require.Len(t, got, len(exps))
	for i, e := range exps {
		assert.Equal(t, e.want, got[i].Err, "in %s: %s", rel, e.a)
	}
}

func payExpectations(tg *targets) []expectation {
	exps := []expectation{
		{attempt{Kind: "tcp", Addr: "127.0.0.2", Port: tg.tcp4a}, ""},
		{attempt{Kind: "tcp", Addr: "127.0.0.3", Port: tg.tcp4b}, "EPERM"},
		{attempt{Kind: "tcp", Addr: "127.0.0.4", Port: tg.tcp4b}, "EPERM"}, // default deny
		{attempt{Kind: "tcp", Addr: "::1", Port: tg.tcp6a}, ""},
		{attempt{Kind: "tcp", Addr: "::1", Port: tg.tcp6b}, "EPERM"},
		{attempt{Kind: "tcp", Addr: "::ffff:127.0.0.2", Port: tg.tcp4a}, ""},
		{attempt{Kind: "tcp", Addr: "::ffff:127.0.0.3", Port: tg.tcp4b}, "EPERM"},
		{attempt{Kind: "udp", Addr: "127.0.0.2", Port: tg.udp4a}, ""},
		{attempt{Kind: "udp", Addr: "127.0.0.3", Port: tg.udp4b}, "EPERM"},
		{attempt{Kind: "udp", Addr: "::1", Port: tg.udp6a}, ""},
		{attempt{Kind: "udp", Addr: "::1", Port: tg.udp6b}, "EPERM"},
		{attempt{Kind: "udp", Addr: "::ffff:127.0.0.2", Port: tg.udp4a}, ""},
		{attempt{Kind: "udp", Addr: "::ffff:127.0.0.3", Port: tg.udp4b}, "EPERM"},
		{attempt{Kind: "udpconn", Addr: "127.0.0.3", Port: tg.udp4b}, "EPERM"},
		{attempt{Kind: "udpconn4on6", Addr: "127.0.0.3", Port: tg.udp4b}, "EPERM"},
		{attempt{Kind: "udpconn4on6", Addr: "127.0.0.2", Port: tg.udp4a}, ""},
		{attempt{Kind: "raw", Addr: "127.0.0.2", Port: tg.udp4a}, ""},
		{attempt{Kind: "raw", Addr: "127.0.0.3", Port: tg.udp4b}, "EPERM"},
		{attempt{Kind: "raw", Addr: "::1", Port: tg.udp6b}, "EPERM"},
		{attempt{Kind: "rawicmp", Addr: "127.0.0.2"}, ""},
		{attempt{Kind: "rawicmp", Addr: "127.0.0.3"}, "EPERM"},
		{attempt{Kind: "rawicmp", Addr: "::1"}, "EPERM"},
		{attempt{Kind: "hdrincl", Addr: "127.0.0.2", Via: "127.0.0.3", Port: tg.udp4a}, ""},
		{attempt{Kind: "hdrincl", Addr: "127.0.0.3", Via: "127.0.0.2", Port: tg.udp4b}, "EPERM"},
	}
	// TCP Fast Open, when the machine lets clients use it (bit 1 of the
	// sysctl, on by default).
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_fastopen"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && v&1 == 1 {
			exps = append(exps, expectation{attempt{Kind: "tfo", Addr: "127.0.0.3", Port: tg.tcp4b}, "EPERM"})
		}
	}
	return exps
}

func tradeExpectations(tg *targets) []expectation {
	return []expectation{
		{attempt{Kind: "tcp", Addr: "127.0.0.2", Port: tg.tcp4a}, ""},
		{attempt{Kind: "tcp", Addr: "127.0.0.3", Port: tg.tcp4b}, "EPERM"},
		{attempt{Kind: "tcp", Addr: "127.0.0.4", Port: tg.tcp4b}, "ECONNREFUSED"}, // allowed through, nobody listens
		{attempt{Kind: "tcp", Addr: "::1", Port: tg.tcp6a}, ""},
		{attempt{Kind: "tcp", Addr: "::1", Port: tg.tcp6b}, "EPERM"},
		{attempt{Kind: "tcp", Addr: "::ffff:127.0.0.3", Port: tg.tcp4b}, "EPERM"},
		{attempt{Kind: "udp", Addr: "127.0.0.3", Port: tg.udp4b}, "EPERM"},
		{attempt{Kind: "udp", Addr: "::1", Port: tg.udp6b}, "EPERM"},
		{attempt{Kind: "raw", Addr: "127.0.0.3", Port: tg.udp4b}, "EPERM"},
	}
}

// openExpectations are attempts that succeed anywhere unconfined.
func openExpectations(tg *targets) []expectation {
	return []expectation{
		{attempt{Kind: "tcp", Addr: "127.0.0.3", Port: tg.tcp4b}, ""},
		{attempt{Kind: "tcp", Addr: "::1", Port: tg.tcp6b}, ""},
		{attempt{Kind: "tcp", Addr: "::ffff:127.0.0.3", Port: tg.tcp4b}, ""},
		{attempt{Kind: "udp", Addr: "127.0.0.3", Port: tg.udp4b}, ""},
		{attempt{Kind: "udp", Addr: "::1", Port: tg.udp6b}, ""},
		{attempt{Kind: "raw", Addr: "127.0.0.3", Port: tg.udp4b}, ""},
	}
}

func TestKernelEnforcement(t *testing.T) {
	env := newKernelEnv(t)
	tg := listen(t)
	pay, trade, open := env.cgroup(t, "pay"), env.cgroup(t, "trade"), env.cgroup(t, "open")
	env.cgroup(t, "pay/worker")
	ctx := context.Background()

	// Before any policy, everything is open.
	env.check(t, pay, openExpectations(tg))

	p := mustParse(t, testPolicy(env, tg, ""))
	res, err := env.enf.Apply(ctx, p)
	require.NoError(t, err)
	assert.True(t, res.Changed)
	assert.Equal(t, p.Digest(), res.Digest)

	t.Run("pay", func(t *testing.T) { env.check(t, pay, payExpectations(tg)) })
	t.Run("pay-child-cgroup", func(t *testing.T) { env.check(t, pay+"/worker", payExpectations(tg)) })
	t.Run("trade", func(t *testing.T) { env.check(t, trade, tradeExpectations(tg)) })
	t.Run("unconfined", func(t *testing.T) { env.check(t, open, openExpectations(tg)) })

	t.Run("udp-datagram-arrives", func(t *testing.T) {
		require.NoError(t, tg.udp4aConn.SetReadDeadline(time.Now().Add(5*time.Second)))
		env.check(t, pay, []expectation{{attempt{Kind: "udp", Addr: "127.0.0.2", Port: tg.udp4a}, ""}})
		buf := make([]byte, 64)
		for {
			n, _, err := tg.udp4aConn.ReadFrom(buf)
			require.NoError(t, err)
			if string(buf[:n]) == "netseg" {
				break
			}
		}
	})

	t.Run("socket-outlives-move", func(t *testing.T) {
		for _, a := range []attempt{
			{Kind: "tcp", Addr: "127.0.0.3", Port: tg.tcp4b},
			{Kind: "udp", Addr: "127.0.0.3", Port: tg.udp4b},
			{Kind: "tcp", Addr: "::ffff:127.0.0.3", Port: tg.tcp4b},
			{Kind: "udpconn", Addr: "127.0.0.3", Port: tg.udp4b}, // connect() on a datagram socket
			{Kind: "raw", Addr: "127.0.0.3", Port: tg.udp4b},     // the egress backstop
		} {
			cmd := env.child(t, pay, "moved", a)
			stdin, err := cmd.StdinPipe()
			require.NoError(t, err)
			stdout, err := cmd.StdoutPipe()
			require.NoError(t, err)
			require.NoError(t, cmd.Start())
			line := make([]byte, 6)
			_, err = io.ReadFull(stdout, line)
			require.NoError(t, err)
			require.Equal(t, "ready\n", string(line))
			// Move the process out of the segment, then let it use the
			// socket it made inside.
			require.NoError(t, os.WriteFile(filepath.Join(env.mount, open, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0))
			_, err = stdin.Write([]byte("go\n"))
			require.NoError(t, err)
			var got []outcome
			require.NoError(t, json.NewDecoder(stdout).Decode(&got))
			require.NoError(t, cmd.Wait())
			assert.Equal(t, "EPERM", got[0].Err, "old socket: %s", a)
			assert.Equal(t, "", got[1].Err, "new socket after the move: %s", a)
		}
	})

	t.Run("counters", func(t *testing.T) {
		st, err := env.enf.Stats(ctx)
		require.NoError(t, err)
		require.Len(t, st.Segments, 2)
		payStats := st.Segments[0]
		require.Equal(t, "pay", payStats.Name)
		assert.NotZero(t, payStats.Denied)
		assert.NotZero(t, payStats.Allowed)
		var sawDenied bool
		for _, d := range payStats.Destinations {
			if d.Verdict == "deny" && d.Addr.String() == "127.0.0.3" && d.Protocol == "tcp" && d.Hook == "connect4" && d.Port == uint16(tg.tcp4b) {
				sawDenied = true
				assert.GreaterOrEqual(t, d.Count, uint64(2)) // a plain connect and the moved socket
			}
		}
		assert.True(t, sawDenied, "no denied destination 127.0.0.3 in %+v", payStats.Destinations)
		hooks := map[string]HookStats{}
		for _, h := range payStats.Hooks {
			hooks[h.Hook] = h
		}
		for _, h := range []string{"connect4", "connect6", "sendmsg4", "sendmsg6", "egress"} {
			assert.NotZero(t, hooks[h].Denied, "hook %s denied nothing", h)
		}
	})

	t.Run("status", func(t *testing.T) {
		st, err := env.enf.Status(ctx)
		require.NoError(t, err)
		assert.True(t, st.Enforced, "problems: %v", st.Problems)
		assert.Equal(t, p.Digest(), st.Digest)
		require.Len(t, st.Segments, 2)
		assert.Len(t, st.Segments[0].Hooks, int(numHooks))
	})

	t.Run("reapply-is-idempotent", func(t *testing.T) {
		n := len(env.rec.all())
		res, err := env.enf.Apply(ctx, mustParse(t, testPolicy(env, tg, "")))
		require.NoError(t, err)
		assert.False(t, res.Changed)
		assert.Len(t, env.rec.all(), n, "an unchanged policy writes no record")
	})

	t.Run("detach-restores-access", func(t *testing.T) {
		ok, err := env.enf.Detach(ctx)
		require.NoError(t, err)
		assert.True(t, ok)
		env.check(t, pay, openExpectations(tg))
		env.check(t, trade, openExpectations(tg))
		_, err = os.Stat(env.pin)
		assert.True(t, errors.Is(err, os.ErrNotExist), "pin folder left behind")
		st, err := env.enf.Status(ctx)
		require.NoError(t, err)
		assert.False(t, st.Applied)
		recs := env.rec.all()
		require.Len(t, recs, 2)
		assert.Equal(t, RecordApplied, recs[0].Type)
		assert.Equal(t, RecordDetached, recs[1].Type)
		var body DetachedRecord
		require.NoError(t, json.Unmarshal(recs[1].Body, &body))
		assert.Equal(t, p.Digest(), body.Digest)
		assert.Len(t, body.Segments, 2)
	})
}

func TestKernelAppliedRecord(t *testing.T) {
	env := newKernelEnv(t)
	tg := listen(t)
	env.cgroup(t, "pay")
	env.cgroup(t, "trade")
	p := mustParse(t, testPolicy(env, tg, ""))
	_, err := env.enf.Apply(context.Background(), p)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = env.enf.Detach(context.Background()) })
	recs := env.rec.all()
	require.Len(t, recs, 1)
	var body AppliedRecord
	require.NoError(t, json.Unmarshal(recs[0].Body, &body))
	assert.Equal(t, p.Digest(), body.Digest)
	assert.Equal(t, "", body.Previous)
	require.Len(t, body.Segments, 2)
	assert.Equal(t, "pay", body.Segments[0].Name)
	assert.Equal(t, "deny", body.Segments[0].Default)
	assert.Equal(t, 3, body.Segments[0].Allow)
	assert.NotZero(t, body.Segments[0].CgroupID)
	assert.Contains(t, body.Changes, fmt.Sprintf("+ segment pay (cgroup %s/pay, default deny)", env.base))
	assertNoFloats(t, recs[0].Body)
}

func TestKernelRestartKeepsEnforcement(t *testing.T) {
	env := newKernelEnv(t)
	tg := listen(t)
	pay := env.cgroup(t, "pay")
	env.cgroup(t, "trade")
	agentCg := env.cgroup(t, "agent")
	recFile := filepath.Join(t.TempDir(), "records.jsonl")
	src := testPolicy(env, tg, "")

	// Another process (the agent) applies the policy and exits.
	var res ApplyResult
	env.runChild(t, agentCg, "agent", agentArgs{Pin: env.pin, Mount: env.mount, Policy: src, RecordFile: recFile}, &res)
	require.True(t, res.Changed)

	// Its handles are gone; the pins keep the programs attached.
	env.check(t, pay, payExpectations(tg))

	// A new agent sees the same state and re-applying changes nothing.
	st, err := env.enf.Status(context.Background())
	require.NoError(t, err)
	assert.True(t, st.Enforced, "problems: %v", st.Problems)
	assert.Equal(t, res.Digest, st.Digest)
	env.runChild(t, agentCg, "agent", agentArgs{Pin: env.pin, Mount: env.mount, Policy: src, RecordFile: recFile}, &res)
	assert.False(t, res.Changed)
	b, err := os.ReadFile(recFile)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(b), "\n"), "one record for one change")

	_, err = env.enf.Detach(context.Background())
	require.NoError(t, err)
	env.check(t, pay, openExpectations(tg))
}

func TestKernelBadPolicyChangesNothing(t *testing.T) {
	env := newKernelEnv(t)
	tg := listen(t)
	pay := env.cgroup(t, "pay")
	env.cgroup(t, "trade")
	ctx := context.Background()
	p := mustParse(t, testPolicy(env, tg, ""))
	_, err := env.enf.Apply(ctx, p)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = env.enf.Detach(ctx) })
	before, err := env.enf.Status(ctx)
	require.NoError(t, err)
	nrec := len(env.rec.all())

	unchanged := func(t *testing.T) {
		t.Helper()
		st, err := env.enf.Status(ctx)
		require.NoError(t, err)
		assert.True(t, st.Enforced, "problems: %v", st.Problems)
		assert.Equal(t, before.Digest, st.Digest)
		assert.Len(t, env.rec.all(), nrec)
		env.check(t, pay, payExpectations(tg))
	}

	t.Run("unparsable", func(t *testing.T) {
		_, err := Parse([]byte(strings.Replace(testPolicy(env, tg, ""), "default: deny", "default: maybe", 1)))
		var pe *PolicyError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, 5, pe.Line)
		unchanged(t)
	})
	t.Run("missing-cgroup", func(t *testing.T) {
		bad := mustParse(t, testPolicy(env, tg, fmt.Sprintf("  - name: ghost\n    cgroup: %s/ghost\n", env.base)))
		_, err := env.enf.Apply(ctx, bad)
		require.ErrorIs(t, err, ErrCgroup)
		assert.Contains(t, err.Error(), "ghost")
		unchanged(t)
	})
	t.Run("audit-log-down", func(t *testing.T) {
		env.cgroup(t, "extra")
		other := mustParse(t, testPolicy(env, tg, fmt.Sprintf("  - name: extra\n    cgroup: %s/extra\n", env.base)))
		env.rec.setFail(errors.New("disk full"))
		defer env.rec.setFail(nil)
		_, err := env.enf.Apply(ctx, other)
		require.ErrorIs(t, err, ErrAudit)
		env.rec.setFail(nil)
		unchanged(t)
		// The new segment's programs were detached again.
		env.check(t, env.base+"/extra", openExpectations(tg))
		// Nor can the policy be detached without a record.
		env.rec.setFail(errors.New("disk full"))
		_, err = env.enf.Detach(ctx)
		require.ErrorIs(t, err, ErrAudit)
		env.rec.setFail(nil)
		unchanged(t)
	})
	t.Run("no-recorder", func(t *testing.T) {
		e := env.enforcer(t, nil)
		_, err := e.Apply(ctx, p)
		require.ErrorIs(t, err, ErrAudit)
		_, err = e.Detach(ctx)
		require.ErrorIs(t, err, ErrAudit)
		unchanged(t)
	})
}

func TestKernelRecreatedCgroupIsReported(t *testing.T) {
	env := newKernelEnv(t)
	tg := listen(t)
	env.cgroup(t, "pay")
	env.cgroup(t, "trade")
	ctx := context.Background()
	_, err := env.enf.Apply(ctx, mustParse(t, testPolicy(env, tg, "")))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = env.enf.Detach(ctx) })
	// A service manager removes and recreates the cgroup: the new one
	// is a different cgroup, not confined until the policy is applied again.
	require.NoError(t, os.Remove(filepath.Join(env.mount, env.base, "trade")))
	env.cgroup(t, "trade")
	st, err := env.enf.Status(ctx)
	require.NoError(t, err)
	assert.False(t, st.Enforced)
	require.Len(t, st.Problems, 1)
	assert.Contains(t, st.Problems[0], `segment "trade": cgroup`)
	assert.Contains(t, st.Problems[0], "run apply again")
	res, err := env.enf.Apply(ctx, mustParse(t, testPolicy(env, tg, "")))
	require.NoError(t, err)
	assert.True(t, res.Changed, "a damaged state is repaired by applying again")
	st, err = env.enf.Status(ctx)
	require.NoError(t, err)
	assert.True(t, st.Enforced, "problems: %v", st.Problems)
	env.check(t, env.base+"/trade", tradeExpectations(tg))
}

// TestKernelUpdateHasNoOpenWindow swaps between two policies that both deny
// 127.0.0.3 and allow 127.0.0.2 to segment pay, but by different means
// (default deny with an allow rule; default allow with a deny rule), while
// processes in the segment connect in a loop. A policy update that went
// through an empty or half-filled table would let a denied connect through
// or refuse an allowed one.
func TestKernelUpdateHasNoOpenWindow(t *testing.T) {
	env := newKernelEnv(t)
	tg := listen(t)
	pay := env.cgroup(t, "pay")
	ctx := context.Background()
	policyA := mustParse(t, fmt.Sprintf(`version: 1
segments:
  - name: pay
    cgroup: %s/pay
    default: deny
    allow: [{cidr: 127.0.0.2/32}]
`, env.base))
	policyB := mustParse(t, fmt.Sprintf(`version: 1
segments:
  - name: pay
    cgroup: %s/pay
    default: allow
    deny: [{cidr: 127.0.0.3/32}, {cidr: 127.0.0.0/8, protocol: udp}]
`, env.base))
	_, err := env.enf.Apply(ctx, policyA)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = env.enf.Detach(ctx) })

	args := [2]attempt{{Kind: "tcp", Addr: "127.0.0.2", Port: tg.tcp4a}, {Kind: "tcp", Addr: "127.0.0.3", Port: tg.tcp4b}}
	type running struct {
		stdin  io.WriteCloser
		stdout io.ReadCloser
		wait   func() error
	}
	var loops []running
	for range 2 {
		cmd := env.child(t, pay, "loop", args)
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		line := make([]byte, 6)
		_, err = io.ReadFull(stdout, line)
		require.NoError(t, err)
		loops = append(loops, running{stdin, stdout, cmd.Wait})
	}
	const updates = 40
	for i := range updates {
		p := policyB
		if i%2 == 1 {
			p = policyA
		}
		res, err := env.enf.Apply(ctx, p)
		require.NoError(t, err)
		require.True(t, res.Changed)
	}
	total := 0
	for _, l := range loops {
		require.NoError(t, l.stdin.Close())
		var r loopResult
		require.NoError(t, json.NewDecoder(l.stdout).Decode(&r))
		require.NoError(t, l.wait())
		assert.Zero(t, r.DeniedPassed, "a denied connect went through during an update: %s", r.FirstProblem)
		assert.Zero(t, r.AllowedFailed, "an allowed connect failed during an update: %s", r.FirstProblem)
		total += r.Iterations
	}
	t.Logf("%d connect pairs across %d policy swaps", total, updates)
	assert.Greater(t, total, updates, "the loops did not overlap the updates")
	assert.Len(t, env.rec.all(), updates+1)
}

// assertNoFloats checks the audit contract: record bodies carry no floats.
func assertNoFloats(t *testing.T, body []byte) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v))
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case json.Number:
			_, err := x.Int64()
			if err != nil {
				_, err = strconv.ParseUint(string(x), 10, 64)
			}
			assert.NoError(t, err, "number %s in a record body is not an integer", x)
		case []any:
			for _, e := range x {
				walk(e)
			}
		case map[string]any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
}

// TestKernelCounterFlood sends more denied datagrams to distinct
// destinations than the destination table holds: every one is refused and
// the totals count each, while the bounded table evicts the oldest.
func TestKernelCounterFlood(t *testing.T) {
	env := newKernelEnv(t)
	tg := listen(t)
	pay := env.cgroup(t, "pay")
	env.cgroup(t, "trade")
	ctx := context.Background()
	_, err := env.enf.Apply(ctx, mustParse(t, testPolicy(env, tg, "")))
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = env.enf.Detach(ctx) })
	const n = destsMax + 4000
	as := make([]attempt, n)
	for i := range as {
		as[i] = attempt{Kind: "udp", Addr: fmt.Sprintf("127.0.%d.%d", 10+i/60000, 1+i%250), Port: 1 + i%60000}
	}
	var got []outcome
	env.runChild(t, pay, "attempts", as, &got)
	for _, o := range got {
		require.Equal(t, "EPERM", o.Err, "%s", o.Attempt)
	}
	st, err := env.enf.Stats(ctx)
	require.NoError(t, err)
	var sendmsg4 HookStats
	for _, h := range st.Segments[0].Hooks {
		if h.Hook == "sendmsg4" {
			sendmsg4 = h
		}
	}
	assert.Equal(t, uint64(n), sendmsg4.Denied)
	assert.LessOrEqual(t, len(st.Segments[0].Destinations), destsMax)
}
