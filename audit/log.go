package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/tradecore/tradecore/hsm/manifest"
)

// Defaults of Config.
const (
	DefaultCheckpointInterval = time.Second
	DefaultCheckpointEvery    = 1 << 20
	DefaultCommitInterval     = time.Millisecond
	// DefaultRotationLead is how long before a key's expiry the log hands
	// over to the next key (when the signer can rotate).
	DefaultRotationLead = time.Minute
)

// Config configures a Log. Dir and Signer are required; every other zero
// value works.
type Config struct {
	WriterConfig
	// Signer signs checkpoints (the HSM signing service through
	// audit/hsmsign). Required unless NoCheckpoints is set.
	Signer Signer
	// NoCheckpoints runs the log without signed checkpoints. Nothing then
	// proves the log to an auditor; the choice is logged at start.
	NoCheckpoints bool
	// Origin is the checkpoints' origin line; default: the signer's
	// manifest name (which is also the note key name).
	Origin string
	// CheckpointInterval is how often a checkpoint is signed when the log
	// has grown; default 1 s.
	CheckpointInterval time.Duration
	// CheckpointEvery also signs one as soon as this many entries were added
	// since the last; default 1,048,576.
	CheckpointEvery uint64
	// ExternalCommit says a journaler goroutine drives Writer() (Append*,
	// Commit). Otherwise the log commits service records itself, at most
	// CommitInterval (default 1 ms) after they arrive.
	ExternalCommit bool
	CommitInterval time.Duration
	// RotationLead: see DefaultRotationLead.
	RotationLead time.Duration
}

// Log is the audit log: the Writer, the checkpointer that signs tree heads,
// and Record for services.
type Log struct {
	cfg    Config
	w      *Writer
	log    *slog.Logger
	keys   signerKeys
	origin string

	cpWake  chan struct{}
	stop    chan struct{}
	done    sync.WaitGroup
	closeMu sync.Mutex
	closed  bool

	cpMu   sync.Mutex // serialises checkpoint signing
	lastCP Checkpoint
	cpErr  error
}

// Open opens the log and starts its checkpointer (and its committer unless
// ExternalCommit). The close function stops them, commits, signs a final
// checkpoint and closes the writer; with ExternalCommit the journaler must
// have stopped calling the Writer first.
func Open(ctx context.Context, cfg Config) (*Log, func() error, error) {
	if cfg.Signer == nil && !cfg.NoCheckpoints {
		return nil, nil, errors.New("audit: Config.Signer is nil: checkpoints must be signed; pass the HSM signing service (audit/hsmsign.New) or set NoCheckpoints explicitly")
	}
	if cfg.CheckpointInterval == 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.CheckpointInterval < 0 {
		return nil, nil, errors.New("audit: Config.CheckpointInterval is negative: use a positive duration (default 1s)")
	}
	if cfg.CheckpointEvery == 0 {
		cfg.CheckpointEvery = DefaultCheckpointEvery
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = DefaultCommitInterval
	}
	if cfg.RotationLead <= 0 {
		cfg.RotationLead = DefaultRotationLead
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Log{cfg: cfg, log: cfg.Logger, cpWake: make(chan struct{}, 1), stop: make(chan struct{})}
	if cfg.NoCheckpoints {
		l.log.Warn("audit: signed checkpoints are OFF (Config.NoCheckpoints): nothing will prove this log to an auditor")
	} else {
		data, err := cfg.Signer.Manifest(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("audit: signer manifest: %w", err)
		}
		name, err := manifestName(data)
		if err != nil {
			return nil, nil, err
		}
		l.origin = cfg.Origin
		if l.origin == "" {
			l.origin = name
		}
		if !validOrigin(l.origin) {
			return nil, nil, fmt.Errorf("audit: Config.Origin %q: use a name without spaces or '+', like example.com/audit", l.origin)
		}
	}
	w, err := OpenWriter(cfg.WriterConfig)
	if err != nil {
		return nil, nil, err
	}
	l.w = w
	if notes, err := ReadCheckpoints(cfg.Dir); err == nil && len(notes) > 0 {
		n, perr := ParseNote(notes[len(notes)-1])
		if perr == nil {
			l.lastCP, _ = ParseCheckpointText(n.Text)
		}
	}
	every := cfg.CheckpointEvery
	last := l.lastCP.Size
	w.onDur = func(size uint64) {
		if size-last >= every {
			last = size
			select {
			case l.cpWake <- struct{}{}:
			default:
			}
		}
	}
	if !cfg.NoCheckpoints {
		l.done.Add(1)
		go l.checkpointer()
	}
	if !cfg.ExternalCommit {
		l.done.Add(1)
		go l.committer()
	}
	return l, l.close, nil
}

func manifestName(data []byte) (string, error) {
	m, err := manifest.Parse(data)
	if err != nil {
		return "", err
	}
	return m.Name, nil
}

// Writer returns the log's writer for the journaler (ExternalCommit).
func (l *Log) Writer() *Writer { return l.w }

// Durable is Writer().Durable().
func (l *Log) Durable() uint64 { return l.w.Durable() }

// Record appends one audit record: typ is a dotted record type
// ("netseg.policy.applied", "keys.revoked", "tpm.device.enrolled"), body a
// struct (or pointer to one) that encoding/json marshals with no floats and
// no personal data. It returns the record's leaf index once the record is in
// the log (durable to the log's configured level). When it returns an error
// the record is not known to be in the log: refuse the action it records.
// If ctx ends first the record may still be written.
func (l *Log) Record(ctx context.Context, typ string, body any) (uint64, error) {
	if err := checkServiceType(typ); err != nil {
		return 0, err
	}
	b, err := EncodeBody(body)
	if err != nil {
		return 0, fmt.Errorf("record %s: %w", typ, err)
	}
	if len(b)+len(typ)+64 > MaxLeafSize {
		return 0, fmt.Errorf("%w: record %s: body of %d bytes is over the %d-byte limit", ErrRecord, typ, len(b), MaxLeafSize)
	}
	p := &pending{typ: typ, body: b, done: make(chan struct{})}
	if err := l.w.enqueue(p); err != nil {
		return 0, err
	}
	select {
	case <-p.done:
		if p.err != nil {
			return 0, fmt.Errorf("record %s: %w", typ, p.err)
		}
		return p.idx, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("record %s: %w (the record may still be written)", typ, ctx.Err())
	}
}

// Post queues one audit record like Record, but returns once it is queued,
// without waiting for it to be durable: for producers that must not block
// (an agent's duty cycle) and whose records follow from what the log already
// holds — surveillance alerts, which a replay of the journal through the
// detectors regenerates. The record is in the log after the journaler's
// next commit; one posted just before a crash may be missing. Post fails only
// when the record breaks the rules or the log is closed or failed.
func (l *Log) Post(typ string, body any) error {
	if err := checkServiceType(typ); err != nil {
		return err
	}
	b, err := EncodeBody(body)
	if err != nil {
		return fmt.Errorf("record %s: %w", typ, err)
	}
	if len(b)+len(typ)+64 > MaxLeafSize {
		return fmt.Errorf("%w: record %s: body of %d bytes is over the %d-byte limit", ErrRecord, typ, len(b), MaxLeafSize)
	}
	return l.w.enqueue(&pending{typ: typ, body: b, done: make(chan struct{})})
}

func (l *Log) committer() {
	defer l.done.Done()
	t := time.NewTicker(l.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-l.w.inbox.wake:
		case <-t.C:
			if !l.w.Pending() {
				continue
			}
		}
		if err := l.w.Commit(); err != nil {
			l.log.Error("audit: commit failed", "err", err)
		}
	}
}

func (l *Log) checkpointer() {
	defer l.done.Done()
	t := time.NewTicker(l.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		case <-l.cpWake:
		}
		if _, err := l.Checkpoint(context.Background()); err != nil {
			l.log.Error("audit: checkpoint failed; will retry", "err", err)
		}
	}
}

// CheckpointErr returns the last checkpoint error (nil after a success).
func (l *Log) CheckpointErr() error {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	return l.cpErr
}

// LastCheckpoint returns the last checkpoint the log signed.
func (l *Log) LastCheckpoint() Checkpoint {
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	return l.lastCP
}

// Checkpoint signs a checkpoint of the durable tree now, unless the last one
// already covers it, and returns the newest checkpoint. One signing
// operation per checkpoint (two at a key handover).
func (l *Log) Checkpoint(ctx context.Context) (Checkpoint, error) {
	return l.checkpoint(ctx, false)
}

// RotateKey rotates the signer's key with a handover checkpoint signed by the
// old key and then the new one. The Signer must implement Rotator.
func (l *Log) RotateKey(ctx context.Context) (Checkpoint, error) {
	return l.checkpoint(ctx, true)
}

func (l *Log) checkpoint(ctx context.Context, rotate bool) (Checkpoint, error) {
	if l.cfg.NoCheckpoints {
		return Checkpoint{}, errors.New("audit: checkpoints are off (Config.NoCheckpoints)")
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	h := l.w.Head()
	now := l.cfg.Now()
	rot, canRotate := l.cfg.Signer.(Rotator)
	if rotate && !canRotate {
		return l.lastCP, errors.New("audit: the signer cannot rotate keys (it does not implement audit.Rotator)")
	}
	handover := rotate || (canRotate && rot.RotationDue(now.Add(l.cfg.RotationLead)))
	if !handover && h.Size == l.lastCP.Size && l.lastCP.Size > 0 {
		return l.lastCP, nil
	}
	if h.Size == 0 && !handover {
		return l.lastCP, nil
	}
	c := Checkpoint{Origin: l.origin, Size: h.Size, Root: h.Root, Time: max(now.UnixNano(), h.Time, l.lastCP.Time)}
	text := c.Text()
	n := Note{Text: text}
	sig, oldID, err := signNote(ctx, l.cfg.Signer, &l.keys, text)
	if err != nil {
		l.cpErr = err
		return l.lastCP, err
	}
	n.Sigs = append(n.Sigs, sig)
	if handover {
		if err := rot.Rotate(ctx); err != nil {
			l.cpErr = fmt.Errorf("audit: key handover: rotate: %w", err)
			return l.lastCP, l.cpErr
		}
		sig2, newID, err := signNote(ctx, l.cfg.Signer, &l.keys, text)
		if err != nil {
			l.cpErr = fmt.Errorf("audit: key handover: sign with the new key: %w", err)
			return l.lastCP, l.cpErr
		}
		if newID == oldID {
			l.cpErr = fmt.Errorf("audit: key handover: the signer still signs with %s after Rotate", oldID)
			return l.lastCP, l.cpErr
		}
		n.Sigs = append(n.Sigs, sig2)
		l.log.Info("audit: key handover checkpoint", "old_key_id", oldID, "key_id", newID, "size", c.Size)
	}
	if err := appendCheckpointFile(l.cfg.Dir, n.Marshal()); err != nil {
		l.cpErr = err
		return l.lastCP, err
	}
	l.lastCP, l.cpErr = c, nil
	return c, nil
}

func (l *Log) close() error {
	l.closeMu.Lock()
	defer l.closeMu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	close(l.stop)
	l.done.Wait()
	err := l.w.Commit()
	if !l.cfg.NoCheckpoints {
		if _, e := l.Checkpoint(context.Background()); e != nil && err == nil {
			err = e
		}
	}
	if e := l.w.Close(); e != nil && err == nil {
		err = e
	}
	return err
}

// checkSnapshotPath refuses snapshot paths outside snapshots/.
func checkSnapshotPath(file string) error {
	if file == "" || path.Clean(file) != file || !strings.HasPrefix(file, SnapshotDir+"/") || strings.Contains(file, "..") || strings.ContainsAny(file, "\\\x00") {
		return fmt.Errorf("%w: snapshot file %q: give a clean path under %s/ relative to the audit folder", ErrRecord, file, SnapshotDir)
	}
	return nil
}
