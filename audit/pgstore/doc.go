// Package pgstore mirrors the audit log into PostgreSQL, append-only, and
// retires old days of it under an audited retention rule. The spec users
// code and operate against is docs/audit-postgres.md.
//
// The local log (segment files under <data-dir>/audit/) stays the record of
// truth and the proof: PostgreSQL is a queryable copy, fed off the engine's
// path, whose every row an auditor can check against the log's signed
// checkpoints. So a PostgreSQL outage delays the copy and nothing else.
//
// What to use:
//
//   - Migrate, run as the owner role, creates the schema (audit.leaves
//     partitioned by UTC day, audit.batches and friends), grants the
//     application role INSERT through the parent table and nothing that
//     changes rows, and makes partitions ahead.
//   - New and Copier.Run, in the daemon, copy the local log (a Source) as
//     the application role: one binary COPY per batch, resuming from what
//     PostgreSQL holds after any failure. Copier.CatchUp makes one attempt.
//     Copier.Status feeds metrics.
//   - Retention (Plan, Export, Drop), run as the owner role, backs
//     `tradecore audit retention`; each export and drop is first written to
//     the audit log through a Recorder.
//   - LoadDSN reads a connection string from a file only its owner can
//     read, or from the environment; Inspect reports the mirror's state.
//
// Who closes what: the caller owns every *pgx.Conn it passes in; a Copier
// opens and closes its own connections and stops when Run's context ends.
//
// Guarantees, each enforced by the database rather than by this package's
// good behaviour: no UPDATE, DELETE or TRUNCATE of an audit table succeeds
// for any role (privileges, and triggers on the parent and on every
// partition); every insert statement is one run of consecutive indexes
// starting exactly at the next index (a statement trigger), so the mirror
// never has a gap or a duplicate; no index is stored twice across
// partitions (an exclusion constraint on audit.batches).
package pgstore
