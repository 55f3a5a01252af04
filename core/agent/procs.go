package agent

import "runtime"

// EnsureProcs raises GOMAXPROCS so that, with spinning runners each holding
// a P all the time, at least spare Ps stay free for the rest of the program
// (timers, the network poller, the garbage collector, goroutines). It never
// lowers GOMAXPROCS and returns the value in force.
func EnsureProcs(spinning, spare int) int {
	want := spinning + max(spare, 1)
	if cur := runtime.GOMAXPROCS(0); cur >= want {
		return cur
	}
	runtime.GOMAXPROCS(want)
	return want
}
