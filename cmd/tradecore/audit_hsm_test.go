package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/audit/hsmsign"
)

// signerFromCLI opens the data dir's HSM signing service the way the CLI
// does and returns it as an audit.Signer (closed at the end of the test).
func signerFromCLI(t *testing.T, data string) audit.Signer {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := addTokenFlags(fs)
	require.NoError(t, fs.Parse([]string{"--data-dir", data}))
	svc, cls, err := openService(context.Background(), f.selection(), slog.New(slog.NewTextHandler(io.Discard, nil)), false)
	require.NoError(t, err)
	t.Cleanup(func() { cls() })
	return hsmsign.New(svc)
}
