//go:build !linux

package core

import "fmt"

func pinThread(cpu int) error {
	return fmt.Errorf("%w: CPU pinning is only supported on Linux; turn Pin off", ErrConfig)
}
