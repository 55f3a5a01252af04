package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tradecore/tradecore/netseg"
)

const netsegUsage = `usage: tradecore netseg <command> [flags]

commands:
  check  -f POLICY   validate a policy file and print its digest (no root needed)
  apply  -f POLICY   put the policy in force (idempotent); prints the changes
  status             what is in force; exit 1 unless a policy is enforced and intact
  stats              allowed and denied counts per segment, hook and destination
  detach             remove every program, link and map: access is open again

Flags: --pin-path (default /sys/fs/bpf/tradecore, env TRADECORE_NETSEG_PIN_PATH),
--data-dir (audit records of apply and detach are queued in <data-dir>/audit/inbox and
recorded in the log by tradecore serve, or by 'tradecore audit ingest'),
--format text|json (status, stats). POLICY "-" reads standard input.
apply, status, stats and detach need root. The policy format is docs/netseg.md.
Exit codes: 0 success, 1 failure (or, for status, not enforced), 2 usage error.
`

func runNetseg(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, netsegUsage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "check", "apply", "status", "stats", "detach":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, netsegUsage)
		return nil
	default:
		fmt.Fprint(stderr, netsegUsage)
		return fmt.Errorf("%w: unknown netseg command %q", errUsage, cmd)
	}
	fs := flag.NewFlagSet("tradecore netseg "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs)
	defPin := os.Getenv("TRADECORE_NETSEG_PIN_PATH")
	if defPin == "" {
		defPin = netseg.DefaultPinPath
	}
	pin := fs.String("pin-path", defPin, "bpf filesystem folder holding the pinned objects (env TRADECORE_NETSEG_PIN_PATH)")
	format := fs.String("format", "text", "output format: text or json")
	var file *string
	if cmd == "check" || cmd == "apply" {
		file = fs.String("f", "", "policy file (YAML or JSON; - for standard input)")
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("%w: --format %q: use text or json", errUsage, *format)
	}
	if file != nil && *file == "" {
		return fmt.Errorf("%w: netseg %s needs -f POLICY", errUsage, cmd)
	}
	if cmd == "check" {
		p, err := netseg.Load(*file)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "valid %s\n", p.Digest())
		for _, s := range p.Segments {
			fmt.Fprintf(stdout, "segment %s: cgroup %s, default %s, %d allow, %d deny\n", s.Name, s.Cgroup, s.Default, len(s.Allow), len(s.Deny))
		}
		return nil
	}
	var p *netseg.Policy
	if cmd == "apply" {
		var err error
		if p, err = netseg.Load(*file); err != nil {
			return err // refused before anything touches the kernel
		}
	}
	cfg := netseg.Config{PinPath: *pin, Logger: cliLogger(stderr)}
	if cmd == "apply" || cmd == "detach" {
		rec := newInboxRecorder(*dataDir)
		defer rec.noteQueued(stderr)
		cfg.Recorder = rec
	}
	e, err := netseg.New(cfg)
	if err != nil {
		return err
	}
	switch cmd {
	case "apply":
		res, err := e.Apply(ctx, p)
		if err != nil {
			return err
		}
		if !res.Changed {
			fmt.Fprintf(stdout, "unchanged: %s is already in force\n", res.Digest)
			return nil
		}
		fmt.Fprintf(stdout, "applied %s\n", res.Digest)
		for _, c := range res.Changes {
			fmt.Fprintln(stdout, c)
		}
		return nil
	case "detach":
		did, err := e.Detach(ctx)
		if err != nil {
			return err
		}
		if !did {
			fmt.Fprintln(stdout, "nothing applied under", e.PinPath())
		} else {
			fmt.Fprintln(stdout, "detached: access is open again")
		}
		return nil
	case "status":
		st, err := e.Status(ctx)
		if err != nil {
			return err
		}
		if *format == "json" {
			if err := writeJSON(stdout, st); err != nil {
				return err
			}
		} else {
			printStatus(stdout, st)
		}
		switch {
		case !st.Applied:
			return fmt.Errorf("netseg: no policy is in force under %s; apply one with `tradecore netseg apply -f POLICY`", st.PinPath)
		case !st.Enforced:
			return fmt.Errorf("netseg: the policy in force is damaged (%d problems above); fix them, usually by running apply again", len(st.Problems))
		}
		return nil
	case "stats":
		stats, err := e.Stats(ctx)
		if err != nil {
			return err
		}
		if *format == "json" {
			return writeJSON(stdout, stats)
		}
		printStats(stdout, stats)
	}
	return nil
}

func printStatus(w io.Writer, st netseg.Status) {
	if !st.Applied {
		fmt.Fprintf(w, "no policy applied under %s\n", st.PinPath)
		return
	}
	enforced := "yes"
	if !st.Enforced {
		enforced = "NO"
	}
	fmt.Fprintf(w, "policy   %s\napplied  %s\nenforced %s\n\n", st.Digest, st.AppliedAt.UTC().Format(time.RFC3339), enforced)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEGMENT\tCGROUP\tCGROUP ID\tDEFAULT\tALLOW\tDENY\tHOOKS")
	for _, s := range st.Segments {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\n", s.Name, s.Cgroup, s.CgroupID, s.Default, s.Allow, s.Deny, strings.Join(s.Hooks, ","))
	}
	tw.Flush()
	if len(st.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems:")
		for _, p := range st.Problems {
			fmt.Fprintln(w, "  -", p)
		}
	}
}

// printStats shows totals per hook and the 20 most counted destinations of
// each segment (--format json has them all).
func printStats(w io.Writer, stats netseg.Stats) {
	if len(stats.Segments) == 0 {
		fmt.Fprintln(w, "no policy applied")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, s := range stats.Segments {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "segment %s: %d allowed, %d denied\n", s.Name, s.Allowed, s.Denied)
		fmt.Fprintln(tw, "  HOOK\tALLOWED\tDENIED")
		for _, h := range s.Hooks {
			fmt.Fprintf(tw, "  %s\t%d\t%d\n", h.Hook, h.Allowed, h.Denied)
		}
		if len(s.Destinations) > 0 {
			fmt.Fprintln(tw, "  VERDICT\tDESTINATION\tPROTOCOL\tHOOK\tCOUNT")
			for j, d := range s.Destinations {
				if j == 20 {
					fmt.Fprintf(tw, "  … %d more (--format json lists all)\n", len(s.Destinations)-20)
					break
				}
				dst := d.Addr.String()
				if d.Port != 0 {
					dst = fmt.Sprintf("%s port %d", dst, d.Port)
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\n", d.Verdict, dst, d.Protocol, d.Hook, d.Count)
			}
		}
	}
	tw.Flush()
}
