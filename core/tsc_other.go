//go:build !amd64

package core

func rdtsc() uint64 { return 0 }

const haveTSC = false
