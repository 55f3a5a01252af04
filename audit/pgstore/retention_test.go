package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeRecorder captures audit records, or fails when err is set.
type fakeRecorder struct {
	mu      sync.Mutex
	records []captured
	next    uint64
	err     error
}

type captured struct {
	typ  string
	body json.RawMessage
}

func (f *fakeRecorder) Record(_ context.Context, typ string, body any) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	f.records = append(f.records, captured{typ, b})
	f.next++
	return 1000 + f.next, nil
}

func (f *fakeRecorder) last(t *testing.T) (string, map[string]any) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	require.NotEmpty(t, f.records)
	var m map[string]any
	require.NoError(t, json.Unmarshal(f.records[len(f.records)-1].body, &m))
	return f.records[len(f.records)-1].typ, m
}

func (f *fakeRecorder) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.records)
}

// oldLog is a local log whose entries span days from years ago to today.
type oldLog struct {
	src                   *memSource
	nineYears, eightYears time.Time // due; kept ten years for its sanctions record
	sixYears, today       time.Time // young
}

func dayAgo(years int) time.Time {
	return time.Now().UTC().AddDate(-years, 0, 0).Truncate(24 * time.Hour)
}

func (l *oldLog) add(n int, day time.Time, typ string) {
	l.src.mu.Lock()
	defer l.src.mu.Unlock()
	for range n {
		i := uint64(len(l.src.entries))
		ts := day.Add(time.Hour + time.Duration(i)*time.Millisecond).UnixNano()
		l.src.entries = append(l.src.entries, Entry{Index: i, Time: ts, Type: typ, Leaf: leafJSON(i, ts)})
	}
}

func newOldLog(recent bool) *oldLog {
	l := &oldLog{src: &memSource{}, nineYears: dayAgo(9), eightYears: dayAgo(8), sixYears: dayAgo(6), today: dayAgo(0)}
	l.add(100, l.nineYears, "order.accepted")
	l.add(99, l.eightYears, "order.executed")
	l.add(1, l.eightYears, "sanctions.screened")
	l.add(100, l.sixYears, "order.accepted")
	if recent {
		l.add(100, l.today, "order.accepted")
	}
	return l
}

func newRetentionEnv(t *testing.T, recent bool) (*env, *oldLog, *Retention, *fakeRecorder) {
	t.Helper()
	e := newEnv(t, time.Now())
	l := newOldLog(recent)
	_, err := newCopier(t, e, l.src, time.Now(), nil).CatchUp(context.Background())
	require.NoError(t, err)
	rec := &fakeRecorder{}
	return e, l, &Retention{Conn: e.db.Connect(t, e.owner.DSN), Recorder: rec}, rec
}

func findPart(t *testing.T, ps []PartitionInfo, day time.Time) PartitionInfo {
	t.Helper()
	for _, p := range ps {
		if p.Day.Equal(day) {
			return p
		}
	}
	t.Fatalf("no partition for %s", day.Format(time.DateOnly))
	return PartitionInfo{}
}

func TestRetentionPlan(t *testing.T) {
	ctx := context.Background()
	_, l, r, _ := newRetentionEnv(t, true)
	clk, ps, err := r.Plan(ctx)
	require.NoError(t, err)
	assert.False(t, clk.Newest.IsZero())

	nine := findPart(t, ps, l.nineYears)
	assert.True(t, nine.Checked)
	assert.True(t, nine.Due)
	assert.EqualValues(t, 100, nine.Rows)
	assert.Equal(t, 7, nine.RetainYears)
	assert.Nil(t, nine.Export)

	eight := findPart(t, ps, l.eightYears)
	assert.True(t, eight.Checked)
	assert.False(t, eight.Due, "a sanctions record keeps its day ten years")
	assert.Equal(t, 10, eight.RetainYears)
	assert.Equal(t, []string{"order.executed", "sanctions.screened"}, eight.Types)

	six := findPart(t, ps, l.sixYears)
	assert.False(t, six.Checked, "inside the floor: rows not even read")
	assert.False(t, six.Due)
	today := findPart(t, ps, l.today)
	assert.False(t, today.Due)
}

func TestRetentionDropRefusals(t *testing.T) {
	ctx := context.Background()
	e, l, r, rec := newRetentionEnv(t, true)
	dir := t.TempDir()
	owner := e.db.Connect(t, e.owner.DSN)
	partCount := func() int {
		var n int
		require.NoError(t, owner.QueryRow(ctx, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit.leaves'::regclass").Scan(&n))
		return n
	}
	parts := partCount()

	t.Run("not exported", func(t *testing.T) {
		_, err := r.Drop(ctx, l.nineYears, dir)
		require.ErrorIs(t, err, ErrNotExported)
		assert.Contains(t, err.Error(), "tradecore audit retention export --day "+l.nineYears.Format(time.DateOnly))
	})
	t.Run("younger than seven years, even exported", func(t *testing.T) {
		_, _, err := r.Export(ctx, l.sixYears, dir)
		require.NoError(t, err)
		_, err = r.Drop(ctx, l.sixYears, dir)
		require.ErrorIs(t, err, ErrTooYoung)
	})
	t.Run("today", func(t *testing.T) {
		_, _, err := r.Export(ctx, l.today, dir)
		require.NoError(t, err)
		_, err = r.Drop(ctx, l.today, dir)
		require.ErrorIs(t, err, ErrTooYoung)
	})
	t.Run("a type kept longer", func(t *testing.T) {
		_, _, err := r.Export(ctx, l.eightYears, dir)
		require.NoError(t, err)
		_, err = r.Drop(ctx, l.eightYears, dir)
		require.ErrorIs(t, err, ErrTooYoung)
		assert.Contains(t, err.Error(), "kept 10 years")
	})
	t.Run("local clock moved forward", func(t *testing.T) {
		fwd := *r
		fwd.Now = func() time.Time { return time.Now().AddDate(20, 0, 0) }
		_, err := fwd.Drop(ctx, l.sixYears, dir)
		require.ErrorIs(t, err, ErrTooYoung, "the database clock and the newest record still say six years")
	})
	t.Run("a policy cannot go under seven years", func(t *testing.T) {
		for _, p := range []Policy{{DefaultYears: 5}, {Longer: map[string]int{"aml.": 5}}, {Longer: map[string]int{"": 9}}, {Longer: map[string]int{"Bad Prefix": 9}}} {
			short := *r
			short.Policy = &p
			_, err := short.Drop(ctx, l.sixYears, dir)
			require.ErrorIs(t, err, ErrPolicy)
		}
	})

	_, _, err := r.Export(ctx, l.nineYears, dir)
	require.NoError(t, err)
	part := PartitionName(l.nineYears)

	t.Run("no export folder", func(t *testing.T) {
		_, err := r.Drop(ctx, l.nineYears, "")
		require.ErrorIs(t, err, ErrExportMismatch)
		assert.Contains(t, err.Error(), "--export-dir")
	})
	t.Run("export files missing", func(t *testing.T) {
		_, err := r.Drop(ctx, l.nineYears, t.TempDir())
		require.ErrorIs(t, err, ErrExportMismatch)
	})
	t.Run("export file tampered", func(t *testing.T) {
		path := filepath.Join(dir, part+".jsonl")
		orig, err := os.ReadFile(path)
		require.NoError(t, err)
		for _, bad := range [][]byte{flip(orig, len(orig)/2), orig[:len(orig)-1], append(append([]byte{}, orig...), orig[:10]...)} {
			require.NoError(t, os.WriteFile(path, bad, 0o600))
			_, err = r.Drop(ctx, l.nineYears, dir)
			require.ErrorIs(t, err, ErrExportMismatch)
		}
		require.NoError(t, os.WriteFile(path, orig, 0o600))
	})
	t.Run("manifest from another partition", func(t *testing.T) {
		other := t.TempDir()
		src, err := os.ReadFile(filepath.Join(dir, PartitionName(l.sixYears)+".manifest.json"))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(other, part+".manifest.json"), src, 0o600))
		_, err = r.Drop(ctx, l.nineYears, other)
		require.ErrorIs(t, err, ErrExportMismatch)
	})
	t.Run("audit record fails", func(t *testing.T) {
		rec.err = errors.New("log volume full")
		defer func() { rec.err = nil }()
		_, err := r.Drop(ctx, l.nineYears, dir)
		require.ErrorIs(t, err, ErrRecord)
		assert.Contains(t, err.Error(), "nothing dropped")
	})
	t.Run("no recorder", func(t *testing.T) {
		none := *r
		none.Recorder = nil
		_, err := none.Drop(ctx, l.nineYears, dir)
		require.ErrorIs(t, err, ErrRecord)
	})
	t.Run("a record arrived after the export", func(t *testing.T) {
		// A late record dated that day reaches the mirror after the export:
		// the export no longer covers the partition.
		l.add(1, l.nineYears, "order.cancelled")
		_, err := newCopier(t, e, l.src, time.Now(), nil).CatchUp(ctx)
		require.NoError(t, err)
		_, err = r.Drop(ctx, l.nineYears, dir)
		require.ErrorIs(t, err, ErrExportMismatch)
		assert.Contains(t, err.Error(), "export it again")
	})
	t.Run("the application role cannot drop", func(t *testing.T) {
		app := *r
		app.Conn = e.db.Connect(t, e.app.DSN)
		_, _, err := app.Export(ctx, l.nineYears, t.TempDir())
		require.Error(t, err, "the application role cannot even read the rows")
		_, err = app.Drop(ctx, l.nineYears, dir)
		require.Error(t, err)
	})
	assert.Equal(t, parts, partCount(), "every refusal left every partition in place")
	var retired int
	require.NoError(t, owner.QueryRow(ctx, "SELECT count(*) FROM audit.retired").Scan(&retired))
	assert.Zero(t, retired)
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	c[i] ^= 1
	return c
}

func TestRetentionExportAndDrop(t *testing.T) {
	ctx := context.Background()
	e, l, r, rec := newRetentionEnv(t, true)
	dir := t.TempDir()
	day := l.nineYears.Format(time.DateOnly)
	part := PartitionName(l.nineYears)

	m, at, err := r.Export(ctx, l.nineYears, dir)
	require.NoError(t, err)
	assert.EqualValues(t, 100, m.Rows)
	assert.EqualValues(t, 0, *m.FirstIndex)
	assert.EqualValues(t, 99, *m.LastIndex)
	typ, body := rec.last(t)
	assert.Equal(t, RecordExported, typ)
	assert.Equal(t, part, body["partition"])
	assert.Equal(t, day, body["day"])
	assert.EqualValues(t, 100, body["rows"])
	assert.Equal(t, m.JSONLSHA256, body["jsonl_sha256"])
	assert.Equal(t, e.owner.Name, body["db_role"])

	t.Run("export files", func(t *testing.T) {
		b, err := os.ReadFile(filepath.Join(dir, part+".jsonl"))
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		require.Len(t, lines, 100)
		for i, line := range lines {
			require.Equal(t, string(l.src.entries[i].Leaf), line, "line %d is the leaf, byte for byte", i)
		}
		mb, err := os.ReadFile(filepath.Join(dir, part+".manifest.json"))
		require.NoError(t, err)
		pm, err := ParseManifest(mb)
		require.NoError(t, err)
		assert.Equal(t, m.JSONLSHA256, pm.JSONLSHA256)
		assert.Equal(t, []string{"order.accepted"}, pm.Types)
	})
	_, ps, err := r.Plan(ctx)
	require.NoError(t, err)
	require.NotNil(t, findPart(t, ps, l.nineYears).Export)
	assert.Equal(t, at, findPart(t, ps, l.nineYears).Export.AuditIndex)

	res, err := r.Drop(ctx, l.nineYears, dir)
	require.NoError(t, err)
	assert.EqualValues(t, 100, res.Rows)
	typ, body = rec.last(t)
	assert.Equal(t, RecordDropped, typ)
	assert.Equal(t, part, body["partition"])
	assert.EqualValues(t, 100, body["rows"])
	assert.EqualValues(t, 7, body["retain_years"])
	assert.EqualValues(t, at, body["export_audit_index"])
	assert.Equal(t, m.JSONLSHA256, body["jsonl_sha256"])
	assert.Equal(t, 2, rec.count())

	owner := e.db.Connect(t, e.owner.DSN)
	var gone bool
	require.NoError(t, owner.QueryRow(ctx, "SELECT to_regclass($1) IS NULL", "audit."+part).Scan(&gone))
	assert.True(t, gone)
	var retiredIdx int64
	require.NoError(t, owner.QueryRow(ctx, "SELECT audit_index FROM audit.retired WHERE partition = $1", part).Scan(&retiredIdx))
	assert.EqualValues(t, res.AuditIndex, retiredIdx)

	t.Run("a retired day is not made again", func(t *testing.T) {
		app := e.db.Connect(t, e.app.DSN)
		requireCode(t, attempt(app, "SELECT audit.ensure_partitions('"+day+"', '"+day+"')"), CodeRetired)
	})
	t.Run("the old indexes stay taken", func(t *testing.T) {
		app := e.db.Connect(t, e.app.DSN)
		requireCode(t, attempt(app, "INSERT INTO audit.leaves (idx, ts, type, leaf) VALUES (0, "+
			strconv.FormatInt(l.sixYears.UnixNano(), 10)+", 'x', 'x')"), CodeNotNext)
	})
	t.Run("the copier goes on", func(t *testing.T) {
		l.add(50, l.today, "order.accepted")
		n, err := newCopier(t, e, l.src, time.Now(), nil).CatchUp(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 50, n)
	})
	t.Run("dropping twice", func(t *testing.T) {
		_, err := r.Drop(ctx, l.nineYears, dir)
		require.ErrorIs(t, err, ErrNoPartition)
	})
}

// A mirror whose newest record is old has not lived seven years past a
// partition, whatever the clocks say.
func TestRetentionNewestRecordBoundsTheClock(t *testing.T) {
	ctx := context.Background()
	_, l, r, _ := newRetentionEnv(t, false) // newest record: six years ago
	dir := t.TempDir()
	_, _, err := r.Export(ctx, l.nineYears, dir)
	require.NoError(t, err)
	_, err = r.Drop(ctx, l.nineYears, dir)
	require.ErrorIs(t, err, ErrTooYoung, "nine-year-old day, but the mirror's newest record is only three years after it")
	assert.Contains(t, err.Error(), "newest record")
}

func TestParseManifest(t *testing.T) {
	one := uint64(1)
	good := Manifest{Format: ManifestFormat, Partition: "leaves_20170304", Day: "2017-03-04", Rows: 1, FirstIndex: &one, LastIndex: &one,
		Types: []string{"a"}, JSONL: "leaves_20170304.jsonl", JSONLSHA256: strings.Repeat("ab", 32), ExportedAt: "2026-01-02T03:04:05Z"}
	enc := func(m Manifest) []byte { b, _ := json.Marshal(m); return b }
	_, err := ParseManifest(enc(good))
	require.NoError(t, err)
	for name, mod := range map[string]func(*Manifest){
		"format":        func(m *Manifest) { m.Format = "other/1" },
		"day":           func(m *Manifest) { m.Day = "2017-3-4" },
		"partition":     func(m *Manifest) { m.Partition = "leaves_20170305" },
		"jsonl name":    func(m *Manifest) { m.JSONL = "../../etc/passwd" },
		"hash length":   func(m *Manifest) { m.JSONLSHA256 = "ab" },
		"hash case":     func(m *Manifest) { m.JSONLSHA256 = strings.Repeat("AB", 32) },
		"hash hex":      func(m *Manifest) { m.JSONLSHA256 = strings.Repeat("zz", 32) },
		"rows":          func(m *Manifest) { m.Rows = -1 },
		"range":         func(m *Manifest) { m.FirstIndex = nil },
		"range order":   func(m *Manifest) { z := uint64(0); m.LastIndex = &z },
		"empty ranged":  func(m *Manifest) { m.Rows = 0 },
		"exported time": func(m *Manifest) { m.ExportedAt = "yesterday" },
	} {
		t.Run(name, func(t *testing.T) {
			m := good
			mod(&m)
			_, err := ParseManifest(enc(m))
			require.ErrorIs(t, err, ErrExportMismatch)
		})
	}
	for name, b := range map[string]string{
		"unknown field": `{"format":"` + ManifestFormat + `","extra":1}`,
		"trailing":      string(enc(good)) + `{}`,
		"not json":      `{`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseManifest([]byte(b))
			require.ErrorIs(t, err, ErrExportMismatch)
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	one := uint64(1)
	good, _ := json.Marshal(Manifest{Format: ManifestFormat, Partition: "leaves_20170304", Day: "2017-03-04", Rows: 1, FirstIndex: &one, LastIndex: &one,
		Types: []string{"a"}, JSONL: "leaves_20170304.jsonl", JSONLSHA256: strings.Repeat("ab", 32), ExportedAt: "2026-01-02T03:04:05Z"})
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"format":"tradecore-audit-pg-export/1","rows":-1}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			if !errors.Is(err, ErrExportMismatch) {
				t.Fatalf("error without the sentinel: %v", err)
			}
			return
		}
		// Whatever parses names its own partition and data file only.
		if m.JSONL != m.Partition+".jsonl" || strings.ContainsAny(m.JSONL, "/\\") {
			t.Fatalf("accepted data file %q for %q", m.JSONL, m.Partition)
		}
	})
}
