// Command tradecore is the trading core's daemon and its operator verbs.
//
//	tradecore serve   run the engine (for now on a generated order flow)
//	tradecore keys    HSM signing keys and their lifecycle (docs/keys.md)
//	tradecore apikeys API keys of the order-entry and market-data ports (docs/protocol.md)
//	tradecore signer  the signing service on a unix socket
//	tradecore netseg  eBPF network segmentation (docs/netseg.md)
//	tradecore attest  TPM device enrolment and attestation (docs/attestation.md)
//	tradecore audit   the audit log: query, export, prove, report; its PostgreSQL mirror and retention (docs/audit-format.md, docs/audit-postgres.md)
//
// Every verb takes --data-dir (default ./var, or $TRADECORE_DATA_DIR), where
// local state lives. Exit codes: 0 success, 1 failure, 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// errUsage marks a command-line mistake; main exits 2 for it.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		if !errors.Is(err, flag.ErrHelp) && err != errUsage {
			fmt.Fprintln(os.Stderr, "tradecore:", err)
		}
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tradecore:", err)
		os.Exit(1)
	}
}

const usage = `usage: tradecore <verb> [flags]

verbs:
  serve    run the trading core on the embedded defaults or --config
  keys     HSM signing keys: init | list | rotate | revoke ID --reason R | export | status | verify
  apikeys  API keys of the gateway: create | list | rotate ID | revoke ID --reason R
  signer   serve the signing service on a unix socket (--socket PATH)
  netseg   eBPF network segmentation: check | apply -f POLICY | status | stats | detach
  attest   TPM devices: enroll | activate | approve | revoke | list | policy | challenge | verify
  audit    the audit log: query | export | prove | report | index | pg migrate | pg status | retention plan|export|drop

Run 'tradecore <verb> -h' for a verb's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	verb, rest := args[0], args[1:]
	switch verb {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, stdout, stderr)
	case "apikeys":
		return runAPIKeys(ctx, rest, stdout, stderr)
	case "signer":
		return runSigner(ctx, rest, stdout, stderr)
	case "netseg":
		return runNetseg(ctx, rest, stdout, stderr)
	case "attest":
		return runAttest(ctx, rest, stdout, stderr)
	case "audit":
		if len(rest) > 0 && (rest[0] == "pg" || rest[0] == "retention") {
			return runAuditPG(ctx, rest[0], rest[1:], stdout, stderr)
		}
		return runAudit(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown verb %q", errUsage, verb)
	}
}

// parseFlags parses a verb's flags; a mistake is a usage error (exit 2).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// dataDirFlag registers --data-dir on fs with its documented default.
func dataDirFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("TRADECORE_DATA_DIR")
	if def == "" {
		def = "./var"
	}
	return fs.String("data-dir", def, "folder for local state (env TRADECORE_DATA_DIR)")
}

// parse parses flags, allowing positional arguments before and after them;
// it returns the positional arguments. A mistake is a usage error (exit 2).
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
