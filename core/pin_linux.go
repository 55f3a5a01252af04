//go:build linux

package core

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// pinThread binds the calling OS thread to one CPU.
func pinThread(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("core: pin the engine loop to CPU %d: %w (check the CPU exists and is in this process's cpuset, or turn pinning off)", cpu, err)
	}
	return nil
}
