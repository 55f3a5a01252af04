package audit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tradecore/tradecore/audit/merkle"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/internal/atomicfile"
)

// Durability is how far Commit takes appended records before it counts them
// durable.
type Durability uint8

const (
	// DurabilityWrite hands records to the operating system (write(2)):
	// they survive a crash of the process, not of the machine. The default.
	DurabilityWrite Durability = iota
	// DurabilityFsync also flushes them to the disk (fdatasync(2)) once per
	// Commit, a group commit: they survive a crash of the machine.
	DurabilityFsync
)

func (d Durability) String() string {
	if d == DurabilityFsync {
		return "fsync"
	}
	return "write"
}

// ParseDurability parses "write" or "fsync".
func ParseDurability(s string) (Durability, error) {
	switch s {
	case "write", "":
		return DurabilityWrite, nil
	case "fsync":
		return DurabilityFsync, nil
	}
	return 0, fmt.Errorf("audit: durability %q: use write or fsync", s)
}

// Defaults of WriterConfig.
const (
	DefaultSegmentSize = 64 << 20
	DefaultBufferSize  = 4 << 20
	// coreLeafMax bounds the leaf of one command or event (about 20 fields).
	coreLeafMax = 2048
)

var (
	// ErrClosed is returned after Close; reopen the log.
	ErrClosed = errors.New("audit: log closed")
	// ErrTimeBackwards means a record's time is before the previous
	// record's: the log keeps timestamps monotonic. Feed the journal from a
	// clock that never steps back (the engine's sequencer), in order.
	ErrTimeBackwards = errors.New("audit: record time goes backwards")
	// ErrLocked means another process has the log open for writing. Stop
	// it, or read the log with a Reader instead.
	ErrLocked = errors.New("audit: log is open for writing in another process")
)

// WriterConfig configures a Writer. The zero value of every field but Dir
// works.
type WriterConfig struct {
	// Dir is the audit folder (<data-dir>/audit); created 0700.
	Dir string
	// Durability of Commit; default DurabilityWrite.
	Durability Durability
	// SegmentSize is the size at which a new segment file starts; default 64 MiB.
	SegmentSize int64
	// BufferSize is the preallocated append buffer; Append commits by itself
	// when it fills. Default 4 MiB.
	BufferSize int
	// Instruments are the scales core records are written in. Opening the
	// writer appends them as an "audit.instruments" record.
	Instruments []InstrumentScale
	// Now is the clock for service records; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// TreeHead is the tree over every durable entry: its size, root and the time
// of its last entry.
type TreeHead struct {
	Size uint64
	Root merkle.Hash
	Time int64
}

// Recovered says what opening the log repaired.
type Recovered struct {
	// TruncatedBytes were cut from the last segment: a torn (partial) write
	// at the tail. Those records were never durable, so never acknowledged.
	TruncatedBytes int64
	// TruncatedCheckpointBytes were cut from the checkpoints file.
	TruncatedCheckpointBytes int64
}

// Writer appends records to the log. It is driven by one goroutine — the
// journaler — and never blocks on a lock or channel per record: Append*
// copies the record's leaf into a preallocated buffer and hashes it; Commit
// writes everything appended since the last Commit in one write(2) (plus one
// fdatasync(2) at DurabilityFsync) and then raises the Durable watermark,
// which any goroutine may read. Service records (Log.Record) reach the
// journaler through an inbox that Commit drains with TryLock.
//
// Only the journaler goroutine may call Append*, Commit and Close. Durable,
// Head and Pending are safe from any goroutine.
type Writer struct {
	cfg  WriterConfig
	dir  string
	lock *os.File
	log  *slog.Logger

	f        *os.File // current segment, opened for append
	mm       []byte   // DurabilityWrite: the current segment mapped shared (flush copies into it)
	segFirst uint64
	segBytes int64

	buf      []byte
	next     uint64 // index of the next entry appended
	lastTime int64
	tree     *merkle.Range
	hasher   *merkle.LeafHasher
	scales   Scales
	err      error // sticky: once a write fails the writer refuses everything

	durable atomic.Uint64
	head    atomic.Pointer[TreeHead]
	onDur   func(size uint64) // called after each successful Commit (checkpointer wake-up); must not block

	inbox   inbox
	waiting []*pending

	recovered Recovered
	syncs     sync.WaitGroup // background syncs of full segments (DurabilityWrite)
}

// inbox carries service records to the journaler.
type inbox struct {
	mu   sync.Mutex
	q    []*pending
	n    atomic.Int32
	wake chan struct{}
}

type pending struct {
	typ  string
	body []byte
	idx  uint64
	err  error
	done chan struct{}
}

// OpenWriter opens (creating when needed) the log in cfg.Dir for writing:
// it takes the folder's lock, truncates a torn tail to the last complete
// record (reported by Recovered and logged), rebuilds the tree, and appends
// the "audit.instruments" record for cfg.Instruments. Close it when done.
func OpenWriter(cfg WriterConfig) (*Writer, error) {
	if cfg.Dir == "" {
		return nil, errors.New("audit: WriterConfig.Dir is empty: give the audit folder (<data-dir>/audit)")
	}
	if cfg.SegmentSize == 0 {
		cfg.SegmentSize = DefaultSegmentSize
	}
	if cfg.SegmentSize < 4096 {
		return nil, fmt.Errorf("audit: WriterConfig.SegmentSize %d: use at least 4096 bytes (default 64 MiB)", cfg.SegmentSize)
	}
	if cfg.BufferSize == 0 {
		cfg.BufferSize = DefaultBufferSize
	}
	if cfg.BufferSize < 2*MaxLeafSize {
		return nil, fmt.Errorf("audit: WriterConfig.BufferSize %d: use at least %d bytes (default 4 MiB)", cfg.BufferSize, 2*MaxLeafSize)
	}
	if cfg.Durability > DurabilityFsync {
		return nil, fmt.Errorf("audit: WriterConfig.Durability %d: use DurabilityWrite or DurabilityFsync", cfg.Durability)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	scales := Scales{}
	for _, in := range cfg.Instruments {
		s, err := ParseScale(in.Tick, in.Lot)
		if err != nil {
			return nil, fmt.Errorf("audit: WriterConfig.Instruments id %d: %w", in.ID, err)
		}
		if _, dup := scales[in.ID]; dup {
			return nil, fmt.Errorf("audit: WriterConfig.Instruments: id %d listed twice", in.ID)
		}
		scales[in.ID] = s
	}
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, segDir), filepath.Join(cfg.Dir, SnapshotDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("audit: create %s: %w", d, err)
		}
	}
	w := &Writer{cfg: cfg, dir: cfg.Dir, log: cfg.Logger, scales: scales, hasher: merkle.NewLeafHasher()}
	w.inbox.wake = make(chan struct{}, 1)
	lk, err := os.OpenFile(filepath.Join(cfg.Dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: lock: %w", err)
	}
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lk.Close()
		return nil, fmt.Errorf("%w (%s)", ErrLocked, cfg.Dir)
	}
	w.lock = lk
	if err := w.recover(); err != nil {
		w.release()
		return nil, err
	}
	w.buf = make([]byte, 0, cfg.BufferSize)
	w.publish()
	body, err := EncodeBody(InstrumentsBody{Instruments: append([]InstrumentScale{}, cfg.Instruments...)})
	if err == nil {
		// Timed as the previous record, so the log's clock never runs ahead
		// of the engine's.
		_, err = w.AppendRecord(w.lastTime, TypeInstruments, body)
	}
	if err == nil {
		err = w.Commit()
	}
	if err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

func (w *Writer) release() {
	if w.mm != nil {
		unix.Munmap(w.mm)
		w.mm = nil
	}
	if w.f != nil {
		w.f.Close()
	}
	if w.lock != nil {
		unix.Flock(int(w.lock.Fd()), unix.LOCK_UN)
		w.lock.Close()
		w.lock = nil
	}
}

// recover scans the last segment, truncates a torn tail, rebuilds the tree
// and opens the segment for appending.
func (w *Writer) recover() error {
	segs, err := listSegments(w.dir)
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		w.tree = merkle.NewRange(0)
		return w.newSegment(0)
	}
	last := segs[len(segs)-1]
	path := filepath.Join(w.dir, segDir, segName(last))
	if st, err := os.Stat(path); err == nil && st.Size() < segHeaderSize {
		// A crash while the segment was being created: its header is torn
		// and it holds no record. Write it again.
		w.log.Warn("audit: rewriting the torn header of the newest segment", "segment", segName(last), "bytes", st.Size())
		if err := os.WriteFile(path, segHeader(last), 0o600); err != nil {
			return fmt.Errorf("audit: repair segment header: %w", err)
		}
		w.recovered.TruncatedBytes += st.Size()
	}
	f, err := openSegment(path, last)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	fr := frameReader{r: bufio.NewReaderSize(f, 1<<20), off: segHeaderSize}
	n := last
	var lastTime int64
	for {
		leaf, err := fr.next()
		if err == io.EOF {
			break
		}
		if err == errTorn || (errors.Is(err, ErrCorrupt) && frameReachesEnd(f, fr.off, st.Size())) {
			break
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("audit: segment %s at offset %d: %w", segName(last), fr.off, err)
		}
		h, err := ParseLeaf(leaf)
		if err != nil || h.Index != n {
			f.Close()
			return fmt.Errorf("%w: segment %s at offset %d: leaf %d is damaged or out of place", ErrCorrupt, segName(last), fr.off, n)
		}
		lastTime = h.Time
		n++
	}
	f.Close()
	if fr.off < st.Size() {
		padding := allZero(path, fr.off, st.Size())
		w.recovered.TruncatedBytes = st.Size() - fr.off
		if err := os.Truncate(path, fr.off); err != nil {
			return fmt.Errorf("audit: truncate torn tail of %s: %w", segName(last), err)
		}
		if padding {
			// The zeros a mapped segment is extended with (DurabilityWrite):
			// the process stopped without trimming them. Nothing was lost.
			w.log.Info("audit: trimmed the unused end of the newest segment", "segment", segName(last), "offset", fr.off, "entries", n)
		} else {
			w.log.Warn("audit: truncated a torn write at the tail of the log", "segment", segName(last), "offset", fr.off, "bytes", w.recovered.TruncatedBytes, "entries", n)
		}
	}
	if n == last && last > 0 {
		// The previous segment ended exactly; its last entry's time comes
		// from it.
		r := &Reader{dir: w.dir, types: map[string]string{}}
		if err := r.Read(last-1, last, func(e *Entry) error { lastTime = e.Time; return nil }); err != nil {
			return err
		}
	}
	w.next, w.lastTime = n, lastTime
	if w.f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		return fmt.Errorf("audit: sync %s: %w", segName(last), err)
	}
	w.segFirst, w.segBytes = last, fr.off
	if err := w.mapSegment(); err != nil {
		return err
	}
	if err := w.loadTree(); err != nil {
		return err
	}
	tb, err := truncateCheckpoints(w.dir)
	if err != nil {
		return err
	}
	w.recovered.TruncatedCheckpointBytes = tb
	return nil
}

// loadTree restores the compact range from the tree file when it is usable
// and hashes the leaves after it.
func (w *Writer) loadTree() error {
	var from uint64
	if rg, err := readTree(w.dir); err == nil && rg.End() <= w.next {
		w.tree, from = rg, rg.End()
	} else {
		w.tree = merkle.NewRange(0)
	}
	if from == w.next {
		return nil
	}
	r := &Reader{dir: w.dir, types: map[string]string{}}
	return r.Read(from, w.next, func(e *Entry) error {
		h := merkle.HashLeaf(e.Leaf)
		w.tree.AppendLeaf(&h)
		return nil
	})
}

// tree file: magic "TCAUDTRE", size uint64, count uint32, hashes, CRC-32C of
// everything before it.
func writeTree(dir string, r *merkle.Range) error {
	return writeFileAtomic(filepath.Join(dir, treeFile), treeBytes(r))
}

// writeTreeNoSync replaces the tree file atomically (rename) without syncing:
// enough at DurabilityWrite, whose promise is a crash of the process (a
// machine crash that loses it costs a re-hash of the log at the next open).
func writeTreeNoSync(dir string, r *merkle.Range) error {
	path := filepath.Join(dir, treeFile)
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, treeBytes(r), 0o600); err != nil {
		return fmt.Errorf("audit: write %s: %w", treeFile, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("audit: write %s: %w", treeFile, err)
	}
	return nil
}

func treeBytes(r *merkle.Range) []byte {
	b := []byte("TCAUDTRE")
	b = binary.LittleEndian.AppendUint64(b, r.End())
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Hashes())))
	for _, h := range r.Hashes() {
		b = append(b, h[:]...)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	return b
}

func readTree(dir string) (*merkle.Range, error) {
	b, err := os.ReadFile(filepath.Join(dir, treeFile))
	if err != nil {
		return nil, err
	}
	if len(b) < 24 || string(b[:8]) != "TCAUDTRE" {
		return nil, ErrCorrupt
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, ErrCorrupt
	}
	size := binary.LittleEndian.Uint64(b[8:])
	n := int(binary.LittleEndian.Uint32(b[16:]))
	if len(body) != 20+n*merkle.HashSize {
		return nil, ErrCorrupt
	}
	hs := make([]merkle.Hash, n)
	for i := range hs {
		copy(hs[i][:], body[20+i*merkle.HashSize:])
	}
	return merkle.RangeFromHashes(0, size, hs)
}

// writeFileAtomic replaces path (mode 0600), durably.
func writeFileAtomic(path string, data []byte) error {
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// newSegment creates the segment that starts at first and makes it current.
func (w *Writer) newSegment(first uint64) error {
	path := filepath.Join(w.dir, segDir, segName(first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: create segment: %w", err)
	}
	if _, err := f.Write(segHeader(first)); err != nil {
		f.Close()
		return fmt.Errorf("audit: create segment: %w", err)
	}
	if w.cfg.Durability == DurabilityFsync {
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("audit: create segment: %w", err)
		}
		if err := syncDir(filepath.Join(w.dir, segDir)); err != nil {
			f.Close()
			return err
		}
	}
	if w.f != nil {
		w.f.Close()
	}
	w.f, w.segFirst, w.segBytes = f, first, segHeaderSize
	return w.mapSegment()
}

// mapSize is how far a mapped segment extends: a segment rolls before it
// passes SegmentSize, and one flush adds at most the buffer.
func (w *Writer) mapSize() int64 { return w.cfg.SegmentSize + int64(w.cfg.BufferSize) + MaxLeafSize }

// mapSegment maps the current segment at DurabilityWrite: the file is
// extended (with zeros, which readers and recovery treat as the end) to
// mapSize and mapped shared. Records are then copied into the mapping — the
// kernel's page cache — with no system call per commit, which survives a
// crash of the process as write(2) does; the background sync at a roll and
// the sync at Close take them to disk.
func (w *Writer) mapSegment() error {
	if w.cfg.Durability != DurabilityWrite {
		return nil
	}
	// The blocks are allocated now (fallocate), so a full disk is this clean
	// error here, not a SIGBUS when a record is copied into a hole later.
	size := w.mapSize()
	if err := unix.Fallocate(int(w.f.Fd()), 0, 0, size); err != nil {
		return fmt.Errorf("audit: reserve %d bytes for the segment: %w (free disk space, or lower WriterConfig.SegmentSize)", size, err)
	}
	mm, err := unix.Mmap(int(w.f.Fd()), 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("audit: map segment: %w", err)
	}
	w.mm = mm
	return nil
}

// unmap ends the current segment's mapping and cuts the file back to its
// records.
func (w *Writer) unmap() error {
	if w.mm == nil {
		return nil
	}
	err := unix.Munmap(w.mm)
	w.mm = nil
	if err != nil {
		return w.fail(fmt.Errorf("audit: unmap segment: %w", err))
	}
	if err := w.f.Truncate(w.segBytes); err != nil {
		return w.fail(fmt.Errorf("audit: trim segment: %w", err))
	}
	return nil
}

// Recovered reports what opening the log repaired.
func (w *Writer) Recovered() Recovered { return w.recovered }

// Durable returns the durable watermark: every entry with an index below it
// is durable to the configured level. It only grows. Safe from any goroutine.
func (w *Writer) Durable() uint64 { return w.durable.Load() }

// Head returns the tree over the durable entries. Safe from any goroutine.
func (w *Writer) Head() TreeHead { return *w.head.Load() }

// Next returns the index the next appended entry gets.
func (w *Writer) Next() uint64 { return w.next }

// Pending reports whether service records wait for the journaler's next
// Commit. Safe from any goroutine; a journaler polls it in its duty cycle.
func (w *Writer) Pending() bool { return w.inbox.n.Load() > 0 }

// Wake returns a channel that receives when a service record is queued (for
// a journaler that parks between duty cycles).
func (w *Writer) Wake() <-chan struct{} { return w.inbox.wake }

// ready makes room for a leaf of up to need bytes and checks its time.
func (w *Writer) ready(t int64, need int) error {
	if w.err != nil {
		return w.err
	}
	if w.f == nil {
		return ErrClosed
	}
	if t < w.lastTime {
		return fmt.Errorf("%w: %d after %d at index %d", ErrTimeBackwards, t, w.lastTime, w.next)
	}
	if len(w.buf)+frameHeader+need > cap(w.buf) {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if w.segBytes+int64(len(w.buf)+frameHeader+need) > w.cfg.SegmentSize && w.next > w.segFirst {
		if err := w.flush(); err != nil {
			return err
		}
		if err := w.roll(); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// roll starts the next segment. At DurabilityFsync the full one is synced
// first. At DurabilityWrite, whose promise is survival of a crash of the
// process (the data is in the kernel already), the full segment is synced and
// closed in the background, so a roll does not stall the journaler for the
// tens of milliseconds a 64 MB fdatasync takes.
func (w *Writer) roll() error {
	sync := w.cfg.Durability == DurabilityFsync
	if sync {
		if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
			return fmt.Errorf("audit: sync segment: %w", err)
		}
	} else {
		if err := w.unmap(); err != nil {
			return err
		}
		old := w.f
		w.f = nil
		w.syncs.Add(1)
		go func() {
			defer w.syncs.Done()
			if err := unix.Fdatasync(int(old.Fd())); err != nil {
				w.log.Warn("audit: background sync of a full segment failed; the data is with the kernel (durability write)", "err", err.Error())
			}
			old.Close()
		}()
	}
	if err := w.newSegment(w.next); err != nil {
		return err
	}
	if !sync {
		return writeTreeNoSync(w.dir, w.tree)
	}
	return writeTree(w.dir, w.tree)
}

// finish fills in the frame header of the leaf appended at start and adds
// the leaf to the tree.
func (w *Writer) finish(start int, t int64) uint64 {
	leaf := w.buf[start+frameHeader:]
	binary.LittleEndian.PutUint32(w.buf[start:], uint32(len(leaf)))
	binary.LittleEndian.PutUint32(w.buf[start+4:], crc32.Checksum(leaf, castagnoli))
	h := w.hasher.Hash(leaf)
	w.tree.AppendLeaf(&h)
	idx := w.next
	w.next++
	w.lastTime = t
	return idx
}

var zeroHeader [frameHeader]byte

// AppendCommand appends a sequenced command (time c.Time) and returns its
// leaf index. It is durable after the next Commit.
func (w *Writer) AppendCommand(c *core.Command) (uint64, error) {
	if err := w.ready(c.Time, coreLeafMax); err != nil {
		return 0, err
	}
	start := len(w.buf)
	w.buf = append(w.buf, zeroHeader[:]...)
	w.buf = AppendCommand(w.buf, w.next, c, w.scales)
	return w.finish(start, c.Time), nil
}

// AppendEvent appends an engine event (time ev.Time).
func (w *Writer) AppendEvent(ev *core.Event) (uint64, error) {
	if err := w.ready(ev.Time, coreLeafMax); err != nil {
		return 0, err
	}
	start := len(w.buf)
	w.buf = append(w.buf, zeroHeader[:]...)
	w.buf = AppendEvent(w.buf, w.next, ev, w.scales)
	return w.finish(start, ev.Time), nil
}

// AppendRecord appends a record with an encoded body (see EncodeBody) at
// time t. Services use Log.Record instead.
func (w *Writer) AppendRecord(t int64, typ string, body []byte) (uint64, error) {
	if !ValidType(typ) {
		return 0, fmt.Errorf("%w: type %q", ErrRecord, typ)
	}
	need := len(body) + len(typ) + 64
	if need > MaxLeafSize {
		return 0, fmt.Errorf("%w: body of %d bytes exceeds the %d-byte leaf limit", ErrRecord, len(body), MaxLeafSize)
	}
	if err := w.ready(t, need); err != nil {
		return 0, err
	}
	start := len(w.buf)
	w.buf = append(w.buf, zeroHeader[:]...)
	w.buf = AppendLeaf(w.buf, w.next, t, typ, body)
	return w.finish(start, t), nil
}

// AppendSnapshot appends the record of an engine snapshot: the state after
// command seq was written to file (a path relative to the audit folder,
// under snapshots/) with the given SHA-256 and size.
func (w *Writer) AppendSnapshot(t int64, seq uint64, stateHash, sha [32]byte, file string, size int64) (uint64, error) {
	if err := checkSnapshotPath(file); err != nil {
		return 0, err
	}
	body, err := EncodeBody(SnapshotBody{Seq: seq, StateHash: hexString(stateHash[:]), File: file, SHA256: hexString(sha[:]), Size: size})
	if err != nil {
		return 0, err
	}
	return w.AppendRecord(t, TypeSnapshot, body)
}

// Commit makes every entry appended so far durable: one write(2) of the
// buffer (and one fdatasync(2) at DurabilityFsync), then the Durable
// watermark and Head move. It first drains queued service records. After a
// failed write the writer refuses everything (fail closed): reopen the log,
// which truncates the partial write.
func (w *Writer) Commit() error {
	if w.err != nil {
		return w.err
	}
	if w.f == nil {
		return ErrClosed
	}
	w.drain()
	return w.flush()
}

func (w *Writer) flush() error {
	if len(w.buf) > 0 && w.mm != nil {
		// Into the kernel's page cache through the shared mapping: no system
		// call, and it survives a crash of the process like write(2) does.
		// The first frame header goes in last: a reader of the live segment
		// sees zeros (the end) there until every byte after it is in place
		// (x86 keeps stores in order; the fence orders them elsewhere).
		dst := w.mm[w.segBytes:]
		copy(dst[frameHeader:], w.buf[frameHeader:])
		fence.Add(1)
		copy(dst[:frameHeader], w.buf[:frameHeader])
		w.segBytes += int64(len(w.buf))
		w.buf = w.buf[:0]
	}
	if len(w.buf) > 0 {
		n, err := w.f.Write(w.buf)
		w.segBytes += int64(n)
		if err != nil {
			return w.fail(fmt.Errorf("audit: write segment: %w", err))
		}
		if w.cfg.Durability == DurabilityFsync {
			if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
				return w.fail(fmt.Errorf("audit: fdatasync segment: %w", err))
			}
		}
		w.buf = w.buf[:0]
	}
	if w.durable.Load() != w.next {
		w.publish()
	}
	for _, p := range w.waiting {
		close(p.done)
	}
	clear(w.waiting)
	w.waiting = w.waiting[:0]
	return nil
}

func (w *Writer) publish() {
	root, _ := w.tree.Root()
	w.head.Store(&TreeHead{Size: w.next, Root: root, Time: w.lastTime})
	w.durable.Store(w.next)
	if w.onDur != nil {
		w.onDur(w.next)
	}
}

// fail makes err sticky and fails every waiting record.
func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
		w.log.Error("audit: log write failed; refusing further records", "err", err)
	}
	for _, p := range w.waiting {
		p.err = w.err
		close(p.done)
	}
	w.waiting = w.waiting[:0]
	w.failInbox()
	return w.err
}

func (w *Writer) failInbox() {
	w.inbox.mu.Lock()
	q := w.inbox.q
	w.inbox.q = nil
	w.inbox.n.Store(0)
	w.inbox.mu.Unlock()
	for _, p := range q {
		p.err = w.err
		if p.err == nil {
			p.err = ErrClosed
		}
		close(p.done)
	}
}

// drain moves queued service records into the buffer without waiting for
// the inbox lock.
func (w *Writer) drain() {
	if w.inbox.n.Load() == 0 || !w.inbox.mu.TryLock() {
		return
	}
	q := w.inbox.q
	w.inbox.q = nil
	w.inbox.n.Store(0)
	w.inbox.mu.Unlock()
	for _, p := range q {
		t := max(w.cfg.Now().UnixNano(), w.lastTime)
		idx, err := w.AppendRecord(t, p.typ, p.body)
		if err != nil {
			p.err = err
			close(p.done)
			continue
		}
		p.idx = idx
		w.waiting = append(w.waiting, p)
	}
}

// enqueue queues a service record for the journaler.
func (w *Writer) enqueue(p *pending) error {
	w.inbox.mu.Lock()
	if w.inbox.wake == nil {
		w.inbox.mu.Unlock()
		return ErrClosed
	}
	w.inbox.q = append(w.inbox.q, p)
	w.inbox.n.Add(1)
	w.inbox.mu.Unlock()
	select {
	case w.inbox.wake <- struct{}{}:
	default:
	}
	return nil
}

// Close commits what is pending, saves the tree, and releases the log. Only
// the journaler goroutine calls it.
func (w *Writer) Close() error {
	if w.f == nil {
		return nil
	}
	err := w.Commit()
	w.inbox.mu.Lock()
	w.inbox.wake = nil
	w.inbox.mu.Unlock()
	if w.err == nil {
		w.err = ErrClosed
	}
	w.failInbox()
	if e := w.unmap(); e != nil && err == nil {
		err = e
	}
	if e := unix.Fdatasync(int(w.f.Fd())); e != nil && err == nil {
		err = fmt.Errorf("audit: sync segment: %w", e)
	}
	w.syncs.Wait()
	if e := writeTree(w.dir, w.tree); e != nil && err == nil {
		err = e
	}
	w.release()
	w.f = nil
	return err
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// fence is written between a flush's records and its first header.
var fence atomic.Uint32

// allZero reports whether the file's bytes [off, size) are all zero.
func allZero(path string, off, size int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for p := off; p < size; {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), size-p)], p)
		for _, c := range buf[:k] {
			if c != 0 {
				return false
			}
		}
		p += int64(k)
		if err != nil {
			return p >= size
		}
	}
	return true
}
