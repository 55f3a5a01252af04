//go:build invariants

package core

// invariants enables the engine's self-checks after every command. `make test`
// builds with the tag; release builds drop the checks entirely.
const invariants = true
