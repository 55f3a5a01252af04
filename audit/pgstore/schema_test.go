package pgstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testNow is the copiers' clock in tests: today (UTC), 15:04:05. It follows
// the real date because the database's own clock bounds how far ahead the
// application role may make partitions.
var testNow = time.Now().UTC().Truncate(24 * time.Hour).Add(15*time.Hour + 4*time.Minute + 5*time.Second)

func partName(t time.Time) string { return "leaves_" + t.UTC().Format("20060102") }

const insufficientPrivilege = "42501"

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testNow)
	owner := e.db.Connect(t, e.owner.DSN)

	var parts []string
	rows, err := owner.Query(ctx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit.leaves'::regclass ORDER BY 1`)
	require.NoError(t, err)
	parts, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Len(t, parts, 1+1+DefaultDaysAhead, "yesterday, today and a week ahead")
	assert.Equal(t, partName(testNow.AddDate(0, 0, -1)), parts[0])
	assert.Equal(t, partName(testNow.AddDate(0, 0, DefaultDaysAhead)), parts[len(parts)-1])

	t.Run("bounds are UTC days in nanoseconds", func(t *testing.T) {
		var bound string
		require.NoError(t, owner.QueryRow(ctx, `SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.relname = $1`, partName(testNow)).Scan(&bound))
		day := testNow.Truncate(24 * time.Hour).UnixNano()
		assert.Equal(t, fmt.Sprintf("FOR VALUES FROM ('%d') TO ('%d')", day, day+int64(24*time.Hour)), bound)
	})

	t.Run("idempotent", func(t *testing.T) {
		res, err := Migrate(ctx, owner, MigrateConfig{AppRole: e.app.Name, Now: fixedNow(testNow.AddDate(0, 0, 2))})
		require.NoError(t, err)
		assert.False(t, res.Created)
		assert.Equal(t, 2, res.Partitions, "only the two new days ahead")
	})

	t.Run("through", func(t *testing.T) {
		res, err := Migrate(ctx, owner, MigrateConfig{AppRole: e.app.Name, Now: fixedNow(testNow), Through: testNow.AddDate(0, 3, 0)})
		require.NoError(t, err)
		assert.Greater(t, res.Partitions, 80, "the owner may make partitions months ahead")
	})

	t.Run("refuses unsuitable application roles", func(t *testing.T) {
		member := e.db.NewRole(t, "member")
		e.db.Exec(t, "GRANT "+e.owner.Ident()+" TO "+member.Ident())
		super := e.db.NewRole(t, "super", "SUPERUSER")
		for _, tc := range []struct{ name, role, want string }{
			{"empty", "", "--app-role"},
			{"missing", "no_such_role", "does not exist"},
			{"superuser", super.Name, "superuser"},
			{"the owner itself", e.owner.Name, "owner role or a member"},
			{"a member of the owner", member.Name, "owner role or a member"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := Migrate(ctx, owner, MigrateConfig{AppRole: tc.role, Now: fixedNow(testNow)})
				require.ErrorIs(t, err, ErrBadAppRole)
				assert.Contains(t, err.Error(), tc.want)
			})
		}
	})

	t.Run("revokes grants that would let the application role change rows", func(t *testing.T) {
		e.db.Exec(t, "GRANT UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA audit TO "+e.app.Ident())
		src := &memSource{}
		_, err := newCopier(t, e, src, testNow, nil).CatchUp(ctx)
		require.ErrorIs(t, err, ErrPrivileged)
		assert.Contains(t, err.Error(), "audit.leaves UPDATE")
		_, err = Migrate(ctx, owner, MigrateConfig{AppRole: e.app.Name, Now: fixedNow(testNow)})
		require.NoError(t, err)
		_, err = newCopier(t, e, src, testNow, nil).CatchUp(ctx)
		require.NoError(t, err)
	})

	t.Run("unknown schema version", func(t *testing.T) {
		e2 := newEnv(t, testNow)
		e2.db.Exec(t, "INSERT INTO audit.schema_version (version) VALUES (2)")
		_, err := Migrate(ctx, e2.db.Connect(t, e2.owner.DSN), MigrateConfig{AppRole: e2.app.Name, Now: fixedNow(testNow)})
		require.ErrorIs(t, err, ErrSchemaVersion)
		_, err = newCopier(t, e2, &memSource{}, testNow, nil).CatchUp(ctx)
		require.ErrorIs(t, err, ErrSchemaVersion)
	})
}

func TestCopierRefusesPrivilegedRoles(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testNow)
	for _, tc := range []struct{ name, dsn, want string }{
		{"owner", e.owner.DSN, "owns the audit tables"},
		{"superuser", e.db.AdminDSN(), "superuser"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &memSource{}
			src.Append(10, testNow, time.Millisecond)
			c := newCopier(t, e, src, testNow, func(c *Config) { c.DSN = tc.dsn })
			_, err := c.CatchUp(ctx)
			require.ErrorIs(t, err, ErrPrivileged)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, e.stored(t))
		})
	}
	t.Run("no schema", func(t *testing.T) {
		db := pg.NewDB(t)
		app := db.NewRole(t, "app")
		c, err := New(Config{DSN: app.DSN, Source: &memSource{}, Logger: quiet(t)})
		require.NoError(t, err)
		_, err = c.CatchUp(ctx)
		require.ErrorIs(t, err, ErrNoSchema)
		assert.Contains(t, err.Error(), "tradecore audit pg migrate")
	})
}

// setClause is a no-op SET list for an UPDATE of table.
func setClause(table string) string {
	switch table {
	case "audit.batches":
		return "first_ts = first_ts"
	case "audit.exports", "audit.retired":
		return "rows = rows"
	case "audit.schema_version":
		return "version = version"
	}
	return "ts = ts"
}

// attempt runs sql as conn and returns its error.
func attempt(conn *pgx.Conn, sql string) error {
	_, err := conn.Exec(context.Background(), sql)
	return err
}

// The application role is what the running service holds: it may add rows
// through the parent table and nothing else.
func TestAppRoleCannotChangeOrRemoveRows(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testNow)
	src := &memSource{}
	src.Append(100, testNow, time.Millisecond)
	_, err := newCopier(t, e, src, testNow, nil).CatchUp(ctx)
	require.NoError(t, err)
	app := e.db.Connect(t, e.app.DSN)
	part := "audit." + partName(testNow)

	for _, table := range []string{"audit.leaves", part, "audit.batches", "audit.exports", "audit.retired", "audit.schema_version"} {
		for _, stmt := range []string{"UPDATE %s SET %s", "DELETE FROM %s", "TRUNCATE %s"} {
			sql := fmt.Sprintf(stmt, table, setClause(table))
			if stmt[0] != 'U' {
				sql = fmt.Sprintf(stmt, table)
			}
			t.Run(sql, func(t *testing.T) {
				requireCode(t, attempt(app, sql), insufficientPrivilege)
			})
		}
	}
	e.requireMirror(t, src, 100)
}

// Privileges are one layer; the triggers are the second. A role that was
// granted UPDATE, DELETE and TRUNCATE by mistake, and the owner itself,
// still cannot change a row: on the parent, on a partition Migrate made, and
// on one made later by the copier.
func TestTriggersRefuseEvenWithPrivileges(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testNow)
	later := testNow.AddDate(0, 0, -30) // a day the copier makes on demand
	src := &memSource{}
	// Rows in each kind of partition: row triggers fire per row.
	for _, day := range []time.Time{later, testNow, testNow.AddDate(0, 0, DefaultDaysAhead)} {
		src.Append(50, day, time.Millisecond)
		_, err := newCopier(t, e, src, testNow, nil).CatchUp(ctx)
		require.NoError(t, err)
	}
	misgranted := e.db.NewRole(t, "misgranted")
	e.db.Exec(t, "GRANT USAGE ON SCHEMA audit TO "+misgranted.Ident())
	e.db.Exec(t, "GRANT ALL ON ALL TABLES IN SCHEMA audit TO "+misgranted.Ident())

	for _, who := range []struct {
		name string
		dsn  string
	}{{"misgranted role", misgranted.DSN}, {"owner", e.owner.DSN}} {
		conn := e.db.Connect(t, who.dsn)
		for _, table := range []string{"audit.leaves", "audit." + partName(later), "audit." + partName(testNow), "audit." + partName(testNow.AddDate(0, 0, DefaultDaysAhead)), "audit.batches", "audit.exports", "audit.retired", "audit.schema_version"} {
			for _, stmt := range []string{"UPDATE %s SET %s", "DELETE FROM %s", "TRUNCATE %s", "TRUNCATE %s CASCADE"} {
				sql := fmt.Sprintf(stmt, table, setClause(table))
				if stmt[0] != 'U' {
					sql = fmt.Sprintf(stmt, table)
				}
				t.Run(who.name+"/"+sql, func(t *testing.T) {
					err := attempt(conn, sql)
					if table == "audit.exports" || table == "audit.retired" {
						// Empty tables: a row trigger has no row to fire on,
						// and nothing changes; TRUNCATE is still refused.
						if stmt[0] == 'T' {
							requireCode(t, err, CodeAppendOnly)
						}
						return
					}
					requireCode(t, err, CodeAppendOnly)
				})
			}
		}
		// A transaction that ran into the trigger changed nothing.
		_, err := conn.Exec(ctx, "BEGIN; UPDATE audit.leaves SET leaf = 'x'::bytea WHERE idx = 3; COMMIT")
		requireCode(t, err, CodeAppendOnly)
		_, _ = conn.Exec(ctx, "ROLLBACK")
		// Straight into a partition, past the parent's insert check: each
		// partition has its own.
		_, err = conn.Exec(ctx, fmt.Sprintf("INSERT INTO audit.%s (idx, ts, type, leaf) VALUES (3, %d, 'x', 'x')", partName(testNow), testNow.UnixNano()))
		requireCode(t, err, CodeNotNext)
		_, err = conn.Exec(ctx, fmt.Sprintf("INSERT INTO audit.%s (idx, ts, type, leaf) VALUES (151, %d, 'x', 'x')", partName(later), later.UnixNano()))
		requireCode(t, err, CodeNotNext, "a gap")
		// MERGE takes the update and delete paths too.
		_, err = conn.Exec(ctx, `MERGE INTO audit.leaves l USING (SELECT 3::bigint AS idx) s ON l.idx = s.idx WHEN MATCHED THEN UPDATE SET leaf = 'x'::bytea`)
		requireCode(t, err, CodeAppendOnly)
		_, err = conn.Exec(ctx, `MERGE INTO audit.leaves l USING (SELECT 3::bigint AS idx) s ON l.idx = s.idx WHEN MATCHED THEN DELETE`)
		requireCode(t, err, CodeAppendOnly)
	}
	e.requireMirror(t, src, 150)
}

// The attacks a compromised service would try with the application role's
// connection: change the schema, switch the triggers off, go around the
// parent, forge bookkeeping, widen its own rights.
func TestAppRoleAttacks(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testNow)
	src := &memSource{}
	src.Append(20, testNow, time.Millisecond)
	_, err := newCopier(t, e, src, testNow, nil).CatchUp(ctx)
	require.NoError(t, err)
	app := e.db.Connect(t, e.app.DSN)
	part := "audit." + partName(testNow)
	ts := testNow.UnixNano()

	for _, tc := range []struct{ name, sql, code string }{
		{"drop a partition", "DROP TABLE " + part, insufficientPrivilege},
		{"drop the parent", "DROP TABLE audit.leaves", insufficientPrivilege},
		{"drop the schema", "DROP SCHEMA audit CASCADE", insufficientPrivilege},
		{"detach a partition", "ALTER TABLE audit.leaves DETACH PARTITION " + part, insufficientPrivilege},
		{"disable a trigger on the parent", "ALTER TABLE audit.leaves DISABLE TRIGGER leaves_append_only", insufficientPrivilege},
		{"disable every trigger on a partition", "ALTER TABLE " + part + " DISABLE TRIGGER ALL", insufficientPrivilege},
		{"disable the batch check", "ALTER TABLE audit.leaves DISABLE TRIGGER leaves_check_batch", insufficientPrivilege},
		{"drop a trigger", "DROP TRIGGER no_truncate ON " + part, insufficientPrivilege},
		{"alter the table", "ALTER TABLE audit.leaves ADD COLUMN note text", insufficientPrivilege},
		{"drop a constraint", "ALTER TABLE audit.batches DROP CONSTRAINT batches_no_overlap", insufficientPrivilege},
		{"replace the trigger function", "CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$", insufficientPrivilege},
		{"make the definer function run as itself", "ALTER FUNCTION audit.ensure_partitions(date, date) SECURITY INVOKER", insufficientPrivilege},
		{"create a table in the schema", "CREATE TABLE audit.evil (n int)", insufficientPrivilege},
		{"skip triggers by replication role", "SET session_replication_role = replica", insufficientPrivilege},
		{"become superuser", "ALTER ROLE CURRENT_USER SUPERUSER", insufficientPrivilege},
		{"insert into a partition directly", fmt.Sprintf("INSERT INTO %s (idx, ts, type, leaf) VALUES (20, %d, 'x', 'x')", part, ts), insufficientPrivilege},
		{"forge a batch", "INSERT INTO audit.batches (idxs, first_ts, last_ts, last_leaf_sha256) VALUES ('[20,1000)', 0, 0, '')", insufficientPrivilege},
		{"read the rows", "SELECT * FROM audit.leaves", insufficientPrivilege},
		{"copy from a program", "COPY audit.leaves FROM PROGRAM 'true'", insufficientPrivilege},
		{"store an index twice", fmt.Sprintf("INSERT INTO audit.leaves (idx, ts, type, leaf) VALUES (19, %d, 'x', 'x')", ts), CodeNotNext},
		{"store an index twice on another day", fmt.Sprintf("INSERT INTO audit.leaves (idx, ts, type, leaf) VALUES (5, %d, 'x', 'x')", ts-int64(24*time.Hour)), CodeNotNext},
		{"leave a gap", fmt.Sprintf("INSERT INTO audit.leaves (idx, ts, type, leaf) VALUES (21, %d, 'x', 'x')", ts), CodeNotNext},
		{"repeat an index inside one insert", fmt.Sprintf("INSERT INTO audit.leaves (idx, ts, type, leaf) VALUES (20, %d, 'x', 'x'), (20, %d, 'x', 'x')", ts, ts+1), CodeNotConsecutive},
		{"a run with a hole", fmt.Sprintf("INSERT INTO audit.leaves (idx, ts, type, leaf) VALUES (20, %d, 'x', 'x'), (22, %d, 'x', 'x')", ts, ts), CodeNotConsecutive},
		{"partitions far ahead", "SELECT audit.ensure_partitions(current_date + 30, current_date + 40)", CodeTooFarAhead},
		{"many partitions at once", "SELECT audit.ensure_partitions('2000-01-01', '2001-01-01')", CodeBadRange},
		{"partitions before 1970", "SELECT audit.ensure_partitions('1969-12-30', '1969-12-31')", CodeBadRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireCode(t, attempt(app, tc.sql), tc.code)
		})
	}
	t.Run("grant itself more", func(t *testing.T) {
		// A GRANT by a role without grant option only warns; nothing changes.
		_ = attempt(app, "GRANT UPDATE, DELETE, TRUNCATE ON audit.leaves TO CURRENT_USER")
		var can bool
		require.NoError(t, app.QueryRow(ctx, "SELECT has_table_privilege('audit.leaves', 'UPDATE,DELETE,TRUNCATE')").Scan(&can))
		assert.False(t, can)
	})
	e.requireMirror(t, src, 20)
}
