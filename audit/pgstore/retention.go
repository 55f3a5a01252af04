package pgstore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// MinRetentionYears is the floor: no partition holding anything younger
// than this, counted from the end of its day, is ever dropped.
const MinRetentionYears = 7

// Record types the retention commands write to the audit log.
const (
	RecordExported = "audit.retention.exported"
	RecordDropped  = "audit.retention.dropped"
)

// Retention errors. Each says what the caller should do.
var (
	// ErrTooYoung means the partition's retention has not ended: nothing to
	// do until the date the error gives.
	ErrTooYoung = errors.New("pgstore: partition is inside its retention period")
	// ErrNotExported means the partition has no export: run `tradecore
	// audit retention export` for that day first.
	ErrNotExported = errors.New("pgstore: partition has not been exported")
	// ErrExportMismatch means the export on record, or the files in the
	// export folder, do not match the partition as it is now: export it again
	// and keep the new files.
	ErrExportMismatch = errors.New("pgstore: export does not match the partition")
	// ErrNoPartition means there is no partition for that day.
	ErrNoPartition = errors.New("pgstore: no partition for that day")
	// ErrRecord means the audit record of the action could not be written,
	// so the action was refused: fix the audit log and run it again.
	ErrRecord = errors.New("pgstore: audit record not written")
	// ErrPolicy means a retention policy is invalid: see Policy.
	ErrPolicy = errors.New("pgstore: invalid retention policy")
)

// Recorder writes audit records (see COMMON contract: the audit log's
// Record method). Retention refuses an action whose record fails.
type Recorder interface {
	Record(ctx context.Context, typ string, body any) (uint64, error)
}

// Policy says how long records are kept, in whole years counted from the
// end of the day a partition holds.
type Policy struct {
	// DefaultYears applies to every type without a longer rule; at least
	// MinRetentionYears. Zero means MinRetentionYears.
	DefaultYears int
	// Longer maps record-type prefixes ("sanctions.") to longer periods.
	// A type takes the longest period of every prefix it matches. A rule can
	// only lengthen retention: periods under DefaultYears are invalid.
	Longer map[string]int
}

// DefaultPolicy keeps everything seven years, and sanctions records ten.
func DefaultPolicy() Policy {
	return Policy{DefaultYears: MinRetentionYears, Longer: map[string]int{"sanctions.": 10}}
}

// Validate checks the policy.
func (p Policy) Validate() error {
	d := p.defaultYears()
	if d < MinRetentionYears {
		return fmt.Errorf("%w: default of %d years is under the %d-year floor", ErrPolicy, d, MinRetentionYears)
	}
	for prefix, y := range p.Longer {
		if prefix == "" || !validType(strings.TrimSuffix(prefix, ".")) {
			return fmt.Errorf("%w: prefix %q is not a record-type prefix (a-z, 0-9, '.', '_', '-')", ErrPolicy, prefix)
		}
		if y < d {
			return fmt.Errorf("%w: %q keeps %d years, under the default %d: rules can only lengthen retention", ErrPolicy, prefix, y, d)
		}
		if y > 100 {
			return fmt.Errorf("%w: %q keeps %d years: at most 100", ErrPolicy, prefix, y)
		}
	}
	return nil
}

func (p Policy) defaultYears() int {
	if p.DefaultYears == 0 {
		return MinRetentionYears
	}
	return p.DefaultYears
}

// YearsFor is the retention of one record type.
func (p Policy) YearsFor(typ string) int {
	y := p.defaultYears()
	for prefix, v := range p.Longer {
		if strings.HasPrefix(typ, prefix) && v > y {
			y = v
		}
	}
	return y
}

// Retention plans, exports and drops old partitions. Conn must be the
// owner role's connection (only the owner can drop a partition). Every
// export and drop is first written to the audit log through Recorder; if
// that fails, nothing happens.
type Retention struct {
	Conn     *pgx.Conn
	Recorder Recorder
	// Policy defaults to DefaultPolicy().
	Policy *Policy
	// Now is the local clock; the retention clock is the earliest of it, the
	// database's clock and the newest record in the mirror, so moving one
	// clock forward does not age anything. Default time.Now.
	Now func() time.Time
}

func (r *Retention) policy() (Policy, error) {
	p := DefaultPolicy()
	if r.Policy != nil {
		p = *r.Policy
	}
	return p, p.Validate()
}

// Clock is the retention clock and where it came from.
type Clock struct {
	Local, Database time.Time
	// Newest is the time of the newest record in the mirror (zero when empty).
	Newest time.Time
	// Now is the earliest of the three: the time retention is judged at.
	Now time.Time
}

type queryer interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (r *Retention) clock(ctx context.Context, q queryer) (Clock, error) {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	c := Clock{Local: now().UTC()}
	var newest *int64
	if err := q.QueryRow(ctx, "SELECT now(), (SELECT max(last_ts) FROM audit.batches)").Scan(&c.Database, &newest); err != nil {
		return c, fmt.Errorf("pgstore: read the database clock: %w", err)
	}
	c.Database = c.Database.UTC()
	c.Now = c.Local
	if c.Database.Before(c.Now) {
		c.Now = c.Database
	}
	if newest == nil {
		// An empty mirror has no clock of its own: nothing is old.
		c.Now = time.Time{}
		return c, nil
	}
	c.Newest = time.Unix(0, *newest).UTC()
	if c.Newest.Before(c.Now) {
		c.Now = c.Newest
	}
	return c, nil
}

// PartitionInfo describes one daily partition for retention.
type PartitionInfo struct {
	Name string
	Day  time.Time
	// Checked is false for partitions inside the 7-year floor, whose rows
	// Plan does not read; Rows and Types are then unknown.
	Checked bool
	Rows    int64
	Types   []string
	// RetainYears and RetainUntil: the partition may go from RetainUntil on.
	RetainYears int
	RetainUntil time.Time
	// Due: its retention has ended by the retention clock.
	Due bool
	// Export is the latest export on record, if any.
	Export *ExportInfo
}

// ExportInfo is an export on record in audit.exports.
type ExportInfo struct {
	Rows        int64
	JSONLSHA256 string
	AuditIndex  uint64
	ExportedAt  time.Time
}

var partRE = regexp.MustCompile(`^leaves_([0-9]{8})$`)

// PartitionName is the name of the partition holding day (UTC).
func PartitionName(day time.Time) string { return "leaves_" + day.UTC().Format("20060102") }

// Plan lists every partition with its retention; partitions old enough to
// be candidates are read to learn their types and rows.
func (r *Retention) Plan(ctx context.Context) (Clock, []PartitionInfo, error) {
	pol, err := r.policy()
	if err != nil {
		return Clock{}, nil, err
	}
	clk, err := r.clock(ctx, r.Conn)
	if err != nil {
		return clk, nil, err
	}
	rows, err := r.Conn.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit.leaves'::regclass ORDER BY c.relname`)
	if err != nil {
		return clk, nil, fmt.Errorf("pgstore: list partitions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return clk, nil, fmt.Errorf("pgstore: list partitions: %w", err)
	}
	var out []PartitionInfo
	for _, n := range names {
		m := partRE.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		day, err := time.Parse("20060102", m[1])
		if err != nil {
			continue
		}
		pi, err := r.describe(ctx, r.Conn, pol, clk, day)
		if err != nil {
			return clk, nil, err
		}
		out = append(out, pi)
	}
	return clk, out, nil
}

// describe fills a partition's retention, reading its rows only when the
// floor allows it to be due.
func (r *Retention) describe(ctx context.Context, q queryer, pol Policy, clk Clock, day time.Time) (PartitionInfo, error) {
	pi := PartitionInfo{Name: PartitionName(day), Day: day, RetainYears: pol.defaultYears()}
	end := day.AddDate(0, 0, 1)
	pi.RetainUntil = end.AddDate(pi.RetainYears, 0, 0)
	if !clk.Now.IsZero() && !clk.Now.Before(end.AddDate(MinRetentionYears, 0, 0)) {
		pi.Checked = true
		rows, err := q.Query(ctx, fmt.Sprintf("SELECT type, count(*) FROM audit.%s GROUP BY type ORDER BY type", pgx.Identifier{pi.Name}.Sanitize()))
		if err != nil {
			return pi, fmt.Errorf("pgstore: read partition %s: %w", pi.Name, err)
		}
		for rows.Next() {
			var typ string
			var n int64
			if err := rows.Scan(&typ, &n); err != nil {
				rows.Close()
				return pi, fmt.Errorf("pgstore: read partition %s: %w", pi.Name, err)
			}
			pi.Types = append(pi.Types, typ)
			pi.Rows += n
			pi.RetainYears = max(pi.RetainYears, pol.YearsFor(typ))
		}
		if err := rows.Err(); err != nil {
			return pi, fmt.Errorf("pgstore: read partition %s: %w", pi.Name, err)
		}
		pi.RetainUntil = end.AddDate(pi.RetainYears, 0, 0)
		pi.Due = !clk.Now.Before(pi.RetainUntil)
	}
	var ex ExportInfo
	var h []byte
	var idx int64
	err := q.QueryRow(ctx, `SELECT rows, jsonl_sha256, audit_index, exported_at FROM audit.exports
		WHERE partition = $1 ORDER BY exported_at DESC, audit_index DESC LIMIT 1`, pi.Name).Scan(&ex.Rows, &h, &idx, &ex.ExportedAt)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return pi, fmt.Errorf("pgstore: read exports of %s: %w", pi.Name, err)
	default:
		ex.JSONLSHA256, ex.AuditIndex = hex.EncodeToString(h), uint64(idx)
		pi.Export = &ex
	}
	return pi, nil
}

// ManifestFormat names the export manifest's format and version.
const ManifestFormat = "tradecore-audit-pg-export/1"

// Manifest describes one exported partition: <partition>.manifest.json
// beside <partition>.jsonl, whose lines are the partition's leaves, byte for
// byte, in index order, each followed by a newline.
type Manifest struct {
	Format      string   `json:"format"`
	Partition   string   `json:"partition"`
	Day         string   `json:"day"`
	Rows        int64    `json:"rows"`
	FirstIndex  *uint64  `json:"first_index,omitempty"`
	LastIndex   *uint64  `json:"last_index,omitempty"`
	FirstTime   *int64   `json:"first_time,omitempty"`
	LastTime    *int64   `json:"last_time,omitempty"`
	Types       []string `json:"types"`
	JSONL       string   `json:"jsonl"`
	JSONLSHA256 string   `json:"jsonl_sha256"`
	ExportedAt  string   `json:"exported_at"`
}

// ParseManifest parses and checks an export manifest.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return m, fmt.Errorf("%w: manifest: %v", ErrExportMismatch, err)
	}
	if dec.More() {
		return m, fmt.Errorf("%w: manifest: data after the object", ErrExportMismatch)
	}
	day, err := time.Parse(time.DateOnly, m.Day)
	switch {
	case m.Format != ManifestFormat:
		return m, fmt.Errorf("%w: manifest format %q, want %q", ErrExportMismatch, m.Format, ManifestFormat)
	case err != nil:
		return m, fmt.Errorf("%w: manifest day %q is not YYYY-MM-DD", ErrExportMismatch, m.Day)
	case m.Partition != PartitionName(day):
		return m, fmt.Errorf("%w: manifest partition %q does not match its day %s", ErrExportMismatch, m.Partition, m.Day)
	case m.JSONL != m.Partition+".jsonl":
		return m, fmt.Errorf("%w: manifest names data file %q, want %q", ErrExportMismatch, m.JSONL, m.Partition+".jsonl")
	case len(m.JSONLSHA256) != 64 || strings.ToLower(m.JSONLSHA256) != m.JSONLSHA256:
		return m, fmt.Errorf("%w: manifest jsonl_sha256 is not 64 lower-case hex digits", ErrExportMismatch)
	case m.Rows < 0:
		return m, fmt.Errorf("%w: manifest rows %d is negative", ErrExportMismatch, m.Rows)
	case (m.Rows == 0) != (m.FirstIndex == nil) || (m.FirstIndex == nil) != (m.LastIndex == nil):
		return m, fmt.Errorf("%w: manifest index range does not fit its %d rows", ErrExportMismatch, m.Rows)
	case m.FirstIndex != nil && *m.LastIndex < *m.FirstIndex:
		return m, fmt.Errorf("%w: manifest last_index is below first_index", ErrExportMismatch)
	}
	if _, err := hex.DecodeString(m.JSONLSHA256); err != nil {
		return m, fmt.Errorf("%w: manifest jsonl_sha256 is not hex", ErrExportMismatch)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.ExportedAt); err != nil {
		return m, fmt.Errorf("%w: manifest exported_at %q is not RFC 3339", ErrExportMismatch, m.ExportedAt)
	}
	return m, nil
}

// ExportBody is the audit record body of an export (RecordExported).
type ExportBody struct {
	Partition   string  `json:"partition"`
	Day         string  `json:"day"`
	Rows        int64   `json:"rows"`
	FirstIndex  *uint64 `json:"first_index,omitempty"`
	LastIndex   *uint64 `json:"last_index,omitempty"`
	JSONLSHA256 string  `json:"jsonl_sha256"`
	DBRole      string  `json:"db_role"`
}

// DropBody is the audit record body of a drop (RecordDropped).
type DropBody struct {
	Partition        string  `json:"partition"`
	Day              string  `json:"day"`
	Rows             int64   `json:"rows"`
	FirstIndex       *uint64 `json:"first_index,omitempty"`
	LastIndex        *uint64 `json:"last_index,omitempty"`
	JSONLSHA256      string  `json:"jsonl_sha256"`
	RetainYears      int     `json:"retain_years"`
	RetainUntil      string  `json:"retain_until"`
	ExportAuditIndex uint64  `json:"export_audit_index"`
	RetentionClock   string  `json:"retention_clock"`
	DBRole           string  `json:"db_role"`
}

// digest streams a partition's leaves in index order through w (when not
// nil) and returns what a manifest needs.
func digest(ctx context.Context, q queryer, part string, w io.Writer) (Manifest, error) {
	m := Manifest{Format: ManifestFormat, Partition: part, JSONL: part + ".jsonl", Types: []string{}}
	rows, err := q.Query(ctx, fmt.Sprintf("SELECT idx, ts, type, leaf FROM audit.%s ORDER BY idx", pgx.Identifier{part}.Sanitize()))
	if err != nil {
		return m, fmt.Errorf("pgstore: read partition %s: %w", part, err)
	}
	defer rows.Close()
	h := sha256.New()
	types := map[string]bool{}
	nl := []byte{'\n'}
	for rows.Next() {
		var idx, ts int64
		var typ string
		var leaf []byte
		if err := rows.Scan(&idx, &ts, &typ, &leaf); err != nil {
			return m, fmt.Errorf("pgstore: read partition %s: %w", part, err)
		}
		if bytes.IndexByte(leaf, '\n') >= 0 {
			return m, fmt.Errorf("pgstore: leaf %d holds a newline, so it is not canonical JSON and cannot be a JSONL line: check it with auditverify", idx)
		}
		u := uint64(idx)
		if m.FirstIndex == nil {
			m.FirstIndex, m.FirstTime = &u, &ts
		}
		m.LastIndex, m.LastTime = &u, &ts
		m.Rows++
		types[typ] = true
		h.Write(leaf)
		h.Write(nl)
		if w != nil {
			if _, err := w.Write(leaf); err != nil {
				return m, err
			}
			if _, err := w.Write(nl); err != nil {
				return m, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return m, fmt.Errorf("pgstore: read partition %s: %w", part, err)
	}
	for t := range types {
		m.Types = append(m.Types, t)
	}
	sort.Strings(m.Types)
	m.JSONLSHA256 = hex.EncodeToString(h.Sum(nil))
	return m, nil
}

// partitionExists reports whether the day's partition is attached to audit.leaves.
func partitionExists(ctx context.Context, q queryer, part string) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE i.inhparent = 'audit.leaves'::regclass AND n.nspname = 'audit' AND c.relname = $1)`, part).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("pgstore: look up partition %s: %w", part, err)
	}
	return ok, nil
}

// Export writes the day's partition to dir as <partition>.jsonl and
// <partition>.manifest.json (fsynced), writes the RecordExported audit
// record, and registers the export in audit.exports. Exporting is allowed
// at any age; only a drop needs one.
func (r *Retention) Export(ctx context.Context, day time.Time, dir string) (Manifest, uint64, error) {
	part := PartitionName(day)
	// One snapshot for the rows and the registration.
	tx, err := r.Conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return Manifest{}, 0, fmt.Errorf("pgstore: export: %w", err)
	}
	defer tx.Rollback(context.Background())
	if ok, err := partitionExists(ctx, tx, part); err != nil {
		return Manifest{}, 0, err
	} else if !ok {
		return Manifest{}, 0, fmt.Errorf("%w: %s (%s)", ErrNoPartition, part, day.Format(time.DateOnly))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Manifest{}, 0, fmt.Errorf("pgstore: export folder: %w", err)
	}
	jsonl := filepath.Join(dir, part+".jsonl")
	m, err := writeAtomic(jsonl, func(w io.Writer) (Manifest, error) { return digest(ctx, tx, part, w) })
	if err != nil {
		return m, 0, err
	}
	m.Day = day.UTC().Format(time.DateOnly)
	m.ExportedAt = time.Now().UTC().Format(time.RFC3339Nano)
	if r.Now != nil {
		m.ExportedAt = r.Now().UTC().Format(time.RFC3339Nano)
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return m, 0, err
	}
	if _, err := writeAtomic(filepath.Join(dir, part+".manifest.json"), func(w io.Writer) (struct{}, error) {
		_, err := w.Write(append(mb, '\n'))
		return struct{}{}, err
	}); err != nil {
		return m, 0, err
	}
	var role string
	if err := tx.QueryRow(ctx, "SELECT session_user").Scan(&role); err != nil {
		return m, 0, fmt.Errorf("pgstore: export: %w", err)
	}
	if r.Recorder == nil {
		return m, 0, fmt.Errorf("%w: no audit log to record the export in (Retention.Recorder is nil)", ErrRecord)
	}
	at, err := r.Recorder.Record(ctx, RecordExported, ExportBody{
		Partition: part, Day: m.Day, Rows: m.Rows, FirstIndex: m.FirstIndex, LastIndex: m.LastIndex, JSONLSHA256: m.JSONLSHA256, DBRole: role,
	})
	if err != nil {
		return m, 0, fmt.Errorf("%w: %w (the files in %s were written but the export is not registered: run the export again)", ErrRecord, err, dir)
	}
	sum, _ := hex.DecodeString(m.JSONLSHA256)
	if _, err := tx.Exec(ctx, `INSERT INTO audit.exports (partition, day, rows, first_idx, last_idx, jsonl_sha256, audit_index)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, part, day.UTC(), m.Rows, optInt(m.FirstIndex), optInt(m.LastIndex), sum, int64(at)); err != nil {
		return m, at, fmt.Errorf("pgstore: register the export (audit record %d was written): %w: run the export again", at, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return m, at, fmt.Errorf("pgstore: register the export (audit record %d was written): %w: run the export again", at, err)
	}
	return m, at, nil
}

func optInt(p *uint64) *int64 {
	if p == nil {
		return nil
	}
	v := int64(*p)
	return &v
}

// writeAtomic writes path through a temporary file, fsyncs it, renames it
// into place and fsyncs the folder.
func writeAtomic[T any](path string, write func(io.Writer) (T, error)) (T, error) {
	var zero T
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return zero, fmt.Errorf("pgstore: export: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	v, err := write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = f.Close()
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err == nil {
		var d *os.File
		if d, err = os.Open(filepath.Dir(path)); err == nil {
			err = d.Sync()
			d.Close()
		}
	}
	if err != nil {
		return zero, fmt.Errorf("pgstore: export %s: %w", path, err)
	}
	return v, nil
}

// DropResult says what Drop removed.
type DropResult struct {
	Partition  string
	Rows       int64
	AuditIndex uint64 // the RecordDropped record
}

// Drop removes the day's partition, only if all of these hold: its
// retention has ended by the retention clock (the earliest of the local
// clock, the database clock and the newest record; at least seven years
// after the end of its day, longer where a record type in it needs
// longer); its latest export on record matches its rows as they are now;
// the export's files are in exportDir and match; and the RecordDropped
// audit record was written. The partition is locked from the checks to
// the drop, so nothing changes in between.
func (r *Retention) Drop(ctx context.Context, day time.Time, exportDir string) (DropResult, error) {
	part := PartitionName(day)
	res := DropResult{Partition: part}
	pol, err := r.policy()
	if err != nil {
		return res, err
	}
	tx, err := r.Conn.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("pgstore: drop: %w", err)
	}
	defer tx.Rollback(context.Background())
	if ok, err := partitionExists(ctx, tx, part); err != nil {
		return res, err
	} else if !ok {
		return res, fmt.Errorf("%w: %s (%s)", ErrNoPartition, part, day.Format(time.DateOnly))
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE audit."+pgx.Identifier{part}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		return res, fmt.Errorf("pgstore: drop: lock %s (is this the owner role?): %w", part, err)
	}
	clk, err := r.clock(ctx, tx)
	if err != nil {
		return res, err
	}
	pi, err := r.describe(ctx, tx, pol, clk, day)
	if err != nil {
		return res, err
	}
	if !pi.Due {
		return res, fmt.Errorf("%w: %s may go from %s (kept %d years; retention clock %s, the earliest of local %s, database %s and newest record %s)",
			ErrTooYoung, part, pi.RetainUntil.Format(time.DateOnly), pi.RetainYears, fmtTime(clk.Now), fmtTime(clk.Local), fmtTime(clk.Database), fmtTime(clk.Newest))
	}
	if pi.Export == nil {
		return res, fmt.Errorf("%w: %s: run tradecore audit retention export --day %s first", ErrNotExported, part, day.Format(time.DateOnly))
	}
	now, err := digest(ctx, tx, part, nil)
	if err != nil {
		return res, err
	}
	if now.Rows != pi.Export.Rows || now.JSONLSHA256 != pi.Export.JSONLSHA256 {
		return res, fmt.Errorf("%w: %s holds %d rows (SHA-256 %s) but was exported with %d rows (%s): export it again", ErrExportMismatch, part, now.Rows, now.JSONLSHA256, pi.Export.Rows, pi.Export.JSONLSHA256)
	}
	if err := checkExportFiles(exportDir, part, now); err != nil {
		return res, err
	}
	var role string
	if err := tx.QueryRow(ctx, "SELECT session_user").Scan(&role); err != nil {
		return res, fmt.Errorf("pgstore: drop: %w", err)
	}
	if r.Recorder == nil {
		return res, fmt.Errorf("%w: no audit log to record the drop in (Retention.Recorder is nil): nothing dropped", ErrRecord)
	}
	at, err := r.Recorder.Record(ctx, RecordDropped, DropBody{
		Partition: part, Day: day.UTC().Format(time.DateOnly), Rows: now.Rows, FirstIndex: now.FirstIndex, LastIndex: now.LastIndex,
		JSONLSHA256: now.JSONLSHA256, RetainYears: pi.RetainYears, RetainUntil: pi.RetainUntil.Format(time.DateOnly),
		ExportAuditIndex: pi.Export.AuditIndex, RetentionClock: clk.Now.Format(time.RFC3339Nano), DBRole: role,
	})
	if err != nil {
		return res, fmt.Errorf("%w: %w: nothing dropped", ErrRecord, err)
	}
	res.Rows, res.AuditIndex = now.Rows, at
	sum, _ := hex.DecodeString(now.JSONLSHA256)
	if _, err := tx.Exec(ctx, `INSERT INTO audit.retired (partition, day, rows, jsonl_sha256, audit_index) VALUES ($1, $2, $3, $4, $5)`,
		part, day.UTC(), now.Rows, sum, int64(at)); err != nil {
		return res, fmt.Errorf("pgstore: drop %s: audit record %d was written but the drop failed: %w: run the drop again", part, at, err)
	}
	if _, err := tx.Exec(ctx, "DROP TABLE audit."+pgx.Identifier{part}.Sanitize()); err != nil {
		return res, fmt.Errorf("pgstore: drop %s: audit record %d was written but the drop failed: %w: run the drop again", part, at, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("pgstore: drop %s: audit record %d was written but the drop did not commit: %w: run the drop again", part, at, err)
	}
	return res, nil
}

// checkExportFiles checks the export in dir matches the partition's digest.
func checkExportFiles(dir, part string, want Manifest) error {
	if dir == "" {
		return fmt.Errorf("%w: no export folder given: pass --export-dir with the folder holding %s.jsonl", ErrExportMismatch, part)
	}
	mb, err := os.ReadFile(filepath.Join(dir, part+".manifest.json"))
	if err != nil {
		return fmt.Errorf("%w: %w: the export's files must be in --export-dir when dropping", ErrExportMismatch, err)
	}
	m, err := ParseManifest(mb)
	if err != nil {
		return err
	}
	if m.Partition != part || m.Rows != want.Rows || m.JSONLSHA256 != want.JSONLSHA256 {
		return fmt.Errorf("%w: manifest in %s is for %s with %d rows (%s), the partition has %d rows (%s)", ErrExportMismatch, dir, m.Partition, m.Rows, m.JSONLSHA256, want.Rows, want.JSONLSHA256)
	}
	f, err := os.Open(filepath.Join(dir, m.JSONL))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrExportMismatch, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("%w: read %s: %w", ErrExportMismatch, m.JSONL, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.JSONLSHA256 {
		return fmt.Errorf("%w: %s has SHA-256 %s, the partition %s: the file was changed or cut; export again", ErrExportMismatch, m.JSONL, got, want.JSONLSHA256)
	}
	return nil
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.Format(time.RFC3339)
}
