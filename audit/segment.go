package audit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// On-disk layout under the audit folder (docs/audit-format.md, "Storage"):
//
//	segments/<first index, 20 digits>.seg   append-only leaf frames
//	checkpoints                              append-only signed-note frames
//	tree                                     compact range at a size (a cache)
//	snapshots/                               engine snapshot files
//	index/                                   query index (see Index)
//	LOCK                                     held by the writing process
//
// A segment starts with a 16-byte header: the magic "TCAUDSEG" and the first
// leaf index (uint64, little-endian). Frames follow: uint32 leaf length,
// uint32 CRC-32C of the leaf, the leaf bytes (little-endian).

const (
	segMagic      = "TCAUDSEG"
	segHeaderSize = 16
	frameHeader   = 8
	segDir        = "segments"
	segExt        = ".seg"
	cpFile        = "checkpoints"
	treeFile      = "tree"
	lockFile      = "LOCK"
	// SnapshotDir is the folder, inside the audit folder, that snapshot
	// records' File paths point into.
	SnapshotDir = "snapshots"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped when stored bytes are damaged in a way that is not a
// torn tail: a bad checksum or length in the middle of a segment, a segment
// that does not start where the previous one ended, a leaf whose index does
// not match its position. Do not write to the log; run auditverify on it and
// restore from a replica or backup.
var ErrCorrupt = errors.New("audit: log corrupt")

// Entry is one record as stored: its leaf index, time, type and leaf bytes.
// From a Reader, Leaf is valid only until the callback returns.
type Entry struct {
	Index uint64
	Time  int64
	Type  string
	Leaf  []byte
}

func segName(first uint64) string { return fmt.Sprintf("%020d%s", first, segExt) }

// listSegments returns the first indexes of the segments in dir, in order.
func listSegments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(filepath.Join(dir, segDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit: list segments: %w", err)
	}
	var out []uint64
	for _, de := range des {
		n := de.Name()
		if !strings.HasSuffix(n, segExt) || len(n) != 20+len(segExt) {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSuffix(n, segExt), 10, 64)
		if err != nil {
			continue
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// appendFrame appends a frame holding leaf to dst.
func appendFrame(dst, leaf []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(leaf)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(leaf, castagnoli))
	return append(dst, leaf...)
}

// frameReader reads frames from one segment: through a buffered reader, or
// from mm, the whole file mapped (a full segment, which no writer changes
// any more), where the leaves it returns are slices of the mapping.
type frameReader struct {
	r   *bufio.Reader
	mm  []byte
	off int64 // offset of the next frame
	buf []byte
	hdr [frameHeader]byte
}

// nextMapped is next reading from the mapping.
func (fr *frameReader) nextMapped() ([]byte, error) {
	rest := fr.mm[fr.off:]
	switch {
	case len(rest) == 0:
		return nil, io.EOF
	case len(rest) < frameHeader:
		return nil, errTorn
	}
	size := binary.LittleEndian.Uint32(rest)
	sum := binary.LittleEndian.Uint32(rest[4:])
	if size == 0 && sum == 0 {
		return nil, fmt.Errorf("%w: frame at offset %d is zero", errEnd, fr.off)
	}
	if size == 0 || size > MaxLeafSize {
		return nil, fmt.Errorf("%w: frame at offset %d has length %d", ErrCorrupt, fr.off, size)
	}
	if len(rest)-frameHeader < int(size) {
		return nil, errTorn
	}
	leaf := rest[frameHeader : frameHeader+int(size) : frameHeader+int(size)]
	if crc32.Checksum(leaf, castagnoli) != sum {
		return nil, fmt.Errorf("%w: frame at offset %d fails its checksum", ErrCorrupt, fr.off)
	}
	fr.off += frameHeader + int64(size)
	return leaf, nil
}

// mapFull maps a full segment for reading, or returns nil (then it is read
// through a buffer). Only segments before the newest are mapped: a writer
// never changes them again, so the mapping cannot lose its pages under the
// reader (the newest may be truncated by a writer, which would fault).
func mapFull(f *os.File) []byte {
	st, err := f.Stat()
	if err != nil || st.Size() <= segHeaderSize || st.Size() > 1<<40 {
		return nil
	}
	mm, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	_ = unix.Madvise(mm, unix.MADV_SEQUENTIAL)
	return mm
}

// errShortHeader: a segment shorter than its header.
var errShortHeader = errors.New("short header")

// errTorn reports an incomplete frame at the end of the data.
var errTorn = errors.New("incomplete frame")

// next returns the next leaf, io.EOF at a clean end, errTorn for an
// incomplete last frame, or an error wrapping ErrCorrupt.
func (fr *frameReader) next() ([]byte, error) {
	if fr.mm != nil {
		return fr.nextMapped()
	}
	h := fr.hdr[:]
	n, err := io.ReadFull(fr.r, h)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err == io.ErrUnexpectedEOF {
		return nil, errTorn
	}
	if err != nil {
		return nil, err
	}
	_ = n
	size := binary.LittleEndian.Uint32(h[:4])
	sum := binary.LittleEndian.Uint32(h[4:])
	if size == 0 && sum == 0 {
		// A zero header: in the newest segment, the end of what is written
		// (a mapped segment is zero beyond it); anywhere else, damage.
		return nil, fmt.Errorf("%w: frame at offset %d is zero", errEnd, fr.off)
	}
	if size == 0 || size > MaxLeafSize {
		// A zero or absurd length at the tail is a torn header (for
		// example a zero-filled block); the caller decides by whether
		// anything follows.
		return nil, fmt.Errorf("%w: frame at offset %d has length %d", ErrCorrupt, fr.off, size)
	}
	if cap(fr.buf) < int(size) {
		fr.buf = make([]byte, size, max(int(size), 4096))
	}
	leaf := fr.buf[:size]
	if _, err := io.ReadFull(fr.r, leaf); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil, errTorn
		}
		return nil, err
	}
	if crc32.Checksum(leaf, castagnoli) != sum {
		return nil, fmt.Errorf("%w: frame at offset %d fails its checksum", ErrCorrupt, fr.off)
	}
	fr.off += frameHeader + int64(size)
	return leaf, nil
}

// errEnd is a zero frame header (see frameReader.next); it wraps ErrCorrupt,
// which it is outside the newest segment.
var errEnd = fmt.Errorf("%w: zero frame", ErrCorrupt)

// openSegment opens a segment and checks its header.
func openSegment(path string, first uint64) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	var h [segHeaderSize]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: segment %s: %w", ErrCorrupt, filepath.Base(path), errShortHeader)
	}
	if string(h[:8]) != segMagic || binary.LittleEndian.Uint64(h[8:]) != first {
		f.Close()
		return nil, fmt.Errorf("%w: segment %s: bad header", ErrCorrupt, filepath.Base(path))
	}
	return f, nil
}

func segHeader(first uint64) []byte {
	b := append(make([]byte, 0, segHeaderSize), segMagic...)
	return binary.LittleEndian.AppendUint64(b, first)
}

// Reader reads a log folder's entries in order. It never writes: an
// incomplete frame at the very end (a write in progress, or a torn tail a
// writer has not yet truncated) ends the log for it. Safe for use by one
// goroutine; open several for parallel reads. A Reader may read a log that a
// Writer in another process is appending to.
type Reader struct {
	dir   string
	types map[string]string
}

// OpenReader returns a reader of the audit folder dir.
func OpenReader(dir string) (*Reader, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w; give the audit folder (<data-dir>/audit)", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("audit: %s is not a folder; give the audit folder (<data-dir>/audit)", dir)
	}
	return &Reader{dir: dir, types: map[string]string{}}, nil
}

// Dir returns the audit folder.
func (r *Reader) Dir() string { return r.dir }

// intern returns a string for a type without allocating for known types.
func (r *Reader) intern(b []byte) string {
	if s, ok := r.types[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(r.types) < 4096 {
		r.types[s] = s
	}
	return s
}

// Read calls fn for every entry with from <= Index < to, in order (to = 0
// reads to the end). It fails with ErrCorrupt when a frame is damaged before
// the end, a segment is missing (a gap), or a leaf's index does not match its
// position; and stops at the first error fn returns.
func (r *Reader) Read(from, to uint64, fn func(*Entry) error) error {
	return r.read(from, to, true, func(e *Entry, _ *LeafHeader, _ uint64, _ int64) error { return fn(e) })
}

// read is Read that also passes each entry's segment and frame offset.
// read calls fn for the entries [from, to) with their parsed headers; with
// typed false it leaves Entry.Type empty (callers that use the header's
// Type save a map lookup per leaf).
func (r *Reader) read(from, to uint64, typed bool, fn func(e *Entry, h *LeafHeader, seg uint64, off int64) error) error {
	segs, err := listSegments(r.dir)
	if err != nil {
		return err
	}
	if len(segs) == 0 {
		if from == 0 {
			return nil
		}
		return fmt.Errorf("audit: no segments in %s", r.dir)
	}
	if segs[0] != 0 {
		return fmt.Errorf("%w: first segment starts at index %d, not 0", ErrCorrupt, segs[0])
	}
	start := 0
	for i, s := range segs {
		if s <= from {
			start = i
		}
	}
	next := segs[start]
	e := Entry{}
	var h LeafHeader
	for i := start; i < len(segs); i++ {
		if segs[i] != next {
			return fmt.Errorf("%w: segment %s starts at index %d but the previous one ends at %d (records missing)", ErrCorrupt, segName(segs[i]), segs[i], next)
		}
		last := i == len(segs)-1
		f, err := openSegment(filepath.Join(r.dir, segDir, segName(segs[i])), segs[i])
		if err != nil {
			if last && errors.Is(err, errShortHeader) {
				return nil // the newest segment is being created
			}
			return err
		}
		fr := frameReader{off: segHeaderSize}
		if !last {
			fr.mm = mapFull(f)
		}
		if fr.mm == nil {
			fr.r = bufio.NewReaderSize(f, 1<<20)
		}
		closeSeg := func() {
			if fr.mm != nil {
				_ = unix.Munmap(fr.mm)
				fr.mm = nil
			}
			f.Close()
		}
		for {
			if to != 0 && next >= to {
				closeSeg()
				return nil
			}
			off := fr.off
			leaf, err := fr.next()
			if err == io.EOF {
				break
			}
			if err == errTorn && last {
				break // a write in progress or a torn tail
			}
			if err == errTorn {
				closeSeg()
				return fmt.Errorf("%w: segment %s ends in an incomplete frame at offset %d", ErrCorrupt, segName(segs[i]), fr.off)
			}
			if last && errors.Is(err, errEnd) {
				break // zeros: the end of the records written so far (a mapped segment)
			}
			if err != nil {
				closeSeg()
				if last && errors.Is(err, ErrCorrupt) && r.tornTail(f, fr.off) {
					break
				}
				return fmt.Errorf("at index %d: %w", next, err)
			}
			h, err = ParseLeaf(leaf)
			if err != nil {
				closeSeg()
				return fmt.Errorf("%w: index %d: %w", ErrCorrupt, next, err)
			}
			if h.Index != next {
				closeSeg()
				return fmt.Errorf("%w: position %d holds leaf index %d", ErrCorrupt, next, h.Index)
			}
			if next >= from {
				e.Index, e.Time, e.Leaf = h.Index, h.Time, leaf
				if typed {
					e.Type = r.intern(h.Type)
				}
				if err := fn(&e, &h, segs[i], off); err != nil {
					closeSeg()
					return err
				}
			}
			next++
		}
		closeSeg()
	}
	return nil
}

// tornTail reports whether a damaged frame at off is the last thing in f: a
// frame whose length or checksum is wrong and that reaches the end of the
// file is a torn write, not corruption followed by good records.
func (r *Reader) tornTail(f *os.File, off int64) bool {
	st, err := os.Stat(f.Name())
	if err != nil {
		return false
	}
	g, err := os.Open(f.Name())
	if err != nil {
		return false
	}
	defer g.Close()
	return frameReachesEnd(g, off, st.Size())
}

// frameReachesEnd reports whether the (damaged) frame at off, by its stated
// length, extends to or past size — or its header is unreadable garbage
// with nothing but zeros after it.
func frameReachesEnd(f io.ReaderAt, off, size int64) bool {
	var h [frameHeader]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return true
	}
	n := int64(binary.LittleEndian.Uint32(h[:4]))
	if n > 0 && n <= MaxLeafSize && off+frameHeader+n >= size {
		return true
	}
	// All zeros to the end: the file was extended but never written.
	buf := make([]byte, 64<<10)
	for p := off; p < size; {
		k, err := f.ReadAt(buf, p)
		for _, c := range buf[:k] {
			if c != 0 {
				return false
			}
		}
		p += int64(k)
		if err != nil {
			break
		}
	}
	return true
}

// Size returns the number of complete entries in the log.
func (r *Reader) Size() (uint64, error) {
	segs, err := listSegments(r.dir)
	if err != nil || len(segs) == 0 {
		return 0, err
	}
	last := segs[len(segs)-1]
	n := last
	err = r.Read(last, 0, func(*Entry) error { n++; return nil })
	return n, err
}

// ReadAt returns the leaf of entry idx stored at off in segment seg (as
// recorded by the index), checking its checksum and index.
func (r *Reader) readAt(seg uint64, off int64, idx uint64, buf []byte) ([]byte, error) {
	f, err := os.Open(filepath.Join(r.dir, segDir, segName(seg)))
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	var h [frameHeader]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return nil, fmt.Errorf("%w: index points past the log at %d: %w", ErrCorrupt, idx, err)
	}
	n := binary.LittleEndian.Uint32(h[:4])
	if n == 0 || n > MaxLeafSize {
		return nil, fmt.Errorf("%w: bad frame for entry %d", ErrCorrupt, idx)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := f.ReadAt(buf, off+frameHeader); err != nil {
		return nil, fmt.Errorf("%w: entry %d: %w", ErrCorrupt, idx, err)
	}
	if crc32.Checksum(buf, castagnoli) != binary.LittleEndian.Uint32(h[4:]) {
		return nil, fmt.Errorf("%w: entry %d fails its checksum", ErrCorrupt, idx)
	}
	lh, err := ParseLeaf(buf)
	if err != nil || lh.Index != idx {
		return nil, fmt.Errorf("%w: entry %d is not where the index says", ErrCorrupt, idx)
	}
	return buf, nil
}
