// Package hsmtest gives tests a logged-in SoftHSM2 token. All tokens of a test
// binary live in one SoftHSM folder (one SOFTHSM2_CONF), because a process
// initialises the module once; each call gets a fresh token label.
package hsmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/internal/testenv"
	"github.com/tradecore/tradecore/softhsm"
)

var (
	dirOnce sync.Once
	dir     string
	dirErr  error
	seq     atomic.Int64
)

// Main runs the tests of a package that uses Token, then removes the SoftHSM
// folder. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if dir != "" {
		os.RemoveAll(dir)
	}
	os.Exit(code)
}

// Need skips (or, when required, fails) t when SoftHSM2 is missing.
func Need(t testing.TB) string {
	t.Helper()
	mod, err := softhsm.FindModule()
	testenv.Need(t, err == nil, "SoftHSM2 (libsofthsm2.so) not installed: apt-get install softhsm2")
	return mod
}

// NewToken creates a fresh token in the shared folder and returns it.
func NewToken(t testing.TB) *softhsm.Token {
	t.Helper()
	Need(t)
	dirOnce.Do(func() { dir, dirErr = os.MkdirTemp("", "tradecore-softhsm-") })
	require.NoError(t, dirErr)
	label := fmt.Sprintf("test-%d-%d", os.Getpid(), seq.Add(1))
	tok, err := softhsm.Ensure(context.Background(), softhsm.Config{Dir: filepath.Join(dir, "softhsm"), PINDir: filepath.Join(dir, "credentials"), Label: label})
	require.NoError(t, err)
	return tok
}

// Config returns an hsm.Config for tok.
func Config(tok *softhsm.Token) hsm.Config {
	return hsm.Config{Module: tok.Module, TokenLabel: tok.Label, PINFile: tok.UserPINFile}
}

// Open creates a fresh token and opens it; it is closed at the end of t.
func Open(t testing.TB, mutate ...func(*hsm.Config)) (*hsm.Token, *softhsm.Token) {
	t.Helper()
	st := NewToken(t)
	cfg := Config(st)
	for _, f := range mutate {
		f(&cfg)
	}
	tok, closeTok, err := hsm.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, closeTok()) })
	return tok, st
}
