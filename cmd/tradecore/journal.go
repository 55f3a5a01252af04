package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/audit/hsmsign"
	"github.com/tradecore/tradecore/audit/pgstore"
	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/internal/atomicfile"
)

// engineStateRecord is the record serve writes at a clean stop: the engine's
// state hash after the last command, which recovery compares with a replay.
const engineStateRecord = "engine.state"

type engineState struct {
	Seq       uint64 `json:"seq"`
	StateHash string `json:"state_hash"` // hex SHA-256 of core.Engine.StateHash
}

// swapSigner is the signing service the audit log signs checkpoints with,
// switchable once: the log must be open before the service that records its
// key entries in it can start, so a plain service answers Manifest at first.
// It signs (and rotates) only once the recording service is in: a checkpoint
// signed before the key entries made while the daemon was down are recorded
// would commit to a tree that does not show them (auditverify's log-anchored
// rule, docs/auditverify.md).
type swapSigner struct {
	svc   atomic.Pointer[hsm.Service]
	ready atomic.Bool
}

// errSignerStarting is what a checkpoint attempted before the recording
// service is in gets; the checkpointer retries at its next interval.
var errSignerStarting = errors.New("tradecore: the signing service is starting (key entries not yet recorded in the audit log); the checkpoint is retried")

func (s *swapSigner) cur() *hsm.Service { return s.svc.Load() }

func (s *swapSigner) Sign(ctx context.Context, msg []byte) (hsm.Signature, error) {
	if !s.ready.Load() {
		return hsm.Signature{}, errSignerStarting
	}
	return s.cur().Sign(ctx, msg)
}
func (s *swapSigner) SignWith(ctx context.Context, keyID string, msg []byte) ([]byte, error) {
	if !s.ready.Load() {
		return nil, errSignerStarting
	}
	return s.cur().SignWith(ctx, keyID, msg)
}
func (s *swapSigner) Manifest(ctx context.Context) ([]byte, error) { return s.cur().Manifest(ctx) }
func (s *swapSigner) Active() manifest.KeyState                    { return s.cur().Active() }
func (s *swapSigner) Rotate(ctx context.Context) (manifest.KeyState, error) {
	if !s.ready.Load() {
		return manifest.KeyState{}, errSignerStarting
	}
	return s.cur().Rotate(ctx)
}

var _ hsm.Signer = (*swapSigner)(nil)

// services is what serve runs beside the engine: the signing service (its
// key entries recorded in the audit log) and the audit log.
type services struct {
	svc      *hsm.Service
	log      *audit.Log
	tok      *hsm.Token
	closeAll func() error
}

// startServices brings up the local SoftHSM token and signing service
// (created on first run), then the audit log in <data-dir>/audit signed by
// it, then a signing service that records its key lifecycle in that log.
func startServices(ctx context.Context, dataDir string, file *config.File, log *slog.Logger) (*services, error) {
	sel := tokenSelection{DataDir: dataDir, Token: hsm.DefaultTokenLabel}
	tok, closeTok, err := sel.open(ctx, log, true)
	if err != nil {
		return nil, fmt.Errorf("open the local SoftHSM token: %w", err)
	}
	closers := []func() error{closeTok}
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	fail := func(err error) (*services, error) {
		_ = closeAll()
		return nil, err
	}
	plain := hsm.ServiceConfig{Dir: sel.keysDir(), Logger: log, CheckInterval: -1, RefreshInterval: -1}
	if _, err := hsm.Init(ctx, tok, plain); err != nil {
		return fail(err)
	}
	first, closeFirst, err := hsm.NewService(ctx, tok, plain)
	if err != nil {
		return fail(err)
	}
	var sw swapSigner
	sw.svc.Store(first)
	durability, err := audit.ParseDurability(file.Audit.Durability)
	if err != nil {
		_ = closeFirst()
		return fail(err)
	}
	alog, closeLog, err := audit.Open(ctx, audit.Config{
		WriterConfig:   audit.WriterConfig{Dir: filepath.Join(dataDir, "audit"), Durability: durability, Instruments: scales(file), Logger: log},
		Signer:         hsmsign.New(&sw),
		ExternalCommit: true,
	})
	if err != nil {
		_ = closeFirst()
		return fail(fmt.Errorf("open the audit log: %w", err))
	}
	closers = append(closers, closeLog)
	// The recording service starts with the log committing its records (no
	// journaler runs yet): the key entries not yet in the log go in now.
	// Records other processes queued in the inbox (netseg, attest, vault
	// shreds) go in first: the shreds among them are re-applied below.
	var svc *hsm.Service
	var closeSvc func() error
	err = alog.CommitDuring(func() error {
		if _, err := alog.IngestInbox(ctx); err != nil {
			return err
		}
		var err error
		svc, closeSvc, err = hsm.NewService(ctx, tok, hsm.ServiceConfig{Dir: sel.keysDir(), Logger: log, CheckInterval: time.Hour, Recorder: alog})
		return err
	})
	if err != nil {
		_ = closeFirst()
		return fail(fmt.Errorf("start the signing service with the audit log: %w", err))
	}
	sw.svc.Store(svc)
	sw.ready.Store(true)
	_ = closeFirst()
	// Closing the service may record (a rotation in flight): commit while it stops.
	closers = append(closers, func() error { return alog.CommitDuring(closeSvc) })
	if err := reapplyShreds(ctx, tok, sel.keysDir(), filepath.Join(dataDir, "audit"), alog, log); err != nil {
		return fail(err)
	}
	return &services{svc: svc, log: alog, tok: tok, closeAll: closeAll}, nil
}

// reapplyShreds makes every crypto-shred recorded in the audit log stick: a
// restored backup of the token and the data-key store brings shredded
// subjects' keys back, so at every start the subjects of the log's
// vault.shredded records are shredded again (docs/keys.md, "Personal data
// at rest"). Without a data-key store no vault was ever used here and the
// log is not read.
func reapplyShreds(ctx context.Context, tok *hsm.Token, keysDir, auditDir string, alog *audit.Log, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(keysDir, hsm.KeyringFile)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	subjects, err := shreddedSubjects(auditDir)
	if err != nil {
		return fmt.Errorf("read the audit log's vault.shredded records: %w (the shreds they record must be re-applied before serving)", err)
	}
	if len(subjects) == 0 {
		return nil
	}
	_, closeVault, err := hsm.NewVault(ctx, tok, hsm.VaultConfig{Dir: keysDir, Recorder: alog, Shredded: subjects})
	if err != nil {
		return fmt.Errorf("re-apply %d recorded crypto-shreds: %w", len(subjects), err)
	}
	log.Info("crypto-shreds of the audit log re-applied", "subjects", len(subjects))
	return closeVault()
}

// shreddedSubjects returns the subjects of every vault.shredded record of
// the log in dir.
func shreddedSubjects(dir string) ([]string, error) {
	r, err := audit.OpenReader(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	err = r.Read(0, 0, func(e *audit.Entry) error {
		if e.Type != hsm.RecordVaultShredded {
			return nil
		}
		h, err := audit.ParseLeaf(e.Leaf)
		if err != nil {
			return err
		}
		var b audit.InboxBody // a shred queued through the inbox
		if json.Unmarshal(h.Body, &b) == nil && b.InboxID != "" {
			h.Body = b.Body
		}
		var rec hsm.ShredRecord
		if err := json.Unmarshal(h.Body, &rec); err != nil {
			return fmt.Errorf("leaf %d: %w", e.Index, err)
		}
		if rec.Subject != "" {
			out = append(out, rec.Subject)
		}
		return nil
	})
	return out, err
}

// scales are the audit log's decimal scales of the configured instruments.
func scales(file *config.File) []audit.InstrumentScale {
	var out []audit.InstrumentScale
	for _, in := range file.Instruments {
		out = append(out, audit.InstrumentScale{ID: in.ID, Symbol: in.Symbol, Tick: in.TickSize.String(), Lot: in.LotSize.String()})
	}
	return out
}

// recoverEngine replays every command of the log into the loop's engine and
// checks the state hash against the one recorded at the last clean stop.
// It returns the number of commands replayed.
func recoverEngine(dir string, loop *core.Loop, log *slog.Logger, out io.Writer) (uint64, error) {
	r, err := audit.OpenReader(dir)
	if err != nil {
		return 0, fmt.Errorf("recovery: open the journal: %w", err)
	}
	start := time.Now()
	var after, from uint64
	snap, at, snapIdx, err := latestSnapshot(r, dir, log)
	if err != nil {
		return 0, fmt.Errorf("recovery: read the journal: %w", err)
	}
	if snap != nil {
		// The file's SHA-256 is checked as it is read: it must be the
		// snapshot the log recorded, not merely a well-formed one.
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(snap.File)))
		sum := sha256.New()
		if err == nil {
			err = loop.LoadSnapshot(io.TeeReader(f, sum), snap.Seq, at)
			io.Copy(sum, f) // the rest, if the reader stopped short
			f.Close()
		}
		if err == nil && fmt.Sprintf("%x", sum.Sum(nil)) != snap.SHA256 {
			return 0, fmt.Errorf("recovery: snapshot %s is not the file the log recorded (SHA-256 differs); move it away to recover by full replay", snap.File)
		}
		switch {
		case err == nil && fmt.Sprintf("%x", loop.Engine().StateHash()) == snap.StateHash:
			after, from = snap.Seq, snapIdx
			log.Info("engine snapshot loaded", "file", snap.File, "seq", snap.Seq)
		case err == nil:
			return 0, fmt.Errorf("recovery: snapshot %s loads to another state hash than its record says; investigate before trading", snap.File)
		case errors.Is(err, core.ErrSnapshot):
			log.Warn("engine snapshot unusable by this build or configuration; replaying the journal from the beginning", "file", snap.File, "err", err.Error())
			// LoadSnapshot refused before changing the engine
		default:
			return 0, fmt.Errorf("recovery: load snapshot %s: %w", snap.File, err)
		}
	}
	var n uint64
	if err := audit.ReadCommandsFrom(r, from, after, func(_ uint64, c *core.Command) error {
		n++
		return loop.Replay(c)
	}); err != nil {
		return n, fmt.Errorf("recovery: replay the journal: %w (verify it with auditverify; the engine does not start on a journal it cannot replay)", err)
	}
	// The last clean stop's state hash, if the log ends with one for this seq.
	// A clean stop writes it after its snapshot's record, so with a
	// snapshot only the log from there on is read.
	var last engineState
	if err := r.Read(from, 0, func(e *audit.Entry) error {
		if e.Type != engineStateRecord {
			return nil
		}
		h, err := audit.ParseLeaf(e.Leaf)
		if err != nil {
			return err
		}
		return json.Unmarshal(h.Body, &last)
	}); err != nil {
		return n, fmt.Errorf("recovery: read the journal: %w", err)
	}
	got := loop.Engine().StateHash()
	if last.StateHash != "" && last.Seq == loop.Seq() {
		if fmt.Sprintf("%x", got) != last.StateHash {
			return n, fmt.Errorf("recovery: state hash after replaying %d commands is %x, the log recorded %s at the last stop: the engine would not be the one that stopped; investigate before trading", loop.Seq(), got, last.StateHash)
		}
	}
	if n > 0 || after > 0 {
		log.Info("recovered from the journal", "snapshot_seq", after, "commands_replayed", n, "seq", loop.Seq(), "state_hash", fmt.Sprintf("%x", got),
			"checked_against_last_stop", last.Seq == loop.Seq() && last.StateHash != "", "seconds", time.Since(start).Seconds())
		fmt.Fprintf(out, "recovered to seq %d: snapshot at seq %d, then %d commands replayed from the journal\n", loop.Seq(), after, n)
	}
	return n, nil
}

// recordStop writes a snapshot of the engine to <audit>/snapshots and its
// record, and the engine's final state hash, into the log (no journaler runs
// any more), so the next start loads the snapshot instead of replaying the
// whole day.
func recordStop(ctx context.Context, alog *audit.Log, dir string, loop *core.Loop, log *slog.Logger) error {
	h := loop.Engine().StateHash()
	snap, err := writeSnapshot(dir, loop)
	if err != nil {
		// The journal alone still recovers everything; say so and go on.
		log.Warn("engine snapshot not written; the next start replays the journal from the beginning", "err", err.Error())
	}
	if snap != nil {
		// The journaler has stopped: this goroutine is the log's only writer.
		w := alog.Writer()
		t := max(time.Now().UnixNano(), w.Head().Time)
		idx, err := w.AppendSnapshot(t, snap.Seq, h, snap.sha, snap.File, snap.Size)
		if err != nil {
			return err
		}
		if err := w.Commit(); err != nil {
			return err
		}
		_ = os.WriteFile(filepath.Join(dir, "snapshots", "latest"), []byte(strconv.FormatUint(idx, 10)+"\n"), 0o600)
	}
	return alog.CommitDuring(func() error {
		_, err := alog.Record(ctx, engineStateRecord, engineState{Seq: loop.Seq(), StateHash: fmt.Sprintf("%x", h)})
		return err
	})
}

// snapshotFile is a written snapshot: its record's fields.
type snapshotFile struct {
	Seq  uint64
	File string
	Size int64
	sha  [32]byte
}

// writeSnapshot writes the engine's snapshot to snapshots/seq-N.snap in the
// audit folder (synced) and returns its record.
func writeSnapshot(dir string, loop *core.Loop) (*snapshotFile, error) {
	rel := filepath.Join("snapshots", fmt.Sprintf("seq-%020d.snap", loop.Seq()))
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	hw := sha256.New()
	var n int64
	err := atomicfile.Write(path, 0o600, func(w io.Writer) error {
		cw := &countWriter{w: io.MultiWriter(w, hw)}
		err := loop.Engine().WriteSnapshot(cw)
		n = cw.n
		return err
	})
	if err != nil {
		return nil, err
	}
	sf := &snapshotFile{Seq: loop.Seq(), File: filepath.ToSlash(rel), Size: n}
	hw.Sum(sf.sha[:0])
	pruneSnapshots(filepath.Dir(path), keepSnapshots)
	return sf, nil
}

// keepSnapshots is how many snapshot files serve keeps (each is a few hundred
// MB at production capacity). The log keeps every snapshot's record; the
// verifier counts a pruned file as missing, which only --require-snapshots
// turns into a failure.
const keepSnapshots = 3

func pruneSnapshots(dir string, keep int) {
	names, _ := filepath.Glob(filepath.Join(dir, "seq-*.snap"))
	for len(names) > keep { // the names sort by sequence number
		os.Remove(names[0])
		names = names[1:]
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// latestSnapshot returns the log's last usable snapshot record and the time
// of its leaf, or nil.
func latestSnapshot(r *audit.Reader, dir string, log *slog.Logger) (*audit.SnapshotBody, int64, uint64, error) {
	var last *audit.SnapshotBody
	var at int64
	var idx uint64
	// snapshots/latest names the leaf of the latest snapshot record, so a
	// start need not scan the whole log for it; the leaf is read and checked,
	// and without a good hint the log is scanned.
	from, to := uint64(0), uint64(0)
	if b, err := os.ReadFile(filepath.Join(dir, "snapshots", "latest")); err == nil {
		if i, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil {
			if size, err := r.Size(); err == nil && i < size {
				from, to = i, size
			}
		}
	}
	err := r.Read(from, to, func(e *audit.Entry) error {
		if e.Type != audit.TypeSnapshot {
			return nil
		}
		h, err := audit.ParseLeaf(e.Leaf)
		if err != nil {
			return err
		}
		var b audit.SnapshotBody
		if err := json.Unmarshal(h.Body, &b); err != nil {
			return err
		}
		last, at, idx = &b, e.Time, e.Index
		return nil
	})
	if err != nil || last == nil {
		return nil, 0, 0, err
	}
	if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(last.File))); err != nil || fi.Size() != last.Size {
		log.Warn("the latest engine snapshot is missing or not the size its record says; replaying the journal from the beginning", "file", last.File)
		return nil, 0, 0, nil
	}
	return last, at, idx, nil
}

// logSource is the local audit log as the PostgreSQL copier reads it: what
// is durable, read from the segment files.
type logSource struct {
	log *audit.Log
	r   *audit.Reader
	buf []byte
}

func (s *logSource) Size(context.Context) (uint64, error) { return s.log.Durable(), nil }

func (s *logSource) Read(_ context.Context, from, to uint64, dst []pgstore.Entry) ([]pgstore.Entry, error) {
	s.buf = s.buf[:0]
	var offs []int
	err := s.r.Read(from, to, func(e *audit.Entry) error {
		offs = append(offs, len(s.buf))
		s.buf = append(s.buf, e.Leaf...)
		dst = append(dst, pgstore.Entry{Index: e.Index, Time: e.Time, Type: e.Type})
		return nil
	})
	// The leaves alias one buffer, valid until the next Read (the copier's
	// contract); they are sliced once it no longer grows.
	base := len(dst) - len(offs)
	for i, off := range offs {
		end := len(s.buf)
		if i+1 < len(offs) {
			end = offs[i+1]
		}
		dst[base+i].Leaf = s.buf[off:end:end]
	}
	return dst, err
}

// startMirror runs the PostgreSQL copier of the audit log when a DSN is
// configured (audit.postgres_dsn_file, or $TRADECORE_AUDIT_PG_DSN): off the
// engine's path, retrying through outages; trading never waits for it.
func startMirror(ctx context.Context, file *config.File, alog *audit.Log, dir string, log *slog.Logger) (func(), error) {
	if file.Audit.PostgresDSNFile == "" && os.Getenv("TRADECORE_AUDIT_PG_DSN") == "" {
		log.Info("audit: no PostgreSQL mirror configured (audit.postgres_dsn_file); the log stays in local segment files")
		return func() {}, nil
	}
	dsn, err := pgstore.LoadDSN(file.Audit.PostgresDSNFile, "TRADECORE_AUDIT_PG_DSN")
	if err != nil {
		return nil, err
	}
	r, err := audit.OpenReader(dir)
	if err != nil {
		return nil, err
	}
	c, err := pgstore.New(pgstore.Config{DSN: dsn, Source: &logSource{log: alog, r: r}, Logger: log})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := c.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("audit: PostgreSQL mirror stopped; the local log is complete, restart to resume the copy", "err", err.Error())
		}
	}()
	log.Info("audit: PostgreSQL mirror running")
	return func() { cancel(); <-done }, nil
}
