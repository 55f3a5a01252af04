package main

import (
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain makes this test binary also act as the `tradecore` command (put
// on PATH for testscript and for the multi-process tests), running main().
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"tradecore": main})
}
