//go:build !invariants

package ring

// invariants turns on the package's expensive self-checks. Build with
// -tags invariants (as make test does) to have every claim, poll and drain
// re-verify the gating and publication invariants and panic on a violation.
const invariants = false
