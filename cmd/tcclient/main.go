// Command tcclient is tradecore's trading client. Each capability is a
// subcommand:
//
//	tcclient place | cancel | reduce | replace | mass-cancel | kill   send one order message, print the answers
//	tcclient next-ref   the next client reference to use (after a reconnect)
//	tcclient events     the account's messages from a sequence number (replayed from the journal), --follow for live
//	tcclient shell      one session, commands from stdin
//	tcclient attest     prove this host's TPM state to the venue (docs/attestation.md)
//
// The trading commands log in with an API key file (--key-file, default
// $TRADECORE_DATA_DIR/demo-key.json, which `make run` writes), over TLS with
// the pin the key file carries, and print every message, as text or, with
// --format json, one JSON object per line (prices and quantities as decimal
// strings of the instrument's units, docs/protocol.md for the fields). With
// --device-key (the AK file `tcclient attest activate` installed) and --tpm
// they attest the session with the host's TPM, as an API key bound to the
// device requires (docs/protocol.md, "Device attestation").
//
// Exit codes: 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// errUsage marks a command-line mistake; main exits 2 for it.
var errUsage = errors.New("usage")

// subcommand is one tcclient capability. Add new ones to subcommands.
type subcommand struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var subcommands = map[string]subcommand{
	"attest": {"TPM device attestation: enroll | activate FILE | quote FILE", runAttest},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		if !errors.Is(err, flag.ErrHelp) && err != errUsage {
			fmt.Fprintln(os.Stderr, "tcclient:", err)
		}
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tcclient:", err)
		os.Exit(1)
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: tcclient <command> [flags]\n\ncommands:\n")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "  %-8s %s\n", n, subcommands[n].summary)
	}
	b.WriteString("\nRun 'tcclient <command> -h' for a command's flags.\n")
	return b.String()
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return errUsage
	}
	name, rest := args[0], args[1:]
	if name == "help" || name == "-h" || name == "--help" {
		fmt.Fprint(stdout, usage())
		return nil
	}
	sc, ok := subcommands[name]
	if !ok {
		fmt.Fprint(stderr, usage())
		return fmt.Errorf("%w: unknown command %q", errUsage, name)
	}
	return sc.run(ctx, rest, stdout, stderr)
}
