package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/audit/hsmsign"
	"github.com/tradecore/tradecore/audit/pgstore"
	"github.com/tradecore/tradecore/hsm"
)

// The PostgreSQL mirror's operator verbs (docs/audit-postgres.md):
//
//	tradecore audit pg migrate     create or update the schema, grants and partitions (owner role)
//	tradecore audit pg status      what the mirror holds
//	tradecore audit retention plan|export|drop

const auditPGUsage = `usage: tradecore audit pg <command> [flags]
       tradecore audit retention <command> [flags]

pg commands:
  migrate --app-role NAME   create or update the audit schema, the application role's grants and the
                            partitions ahead (--days-ahead N, --through YYYY-MM-DD); run as the owner role
  status                    the mirror's next index, batches, partitions

retention commands (as the owner role):
  plan                      every partition with its retention, export and whether it may go
  export --day D --out DIR  write the day's partition to DIR/<partition>.jsonl and .manifest.json, audited
  drop --day D --export-dir DIR
                            drop the day's partition: only when its retention (7 years at least) has
                            ended, its export matches it and is in DIR; audited

The connection string comes from --dsn-file (a file only its owner can read) or the environment:
$TRADECORE_AUDIT_PG_OWNER_DSN for migrate and retention, $TRADECORE_AUDIT_PG_DSN for status.
Never on the command line. Other flags: --format text|json, --retain PREFIX=YEARS (retention,
repeatable: keep types with that prefix longer; sanctions. keeps 10 by default), --data-dir.
Exit codes: 0 success, 1 failure or refusal, 2 usage error.
`

// auditPG holds what the verbs need from outside, so tests can give fakes.
type auditPG struct {
	// openRecorder opens the audit log the retention commands record in.
	openRecorder func(ctx context.Context, dataDir string) (pgstore.Recorder, func() error, error)
}

// openAuditLog opens the audit log under dataDir as the retention
// commands' Recorder, signed by the local signing service. The log has one
// writer: while `tradecore serve` runs on this data dir it holds the log, and
// the retention commands refuse (stop the daemon for a retention run).
func openAuditLog(ctx context.Context, dataDir string) (pgstore.Recorder, func() error, error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sel := tokenSelection{DataDir: dataDir, Token: hsm.DefaultTokenLabel}
	svc, closeSvc, err := openService(ctx, sel, log, false)
	if err != nil {
		return nil, nil, fmt.Errorf("open the signing service for the audit log: %w", err)
	}
	alog, closeLog, err := audit.Open(ctx, audit.Config{WriterConfig: audit.WriterConfig{Dir: filepath.Join(dataDir, "audit"), Logger: log},
		Signer: hsmsign.New(svc)})
	if err != nil {
		closeSvc()
		if errors.Is(err, audit.ErrLocked) {
			return nil, nil, fmt.Errorf("the audit log in %s is held by a running tradecore serve: stop it for the retention run: %w", dataDir, err)
		}
		return nil, nil, fmt.Errorf("open the audit log: %w", err)
	}
	return alog, func() error { return errors.Join(closeLog(), closeSvc()) }, nil
}

func runAuditPG(ctx context.Context, group string, args []string, stdout, stderr io.Writer) error {
	return auditPG{openRecorder: openAuditLog}.run(ctx, group, args, stdout, stderr)
}

func (a auditPG) run(ctx context.Context, group string, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditPGUsage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch group + " " + cmd {
	case "pg migrate":
		return a.migrate(ctx, rest, stdout)
	case "pg status":
		return a.status(ctx, rest, stdout)
	case "retention plan":
		return a.plan(ctx, rest, stdout)
	case "retention export":
		return a.export(ctx, rest, stdout)
	case "retention drop":
		return a.drop(ctx, rest, stdout)
	case "pg help", "retention help", "pg -h", "retention -h", "pg --help", "retention --help":
		fmt.Fprint(stdout, auditPGUsage)
		return nil
	}
	fmt.Fprint(stderr, auditPGUsage)
	return fmt.Errorf("%w: unknown audit %s command %q", errUsage, group, cmd)
}

// pgFlags are the flags every verb here takes.
type pgFlags struct {
	dataDir, dsnFile, format *string
	retain                   retainFlag
}

func addPGFlags(fs *flag.FlagSet) *pgFlags {
	f := &pgFlags{
		dataDir: dataDirFlag(fs),
		dsnFile: fs.String("dsn-file", "", "file holding the PostgreSQL connection string (chmod 600); default from the environment"),
		format:  fs.String("format", "text", "output format: text or json"),
	}
	return f
}

func (f *pgFlags) check() error {
	if *f.format != "text" && *f.format != "json" {
		return fmt.Errorf("%w: --format %q: use text or json", errUsage, *f.format)
	}
	return nil
}

// connect opens the connection the flags select; env names the variable
// read when --dsn-file is empty.
func (f *pgFlags) connect(ctx context.Context, env string) (*pgx.Conn, error) {
	dsn, err := pgstore.LoadDSN(*f.dsnFile, env)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	return conn, nil
}

// retainFlag collects --retain PREFIX=YEARS.
type retainFlag map[string]int

func (r *retainFlag) String() string { return "" }
func (r *retainFlag) Set(v string) error {
	prefix, years, ok := strings.Cut(v, "=")
	n, err := strconv.Atoi(years)
	if !ok || err != nil || prefix == "" {
		return fmt.Errorf("--retain %q: use PREFIX=YEARS, for example sanctions.=10", v)
	}
	if *r == nil {
		*r = retainFlag{}
	}
	(*r)[prefix] = n
	return nil
}

// policy is the default policy lengthened by --retain; a flag can never
// shorten a period.
func (f *pgFlags) policy() (*pgstore.Policy, error) {
	p := pgstore.DefaultPolicy()
	for k, v := range f.retain {
		if cur := p.YearsFor(k); v < cur {
			return nil, fmt.Errorf("%w: --retain %s=%d would shorten retention below %d years: it can only lengthen it", errUsage, k, v, cur)
		}
		p.Longer[k] = v
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("%w: --retain: %w", errUsage, err)
	}
	return &p, nil
}

func parseDay(flagName, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("%w: --%s is required (YYYY-MM-DD, UTC)", errUsage, flagName)
	}
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: --%s %q: use YYYY-MM-DD (UTC)", errUsage, flagName, v)
	}
	return d, nil
}

func (a auditPG) migrate(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit pg migrate", flag.ContinueOnError)
	f := addPGFlags(fs)
	appRole := fs.String("app-role", "", "the application role the copier logs in as (required)")
	daysAhead := fs.Int("days-ahead", pgstore.DefaultDaysAhead, "days of partitions to make past today")
	through := fs.String("through", "", "also make every partition up to this day (YYYY-MM-DD)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	if *appRole == "" {
		return fmt.Errorf("%w: --app-role is required: the login role the copier uses", errUsage)
	}
	cfg := pgstore.MigrateConfig{AppRole: *appRole, DaysAhead: *daysAhead}
	if *through != "" {
		d, err := parseDay("through", *through)
		if err != nil {
			return err
		}
		cfg.Through = d
	}
	conn, err := f.connect(ctx, pgstore.EnvOwnerDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	res, err := pgstore.Migrate(ctx, conn, cfg)
	if err != nil {
		return err
	}
	if *f.format == "json" {
		return writeJSON(stdout, map[string]any{"created": res.Created, "partitions_made": res.Partitions, "schema_version": pgstore.SchemaVersion})
	}
	what := "schema up to date"
	if res.Created {
		what = "schema created"
	}
	fmt.Fprintf(stdout, "%s (version %d); %d partitions made; grants applied to %s\n", what, pgstore.SchemaVersion, res.Partitions, *appRole)
	return nil
}

func (a auditPG) status(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("audit pg status", flag.ContinueOnError)
	f := addPGFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	conn, err := f.connect(ctx, pgstore.EnvDSN)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	m, err := pgstore.Inspect(ctx, conn)
	if err != nil {
		return err
	}
	if *f.format == "json" {
		out := map[string]any{"schema_version": m.SchemaVersion, "next_index": m.Next, "batches": m.Batches, "partitions": m.Partitions}
		if !m.LastCopyAt.IsZero() {
			out["last_copy_at"] = m.LastCopyAt.Format(time.RFC3339Nano)
		}
		if m.Partitions > 0 {
			out["first_day"], out["last_day"] = m.First.Format(time.DateOnly), m.Last.Format(time.DateOnly)
		}
		if m.Retired >= 0 {
			out["retired"] = m.Retired
		}
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "schema version %d\nnext index     %d (entries 0..%d stored)\nbatches        %d\n", m.SchemaVersion, m.Next, int64(m.Next)-1, m.Batches)
	if !m.LastCopyAt.IsZero() {
		fmt.Fprintf(stdout, "last copy      %s\n", m.LastCopyAt.Format(time.RFC3339))
	}
	if m.Partitions > 0 {
		fmt.Fprintf(stdout, "partitions     %d, %s to %s\n", m.Partitions, m.First.Format(time.DateOnly), m.Last.Format(time.DateOnly))
	}
	if m.Retired >= 0 {
		fmt.Fprintf(stdout, "retired        %d\n", m.Retired)
	}
	return nil
}

func (a auditPG) retention(ctx context.Context, f *pgFlags, withRecorder bool) (*pgstore.Retention, func(), error) {
	pol, err := f.policy()
	if err != nil {
		return nil, nil, err
	}
	r := &pgstore.Retention{Policy: pol}
	closers := []func(){}
	done := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	if withRecorder {
		rec, closeRec, err := a.openRecorder(ctx, *f.dataDir)
		if err != nil {
			return nil, nil, err
		}
		r.Recorder = rec
		closers = append(closers, func() { _ = closeRec() })
	}
	conn, err := f.connect(ctx, pgstore.EnvOwnerDSN)
	if err != nil {
		done()
		return nil, nil, err
	}
	closers = append(closers, func() { conn.Close(context.Background()) })
	r.Conn = conn
	return r, done, nil
}

func retentionFlags(name string) (*flag.FlagSet, *pgFlags) {
	fs := flag.NewFlagSet("audit retention "+name, flag.ContinueOnError)
	f := addPGFlags(fs)
	fs.Var(&f.retain, "retain", "PREFIX=YEARS: keep record types with this prefix longer (repeatable)")
	return fs, f
}

func (a auditPG) plan(ctx context.Context, args []string, stdout io.Writer) error {
	fs, f := retentionFlags("plan")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	r, done, err := a.retention(ctx, f, false)
	if err != nil {
		return err
	}
	defer done()
	clk, parts, err := r.Plan(ctx)
	if err != nil {
		return err
	}
	if *f.format == "json" {
		type row struct {
			Partition   string   `json:"partition"`
			Day         string   `json:"day"`
			Checked     bool     `json:"checked"`
			Rows        *int64   `json:"rows,omitempty"`
			Types       []string `json:"types,omitempty"`
			RetainYears int      `json:"retain_years"`
			RetainUntil string   `json:"retain_until"`
			Due         bool     `json:"due"`
			Exported    bool     `json:"exported"`
			ExportIndex *uint64  `json:"export_audit_index,omitempty"`
		}
		out := struct {
			Clock      string `json:"retention_clock,omitempty"`
			Partitions []row  `json:"partitions"`
		}{Partitions: []row{}}
		if !clk.Now.IsZero() {
			out.Clock = clk.Now.Format(time.RFC3339Nano)
		}
		for _, p := range parts {
			rw := row{Partition: p.Name, Day: p.Day.Format(time.DateOnly), Checked: p.Checked, Types: p.Types, RetainYears: p.RetainYears,
				RetainUntil: p.RetainUntil.Format(time.DateOnly), Due: p.Due, Exported: p.Export != nil}
			if p.Checked {
				rows := p.Rows
				rw.Rows = &rows
			}
			if p.Export != nil {
				rw.ExportIndex = &p.Export.AuditIndex
			}
			out.Partitions = append(out.Partitions, rw)
		}
		return writeJSON(stdout, out)
	}
	if clk.Now.IsZero() {
		fmt.Fprintln(stdout, "retention clock: none (the mirror holds no records), nothing may go")
	} else {
		fmt.Fprintf(stdout, "retention clock: %s (earliest of local, database and newest record)\n", clk.Now.Format(time.RFC3339))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tROWS\tKEEP\tUNTIL\tEXPORTED\tMAY GO")
	for _, p := range parts {
		rows := "-"
		if p.Checked {
			rows = strconv.FormatInt(p.Rows, 10)
		}
		exported := "no"
		if p.Export != nil {
			exported = "yes (record " + strconv.FormatUint(p.Export.AuditIndex, 10) + ")"
		}
		may := "no"
		switch {
		case p.Due && p.Export != nil:
			may = "yes"
		case p.Due:
			may = "after export"
		}
		fmt.Fprintf(tw, "%s\t%s\t%dy\t%s\t%s\t%s\n", p.Name, rows, p.RetainYears, p.RetainUntil.Format(time.DateOnly), exported, may)
	}
	return tw.Flush()
}

func (a auditPG) export(ctx context.Context, args []string, stdout io.Writer) error {
	fs, f := retentionFlags("export")
	dayFlag := fs.String("day", "", "the partition's day (YYYY-MM-DD, UTC)")
	out := fs.String("out", "", "folder to write the export into (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	day, err := parseDay("day", *dayFlag)
	if err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("%w: --out is required: the folder for the export's files", errUsage)
	}
	r, done, err := a.retention(ctx, f, true)
	if err != nil {
		return err
	}
	defer done()
	m, at, err := r.Export(ctx, day, *out)
	if err != nil {
		return err
	}
	if *f.format == "json" {
		return writeJSON(stdout, map[string]any{"partition": m.Partition, "rows": m.Rows, "jsonl": m.JSONL, "jsonl_sha256": m.JSONLSHA256, "audit_index": at})
	}
	fmt.Fprintf(stdout, "exported %s: %d rows to %s/%s (SHA-256 %s); audit record %d\n", m.Partition, m.Rows, *out, m.JSONL, m.JSONLSHA256, at)
	return nil
}

func (a auditPG) drop(ctx context.Context, args []string, stdout io.Writer) error {
	fs, f := retentionFlags("drop")
	dayFlag := fs.String("day", "", "the partition's day (YYYY-MM-DD, UTC)")
	exportDir := fs.String("export-dir", "", "folder holding the partition's export (required)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := f.check(); err != nil {
		return err
	}
	day, err := parseDay("day", *dayFlag)
	if err != nil {
		return err
	}
	if *exportDir == "" {
		return fmt.Errorf("%w: --export-dir is required: the folder holding the partition's export", errUsage)
	}
	r, done, err := a.retention(ctx, f, true)
	if err != nil {
		return err
	}
	defer done()
	res, err := r.Drop(ctx, day, *exportDir)
	if err != nil {
		return err
	}
	if *f.format == "json" {
		return writeJSON(stdout, map[string]any{"partition": res.Partition, "rows": res.Rows, "audit_index": res.AuditIndex})
	}
	fmt.Fprintf(stdout, "dropped %s (%d rows); audit record %d\n", res.Partition, res.Rows, res.AuditIndex)
	return nil
}
