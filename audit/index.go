package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/tradecore/tradecore/core"
)

// The query index lives in <audit>/index/ (docs/audit-format.md, "Index"):
//
//	entries     16 bytes per leaf: time (int64) and the leaf's segment-relative frame offset (int64), big-endian
//	runs/*.run  sorted postings, 16 bytes each: key (uint64) then leaf index (uint64), big-endian
//	state.json  {"indexed": N, "runs": [...]}, replaced atomically last
//	LOCK        held while updating
//
// A key is kind<<56 | id, kinds KeyAccount, KeyOrder and KeyInstrument.
// Leaf times never go backwards, so a time range is a binary search over
// entries; a key lookup is a binary search in each run. The index is derived
// data: delete the folder and Update rebuilds it.

// Key kinds of the index.
const (
	KeyAccount    = 1 // acct and contra_acct of commands and events; "acct" or "account" of service records
	KeyOrder      = 2 // order_id and contra_order_id of events
	KeyInstrument = 3 // inst
	keyMask       = 1<<56 - 1
	idxDir        = "index"
	maxRuns       = 8
)

// Index answers queries over a log folder.
type Index struct {
	dir string // audit folder
	r   *Reader
}

type indexState struct {
	Indexed     uint64   `json:"indexed"`
	Runs        []string `json:"runs"`
	Instruments string   `json:"instruments"` // body of the last "audit.instruments" record
}

// OpenIndex returns the index of the audit folder dir (it may not exist
// yet; Update builds it).
func OpenIndex(dir string) (*Index, error) {
	r, err := OpenReader(dir)
	if err != nil {
		return nil, err
	}
	return &Index{dir: dir, r: r}, nil
}

func (ix *Index) path(p ...string) string {
	return filepath.Join(append([]string{ix.dir, idxDir}, p...)...)
}

func (ix *Index) state() (indexState, error) {
	var st indexState
	b, err := os.ReadFile(ix.path("state.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("audit: index: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%w: index state: %w; delete %s to rebuild it", ErrCorrupt, err, ix.path())
	}
	return st, nil
}

// Update indexes the entries appended since the last update. It takes the
// index lock; a concurrent Update in another process waits for it.
func (ix *Index) Update(ctx context.Context) (uint64, error) {
	if err := os.MkdirAll(ix.path("runs"), 0o700); err != nil {
		return 0, fmt.Errorf("audit: index: %w", err)
	}
	lk, err := os.OpenFile(ix.path("LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("audit: index lock: %w", err)
	}
	defer lk.Close()
	if err := unix.Flock(int(lk.Fd()), unix.LOCK_EX); err != nil {
		return 0, fmt.Errorf("audit: index lock: %w", err)
	}
	defer unix.Flock(int(lk.Fd()), unix.LOCK_UN)
	st, err := ix.state()
	if err != nil {
		return 0, err
	}
	ef, err := os.OpenFile(ix.path("entries"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("audit: index: %w", err)
	}
	defer ef.Close()
	// Drop what a crashed update left past the recorded state.
	if err := ef.Truncate(int64(st.Indexed) * 16); err != nil {
		return 0, fmt.Errorf("audit: index: %w", err)
	}
	if _, err := ef.Seek(0, io.SeekEnd); err != nil {
		return 0, err
	}
	ew := bufio.NewWriterSize(ef, 1<<20)
	var posts []uint64 // key, index pairs
	var cmd core.Command
	var ev core.Event
	scales := Scales{}
	if st.Indexed > 0 {
		// Scales in force at the resume point.
		if err := ix.r.Read(0, st.Indexed, func(e *Entry) error {
			if e.Type == TypeInstruments {
				h, _ := ParseLeaf(e.Leaf)
				if sc, err := parseInstruments(h.Body); err == nil {
					scales = sc
				}
			}
			return nil
		}); err != nil {
			return 0, err
		}
	}
	n := st.Indexed
	var rec [16]byte
	add := func(kind, id uint64, idx uint64) {
		if id != 0 {
			posts = append(posts, kind<<56|id&keyMask, idx)
		}
	}
	err = ix.r.read(st.Indexed, 0, true, func(e *Entry, _ *LeafHeader, _ uint64, off int64) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		binary.BigEndian.PutUint64(rec[:], uint64(e.Time))
		binary.BigEndian.PutUint64(rec[8:], uint64(off))
		ew.Write(rec[:])
		switch {
		case strings.HasPrefix(e.Type, "cmd."):
			if _, err := DecodeCommand(e.Leaf, &cmd, scales); err == nil {
				add(KeyAccount, uint64(cmd.Account), e.Index)
				add(KeyInstrument, uint64(cmd.Instrument), e.Index)
			}
		case strings.HasPrefix(e.Type, "event."):
			if _, err := DecodeEvent(e.Leaf, &ev, scales); err == nil {
				add(KeyAccount, uint64(ev.Account), e.Index)
				if ev.ContraAccount != ev.Account {
					add(KeyAccount, uint64(ev.ContraAccount), e.Index)
				}
				add(KeyOrder, ev.OrderID, e.Index)
				add(KeyOrder, ev.ContraOrderID, e.Index)
				add(KeyInstrument, uint64(ev.Instrument), e.Index)
			}
		case e.Type == TypeInstruments:
			h, _ := ParseLeaf(e.Leaf)
			if sc, err := parseInstruments(h.Body); err == nil {
				scales = sc
				st.Instruments = string(h.Body)
			}
		default:
			h, _ := ParseLeaf(e.Leaf)
			var ids struct {
				Acct    uint64 `json:"acct"`
				Account uint64 `json:"account"`
				Inst    uint64 `json:"inst"`
			}
			if json.Unmarshal(h.Body, &ids) == nil {
				add(KeyAccount, ids.Acct, e.Index)
				add(KeyAccount, ids.Account, e.Index)
				add(KeyInstrument, ids.Inst, e.Index)
			}
		}
		n = e.Index + 1
		return nil
	})
	if err != nil {
		return 0, err
	}
	if err := ew.Flush(); err != nil {
		return 0, fmt.Errorf("audit: index: %w", err)
	}
	if err := ef.Sync(); err != nil {
		return 0, fmt.Errorf("audit: index: %w", err)
	}
	if n == st.Indexed {
		return n, nil
	}
	if len(posts) > 0 {
		name := fmt.Sprintf("%020d.run", n)
		if err := writeRun(ix.path("runs", name), sortPairs(posts)); err != nil {
			return 0, err
		}
		st.Runs = append(st.Runs, name)
	}
	old := st.Runs
	if len(st.Runs) > maxRuns {
		name := fmt.Sprintf("%020d.merged.run", n)
		if err := ix.merge(st.Runs, name); err != nil {
			return 0, err
		}
		st.Runs = []string{name}
	}
	st.Indexed = n
	b, _ := json.Marshal(st)
	if err := writeFileAtomic(ix.path("state.json"), b); err != nil {
		return 0, err
	}
	if len(st.Runs) == 1 && len(old) > 1 {
		for _, o := range old {
			os.Remove(ix.path("runs", o))
		}
	}
	return n, nil
}

// sortPairs sorts (key, index) pairs and returns them as 16-byte records.
func sortPairs(p []uint64) []byte {
	n := len(p) / 2
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		ka, kb := p[2*idx[a]], p[2*idx[b]]
		if ka != kb {
			return ka < kb
		}
		return p[2*idx[a]+1] < p[2*idx[b]+1]
	})
	out := make([]byte, 0, 16*n)
	for _, i := range idx {
		out = binary.BigEndian.AppendUint64(out, p[2*i])
		out = binary.BigEndian.AppendUint64(out, p[2*i+1])
	}
	return out
}

func writeRun(path string, b []byte) error { return writeFileAtomic(path, b) }

func (ix *Index) merge(runs []string, name string) error {
	var all []uint64
	for _, r := range runs {
		b, err := os.ReadFile(ix.path("runs", r))
		if err != nil {
			return fmt.Errorf("audit: index: %w", err)
		}
		for i := 0; i+16 <= len(b); i += 16 {
			all = append(all, binary.BigEndian.Uint64(b[i:]), binary.BigEndian.Uint64(b[i+8:]))
		}
	}
	return writeRun(ix.path("runs", name), sortPairs(all))
}

// Query selects entries. Zero fields do not filter.
type Query struct {
	Account    uint32
	Order      uint64 // engine order id
	Instrument uint32
	From, To   int64  // time range [From, To) in Unix ns; To 0 = no end
	TypePrefix string // e.g. "event." or "cmd.new"
	Limit      int    // default 1000
}

// Search returns the matching entries in log order (Leaf copied). It
// updates the index first when it can write to it.
func (ix *Index) Search(ctx context.Context, q Query) ([]Entry, error) {
	if _, err := ix.Update(ctx); err != nil && !errors.Is(err, fs.ErrPermission) {
		return nil, err
	}
	st, err := ix.state()
	if err != nil {
		return nil, err
	}
	if q.Limit <= 0 {
		q.Limit = 1000
	}
	ef, err := os.Open(ix.path("entries"))
	if err != nil {
		return nil, fmt.Errorf("audit: index: %w", err)
	}
	defer ef.Close()
	n := st.Indexed
	timeAt := func(i uint64) int64 {
		var b [8]byte
		ef.ReadAt(b[:], int64(i)*16)
		return int64(binary.BigEndian.Uint64(b[:]))
	}
	lo := uint64(sort.Search(int(n), func(i int) bool { return timeAt(uint64(i)) >= q.From }))
	hi := n
	if q.To != 0 {
		hi = uint64(sort.Search(int(n), func(i int) bool { return timeAt(uint64(i)) >= q.To }))
	}
	var cand []uint64
	keys := []uint64{}
	if q.Account != 0 {
		keys = append(keys, KeyAccount<<56|uint64(q.Account))
	}
	if q.Order != 0 {
		keys = append(keys, KeyOrder<<56|q.Order&keyMask)
	}
	if q.Instrument != 0 {
		keys = append(keys, KeyInstrument<<56|uint64(q.Instrument))
	}
	if len(keys) == 0 {
		for i := lo; i < hi && len(cand) < q.Limit*4+64; i++ {
			cand = append(cand, i)
		}
	} else {
		for k, key := range keys {
			got, err := ix.postings(st.Runs, key, lo, hi)
			if err != nil {
				return nil, err
			}
			if k == 0 {
				cand = got
			} else {
				cand = intersect(cand, got)
			}
		}
	}
	segs, err := listSegments(ix.dir)
	if err != nil {
		return nil, err
	}
	var out []Entry
	var buf []byte
	for _, i := range cand {
		if len(out) >= q.Limit {
			break
		}
		var b [16]byte
		if _, err := ef.ReadAt(b[:], int64(i)*16); err != nil {
			return nil, fmt.Errorf("audit: index: %w", err)
		}
		off := int64(binary.BigEndian.Uint64(b[8:]))
		k := sort.Search(len(segs), func(j int) bool { return segs[j] > i }) - 1
		if k < 0 {
			return nil, fmt.Errorf("%w: no segment holds entry %d", ErrCorrupt, i)
		}
		leaf, err := ix.r.readAt(segs[k], off, i, buf)
		if err != nil {
			return nil, err
		}
		h, _ := ParseLeaf(leaf)
		if q.TypePrefix != "" && !strings.HasPrefix(string(h.Type), q.TypePrefix) {
			continue
		}
		out = append(out, Entry{Index: i, Time: h.Time, Type: string(h.Type), Leaf: bytes.Clone(leaf)})
	}
	return out, nil
}

// Instruments returns the instrument table in force at the end of the
// indexed log (symbols, tick and lot sizes).
func (ix *Index) Instruments(ctx context.Context) ([]InstrumentScale, error) {
	if _, err := ix.Update(ctx); err != nil && !errors.Is(err, fs.ErrPermission) {
		return nil, err
	}
	st, err := ix.state()
	if err != nil || st.Instruments == "" {
		return nil, err
	}
	var ib InstrumentsBody
	if err := json.Unmarshal([]byte(st.Instruments), &ib); err != nil {
		return nil, fmt.Errorf("%w: index instruments: %w", ErrCorrupt, err)
	}
	return ib.Instruments, nil
}

// TimeRange returns the leaf range [lo, hi) of entries timed in [from, to).
func (ix *Index) TimeRange(ctx context.Context, from, to int64) (uint64, uint64, error) {
	if _, err := ix.Update(ctx); err != nil && !errors.Is(err, fs.ErrPermission) {
		return 0, 0, err
	}
	st, err := ix.state()
	if err != nil {
		return 0, 0, err
	}
	ef, err := os.Open(ix.path("entries"))
	if err != nil {
		return 0, 0, fmt.Errorf("audit: index: %w", err)
	}
	defer ef.Close()
	timeAt := func(i int) int64 {
		var b [8]byte
		ef.ReadAt(b[:], int64(i)*16)
		return int64(binary.BigEndian.Uint64(b[:]))
	}
	n := int(st.Indexed)
	lo := sort.Search(n, func(i int) bool { return timeAt(i) >= from })
	hi := sort.Search(n, func(i int) bool { return timeAt(i) >= to })
	return uint64(lo), uint64(hi), nil
}

// postings returns the sorted leaf indexes of key within [lo, hi).
func (ix *Index) postings(runs []string, key, lo, hi uint64) ([]uint64, error) {
	var out []uint64
	for _, name := range runs {
		f, err := os.Open(ix.path("runs", name))
		if err != nil {
			return nil, fmt.Errorf("audit: index: %w", err)
		}
		st, _ := f.Stat()
		n := int(st.Size() / 16)
		at := func(i int) (uint64, uint64) {
			var b [16]byte
			f.ReadAt(b[:], int64(i)*16)
			return binary.BigEndian.Uint64(b[:]), binary.BigEndian.Uint64(b[8:])
		}
		i := sort.Search(n, func(i int) bool {
			k, x := at(i)
			return k > key || (k == key && x >= lo)
		})
		r := bufio.NewReaderSize(io.NewSectionReader(f, int64(i)*16, st.Size()-int64(i)*16), 64<<10)
		var b [16]byte
		for {
			if _, err := io.ReadFull(r, b[:]); err != nil {
				break
			}
			k, x := binary.BigEndian.Uint64(b[:]), binary.BigEndian.Uint64(b[8:])
			if k != key || x >= hi {
				break
			}
			out = append(out, x)
		}
		f.Close()
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func intersect(a, b []uint64) []uint64 {
	var out []uint64
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] == b[j]:
			out = append(out, a[i])
			i++
			j++
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return out
}
