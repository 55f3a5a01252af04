package agent

// pause hints the CPU that this is a spin-wait loop (x86 PAUSE): it saves
// power, frees resources for a sibling hyperthread and avoids the
// memory-order flush when the awaited store arrives.
//
//go:noescape
func pause()
