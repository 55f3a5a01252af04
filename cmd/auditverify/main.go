// Command auditverify is the auditor's offline verifier of a tradecore audit
// log. It is pure Go (it builds with CGO_ENABLED=0) and needs no HSM: only
// the log (an audit folder or an export bundle), the key manifest, and the
// first key's id obtained out of band.
//
//	auditverify --manifest keys.json --pin ID [flags] PATH
//	auditverify proof  --manifest keys.json --pin ID FILE
//	auditverify report --manifest keys.json --pin ID [--log DIR] FILE
//
// Exit codes: 0 verified, 1 verification failed (the first bad index and
// why are printed), 2 usage or I/O error. docs/auditverify.md has the rest.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"strings"
	"time"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/hsm/manifest"
)

const usage = `usage:
  auditverify --manifest FILE --pin ID [flags] PATH   verify an audit folder or an export bundle (- = stdin)
  auditverify proof  --manifest FILE --pin ID FILE     verify an inclusion proof (tradecore audit prove)
  auditverify report --manifest FILE --pin ID [--log DIR] FILE
                                                       verify a signed daily report (and recompute it from the log)
flags:
  --manifest FILE       key manifest (tradecore keys export)
  --pin ID              id of the manifest's first key, obtained out of band
  --origin NAME         checkpoint origin (default: the manifest's name)
  --checkpoint FILE     a signed checkpoint you hold that the log must contain (repeatable)
  --require-snapshots   fail when a referenced snapshot file is missing
  --format text|json
exit codes: 0 verified, 1 verification failed, 2 usage or I/O error
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, isTerminal(os.Stderr))
	stop()
	os.Exit(code)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

type options struct {
	manifest, pin, origin, format, log string
	checkpoints                        multi
	requireSnapshots                   bool
}

func flags(name string, stderr io.Writer) (*flag.FlagSet, *options) {
	o := &options{}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	fs.StringVar(&o.manifest, "manifest", "", "key manifest file")
	fs.StringVar(&o.pin, "pin", "", "pinned first key id")
	fs.StringVar(&o.origin, "origin", "", "checkpoint origin")
	fs.StringVar(&o.format, "format", "text", "text or json")
	fs.Var(&o.checkpoints, "checkpoint", "held checkpoint file (repeatable)")
	fs.BoolVar(&o.requireSnapshots, "require-snapshots", false, "fail on missing snapshot files")
	if name == "report" {
		fs.StringVar(&o.log, "log", "", "audit folder to recompute the report from")
	}
	return fs, o
}

// usageErr prints a usage mistake and returns exit code 2.
func usageErr(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "auditverify: "+format+"\n", args...)
	return 2
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, tty bool) int {
	sub := ""
	if len(args) > 0 && (args[0] == "proof" || args[0] == "report") {
		sub, args = args[0], args[1:]
	}
	fs, o := flags(sub, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprint(stderr, usage)
		return usageErr(stderr, "give exactly one PATH (an audit folder, a bundle file, or - for stdin)")
	}
	if o.format != "text" && o.format != "json" {
		return usageErr(stderr, "--format %q: use text or json", o.format)
	}
	if o.manifest == "" || o.pin == "" {
		return usageErr(stderr, "--manifest and --pin are required: the key manifest (tradecore keys export) and its first key's id, obtained out of band")
	}
	mj, err := os.ReadFile(o.manifest)
	if err != nil {
		return usageErr(stderr, "--manifest: %v", err)
	}
	opts := audit.VerifyOptions{Manifest: mj, PinnedFirstKey: o.pin, Origin: o.origin, RequireSnapshots: o.requireSnapshots}
	for _, c := range o.checkpoints {
		b, err := os.ReadFile(c)
		if err != nil {
			return usageErr(stderr, "--checkpoint: %v", err)
		}
		opts.Checkpoints = append(opts.Checkpoints, b)
	}
	out := &printer{w: stdout, json: o.format == "json"}
	switch sub {
	case "proof":
		return verifyProof(fs.Arg(0), opts, out, stderr)
	case "report":
		return verifyReport(ctx, fs.Arg(0), o.log, opts, out, stderr)
	}
	path := fs.Arg(0)
	start := time.Now()
	if tty {
		opts.Progress = func(n uint64) { fmt.Fprintf(stderr, "\rverified %d leaves…", n) }
	}
	var res *audit.VerifyResult
	var isDir bool
	if path != "-" {
		st, err := os.Stat(path)
		if err != nil {
			return usageErr(stderr, "%v", err)
		}
		isDir = st.IsDir()
	}
	switch {
	case isDir:
		res, err = audit.VerifyDir(ctx, path, opts)
	case path == "-":
		res, err = audit.VerifyBundle(ctx, stdin, opts)
	default:
		f, ferr := os.Open(path)
		if ferr != nil {
			return usageErr(stderr, "%v", ferr)
		}
		res, err = audit.VerifyBundle(ctx, f, opts)
		f.Close()
	}
	if tty {
		fmt.Fprint(stderr, "\r\033[K")
	}
	return out.result(res, err, time.Since(start), stderr)
}

type printer struct {
	w    io.Writer
	json bool
}

func (p *printer) emit(v any) {
	enc := json.NewEncoder(p.w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// failure prints a verification failure or an I/O error and returns the
// exit code.
func (p *printer) failure(err error, stderr io.Writer) int {
	var ve *audit.VerifyError
	if errors.As(err, &ve) || errors.Is(err, audit.ErrCheckpoint) || errors.Is(err, audit.ErrProof) || errors.Is(err, audit.ErrBundle) || errors.Is(err, audit.ErrReport) || errors.Is(err, manifest.ErrInvalid) {
		if p.json {
			v := map[string]any{"verified": false, "reason": err.Error()}
			if ve != nil {
				v["index"], v["checkpoint"], v["reason"] = ve.Index, ve.Checkpoint, ve.Reason
				if ve.Err != nil {
					v["detail"] = ve.Err.Error()
				}
			}
			p.emit(v)
		} else {
			fmt.Fprintln(p.w, "FAILED:", err)
		}
		return 1
	}
	fmt.Fprintln(stderr, "auditverify:", err)
	return 2
}

func (p *printer) result(res *audit.VerifyResult, err error, took time.Duration, stderr io.Writer) int {
	if err != nil {
		return p.failure(err, stderr)
	}
	if p.json {
		p.emit(map[string]any{"verified": true, "result": res})
		return 0
	}
	fmt.Fprintf(p.w, "VERIFIED %d leaves [%d, %d): %d commands, %d events, %d other records\n", res.Leaves, res.From, res.From+res.Leaves, res.Commands, res.Events, res.Records)
	fmt.Fprintf(p.w, "  %d signed checkpoints; the last covers %d leaves (root %s, signed %s)\n", res.Checkpoints, res.Last.Size, res.Last.Root, time.Unix(0, res.Last.Time).UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(p.w, "  signing keys: %s\n", strings.Join(res.Keys, ", "))
	if res.Leaves > 0 {
		fmt.Fprintf(p.w, "  records from %s to %s\n", time.Unix(0, res.FirstTime).UTC().Format(time.RFC3339Nano), time.Unix(0, res.LastTime).UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintf(p.w, "  key records: %d keys.* records match the manifest\n", res.KeyRecords)
	if n := len(res.UnrecordedKeyEntries); n > 0 {
		fmt.Fprintf(p.w, "  note: %d manifest entries are not recorded in this log: %v (made after its end, or while no daemon recorded them)\n", n, res.UnrecordedKeyEntries)
	}
	if res.Unsigned > 0 {
		fmt.Fprintf(p.w, "  note: the last %d leaves are not yet covered by a signed checkpoint\n", res.Unsigned)
	}
	if res.SnapshotsChecked+res.SnapshotsMissing > 0 {
		fmt.Fprintf(p.w, "  snapshots: %d checked, %d not present\n", res.SnapshotsChecked, res.SnapshotsMissing)
	}
	fmt.Fprintf(p.w, "  in %s\n", took.Round(time.Millisecond))
	return 0
}

func verifiedKeys(opts audit.VerifyOptions) (*manifest.Verified, error) {
	return manifest.Verify(opts.Manifest, opts.PinnedFirstKey)
}

func verifyProof(path string, opts audit.VerifyOptions, out *printer, stderr io.Writer) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return usageErr(stderr, "%v", err)
	}
	keys, err := verifiedKeys(opts)
	if err != nil {
		return out.failure(err, stderr)
	}
	p, c, err := audit.VerifyProof(data, keys, opts.Origin)
	if err != nil {
		return out.failure(err, stderr)
	}
	if out.json {
		out.emit(map[string]any{"verified": true, "index": p.Index, "tree_size": c.Size, "leaf": json.RawMessage(p.Leaf)})
		return 0
	}
	fmt.Fprintf(out.w, "VERIFIED leaf %d is in the signed tree of size %d (signed %s)\n%s\n", p.Index, c.Size, time.Unix(0, c.Time).UTC().Format(time.RFC3339Nano), p.Leaf)
	return 0
}

func verifyReport(ctx context.Context, path, logDir string, opts audit.VerifyOptions, out *printer, stderr io.Writer) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return usageErr(stderr, "%v", err)
	}
	keys, err := verifiedKeys(opts)
	if err != nil {
		return out.failure(err, stderr)
	}
	rep, _, err := audit.VerifyReport(data, keys)
	if err != nil {
		return out.failure(err, stderr)
	}
	if rep.Checkpoint != "" {
		if _, _, err := audit.VerifyCheckpoint([]byte(rep.Checkpoint), keys, opts.Origin); err != nil {
			return out.failure(err, stderr)
		}
	}
	if logDir != "" {
		if _, err := audit.VerifyDir(ctx, logDir, opts); err != nil {
			return out.failure(err, stderr)
		}
		day, _ := time.Parse(time.DateOnly, rep.Day)
		again, err := audit.BuildReport(ctx, logDir, day, rep.Origin)
		if err != nil {
			return usageErr(stderr, "%v", err)
		}
		again.Generated = rep.Generated
		if !reflect.DeepEqual(again, rep) {
			a, _ := json.Marshal(again)
			b, _ := json.Marshal(rep)
			return out.failure(fmt.Errorf("%w: the signed report does not match the log: log gives %s, report says %s", audit.ErrReport, a, b), stderr)
		}
	}
	if out.json {
		out.emit(map[string]any{"verified": true, "report": rep, "recomputed": logDir != ""})
		return 0
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "VERIFIED daily report %s (leaves [%d, %d)): %d orders, %d trades, %d rejects by reason %v, %d risk events, %d alerts\n",
		rep.Day, rep.From, rep.To, rep.Orders, rep.Trades, len(rep.Rejects), rep.Rejects, rep.RiskEvents, len(rep.Alerts))
	if logDir != "" {
		b.WriteString("  recomputed from the log: identical\n")
	}
	out.w.Write(b.Bytes())
	return 0
}
