package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/audit/hsmsign"
	"github.com/tradecore/tradecore/hsm"
)

// inboxRecorder is the audit sink of the operator verbs that run beside the
// daemon (attest, netseg): it queues each record in the audit log's inbox
// (audit.Submit, synced before the action is taken), and the log's writer —
// tradecore serve within a second, or `tradecore audit ingest` — records it
// in the signed log. Record returns 0: the leaf index is known only then.
type inboxRecorder struct {
	dir string // <data-dir>/audit
	mu  sync.Mutex
	ids []string
}

func newInboxRecorder(dataDir string) *inboxRecorder {
	return &inboxRecorder{dir: filepath.Join(dataDir, "audit")}
}

func (r *inboxRecorder) Record(_ context.Context, typ string, body any) (uint64, error) {
	id, err := audit.Submit(r.dir, typ, body)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	r.ids = append(r.ids, id)
	r.mu.Unlock()
	return 0, nil
}

// queued returns the inbox ids of the records submitted so far.
func (r *inboxRecorder) queued() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...)
}

// noteQueued tells the operator where the command's audit records went.
func (r *inboxRecorder) noteQueued(w io.Writer) {
	if ids := r.queued(); len(ids) > 0 {
		fmt.Fprintf(w, "audit: %d record(s) queued in %s (inbox ids %v); a running tradecore serve records them in the log within %s, otherwise run `tradecore audit ingest`\n",
			len(ids), filepath.Join(r.dir, "inbox"), ids, audit.InboxInterval)
	}
}

// runInbox ingests the inbox into the log every audit.InboxInterval until
// ctx ends, then once more; it returns when done. Failures are logged and
// retried: the entries stay queued. Cancel ctx only once the journaler has
// stopped: the last ingestion commits its records itself (CommitDuring), as
// no journaler will (before, it waited for that commit forever while holding
// the inbox lock, so serve hung at stop and so did every operator command
// queueing a record).
func runInbox(ctx context.Context, l *audit.Log, log *slog.Logger) {
	ingest := func(ctx context.Context) {
		n, err := l.IngestInbox(ctx)
		if n > 0 {
			log.Info("audit: inbox records ingested", "records", n)
		}
		if err != nil {
			log.Error("audit: inbox not ingested; the records stay queued and are retried", "err", err)
		}
	}
	t := time.NewTicker(audit.InboxInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			_ = l.CommitDuring(func() error { ingest(context.WithoutCancel(ctx)); return nil })
			return
		case <-t.C:
			ingest(ctx)
		}
	}
}

// auditIngest is `tradecore audit ingest`: record the inbox in the log when
// no daemon holds it.
func auditIngest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs, dataDir := auditFlagSet("ingest", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sel := tokenSelection{DataDir: *dataDir, Token: hsm.DefaultTokenLabel}
	svc, closeSvc, err := openService(ctx, sel, log, false)
	if err != nil {
		return fmt.Errorf("open the signing service for the audit log: %w", err)
	}
	defer closeSvc()
	l, closeLog, err := audit.Open(ctx, audit.Config{WriterConfig: audit.WriterConfig{Dir: filepath.Join(*dataDir, "audit"), Logger: log},
		Signer: hsmsign.New(svc)})
	if errors.Is(err, audit.ErrLocked) {
		return fmt.Errorf("the audit log in %s is held by a running tradecore serve, which ingests the inbox itself every %s: %w", *dataDir, audit.InboxInterval, err)
	}
	if err != nil {
		return fmt.Errorf("open the audit log: %w", err)
	}
	n, err := l.IngestInbox(ctx)
	if cerr := closeLog(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ingested %d record(s); the log holds %d leaves\n", n, l.Durable())
	return nil
}
