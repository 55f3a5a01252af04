package agent

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	futexWaitPrivate = 0 | 128 // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
	futexWakePrivate = 1 | 128 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
)

// futexWait blocks the thread in the kernel while *addr == val, for at most
// ns nanoseconds. A wake, a changed word, a signal or the timeout ends it;
// callers re-check their condition either way.
func futexWait(addr *uint32, val uint32, ns int64) {
	ts := unix.NsecToTimespec(ns)
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitPrivate, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
}

// futexWake wakes one thread waiting on addr.
func futexWake(addr *uint32) {
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakePrivate, 1, 0, 0, 0)
}

// osYield gives the CPU to another runnable thread, if any (sched_yield).
// The thread keeps its P: it is not a Go scheduling point.
func osYield() { _, _, _ = unix.RawSyscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }

// tuneThread sets the calling thread's timer slack to 1 ns, so parks with a
// timeout end on time instead of up to 50 µs late (the Linux default).
func tuneThread() { _ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0) }
