//go:build invariants

package ring

// invariants turns on the package's expensive self-checks; see invariants_off.go.
const invariants = true
