package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Mirror is the state of the PostgreSQL mirror as any of its roles sees it.
type Mirror struct {
	SchemaVersion int
	// Next is the next index to copy: entries [0, Next) are stored.
	Next uint64
	// Batches is how many copies committed; LastCopyAt the latest's time.
	Batches    int64
	LastCopyAt time.Time
	// Partitions counts the daily partitions; First and Last are their days.
	Partitions  int
	First, Last time.Time
	// Retired counts partitions dropped by retention.
	Retired int64
}

// Inspect reads the mirror's state. The application role may call it.
func Inspect(ctx context.Context, conn *pgx.Conn) (Mirror, error) {
	var m Mirror
	if err := checkVersion(ctx, conn); err != nil {
		return m, err
	}
	m.SchemaVersion = SchemaVersion
	next, _, err := readNext(ctx, conn)
	if err != nil {
		return m, err
	}
	m.Next = next
	var last *time.Time
	if err := conn.QueryRow(ctx, "SELECT count(*), max(copied_at) FROM audit.batches").Scan(&m.Batches, &last); err != nil {
		return m, fmt.Errorf("pgstore: read batches: %w", err)
	}
	if last != nil {
		m.LastCopyAt = last.UTC()
	}
	var first, lastName *string
	if err := conn.QueryRow(ctx, `SELECT count(*), min(c.relname), max(c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'audit.leaves'::regclass`).Scan(&m.Partitions, &first, &lastName); err != nil {
		return m, fmt.Errorf("pgstore: list partitions: %w", err)
	}
	for _, p := range []struct {
		name *string
		day  *time.Time
	}{{first, &m.First}, {lastName, &m.Last}} {
		if p.name == nil {
			continue
		}
		if mm := partRE.FindStringSubmatch(*p.name); mm != nil {
			*p.day, _ = time.Parse("20060102", mm[1])
		}
	}
	// The application role has no grant on audit.retired; count it only
	// where it can be read.
	var canRead bool
	if err := conn.QueryRow(ctx, "SELECT has_table_privilege('audit.retired', 'SELECT')").Scan(&canRead); err != nil {
		return m, fmt.Errorf("pgstore: check privileges: %w", err)
	}
	if canRead {
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM audit.retired").Scan(&m.Retired); err != nil {
			return m, fmt.Errorf("pgstore: read retired partitions: %w", err)
		}
	} else {
		m.Retired = -1
	}
	return m, nil
}
