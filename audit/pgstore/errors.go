package pgstore

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// Errors. Each doc comment says what the caller should do.
var (
	// ErrNoSchema means the audit schema is not in the database: run
	// `tradecore audit pg migrate` as the owner role.
	ErrNoSchema = errors.New("pgstore: audit schema not found in the database")
	// ErrSchemaVersion means the database's schema version is not the one this
	// build knows: run `tradecore audit pg migrate` from this build, or upgrade.
	ErrSchemaVersion = errors.New("pgstore: audit schema version does not match this build")
	// ErrPrivileged means the copier's role could change or remove audit rows
	// (superuser, owner, or UPDATE, DELETE or TRUNCATE granted): connect the
	// copier as the application role, and revoke those grants.
	ErrPrivileged = errors.New("pgstore: the copier's role can change audit rows")
	// ErrBadAppRole means the application role given to Migrate does not exist,
	// is a superuser, or is (or is a member of) the owner: create a separate
	// login role for the application.
	ErrBadAppRole = errors.New("pgstore: unsuitable application role")
	// ErrAheadOfSource means PostgreSQL holds more entries than the local log:
	// the local log was truncated or replaced. Restore the local log; do not
	// point the mirror at a new log.
	ErrAheadOfSource = errors.New("pgstore: PostgreSQL holds entries the local log does not have")
	// ErrDiverged means the last entry in PostgreSQL differs from the local
	// log's entry at the same index: the two logs are not the same history.
	// Investigate both with auditverify before copying anything more.
	ErrDiverged = errors.New("pgstore: PostgreSQL and the local log disagree")
	// ErrBadEntry means the source returned an entry out of order or
	// malformed: the local log adapter is broken; nothing of it was copied.
	ErrBadEntry = errors.New("pgstore: bad entry from the local log")
	// ErrDSN means no usable connection string was found: see LoadDSN.
	ErrDSN = errors.New("pgstore: connection string")
)

// SQLSTATE codes raised by the schema's functions and triggers.
const (
	// CodeNotConsecutive: one insert's rows are not distinct consecutive indexes.
	CodeNotConsecutive = "TC001"
	// CodeNotNext: an insert does not start at the next index to copy.
	CodeNotNext = "TC002"
	// CodeAppendOnly: an UPDATE, DELETE or TRUNCATE of an audit table.
	CodeAppendOnly = "TC010"
	// CodeBadRange: ensure_partitions was given a bad or too long range.
	CodeBadRange = "TC020"
	// CodeTooFarAhead: the application role asked for a partition more than
	// 31 days ahead of the database clock.
	CodeTooFarAhead = "TC021"
	// CodeRetired: a partition for a retired day was asked for.
	CodeRetired = "TC022"
)

// sqlState returns err's SQLSTATE, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
