package core

// rdtsc reads the CPU's time-stamp counter. The wall clock (Clock) scales it
// to nanoseconds between re-anchors on the runtime's clock; on CPUs whose
// counter is invariant (constant_tsc, nonstop_tsc: every x86 server of the
// last decade, and the VMs here) it ticks at a fixed rate on every core.
//
//go:noescape
func rdtsc() uint64

const haveTSC = true
