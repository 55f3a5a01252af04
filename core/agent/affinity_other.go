//go:build !linux

package agent

import "fmt"

// PinThread is only supported on Linux.
func PinThread(cpu int) error {
	return fmt.Errorf("%w: CPU pinning is only supported on Linux; turn Pin off", ErrConfig)
}

func unpin() {}

// Isolate is only supported on Linux.
func Isolate(cpus ...int) error {
	return fmt.Errorf("%w: CPU isolation is only supported on Linux", ErrConfig)
}

// Unisolate is only supported on Linux.
func Unisolate(cpus ...int) error { return nil }
