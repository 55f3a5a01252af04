package pgstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/internal/pgtest"
)

var pg = pgtest.New(pgtest.Config{})

func TestMain(m *testing.M) {
	if os.Getenv(envCopierChild) != "" {
		copierChild()
		return
	}
	os.Exit(pgtest.RunAll(m, pg, fsyncHarness))
}

// env is one test's database with the two roles of the design.
type env struct {
	db         *pgtest.DB
	owner, app pgtest.Role
}

// newEnv makes a database, an owner role that may create schemas in it, an
// application role, and migrates as the owner.
func newEnv(t *testing.T, now time.Time) *env {
	t.Helper()
	db := pg.NewDB(t)
	e := &env{db: db, owner: db.NewRole(t, "owner"), app: db.NewRole(t, "app")}
	db.Exec(t, "GRANT CREATE ON DATABASE "+db.Ident()+" TO "+e.owner.Ident())
	res, err := Migrate(context.Background(), db.Connect(t, e.owner.DSN), MigrateConfig{AppRole: e.app.Name, Now: fixedNow(now)})
	require.NoError(t, err)
	require.True(t, res.Created)
	return e
}

func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

// quiet is a logger for tests: records go to the test log only on failure.
func quiet(t testing.TB) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			b := buf.Bytes()
			if len(b) > 8000 {
				b = b[len(b)-8000:]
			}
			t.Logf("copier log (tail):\n%s", b)
			mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// memSource is a local log in memory: Append adds durable entries.
type memSource struct {
	mu       sync.Mutex
	entries  []Entry
	failRead error // when set, Read fails
}

func (s *memSource) Size(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return uint64(len(s.entries)), nil
}

func (s *memSource) Read(_ context.Context, from, to uint64, dst []Entry) ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failRead != nil {
		return dst, s.failRead
	}
	if to > uint64(len(s.entries)) || from > to {
		return dst, fmt.Errorf("read [%d, %d) past size %d", from, to, len(s.entries))
	}
	return append(dst, s.entries[from:to]...), nil
}

// Append adds n entries starting at time start, step apart.
func (s *memSource) Append(n int, start time.Time, step time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		i := uint64(len(s.entries))
		ts := start.Add(time.Duration(i) * step).UnixNano()
		s.entries = append(s.entries, Entry{Index: i, Time: ts, Type: leafTypes[i%uint64(len(leafTypes))], Leaf: leafJSON(i, ts)})
	}
}

func (s *memSource) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

var leafTypes = []string{"order.accepted", "order.executed", "order.cancelled", "order.received"}

// leafJSON is a record shaped like the audit log's canonical JSON leaves
// (~350 bytes): sorted keys, integer nanoseconds, decimals as strings,
// random ids and a keyed commitment instead of personal data.
func leafJSON(i uint64, ts int64) []byte {
	h := sha256.Sum256([]byte(strconv.FormatUint(i, 10)))
	return fmt.Appendf(nil, `{"account":"acc_%x","client_order_id":"c%x","commitment":"%x","index":%d,"operator":"op_%x","order_id":%d,"price":"%d.%02d","qty":"%d","reason":0,"session":"s_%x","side":"%s","symbol":"SYM%d","tif":"DAY","time":%d,"type":"%s","v":1,"venue":"XTRC"}`,
		h[0:8], h[8:14], h[14:30], i, h[30:32], 1000000+i, 100+i%50, i%100, 1+i%100, h[0:2], [2]string{"buy", "sell"}[i%2], i%20, ts, leafTypes[i%uint64(len(leafTypes))])
}

// stored reads every row of the mirror in index order, as the owner.
func (e *env) stored(t *testing.T) []Entry {
	t.Helper()
	rows, err := e.db.Connect(t, e.owner.DSN).Query(context.Background(), "SELECT idx, ts, type, leaf FROM audit.leaves ORDER BY idx")
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var en Entry
		var idx int64
		err := r.Scan(&idx, &en.Time, &en.Type, &en.Leaf)
		en.Index = uint64(idx)
		return en, err
	})
	require.NoError(t, err)
	return out
}

// requireMirror checks PostgreSQL holds exactly src's first n entries,
// each once, byte for byte, and that batches covers [0, n) with no gap.
func (e *env) requireMirror(t *testing.T, src *memSource, n int) {
	t.Helper()
	got := e.stored(t)
	require.Len(t, got, n, "rows in PostgreSQL")
	src.mu.Lock()
	want := src.entries[:n]
	src.mu.Unlock()
	for i := range got {
		if got[i].Index != want[i].Index || got[i].Time != want[i].Time || got[i].Type != want[i].Type || !bytes.Equal(got[i].Leaf, want[i].Leaf) {
			t.Fatalf("row %d differs from the local log: got index %d", i, got[i].Index)
		}
	}
	var covered, gaps int64
	require.NoError(t, e.db.Connect(t, e.owner.DSN).QueryRow(context.Background(), `
		SELECT coalesce(sum(upper(idxs) - lower(idxs)), 0),
		       count(*) FILTER (WHERE lower(idxs) <> coalesce(prev, 0))
		FROM (SELECT idxs, lag(upper(idxs)) OVER (ORDER BY lower(idxs)) AS prev FROM audit.batches) b`).Scan(&covered, &gaps))
	require.EqualValues(t, n, covered, "batches cover every row")
	require.Zero(t, gaps, "batches are contiguous")
}

func newCopier(t *testing.T, e *env, src Source, now time.Time, mod func(*Config)) *Copier {
	t.Helper()
	cfg := Config{DSN: e.app.DSN, Source: src, Now: fixedNow(now), Logger: quiet(t), MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, PollInterval: 5 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	require.NoError(t, err)
	return c
}

// requireCode asserts err is a PostgreSQL error with SQLSTATE code.
func requireCode(t *testing.T, err error, code string, msgAndArgs ...any) {
	t.Helper()
	require.Error(t, err, msgAndArgs...)
	var pe *pgconn.PgError
	require.True(t, errors.As(err, &pe), "want SQLSTATE %s, got %v", code, err)
	require.Equal(t, code, pe.Code, "%s: %v", pe.Message, msgAndArgs)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const envCopierChild = "PGSTORE_COPIER_CHILD"
