package netseg

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkConnectLatency measures connect() to a loopback listener from a
// process in a segment (policy attached: all five programs run, the
// connect4 hook decides, the egress backstop checks the SYN) against one in
// an unconfined sibling cgroup, in alternating rounds of the same run. Each
// round is one helper process per side doing connectsPerRound connects,
// timing each. Reported: p50 and p99 per side and the p50 ratio (target ≤
// 1.05). Run it with
//
//	go test -run '^$' -bench ConnectLatency -benchtime 10x ./netseg/
func BenchmarkConnectLatency(b *testing.B) {
	env := newKernelEnv(b)
	tg := listen(b).tcp4a
	pay, open := env.cgroup(b, "pay"), env.cgroup(b, "open")
	p, err := Parse([]byte(fmt.Sprintf("version: 1\nsegments:\n  - name: pay\n    cgroup: %s\n    default: deny\n    allow: [{cidr: 127.0.0.2, protocol: tcp}]\n", pay)))
	require.NoError(b, err)
	_, err = env.enf.Apply(context.Background(), p)
	require.NoError(b, err)
	b.Cleanup(func() { _, _ = env.enf.Detach(context.Background()) })

	const connectsPerRound = 2000
	a := struct {
		Attempt attempt
		N       int
	}{attempt{Kind: "tcp", Addr: "127.0.0.2", Port: tg}, connectsPerRound}
	var none, policy []int64
	round := 0
	for b.Loop() {
		sides := []struct {
			cg  string
			out *[]int64
		}{{open, &none}, {pay, &policy}}
		if round%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		round++
		for _, s := range sides {
			var lat []int64
			env.runChild(b, s.cg, "bench", a, &lat)
			require.Len(b, lat, connectsPerRound)
			*s.out = append(*s.out, lat[connectsPerRound/10:]...) // drop warm-up
		}
	}
	slices.Sort(none)
	slices.Sort(policy)
	pct := func(v []int64, q float64) float64 { return float64(v[int(q*float64(len(v)-1))]) }
	b.ReportMetric(pct(none, 0.5), "p50-ns-none")
	b.ReportMetric(pct(policy, 0.5), "p50-ns-policy")
	b.ReportMetric(pct(none, 0.99), "p99-ns-none")
	b.ReportMetric(pct(policy, 0.99), "p99-ns-policy")
	b.ReportMetric(pct(policy, 0.5)/pct(none, 0.5), "p50-ratio")
}
