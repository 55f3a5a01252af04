package pgstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SchemaVersion is the version of the schema this package creates and reads.
const SchemaVersion = 1

//go:embed schema.sql
var schemaSQL string

// DefaultDaysAhead is how many days of partitions Migrate and the copier
// keep ready past today.
const DefaultDaysAhead = 7

// MigrateConfig configures Migrate.
type MigrateConfig struct {
	// AppRole is the application role the copier logs in as: an existing
	// login role, neither a superuser nor the owner nor a member of it.
	// Required.
	AppRole string
	// DaysAhead is how many days of partitions to make past today (UTC).
	// Default DefaultDaysAhead.
	DaysAhead int
	// Through, when not zero, also makes every partition from today up to
	// that day (for example when the engine's clock is known to be ahead).
	Through time.Time
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// MigrateResult says what Migrate did.
type MigrateResult struct {
	Created    bool // the schema was created (false: it was there)
	Partitions int  // daily partitions made
}

// Migrate creates the audit schema when it is missing, (re)applies the
// application role's grants, revokes anything that would let it change
// rows, and makes partitions ahead. Run it as the owner role: the role that
// will own every audit object. It is idempotent and takes a lock, so two
// runs at once are safe.
func Migrate(ctx context.Context, conn *pgx.Conn, cfg MigrateConfig) (MigrateResult, error) {
	var res MigrateResult
	if cfg.AppRole == "" {
		return res, fmt.Errorf("%w: MigrateConfig.AppRole (--app-role) is empty: name the role the copier logs in as", ErrBadAppRole)
	}
	if cfg.DaysAhead <= 0 {
		cfg.DaysAhead = DefaultDaysAhead
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('tradecore.audit.migrate'))"); err != nil {
		return res, fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	var exists, super, member bool
	err = tx.QueryRow(ctx, `SELECT r.rolsuper, pg_has_role(r.oid, current_user, 'MEMBER')
		FROM pg_roles r WHERE r.rolname = $1`, cfg.AppRole).Scan(&super, &member)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return res, fmt.Errorf("%w: role %q does not exist: create it (CREATE ROLE %s LOGIN PASSWORD …) first", ErrBadAppRole, cfg.AppRole, cfg.AppRole)
	case err != nil:
		return res, fmt.Errorf("pgstore: migrate: look up the application role: %w", err)
	case super:
		return res, fmt.Errorf("%w: %q is a superuser, who bypasses every privilege: use an ordinary login role", ErrBadAppRole, cfg.AppRole)
	case member:
		return res, fmt.Errorf("%w: %q is the owner role or a member of it: use a separate login role", ErrBadAppRole, cfg.AppRole)
	}
	if err := tx.QueryRow(ctx, "SELECT to_regclass('audit.schema_version') IS NOT NULL").Scan(&exists); err != nil {
		return res, fmt.Errorf("pgstore: migrate: %w", err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, schemaSQL); err != nil {
			return res, fmt.Errorf("pgstore: migrate: create the schema (does the owner role have CREATE on the database?): %w", err)
		}
		res.Created = true
	} else if err := checkVersion(ctx, tx); err != nil {
		return res, err
	}
	app := pgx.Identifier{cfg.AppRole}.Sanitize()
	grants := []string{
		"REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM " + app,
		"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM " + app,
		"GRANT USAGE ON SCHEMA audit TO " + app,
		"GRANT INSERT ON audit.leaves TO " + app,
		"GRANT SELECT ON audit.batches, audit.schema_version TO " + app,
		"GRANT EXECUTE ON FUNCTION audit.ensure_partitions(date, date) TO " + app,
	}
	for _, g := range grants {
		if _, err := tx.Exec(ctx, g); err != nil {
			return res, fmt.Errorf("pgstore: migrate: %s: %w", g, err)
		}
	}
	today := utcDay(cfg.Now())
	through := today.AddDate(0, 0, cfg.DaysAhead)
	if !cfg.Through.IsZero() && utcDay(cfg.Through).After(through) {
		through = utcDay(cfg.Through)
	}
	if err := tx.QueryRow(ctx, "SELECT audit.ensure_partitions($1, $2)", today.AddDate(0, 0, -1), through).Scan(&res.Partitions); err != nil {
		return res, fmt.Errorf("pgstore: migrate: make partitions: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("pgstore: migrate: commit: %w", err)
	}
	return res, nil
}

// querier is what checkVersion needs of a connection or transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func checkVersion(ctx context.Context, q querier) error {
	var v *int
	err := q.QueryRow(ctx, "SELECT max(version) FROM audit.schema_version").Scan(&v)
	switch {
	case sqlState(err) == "42P01", sqlState(err) == "3F000": // undefined table, schema
		return fmt.Errorf("%w: run tradecore audit pg migrate as the owner role", ErrNoSchema)
	case err != nil:
		return fmt.Errorf("pgstore: read the schema version: %w", err)
	case v == nil || *v != SchemaVersion:
		got := 0
		if v != nil {
			got = *v
		}
		return fmt.Errorf("%w: database has version %d, this build knows %d", ErrSchemaVersion, got, SchemaVersion)
	}
	return nil
}

// utcDay is t's UTC day at midnight.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// dayOf is the UTC day of a nanosecond timestamp, as days since the epoch.
func dayOf(ns int64) int64 { return ns / int64(24*time.Hour) }

// dayDate is the date of a day number from dayOf.
func dayDate(day int64) time.Time { return time.Unix(day*86400, 0).UTC() }
