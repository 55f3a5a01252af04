package agent

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// PinThread pins the calling OS thread to cpu. Call it from a goroutine
// locked to its thread (runtime.LockOSThread), as Run does.
func PinThread(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("agent: pin the thread to CPU %d: %w (check the CPU exists and is in this process's cpuset, or turn pinning off)", cpu, err)
	}
	return nil
}

// unpin gives the calling thread the CPUs the rest of the process may use
// before the runner unlocks it, so the thread Go reuses is not left pinned.
func unpin() {
	if set, ok := processCPUs(); ok {
		_ = unix.SchedSetaffinity(0, &set)
	}
}

// processCPUs returns the union of the CPU masks of the process's threads.
func processCPUs() (unix.CPUSet, bool) {
	var all unix.CPUSet
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return all, false
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var set unix.CPUSet
		if unix.SchedGetaffinity(tid, &set) == nil {
			for i := range set {
				all[i] |= set[i]
			}
		}
	}
	return all, all.Count() > 0
}

// Isolate keeps every thread of the process off cpus: it removes them from
// the affinity of each existing thread, and so of the threads created later
// (Linux threads inherit their creator's mask; Go creates threads from
// unpinned ones). Call it once at start, before starting the runners that pin
// themselves to those CPUs.
func Isolate(cpus ...int) error {
	rest, _ := processCPUs()
	for _, c := range cpus {
		rest.Clear(c)
	}
	if rest.Count() == 0 {
		return fmt.Errorf("%w: isolating CPUs %v leaves the rest of the process no CPU; leave at least one", ErrConfig, cpus)
	}
	return eachThread(func(tid int, set *unix.CPUSet) error {
		for _, c := range cpus {
			set.Clear(c)
		}
		if set.Count() == 0 { // a thread pinned to those CPUs alone: give it the others
			*set = rest
		}
		return nil
	})
}

// Unisolate gives cpus back to every thread of the process: the undo of
// Isolate, when the runners that needed the CPUs have stopped.
func Unisolate(cpus ...int) error {
	return eachThread(func(_ int, set *unix.CPUSet) error {
		for _, c := range cpus {
			set.Set(c)
		}
		return nil
	})
}

// eachThread applies edit to the CPU mask of every thread of the process.
func eachThread(edit func(tid int, set *unix.CPUSet) error) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("agent: list the process's threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(tid, &set); err != nil {
			continue // the thread has exited
		}
		if err := edit(tid, &set); err != nil {
			return err
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return fmt.Errorf("agent: restrict thread %d's CPUs: %w", tid, err)
		}
	}
	return nil
}
