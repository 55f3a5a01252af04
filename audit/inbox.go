package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tradecore/tradecore/internal/atomicfile"
)

// The inbox: service records from processes that do not hold the log.
//
// The log has one writer, normally `tradecore serve`. An operator command run
// beside it (`tradecore attest approve`, `tradecore netseg apply`) cannot
// append to the log itself, yet its action must be an audit record. It
// submits the record to the inbox instead — a JSON-lines file in the audit
// folder, appended under an exclusive lock and synced before Submit returns —
// and the log's writer ingests the inbox into the log (Log.IngestInbox),
// serve at start, every InboxInterval and at stop. A submitted record is
// therefore durable before the action it describes is taken, and in the
// signed log within about a second while serve runs, or at its next start.
//
// An ingested record keeps its type; its body is InboxBody, which carries the
// submitter's body unchanged with the entry's id and submission time. A crash
// of the ingesting process between recording entries and emptying the inbox
// records them again at the next ingestion: the same InboxID appearing twice
// is one record (at-least-once, documented in docs/audit-format.md).
const (
	inboxDir  = "inbox"
	inboxFile = "records.jsonl"
	inboxLock = "lock"
	// InboxInterval is how often serve ingests the inbox.
	InboxInterval = time.Second
	// maxInboxEntry bounds one inbox line; the leaf limit applies as well.
	maxInboxEntry = MaxLeafSize
)

// InboxEntry is one line of the inbox file.
type InboxEntry struct {
	ID        string          `json:"id"`        // 32 hex digits, random
	Type      string          `json:"type"`      // the record type
	Submitted int64           `json:"submitted"` // Unix nanoseconds, the submitter's clock
	Body      json.RawMessage `json:"body"`      // the record body, checked by EncodeBody
}

// InboxBody is the body of a record ingested from the inbox.
type InboxBody struct {
	InboxID   string          `json:"inbox_id"`
	Submitted int64           `json:"submitted"`
	Body      json.RawMessage `json:"body"`
}

// ErrInbox means the inbox file is damaged in a way ingestion cannot repair
// by itself (a line that is not an entry). Nothing is ingested; move the file
// aside, ingest the rest by hand, and keep the damaged file as evidence.
var ErrInbox = errors.New("audit: inbox damaged")

// Submit durably queues a service record for the log in dir (the audit
// folder, <data-dir>/audit): the same type and body rules as Log.Record
// apply. It returns the entry's id once the entry is synced to disk.
func Submit(dir, typ string, body any) (string, error) {
	if err := checkServiceType(typ); err != nil {
		return "", err
	}
	b, err := EncodeBody(body)
	if err != nil {
		return "", fmt.Errorf("record %s: %w", typ, err)
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("audit: inbox id: %w", err)
	}
	e := InboxEntry{ID: hex.EncodeToString(id[:]), Type: typ, Submitted: time.Now().UnixNano(), Body: b}
	line, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("audit: inbox entry: %w", err)
	}
	if len(line)+64 > maxInboxEntry {
		return "", fmt.Errorf("%w: record %s: body of %d bytes is over the %d-byte limit", ErrRecord, typ, len(b), maxInboxEntry)
	}
	err = withInbox(dir, func(path string) error {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		// A submitter that died mid-write left a line without its newline;
		// it was never acknowledged, so cut it off before appending.
		end, err := completeEnd(f)
		if err != nil {
			return err
		}
		if err := f.Truncate(end); err != nil {
			return err
		}
		if _, err := f.WriteAt(append(line, '\n'), end); err != nil {
			return err
		}
		return f.Sync()
	})
	if err != nil {
		return "", fmt.Errorf("audit: submit %s to the inbox in %s: %w (check the data folder's permissions and free space)", typ, dir, err)
	}
	return e.ID, nil
}

// IngestInbox records every entry of the inbox in the log, in the order they
// were submitted, and empties it. It returns how many it recorded. When a
// record fails, the entries not yet recorded stay in the inbox for the next
// call.
func (l *Log) IngestInbox(ctx context.Context) (int, error) {
	n := 0
	err := withInbox(l.cfg.Dir, func(path string) error {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) || err == nil && len(data) == 0 {
			return nil
		}
		if err != nil {
			return err
		}
		entries, err := parseInbox(data)
		if err != nil {
			return err
		}
		for i, e := range entries {
			if _, err := l.Record(ctx, e.Type, InboxBody{InboxID: e.ID, Submitted: e.Submitted, Body: e.Body}); err != nil {
				// Keep what was not recorded; the failed one is retried.
				return errors.Join(err, rewriteInbox(path, entries[i:]))
			}
			n++
		}
		return rewriteInbox(path, nil)
	})
	if err != nil {
		return n, fmt.Errorf("audit: ingest the inbox: %w", err)
	}
	return n, nil
}

// ReadInbox returns the entries waiting in the inbox of the audit folder dir.
func ReadInbox(dir string) ([]InboxEntry, error) {
	var out []InboxEntry
	err := withInbox(dir, func(path string) error {
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		out, err = parseInbox(data)
		return err
	})
	return out, err
}

// withInbox runs fn with the inbox file's path, holding the inbox lock.
func withInbox(dir string, fn func(path string) error) error {
	d := filepath.Join(dir, inboxDir)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return err
	}
	lk, err := os.OpenFile(filepath.Join(d, inboxLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer lk.Close()
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock the inbox: %w", err)
	}
	defer unix.Flock(int(lk.Fd()), unix.LOCK_UN)
	return fn(filepath.Join(d, inboxFile))
}

// completeEnd returns the length of f up to and including its last newline.
func completeEnd(f *os.File) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := st.Size()
	buf := make([]byte, 4096)
	for off := size; off > 0; {
		n := int64(len(buf))
		if off < n {
			n = off
		}
		off -= n
		if _, err := f.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return off + int64(i) + 1, nil
		}
	}
	return 0, nil
}

// parseInbox parses the complete lines of an inbox file; a last line
// without its newline (a submitter that died mid-write) is ignored.
func parseInbox(data []byte) ([]InboxEntry, error) {
	var out []InboxEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxInboxEntry+1)
	complete := bytes.LastIndexByte(data, '\n') + 1
	read := 0
	for sc.Scan() {
		read += len(sc.Bytes()) + 1
		if read > complete {
			break
		}
		var e InboxEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || len(e.ID) != 32 || checkServiceType(e.Type) != nil || CheckBody(e.Body) != nil {
			return nil, fmt.Errorf("%w: entry %d is not a valid inbox entry", ErrInbox, len(out)+1)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInbox, err)
	}
	return out, nil
}

// rewriteInbox replaces the inbox file with entries (none: empty).
func rewriteInbox(path string, entries []InboxEntry) error {
	var b []byte
	for _, e := range entries {
		line, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b = append(append(b, line...), '\n')
	}
	return atomicfile.WriteFile(path, b, 0o600)
}
