// Package testenv decides whether a test that needs something from the
// machine (root, SoftHSM, swtpm, PostgreSQL, …) may skip when it is missing.
//
// On a laptop such a test skips with the reason. Under `make test` and CI the
// environment is required (TRADECORE_REQUIRE_ENV=1, or CI=true) and the same
// condition fails the test instead: a skipped hardware test in CI is a hidden
// failure.
package testenv

import (
	"os"
	"testing"
)

// Required reports whether missing test prerequisites must fail tests rather
// than skip them.
func Required() bool {
	return os.Getenv("TRADECORE_REQUIRE_ENV") == "1" || os.Getenv("CI") == "true"
}

// Need skips the test with why when ok is false, or fails it when the
// environment is required. why should say what is missing and how to get it.
func Need(t testing.TB, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if Required() {
		t.Fatalf("required test prerequisite missing: %s (make test installs it; see scripts/deps.sh)", why)
	}
	t.Skipf("skipping: %s (set TRADECORE_REQUIRE_ENV=1 to make this a failure)", why)
}

// NeedRoot is Need for tests that must run as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	Need(t, os.Geteuid() == 0, "test needs root")
}
