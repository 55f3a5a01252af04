package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// The outbox is how a process that cannot hold the log (it has one writer:
// while `tradecore serve` runs, the daemon holds it) still gets its records
// into it: the process appends the record to <audit>/outbox.jsonl, fsynced,
// before it acts, and every open Log copies new outbox lines into the log
// within Config.OutboxInterval (1 s), and at its next open if none runs.
// docs/audit-format.md, "Outbox", has the line format.
const (
	OutboxFile      = "outbox.jsonl"
	outboxStateFile = "outbox.recorded"
	// DefaultOutboxInterval is how often an open Log looks for new outbox
	// lines.
	DefaultOutboxInterval = time.Second
	maxOutboxLine         = MaxLeafSize
)

// TypeOutboxDamaged is the record the log writes for an outbox line it
// cannot parse (body: outbox_index and the line's SHA-256), so that nothing
// in the outbox is skipped silently.
const TypeOutboxDamaged = "outbox.damaged"

// OutboxLine is one line of the outbox file.
type OutboxLine struct {
	Index uint64          `json:"index"` // the line number, from 0
	Time  string          `json:"time"`  // RFC 3339 UTC, when it was written
	Type  string          `json:"type"`
	Body  json.RawMessage `json:"body"`
}

// OutboxRecord is the body the log writes for an outbox line: its index and
// time in the outbox and the original body. A line may be copied twice
// after a crash between the copy and saving how far the copy got: records
// with the same outbox_index are the same record.
type OutboxRecord struct {
	OutboxIndex uint64          `json:"outbox_index"`
	OutboxTime  string          `json:"outbox_time"`
	Body        json.RawMessage `json:"body"`
}

// Outbox appends records for the log in the audit folder Dir. Its Record
// has the signature of Log.Record, so it stands in wherever a Recorder is
// wanted by a process that does not hold the log (the CLI).
type Outbox struct {
	Dir string
	// Now is the clock for the line's time; default time.Now.
	Now func() time.Time
}

// Record appends one record to the outbox, fsynced, and returns its outbox
// index. The type and body follow the rules of Log.Record. A line torn by a
// crashed writer is cut off first (it was never acknowledged).
func (o Outbox) Record(_ context.Context, typ string, body any) (uint64, error) {
	if err := checkServiceType(typ); err != nil {
		return 0, err
	}
	b, err := EncodeBody(body)
	if err != nil {
		return 0, fmt.Errorf("record %s: %w", typ, err)
	}
	if len(b)+len(typ)+256 > maxOutboxLine {
		return 0, fmt.Errorf("%w: record %s: body of %d bytes is over the %d-byte limit", ErrRecord, typ, len(b), MaxLeafSize)
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return 0, fmt.Errorf("audit: outbox: %w (check --data-dir)", err)
	}
	f, err := os.OpenFile(filepath.Join(o.Dir, OutboxFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("audit: outbox: %w (check --data-dir)", err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return 0, fmt.Errorf("audit: lock the outbox: %w", err)
	}
	var n uint64
	var end int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxOutboxLine+1)
	sc.Split(scanCompleteLines)
	for sc.Scan() {
		n++
		end += int64(len(sc.Bytes())) + 1
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("audit: read the outbox: %w", err)
	}
	if err := f.Truncate(end); err != nil { // a torn last line
		return 0, fmt.Errorf("audit: outbox: %w", err)
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	line, err := json.Marshal(OutboxLine{Index: n, Time: now().UTC().Format(time.RFC3339Nano), Type: typ, Body: b})
	if err != nil {
		return 0, err
	}
	if _, err := f.WriteAt(append(line, '\n'), end); err != nil {
		return 0, fmt.Errorf("audit: write the outbox: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("audit: sync the outbox: %w", err)
	}
	return n, nil
}

// scanCompleteLines is bufio.ScanLines without a final line lacking its
// newline (a torn write).
func scanCompleteLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	return 0, nil, nil
}

// ParseOutboxLine parses and checks one outbox line (without its newline)
// that should carry index want.
func ParseOutboxLine(b []byte, want uint64) (OutboxLine, error) {
	var l OutboxLine
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return l, fmt.Errorf("%w: outbox line %d: %w", ErrRecord, want, err)
	}
	if dec.More() {
		return l, fmt.Errorf("%w: outbox line %d: data after the object", ErrRecord, want)
	}
	if l.Index != want {
		return l, fmt.Errorf("%w: outbox line %d says index %d", ErrRecord, want, l.Index)
	}
	if _, err := time.Parse(time.RFC3339Nano, l.Time); err != nil {
		return l, fmt.Errorf("%w: outbox line %d: time: %w", ErrRecord, want, err)
	}
	if err := checkServiceType(l.Type); err != nil {
		return l, err
	}
	if err := CheckBody(l.Body); err != nil {
		return l, fmt.Errorf("%w: outbox line %d: body: %w", ErrRecord, want, err)
	}
	return l, nil
}

// outboxState is how far the outbox was copied into the log.
type outboxState struct {
	Next   uint64 `json:"next"`   // the next outbox index to copy
	Offset int64  `json:"offset"` // its byte offset
}

// CopyOutbox copies outbox lines not yet in the log into it now, each
// through Record (so each is in the log before the next is read), and saves
// how far it got after each. It returns the number of records written. The
// log does this by itself every OutboxInterval; a daemon calls it at start
// when it must see every record before it goes on (with ExternalCommit,
// inside CommitDuring).
func (l *Log) CopyOutbox(ctx context.Context) (int, error) {
	l.outMu.Lock()
	defer l.outMu.Unlock()
	dir := l.cfg.Dir
	f, err := os.Open(filepath.Join(dir, OutboxFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit: open the outbox: %w", err)
	}
	defer f.Close()
	var st outboxState
	statePath := filepath.Join(dir, outboxStateFile)
	if b, err := os.ReadFile(statePath); err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return 0, fmt.Errorf("audit: %s is damaged: %w (compare the outbox with the log's records, then fix or remove it)", statePath, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	if _, err := f.Seek(st.Offset, io.SeekStart); err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxOutboxLine+1)
	sc.Split(scanCompleteLines)
	n := 0
	for sc.Scan() {
		raw := sc.Bytes()
		typ, body := TypeOutboxDamaged, any(nil)
		if line, err := ParseOutboxLine(raw, st.Next); err == nil {
			typ, body = line.Type, OutboxRecord{OutboxIndex: st.Next, OutboxTime: line.Time, Body: line.Body}
		} else {
			sum := sha256.Sum256(raw)
			l.log.Error("audit: outbox line damaged; recorded as damaged", "outbox_index", st.Next, "err", err.Error())
			body = struct {
				OutboxIndex uint64 `json:"outbox_index"`
				SHA256      string `json:"sha256"`
			}{st.Next, hex.EncodeToString(sum[:])}
		}
		if _, err := l.Record(ctx, typ, body); err != nil {
			return n, err
		}
		st.Next++
		st.Offset += int64(len(raw)) + 1
		b, _ := json.Marshal(st)
		if err := writeFileAtomic(statePath, append(b, '\n')); err != nil {
			return n, err
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("audit: read the outbox: %w", err)
	}
	return n, nil
}

// outboxer copies the outbox into the log every OutboxInterval.
func (l *Log) outboxer(ctx context.Context) {
	defer l.done.Done()
	t := time.NewTicker(l.cfg.OutboxInterval)
	defer t.Stop()
	for {
		if _, err := l.CopyOutbox(ctx); err != nil && ctx.Err() == nil {
			l.log.Error("audit: copying the outbox into the log failed; retrying", "err", err.Error())
		}
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
	}
}
