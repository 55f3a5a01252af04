package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit/pgstore"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/internal/pgtest"
)

var pg = pgtest.New(pgtest.Config{})

// recorder captures the retention commands' audit records.
type recorder struct {
	mu    sync.Mutex
	types []string
	err   error
}

func (r *recorder) Record(_ context.Context, typ string, body any) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return 0, r.err
	}
	if _, err := json.Marshal(body); err != nil {
		return 0, err
	}
	r.types = append(r.types, typ)
	return uint64(len(r.types)), nil
}

// runPG runs an audit pg/retention command with rec as the audit log.
func runPG(t *testing.T, rec pgstore.Recorder, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := auditPG{openRecorder: func(context.Context, string) (pgstore.Recorder, func() error, error) {
		return rec, func() error { return nil }, nil
	}}
	err := a.run(context.Background(), args[0], args[1:], &out, &errb)
	return result{exitCode(err), out.String(), errb.String(), err}
}

// sliceSource is a local log in memory for the copier.
type sliceSource []pgstore.Entry

func (s sliceSource) Size(context.Context) (uint64, error) { return uint64(len(s)), nil }
func (s sliceSource) Read(_ context.Context, from, to uint64, dst []pgstore.Entry) ([]pgstore.Entry, error) {
	return append(dst, s[from:to]...), nil
}

func writeDSN(t *testing.T, dsn string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dsn")
	require.NoError(t, os.WriteFile(p, []byte(dsn+"\n"), mode))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

func TestAuditPGCLIEndToEnd(t *testing.T) {
	ctx := context.Background()
	db := pg.NewDB(t)
	owner, app := db.NewRole(t, "owner"), db.NewRole(t, "app")
	db.Exec(t, "GRANT CREATE ON DATABASE "+db.Ident()+" TO "+owner.Ident())
	ownerFile := writeDSN(t, owner.DSN, 0o600)
	rec := &recorder{}

	r := runCLI(t, "audit", "pg", "migrate", "--dsn-file", ownerFile, "--app-role", app.Name, "--format", "json")
	require.Equal(t, 0, r.code, "%v", r.err)
	var mig map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &mig))
	assert.Equal(t, true, mig["created"])

	// Copy a log with a nine-year-old day and today into the mirror.
	old := time.Now().UTC().AddDate(-9, 0, 0).Truncate(24 * time.Hour)
	var src sliceSource
	for i := range 30 {
		day := old
		if i >= 20 {
			day = time.Now().UTC()
		}
		ts := day.Add(time.Duration(i) * time.Second).UnixNano()
		src = append(src, pgstore.Entry{Index: uint64(i), Time: ts, Type: "order.accepted", Leaf: fmt.Appendf(nil, `{"index":%d,"time":%d}`, i, ts)})
	}
	c, err := pgstore.New(pgstore.Config{DSN: app.DSN, Source: src})
	require.NoError(t, err)
	_, err = c.CatchUp(ctx)
	require.NoError(t, err)

	t.Setenv(pgstore.EnvDSN, app.DSN)
	r = runCLI(t, "audit", "pg", "status", "--format", "json")
	require.Equal(t, 0, r.code, "%v", r.err)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st))
	assert.EqualValues(t, 30, st["next_index"])
	assert.NotContains(t, st, "retired", "the application role cannot read audit.retired")
	r = runCLI(t, "audit", "pg", "status")
	require.Equal(t, 0, r.code, "%v", r.err)
	assert.Contains(t, r.stdout, "next index     30")

	day := old.Format(time.DateOnly)
	r = runPG(t, rec, "retention", "plan", "--dsn-file", ownerFile)
	require.Equal(t, 0, r.code, "%v", r.err)
	assert.Regexp(t, pgstore.PartitionName(old)+`\s+20\s+7y\s+\S+\s+no\s+after export`, r.stdout)

	r = runPG(t, rec, "retention", "drop", "--dsn-file", ownerFile, "--day", day, "--export-dir", t.TempDir())
	assert.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, pgstore.ErrNotExported)

	t.Run("without an audit log to record in nothing is exported", func(t *testing.T) {
		// This data dir has no signing key, so no audit log can be opened.
		out := t.TempDir()
		r := runCLI(t, "audit", "retention", "export", "--dsn-file", ownerFile, "--day", day, "--out", out)
		assert.Equal(t, 1, r.code)
		require.ErrorIs(t, r.err, hsm.ErrNotInitialized)
		entries, _ := os.ReadDir(out)
		assert.Empty(t, entries)
	})

	exp := t.TempDir()
	r = runPG(t, rec, "retention", "export", "--dsn-file", ownerFile, "--day", day, "--out", exp, "--format", "json")
	require.Equal(t, 0, r.code, "%v", r.err)
	assert.FileExists(t, filepath.Join(exp, pgstore.PartitionName(old)+".jsonl"))

	r = runPG(t, rec, "retention", "plan", "--dsn-file", ownerFile, "--format", "json")
	require.Equal(t, 0, r.code, "%v", r.err)
	var plan struct {
		Partitions []struct {
			Partition string `json:"partition"`
			Due       bool   `json:"due"`
			Exported  bool   `json:"exported"`
		} `json:"partitions"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &plan))
	var found bool
	for _, p := range plan.Partitions {
		if p.Partition == pgstore.PartitionName(old) {
			found = true
			assert.True(t, p.Due)
			assert.True(t, p.Exported)
		} else {
			assert.False(t, p.Due, p.Partition)
		}
	}
	assert.True(t, found)

	t.Run("recorder failure refuses the drop", func(t *testing.T) {
		bad := &recorder{err: errors.New("disk full")}
		r := runPG(t, bad, "retention", "drop", "--dsn-file", ownerFile, "--day", day, "--export-dir", exp)
		assert.Equal(t, 1, r.code)
		require.ErrorIs(t, r.err, pgstore.ErrRecord)
	})
	t.Run("today cannot go", func(t *testing.T) {
		today := time.Now().UTC().Format(time.DateOnly)
		r := runPG(t, rec, "retention", "export", "--dsn-file", ownerFile, "--day", today, "--out", exp)
		require.Equal(t, 0, r.code, "%v", r.err)
		r = runPG(t, rec, "retention", "drop", "--dsn-file", ownerFile, "--day", today, "--export-dir", exp)
		assert.Equal(t, 1, r.code)
		require.ErrorIs(t, r.err, pgstore.ErrTooYoung)
	})

	r = runPG(t, rec, "retention", "drop", "--dsn-file", ownerFile, "--day", day, "--export-dir", exp)
	require.Equal(t, 0, r.code, "%v", r.err)
	assert.Contains(t, r.stdout, "dropped "+pgstore.PartitionName(old)+" (20 rows)")
	assert.Equal(t, []string{pgstore.RecordExported, pgstore.RecordExported, pgstore.RecordDropped}, rec.types)

	conn := db.Connect(t, owner.DSN)
	var gone bool
	require.NoError(t, conn.QueryRow(ctx, "SELECT to_regclass($1) IS NULL", "audit."+pgstore.PartitionName(old)).Scan(&gone))
	assert.True(t, gone)
}

func TestAuditPGCLIRefusals(t *testing.T) {
	db := pg.NewDB(t)
	owner := db.NewRole(t, "owner")
	good := writeDSN(t, owner.DSN, 0o600)
	rec := &recorder{}
	cc, err := pgx.ParseConfig(owner.DSN)
	require.NoError(t, err)

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no dsn anywhere", []string{"pg", "status"}, 1, "TRADECORE_AUDIT_PG_DSN"},
		{"dsn on the command line is not a flag", []string{"pg", "status", "--dsn", owner.DSN}, 2, "flag provided but not defined"},
		{"dsn file readable by others", []string{"pg", "status", "--dsn-file", writeDSN(t, owner.DSN, 0o644)}, 1, "chmod 600"},
		{"empty dsn file", []string{"pg", "status", "--dsn-file", writeDSN(t, "", 0o600)}, 1, "is empty"},
		{"dsn that does not parse", []string{"pg", "status", "--dsn-file", writeDSN(t, "postgres://u:"+owner.Password+"@h:notaport/db", 0o600)}, 1, "does not parse"},
		{"wrong password", []string{"pg", "status", "--dsn-file", writeDSN(t, fmt.Sprintf("host=%s port=%d dbname=%s user=%s password=x%s", cc.Host, cc.Port, cc.Database, cc.User, owner.Password), 0o600)}, 1, "password authentication failed"},
		{"migrate without app role", []string{"pg", "migrate", "--dsn-file", good}, 2, "--app-role"},
		{"migrate with a missing app role", []string{"pg", "migrate", "--dsn-file", good, "--app-role", "nobody_here"}, 1, "does not exist"},
		{"no schema", []string{"pg", "status", "--dsn-file", good}, 1, "tradecore audit pg migrate"},
		{"bad format", []string{"pg", "status", "--format", "xml"}, 2, "--format"},
		{"drop without day", []string{"retention", "drop", "--dsn-file", good, "--export-dir", "x"}, 2, "--day is required"},
		{"drop with a bad day", []string{"retention", "drop", "--dsn-file", good, "--day", "03/04/2017", "--export-dir", "x"}, 2, "YYYY-MM-DD"},
		{"drop without export dir", []string{"retention", "drop", "--dsn-file", good, "--day", "2017-03-04"}, 2, "--export-dir is required"},
		{"export without out", []string{"retention", "export", "--dsn-file", good, "--day", "2017-03-04"}, 2, "--out is required"},
		{"retain shorter", []string{"retention", "plan", "--dsn-file", good, "--retain", "sanctions.=8"}, 2, "can only lengthen"},
		{"retain under the floor", []string{"retention", "plan", "--dsn-file", good, "--retain", "aml.=5"}, 2, "can only lengthen"},
		{"retain malformed", []string{"retention", "plan", "--retain", "sanctions"}, 2, "PREFIX=YEARS"},
		{"unknown command", []string{"retention", "purge"}, 2, "unknown audit retention command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(pgstore.EnvDSN, "")
			t.Setenv(pgstore.EnvOwnerDSN, "")
			r := runPG(t, rec, tc.args...)
			assert.Equal(t, tc.code, r.code, "%v", r.err)
			require.Error(t, r.err)
			assert.Contains(t, r.err.Error()+r.stderr, tc.want)
			assert.NotContains(t, r.err.Error()+r.stdout+r.stderr, owner.Password, "no password in any output")
		})
	}
	r := runCLI(t, "audit")
	assert.Equal(t, 2, r.code)
	r = runCLI(t, "audit", "pg", "help")
	assert.Equal(t, 0, r.code)
	assert.Contains(t, r.stdout, "Never on the command line")
}
