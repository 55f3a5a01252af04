package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/audit/hsmsign"
)

const auditUsage = `usage: tradecore audit <command> [flags]

commands:
  query   entries by --account, --order, --instrument or --symbol, --type and time (--from, --to)
  export  entries timed in [--from, --to) as --format jsonl (each line exactly the leaf), csv, or bundle (for auditverify)
  prove   --index N [--size S]: the inclusion proof of entry N in a signed checkpoint (auditverify proof checks it)
  report  --day YYYY-MM-DD: the signed daily regulator report (signed in the HSM; auditverify report checks it)
  index   bring the query index up to date
  ingest  record the inbox (audit records queued by attest and netseg) in the log, when serve is not running

Times are RFC 3339 (2026-12-02T10:00:00Z), a day (2026-12-02, UTC midnight) or Unix nanoseconds.
The log is <data-dir>/audit (docs/audit-format.md). Exit codes: 0 success, 1 failure, 2 usage error.
`

func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditUsage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "query":
		return auditQuery(ctx, rest, stdout, stderr)
	case "export":
		return auditExport(ctx, rest, stdout, stderr)
	case "prove":
		return auditProve(ctx, rest, stdout, stderr)
	case "report":
		return auditReport(ctx, rest, stdout, stderr)
	case "index":
		return auditIndex(ctx, rest, stdout, stderr)
	case "ingest":
		return auditIngest(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, auditUsage)
		return nil
	default:
		fmt.Fprint(stderr, auditUsage)
		return fmt.Errorf("%w: unknown audit command %q", errUsage, cmd)
	}
}

func auditFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("tradecore audit "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs, dataDirFlag(fs)
}

func auditDir(dataDir string) (string, error) {
	dir := filepath.Join(dataDir, "audit")
	if _, err := os.Stat(filepath.Join(dir, "segments")); err != nil {
		return "", fmt.Errorf("audit: no audit log in %s: check --data-dir (the daemon writes <data-dir>/audit)", dir)
	}
	return dir, nil
}

// parseTime reads RFC 3339, a date (UTC midnight) or Unix nanoseconds.
func parseTime(flagName, s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UnixNano(), nil
	}
	return 0, fmt.Errorf("%w: --%s %q: give RFC 3339 (2026-12-02T10:00:00Z), a day (2026-12-02) or Unix nanoseconds", errUsage, flagName, s)
}

func auditQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := auditFlagSet("query", stderr)
	acct := fs.Uint("account", 0, "account id")
	order := fs.Uint64("order", 0, "engine order id")
	inst := fs.Uint("instrument", 0, "instrument id")
	symbol := fs.String("symbol", "", "instrument symbol (from the log's instrument table)")
	from := fs.String("from", "", "first time (inclusive)")
	to := fs.String("to", "", "end time (exclusive)")
	typ := fs.String("type", "", "record type prefix, e.g. event.executed or cmd.")
	limit := fs.Int("limit", 1000, "most entries to print")
	format := fs.String("format", "jsonl", "jsonl (the leaves) or text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "jsonl" && *format != "text" {
		return fmt.Errorf("%w: --format %q: use jsonl or text", errUsage, *format)
	}
	if *acct > 1<<32-1 || *inst > 1<<32-1 {
		return fmt.Errorf("%w: --account and --instrument are 32-bit ids", errUsage)
	}
	if *inst != 0 && *symbol != "" {
		return fmt.Errorf("%w: give --instrument or --symbol, not both", errUsage)
	}
	q := audit.Query{Account: uint32(*acct), Order: *order, Instrument: uint32(*inst), TypePrefix: *typ, Limit: *limit}
	var err error
	if q.From, err = parseTime("from", *from); err != nil {
		return err
	}
	if q.To, err = parseTime("to", *to); err != nil {
		return err
	}
	if q.Account == 0 && q.Order == 0 && q.Instrument == 0 && *symbol == "" && q.From == 0 && q.To == 0 && q.TypePrefix == "" {
		return fmt.Errorf("%w: give at least one of --account, --order, --instrument, --symbol, --type, --from, --to", errUsage)
	}
	dir, err := auditDir(*dataDir)
	if err != nil {
		return err
	}
	ix, err := audit.OpenIndex(dir)
	if err != nil {
		return err
	}
	if *symbol != "" {
		ins, err := ix.Instruments(ctx)
		if err != nil {
			return err
		}
		for _, in := range ins {
			if in.Symbol == *symbol {
				q.Instrument = in.ID
			}
		}
		if q.Instrument == 0 {
			return fmt.Errorf("audit: no instrument %q in the log's instrument table; check the symbol or use --instrument", *symbol)
		}
	}
	es, err := ix.Search(ctx, q)
	if err != nil {
		return err
	}
	for _, e := range es {
		if *format == "text" {
			h, _ := audit.ParseLeaf(e.Leaf)
			fmt.Fprintf(stdout, "%d %s %s %s\n", e.Index, time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano), e.Type, h.Body)
			continue
		}
		stdout.Write(e.Leaf)
		io.WriteString(stdout, "\n")
	}
	if len(es) == q.Limit {
		fmt.Fprintf(stderr, "tradecore: stopped at --limit %d entries\n", q.Limit)
	}
	return nil
}

func auditExport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := auditFlagSet("export", stderr)
	from := fs.String("from", "", "first time (inclusive; default the start)")
	to := fs.String("to", "", "end time (exclusive; default the end)")
	format := fs.String("format", "jsonl", "jsonl, csv or bundle")
	out := fs.String("out", "-", "output file (- = stdout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "jsonl" && *format != "csv" && *format != "bundle" {
		return fmt.Errorf("%w: --format %q: use jsonl, csv or bundle", errUsage, *format)
	}
	f, err := parseTime("from", *from)
	if err != nil {
		return err
	}
	t, err := parseTime("to", *to)
	if err != nil {
		return err
	}
	if t == 0 {
		t = 1<<63 - 1
	}
	if t < f {
		return fmt.Errorf("%w: --to is before --from", errUsage)
	}
	dir, err := auditDir(*dataDir)
	if err != nil {
		return err
	}
	ix, err := audit.OpenIndex(dir)
	if err != nil {
		return err
	}
	lo, hi, err := ix.TimeRange(ctx, f, t)
	if err != nil {
		return err
	}
	w := stdout
	if *out != "-" {
		file, err := os.Create(*out)
		if err != nil {
			return fmt.Errorf("audit: --out: %w", err)
		}
		defer file.Close()
		w = file
	}
	switch *format {
	case "bundle":
		if hi == lo {
			return fmt.Errorf("audit: no entries in that time range; widen --from/--to")
		}
		_, err = audit.ExportBundle(ctx, dir, lo, hi, w)
		return err
	case "jsonl":
		r, err := audit.OpenReader(dir)
		if err != nil {
			return err
		}
		return r.Read(lo, hi, func(e *audit.Entry) error {
			if _, err := w.Write(e.Leaf); err != nil {
				return err
			}
			_, err := io.WriteString(w, "\n")
			return err
		})
	}
	r, err := audit.OpenReader(dir)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	cols := []string{"seq", "inst", "acct", "order_id", "clordid", "side", "ord_type", "price", "qty", "leaves", "reason"}
	cw.Write(append(append([]string{"index", "time", "type"}, cols...), "body"))
	err = r.Read(lo, hi, func(e *audit.Entry) error {
		h, _ := audit.ParseLeaf(e.Leaf)
		var m map[string]json.RawMessage
		json.Unmarshal(h.Body, &m)
		row := []string{strconv.FormatUint(e.Index, 10), strconv.FormatInt(e.Time, 10), e.Type}
		for _, c := range cols {
			v := m[c]
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			row = append(row, s)
		}
		return cw.Write(append(row, string(h.Body)))
	})
	cw.Flush()
	return errors.Join(err, cw.Error())
}

func auditProve(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := auditFlagSet("prove", stderr)
	index := fs.Int64("index", -1, "entry index")
	size := fs.Uint64("size", 0, "tree size of the checkpoint to prove against (default: the first that covers the entry)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *index < 0 {
		return fmt.Errorf("%w: --index N is required (an entry index, from audit query)", errUsage)
	}
	dir, err := auditDir(*dataDir)
	if err != nil {
		return err
	}
	p, err := audit.Prove(ctx, dir, uint64(*index), *size)
	if err != nil {
		return err
	}
	return writeJSON(stdout, p)
}

func auditReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tradecore audit report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := addTokenFlags(fs)
	format := formatFlag(fs)
	day := fs.String("day", "", "the UTC day, YYYY-MM-DD")
	out := fs.String("out", "", "file for the signed report (default <data-dir>/audit/reports/<day>.note)")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return fmt.Errorf("%w: audit report takes no arguments", errUsage)
	}
	d, err := time.Parse(time.DateOnly, *day)
	if err != nil {
		return fmt.Errorf("%w: --day %q: give the day as YYYY-MM-DD", errUsage, *day)
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	dir, err := auditDir(*f.dataDir)
	if err != nil {
		return err
	}
	log := cliLogger(stderr)
	svc, closeSvc, err := openService(ctx, f.selection(), log, false)
	if err != nil {
		return err
	}
	defer closeSvc()
	signer := hsmsign.New(svc)
	rep, err := audit.BuildReport(ctx, dir, d, svc.Verified().Manifest.Name)
	if err != nil {
		return err
	}
	note, err := audit.SignReport(ctx, signer, rep, time.Now())
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		if err := os.MkdirAll(filepath.Join(dir, "reports"), 0o700); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
		path = filepath.Join(dir, "reports", rep.Day+".note")
	}
	if err := os.WriteFile(path, note, 0o600); err != nil {
		return fmt.Errorf("audit: write report: %w", err)
	}
	if *format == "json" {
		return writeJSON(stdout, struct {
			File   string             `json:"file"`
			Report *audit.DailyReport `json:"report"`
		}{path, rep})
	}
	fmt.Fprintf(stdout, "report %s: %d orders, %d trades, %d rejects, %d risk events, %d alerts; signed report written to %s\n",
		rep.Day, rep.Orders, rep.Trades, sum(rep.Rejects), rep.RiskEvents, sum(rep.Alerts), path)
	if rep.Checkpoint == "" {
		fmt.Fprintln(stderr, "tradecore: warning: no signed checkpoint covers the end of the day yet; run the report again after the next checkpoint")
	}
	return nil
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

func auditIndex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := auditFlagSet("index", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	dir, err := auditDir(*dataDir)
	if err != nil {
		return err
	}
	ix, err := audit.OpenIndex(dir)
	if err != nil {
		return err
	}
	n, err := ix.Update(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "indexed %d entries\n", n)
	return nil
}
