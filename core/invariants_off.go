//go:build !invariants

package core

const invariants = false
