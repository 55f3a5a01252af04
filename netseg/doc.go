// Package netseg confines services to network allow-lists in the kernel,
// with eBPF programs on their cgroups (docs/netseg.md specifies the policy
// file, the pins, the records and the CLI).
//
// A policy is plain data: Load or Parse reads a YAML or JSON file into a
// canonical, diffable *Policy (errors are *PolicyError, naming the line and
// the field), Policy.Digest identifies it, Diff compares two, and
// Segment.Decide is the verdict the kernel programs implement.
//
// An Enforcer puts a policy in force and reads what is in force:
//
//	e, err := netseg.New(netseg.Config{Recorder: auditLog}) // ErrNoRoot, ErrNoBPF
//	res, err := e.Apply(ctx, policy)  // audit record, then an atomic swap
//	st, err := e.Status(ctx)          // enforced and intact?
//	stats, err := e.Stats(ctx)        // allowed and denied counters
//	_, err = e.Detach(ctx)            // remove everything
//
// The kernel objects are pinned under Config.PinPath (DefaultPinPath,
// /sys/fs/bpf/tradecore), so enforcement outlives the process that applied
// it; an Enforcer holds nothing between calls and needs no closing. Every
// process sees the same state through the pins.
//
// The daemon calls StartDaemon once at start (required unless
// DaemonConfig.Optional) and registers the returned Collector, a
// prometheus.Collector of tradecore_netseg_* metrics.
package netseg
