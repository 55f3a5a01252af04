package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain makes this test binary also act as the `tradecore` command (put
// on PATH for testscript and for the multi-process tests), running main(),
// and runs the tests with the PostgreSQL harness of the retention tests
// (which starts its server only when a test asks for a database).
func TestMain(m *testing.M) {
	testscript.Main(withPG{m}, map[string]func(){"tradecore": main})
}

// withPG runs the tests inside pg's harness.
type withPG struct{ m *testing.M }

func (w withPG) Run() int { return pg.Run(w.m) }
