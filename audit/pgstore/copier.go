package pgstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Config configures a Copier. Source and one of DSN or ConnConfig are
// required; every other zero value takes its default.
type Config struct {
	// DSN is the application role's connection string (see LoadDSN).
	DSN string
	// ConnConfig, instead of DSN, is a parsed connection config (custom
	// dialers, TLS). It is copied at every connect.
	ConnConfig *pgx.ConnConfig
	// Source is the local log.
	Source Source
	// BatchSize is how many entries one COPY transaction carries. Default 16384.
	BatchSize int
	// PollInterval is how long the copier waits when it has copied
	// everything durable. Default 50 ms.
	PollInterval time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failure, which doubles
	// (with jitter) after each consecutive failure. Defaults 200 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// ConnectTimeout bounds each connection attempt. Default 10 s.
	ConnectTimeout time.Duration
	// DaysAhead is how many days of partitions the copier keeps ready past
	// today (UTC), at most 31. Default DefaultDaysAhead.
	DaysAhead int
	// Logger receives the copier's state changes (never a password).
	// Default slog.Default().
	Logger *slog.Logger
	// Now is the clock that decides "today" for partitions. Default time.Now.
	Now func() time.Time
}

// Status is a copier's view of the mirror, for metrics and operators.
type Status struct {
	// Next is the next index PostgreSQL needs: every entry below it is stored
	// there exactly once. Valid once Synced.
	Next uint64
	// Synced reports whether Next has been read from PostgreSQL.
	Synced bool
	// SourceSize is the local log's durable size at the copier's last look.
	SourceSize uint64
	// Connected reports whether the copier holds a working connection.
	Connected bool
	// Copied and Batches count what this copier committed.
	Copied, Batches uint64
	// Failures counts sessions ended by an error; LastError is the latest
	// (cleared on the next successful copy). Resyncs counts times the
	// database's next index was not the copier's (another copier, or a
	// commit whose acknowledgement was lost) and the copier re-read it.
	Failures, Resyncs uint64
	LastError         string
	LastErrorAt       time.Time
	// LastCopyAt is when the last batch committed.
	LastCopyAt time.Time
}

// Lag is how many durable local entries PostgreSQL does not have yet.
func (s Status) Lag() uint64 {
	if s.SourceSize < s.Next {
		return 0
	}
	return s.SourceSize - s.Next
}

// Copier copies the local log into PostgreSQL, in index order, resuming
// from what PostgreSQL already holds. It runs on its own goroutine, off the
// engine's path: a PostgreSQL outage delays the mirror and nothing else.
// One Copier must not run Run and CatchUp at once; several copiers (in
// several processes) on one database are safe: the schema lets exactly one
// of them store each index.
type Copier struct {
	cfg  Config
	conn *pgx.ConnConfig
	log  *slog.Logger

	mu sync.Mutex
	st Status

	// Reused between batches.
	buf  []Entry
	wire []byte
	rd   bytes.Reader
}

// New checks cfg and returns a copier; nothing connects until Run or CatchUp.
func New(cfg Config) (*Copier, error) {
	if cfg.Source == nil {
		return nil, errors.New("pgstore: Config.Source is nil: give the copier the local log")
	}
	var cc *pgx.ConnConfig
	switch {
	case cfg.ConnConfig != nil:
		cc = cfg.ConnConfig.Copy()
	case cfg.DSN != "":
		var err error
		if cc, err = pgx.ParseConfig(cfg.DSN); err != nil {
			return nil, fmt.Errorf("%w: Config.DSN does not parse (its text is not shown, it may hold a password)", ErrDSN)
		}
	default:
		return nil, fmt.Errorf("%w: Config.DSN and Config.ConnConfig are both empty: give the application role's connection string", ErrDSN)
	}
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	if cc.RuntimeParams["application_name"] == "" {
		cc.RuntimeParams["application_name"] = "tradecore-audit-copier"
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 16384
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 50 * time.Millisecond
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		return nil, fmt.Errorf("pgstore: Config.MaxBackoff %s is below MinBackoff %s: raise it", cfg.MaxBackoff, cfg.MinBackoff)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	if cfg.DaysAhead <= 0 {
		cfg.DaysAhead = DefaultDaysAhead
	}
	if cfg.DaysAhead > 31 {
		return nil, fmt.Errorf("pgstore: Config.DaysAhead %d is over 31, the most the application role may make: lower it", cfg.DaysAhead)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Copier{cfg: cfg, conn: cc, log: cfg.Logger.With("component", "audit-pg-copier", "target", describe(cc))}, nil
}

// Status returns the copier's current view.
func (c *Copier) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *Copier) update(f func(*Status)) {
	c.mu.Lock()
	f(&c.st)
	c.mu.Unlock()
}

// Run copies until ctx is done, then returns nil. Every failure (PostgreSQL
// down, a network error, a refusal) ends the session; Run logs it, waits a
// backoff and starts again from what PostgreSQL holds, so nothing is lost
// or stored twice. Failures that need an operator (ErrPrivileged,
// ErrDiverged, ErrAheadOfSource, ErrNoSchema, ErrSchemaVersion) are retried
// at the longest backoff and stay visible in Status.
func (c *Copier) Run(ctx context.Context) error {
	backoff := c.cfg.MinBackoff
	for {
		progressed, err := c.session(ctx, false)
		if ctx.Err() != nil {
			return nil
		}
		if progressed {
			backoff = c.cfg.MinBackoff
		}
		if needsOperator(err) {
			backoff = c.cfg.MaxBackoff
		}
		c.log.Warn("audit copy to PostgreSQL paused; the local log keeps every record", "err", err, "retry_in", backoff.Round(time.Millisecond), "next_index", c.Status().Next)
		// Full jitter over the upper half, so copiers that fail together do
		// not retry together.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

func needsOperator(err error) bool {
	for _, e := range []error{ErrPrivileged, ErrDiverged, ErrAheadOfSource, ErrNoSchema, ErrSchemaVersion, ErrBadEntry} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// CatchUp makes one attempt to copy every entry that is durable when it is
// called, and returns how many it copied. It does not retry: the error of
// a failed attempt is returned (what was committed before it stays).
func (c *Copier) CatchUp(ctx context.Context) (uint64, error) {
	before := c.Status().Copied
	_, err := c.session(ctx, true)
	return c.Status().Copied - before, err
}

// session connects, checks, and copies until an error, ctx's end, or (once)
// the size at its start. It reports whether any batch committed.
func (c *Copier) session(ctx context.Context, once bool) (progressed bool, err error) {
	defer func() {
		if err != nil && ctx.Err() == nil {
			c.update(func(s *Status) {
				s.Failures++
				s.LastError, s.LastErrorAt = err.Error(), c.cfg.Now()
			})
		}
		c.update(func(s *Status) { s.Connected = false })
	}()
	cctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	conn, err := pgx.ConnectConfig(cctx, c.conn.Copy())
	cancel()
	if err != nil {
		return false, fmt.Errorf("pgstore: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if err := checkRole(ctx, conn); err != nil {
		return false, err
	}
	if err := checkVersion(ctx, conn); err != nil {
		return false, err
	}
	next, err := c.sync(ctx, conn)
	if err != nil {
		return false, err
	}
	c.update(func(s *Status) { s.Connected = true })
	c.log.Info("audit copy to PostgreSQL connected", "next_index", next)

	days := map[int64]bool{}
	aheadDone := int64(-1)
	target := uint64(0)
	if once {
		if target, err = c.cfg.Source.Size(ctx); err != nil {
			return false, fmt.Errorf("pgstore: local log size: %w", err)
		}
	}
	resyncs := 0
	for {
		if today := dayOf(c.cfg.Now().UnixNano()); today != aheadDone {
			if err := ensureDays(ctx, conn, today-1, today+int64(c.cfg.DaysAhead)); err != nil {
				return progressed, err
			}
			aheadDone = today
		}
		size, err := c.cfg.Source.Size(ctx)
		if err != nil {
			return progressed, fmt.Errorf("pgstore: local log size: %w", err)
		}
		c.update(func(s *Status) { s.SourceSize = size })
		if once && next >= target {
			return progressed, nil
		}
		if next > size {
			return progressed, fmt.Errorf("%w: PostgreSQL's next index is %d, the local log's size %d", ErrAheadOfSource, next, size)
		}
		if next == size {
			select {
			case <-ctx.Done():
				return progressed, ctx.Err()
			case <-time.After(c.cfg.PollInterval):
			}
			continue
		}
		to := min(size, next+uint64(c.cfg.BatchSize))
		batch, err := c.read(ctx, next, to)
		if err != nil {
			return progressed, err
		}
		if err := ensureBatchDays(ctx, conn, days, batch); err != nil {
			return progressed, err
		}
		err = c.copy(ctx, conn, batch)
		switch code := sqlState(err); {
		case err == nil:
			next += uint64(len(batch))
			progressed, resyncs = true, 0
			now := c.cfg.Now()
			c.update(func(s *Status) {
				s.Next, s.Copied, s.Batches, s.LastCopyAt, s.LastError = next, s.Copied+uint64(len(batch)), s.Batches+1, now, ""
			})
		case (code == CodeNotNext || code == "23505" || code == "23P01") && resyncs < 3:
			// Someone else stored these (another copier, or our own commit
			// whose acknowledgement was lost), caught by the insert trigger
			// or the batches' exclusion constraint (or a unique index an
			// operator added): read where the database is.
			resyncs++
			c.update(func(s *Status) { s.Resyncs++ })
			if next, err = c.sync(ctx, conn); err != nil {
				return progressed, err
			}
		default:
			return progressed, fmt.Errorf("pgstore: copy entries %d to %d: %w", batch[0].Index, batch[len(batch)-1].Index, err)
		}
	}
}

// sync reads the database's next index and checks the local log agrees.
func (c *Copier) sync(ctx context.Context, conn *pgx.Conn) (uint64, error) {
	next, lastHash, err := readNext(ctx, conn)
	if err != nil {
		return 0, err
	}
	size, err := c.cfg.Source.Size(ctx)
	if err != nil {
		return 0, fmt.Errorf("pgstore: local log size: %w", err)
	}
	if next > size {
		return 0, fmt.Errorf("%w: PostgreSQL's next index is %d, the local log's size %d", ErrAheadOfSource, next, size)
	}
	if next > 0 {
		last, err := c.read(ctx, next-1, next)
		if err != nil {
			return 0, err
		}
		if h := sha256.Sum256(last[0].Leaf); string(h[:]) != string(lastHash) {
			return 0, fmt.Errorf("%w: the leaf at index %d has SHA-256 %x in PostgreSQL and %x in the local log", ErrDiverged, next-1, lastHash, h)
		}
	}
	c.update(func(s *Status) { s.Next, s.Synced, s.SourceSize = next, true, size })
	return next, nil
}

// read reads [from, to) from the source, checking order and form.
func (c *Copier) read(ctx context.Context, from, to uint64) ([]Entry, error) {
	c.buf = c.buf[:0]
	for at := from; at < to; {
		var err error
		n := len(c.buf)
		c.buf, err = c.cfg.Source.Read(ctx, at, to, c.buf)
		if err != nil {
			return nil, fmt.Errorf("pgstore: read local log [%d, %d): %w", at, to, err)
		}
		if len(c.buf) == n {
			return nil, fmt.Errorf("%w: Read(%d, %d) returned nothing below the durable size", ErrBadEntry, at, to)
		}
		for i := n; i < len(c.buf); i++ {
			e := &c.buf[i]
			switch {
			case e.Index != at:
				return nil, fmt.Errorf("%w: expected index %d, got %d", ErrBadEntry, at, e.Index)
			case e.Index > 1<<63-1:
				return nil, fmt.Errorf("%w: index %d does not fit PostgreSQL's bigint", ErrBadEntry, e.Index)
			case e.Time < 0:
				return nil, fmt.Errorf("%w: entry %d has a time before 1970 (%d ns)", ErrBadEntry, e.Index, e.Time)
			case !validType(e.Type):
				return nil, fmt.Errorf("%w: entry %d has type %q: want 1 to 128 of a-z, 0-9, '.', '_', '-'", ErrBadEntry, e.Index, truncate(e.Type, 40))
			case len(e.Leaf) > maxLeaf:
				return nil, fmt.Errorf("%w: entry %d has a leaf of %d bytes, over %d", ErrBadEntry, e.Index, len(e.Leaf), maxLeaf)
			case len(e.Leaf) == 0:
				return nil, fmt.Errorf("%w: entry %d has an empty leaf", ErrBadEntry, e.Index)
			}
			at++
		}
		if at > to {
			return nil, fmt.Errorf("%w: Read(%d, %d) returned entries past %d", ErrBadEntry, from, to, to)
		}
	}
	return c.buf, nil
}

// copy stores one batch in one transaction, as one binary COPY.
func (c *Copier) copy(ctx context.Context, conn *pgx.Conn, batch []Entry) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	c.wire = encodeCopy(c.wire[:0], batch)
	c.rd.Reset(c.wire)
	tag, err := conn.PgConn().CopyFrom(ctx, &c.rd, copySQL)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != int64(len(batch)) {
		return fmt.Errorf("pgstore: COPY stored %d rows of %d", tag.RowsAffected(), len(batch))
	}
	return tx.Commit(ctx)
}

const copySQL = "COPY audit.leaves (idx, ts, type, leaf) FROM STDIN (FORMAT binary)"

// encodeCopy appends batch to dst in PostgreSQL's binary COPY format
// (https://www.postgresql.org/docs/15/sql-copy.html#id-1.9.3.55.9.4): the
// signature, flags and extension length, then per row the field count and
// each field as a length and its bytes (int8 big-endian, text and bytea
// as they are), then the trailer. It allocates nothing once dst is large
// enough, where encoding through pgx.CopyFrom boxes every value.
func encodeCopy(dst []byte, batch []Entry) []byte {
	dst = append(dst, "PGCOPY\n\xff\r\n\x00"...)
	dst = binary.BigEndian.AppendUint32(dst, 0) // flags
	dst = binary.BigEndian.AppendUint32(dst, 0) // header extension length
	for i := range batch {
		e := &batch[i]
		dst = binary.BigEndian.AppendUint16(dst, 4)
		dst = binary.BigEndian.AppendUint32(dst, 8)
		dst = binary.BigEndian.AppendUint64(dst, e.Index)
		dst = binary.BigEndian.AppendUint32(dst, 8)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.Time))
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Type)))
		dst = append(dst, e.Type...)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Leaf)))
		dst = append(dst, e.Leaf...)
	}
	return binary.BigEndian.AppendUint16(dst, 0xffff) // trailer: -1
}

// maxLeaf bounds one leaf (far above any record; PostgreSQL's own limit
// for a field is 1 GB).
const maxLeaf = 1 << 24

// validType reports whether t is a dotted record type: 1 to 128 bytes of
// lower-case ASCII letters, digits, '.', '_' and '-'.
func validType(t string) bool {
	if t == "" || len(t) > 128 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// checkRole refuses a role that could change or remove audit rows.
func checkRole(ctx context.Context, conn *pgx.Conn) error {
	var super, exists bool
	if err := conn.QueryRow(ctx, `SELECT rolsuper, to_regclass('audit.leaves') IS NOT NULL FROM pg_roles WHERE rolname = current_user`).Scan(&super, &exists); err != nil {
		return fmt.Errorf("pgstore: check the copier's role: %w", err)
	}
	if super {
		return fmt.Errorf("%w: it is a superuser: connect as the application role", ErrPrivileged)
	}
	if !exists {
		return fmt.Errorf("%w (or the role lacks USAGE on schema audit): run tradecore audit pg migrate as the owner role", ErrNoSchema)
	}
	var can bool
	var what string
	err := conn.QueryRow(ctx, `SELECT bool_or(p), coalesce(string_agg(CASE WHEN p THEN t || ' ' || priv END, ', '), '')
		FROM (SELECT t, priv, has_table_privilege(t, priv) AS p
		      FROM unnest(ARRAY['audit.leaves', 'audit.batches', 'audit.exports', 'audit.retired', 'audit.schema_version']) AS t,
		           unnest(ARRAY['UPDATE', 'DELETE', 'TRUNCATE']) AS priv) x`).Scan(&can, &what)
	if err != nil {
		return fmt.Errorf("pgstore: check the copier's privileges: %w", err)
	}
	var owner bool
	if err := conn.QueryRow(ctx, `SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = 'audit.leaves'::regclass`).Scan(&owner); err != nil {
		return fmt.Errorf("pgstore: check the copier's role: %w", err)
	}
	switch {
	case owner:
		return fmt.Errorf("%w: it owns the audit tables: connect the copier as the application role, not the owner", ErrPrivileged)
	case can:
		return fmt.Errorf("%w: it holds %s: revoke them (tradecore audit pg migrate does)", ErrPrivileged, what)
	}
	return nil
}

// readNext returns the database's next index and the SHA-256 of the leaf
// just below it (nil when the mirror is empty).
func readNext(ctx context.Context, conn *pgx.Conn) (uint64, []byte, error) {
	var next int64
	var h []byte
	err := conn.QueryRow(ctx, `SELECT upper(idxs), last_leaf_sha256 FROM audit.batches ORDER BY upper(idxs) DESC LIMIT 1`).Scan(&next, &h)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("pgstore: read the next index: %w", err)
	}
	return uint64(next), h, nil
}

// ensureDays makes the partitions for days [from, to] (day numbers).
func ensureDays(ctx context.Context, conn *pgx.Conn, from, to int64) error {
	var made int
	if err := conn.QueryRow(ctx, "SELECT audit.ensure_partitions($1, $2)", dayDate(from), dayDate(to)).Scan(&made); err != nil {
		return fmt.Errorf("pgstore: make partitions %s to %s: %w", dayDate(from).Format(time.DateOnly), dayDate(to).Format(time.DateOnly), err)
	}
	return nil
}

// ensureBatchDays makes any partition a batch needs that this session has
// not seen yet.
func ensureBatchDays(ctx context.Context, conn *pgx.Conn, known map[int64]bool, batch []Entry) error {
	last := int64(-1)
	for i := range batch {
		d := dayOf(batch[i].Time)
		if d == last || known[d] {
			last = d
			continue
		}
		if err := ensureDays(ctx, conn, d, d); err != nil {
			return err
		}
		known[d], last = true, d
	}
	return nil
}
