package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/audit/hsmsign"
	"github.com/tradecore/tradecore/audit/pgstore"
	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
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
// key entries in it can start, so a plain service serves at first.
type swapSigner struct{ svc atomic.Pointer[hsm.Service] }

func (s *swapSigner) cur() *hsm.Service { return s.svc.Load() }

func (s *swapSigner) Sign(ctx context.Context, msg []byte) (hsm.Signature, error) {
	return s.cur().Sign(ctx, msg)
}
func (s *swapSigner) SignWith(ctx context.Context, keyID string, msg []byte) ([]byte, error) {
	return s.cur().SignWith(ctx, keyID, msg)
}
func (s *swapSigner) Manifest(ctx context.Context) ([]byte, error) { return s.cur().Manifest(ctx) }
func (s *swapSigner) Active() manifest.KeyState                    { return s.cur().Active() }
func (s *swapSigner) Rotate(ctx context.Context) (manifest.KeyState, error) {
	return s.cur().Rotate(ctx)
}

var _ hsm.Signer = (*swapSigner)(nil)

// services is what serve runs beside the engine: the signing service (its
// key entries recorded in the audit log) and the audit log.
type services struct {
	svc      *hsm.Service
	log      *audit.Log
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
	var svc *hsm.Service
	var closeSvc func() error
	err = alog.CommitDuring(func() error {
		var err error
		svc, closeSvc, err = hsm.NewService(ctx, tok, hsm.ServiceConfig{Dir: sel.keysDir(), Logger: log, CheckInterval: time.Hour, Recorder: alog})
		return err
	})
	if err != nil {
		_ = closeFirst()
		return fail(fmt.Errorf("start the signing service with the audit log: %w", err))
	}
	sw.svc.Store(svc)
	_ = closeFirst()
	// Closing the service may record (a rotation in flight): commit while it stops.
	closers = append(closers, func() error { return alog.CommitDuring(closeSvc) })
	return &services{svc: svc, log: alog, closeAll: closeAll}, nil
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
	var n uint64
	if err := audit.ReadCommands(r, 0, func(_ uint64, c *core.Command) error {
		n++
		return loop.Replay(c)
	}); err != nil {
		return n, fmt.Errorf("recovery: replay the journal: %w (verify it with auditverify; the engine does not start on a journal it cannot replay)", err)
	}
	// The last clean stop's state hash, if the log ends with one for this seq.
	var last engineState
	if err := r.Read(0, 0, func(e *audit.Entry) error {
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
	if n > 0 {
		log.Info("recovered from the journal", "commands", n, "seq", loop.Seq(), "state_hash", fmt.Sprintf("%x", got),
			"checked_against_last_stop", last.Seq == loop.Seq() && last.StateHash != "", "seconds", time.Since(start).Seconds())
		fmt.Fprintf(out, "recovered %d commands from the journal (seq %d)\n", n, loop.Seq())
	}
	return n, nil
}

// recordStop writes the engine's final state hash into the log (no journaler
// runs any more).
func recordStop(ctx context.Context, alog *audit.Log, loop *core.Loop) error {
	h := loop.Engine().StateHash()
	return alog.CommitDuring(func() error {
		_, err := alog.Record(ctx, engineStateRecord, engineState{Seq: loop.Seq(), StateHash: fmt.Sprintf("%x", h)})
		return err
	})
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
