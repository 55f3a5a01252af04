//go:build !amd64

package agent

func pause() {}
