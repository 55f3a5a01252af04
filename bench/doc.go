// Package bench generates the engine's benchmark workloads and measures them:
// throughput passes (no per-order timing) and latency passes (per-order
// timing into an HdrHistogram), with coordinated-omission correction for the
// open-loop ring pipeline.
//
// Workloads are deterministic for a seed and generated before any timing, so
// generation never counts. Use [RandomLimits] (issue workload 1), [MoveHeavy]
// (workload 2) and [Pipeline] (workload 3, producer → inbound ring → engine →
// outbound ring → consumer). `go test -bench` in core/ and cmd/tcbench both
// run them; tcbench reports percentiles against the latency budgets.
//
// Percentiles: p50/p99/p99.9 are the engine's figures; p99.99 and max mostly
// reflect this shared VM (it stalls every vCPU for ~35 µs about once a
// millisecond), so reports print them beside, not as, the engine's figures.
package bench
