package core

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"unsafe"
)

// Snapshots: the engine's whole state, written so that an engine built from
// the same Config and loaded with it is bit for bit the engine that wrote it
// (same StateHash, same events for the same commands). Recovery loads the
// latest snapshot and replays only the commands after it (docs/journal.md).
//
// The state is every field of the Engine reachable without a pointer: the
// order slots, books, ladders, account directory, client references, risk
// state and counters. It is found by walking the Engine's type, so a field
// added later is included without a change here; fields that are
// configuration or per-command scratch are skipped by name (snapshotSkip),
// and a field the walk cannot copy (a pointer, a map, an interface) fails
// the snapshot test. The format:
//
//	magic "TCSNAP01" | layout SHA-256 (32) | config SHA-256 (32) | blocks | footer SHA-256 (32)
//
// Each block is a length-prefixed run of the bytes of one flat value or
// slice, in walk order. A snapshot whose layout or configuration differs
// from the reading engine's is refused (ErrSnapshot): recover by full replay.

// ErrSnapshot is returned for a snapshot this engine cannot load (damaged,
// written by another build, or for another configuration). Recover by
// replaying the journal from the start.
var ErrSnapshot = errors.New("core: snapshot unusable")

const snapMagic = "TCSNAP01"

// snapshotSkip names the Engine fields a snapshot leaves out: configuration
// (rebuilt from Config), the event buffer and the sinks (the loop's), the
// per-command scratch set at the start of every Apply, and the election
// queue, empty (-1, as New leaves it) between commands.
var snapshotSkip = map[string]bool{
	"cfg": true, "buf": true, "n": true, "sink": true, "commit": true, "claim": true,
	"seq": true, "time": true, "tag": true, "inst": true, "op": true, "cause": true, "electHead": true, "electTail": true,
}

// WriteSnapshot writes the engine's state to w.
func (e *Engine) WriteSnapshot(w io.Writer) error {
	layout, err := snapshotLayout()
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	h := sha256.New()
	mw := io.MultiWriter(bw, h)
	cfg := e.configHash()
	if _, err := mw.Write([]byte(snapMagic)); err != nil {
		return err
	}
	mw.Write(layout[:])
	mw.Write(cfg[:])
	var werr error
	walkState(reflect.ValueOf(e).Elem(), func(b []byte) {
		if werr != nil {
			return
		}
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
		if _, werr = mw.Write(n[:]); werr == nil {
			_, werr = mw.Write(b)
		}
	})
	if werr != nil {
		return fmt.Errorf("core: write snapshot: %w", werr)
	}
	if _, err := bw.Write(h.Sum(nil)); err != nil {
		return fmt.Errorf("core: write snapshot: %w", err)
	}
	return bw.Flush()
}

// ReadSnapshot replaces the state of e, an engine just built by New (or
// NewLoop) from the Config the snapshot's engine had, with the snapshot's.
func (e *Engine) ReadSnapshot(r io.Reader) error {
	layout, err := snapshotLayout()
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(r, 1<<20)
	h := sha256.New()
	tr := io.TeeReader(br, h)
	var head [8 + 32 + 32]byte
	if _, err := io.ReadFull(tr, head[:]); err != nil {
		return fmt.Errorf("%w: header: %w", ErrSnapshot, err)
	}
	cfg := e.configHash()
	switch {
	case string(head[:8]) != snapMagic:
		return fmt.Errorf("%w: not a tradecore engine snapshot", ErrSnapshot)
	case [32]byte(head[8:40]) != layout:
		return fmt.Errorf("%w: written by a build with another engine layout", ErrSnapshot)
	case [32]byte(head[40:72]) != cfg:
		return fmt.Errorf("%w: written for another engine configuration", ErrSnapshot)
	}
	// Read into scratch first: the engine changes only once the whole
	// snapshot has been read and its checksum verified.
	var blocks [][]byte
	var rerr error
	walkState(reflect.ValueOf(e).Elem(), func(b []byte) {
		if rerr != nil {
			return
		}
		var n [8]byte
		if _, rerr = io.ReadFull(tr, n[:]); rerr != nil {
			return
		}
		if binary.LittleEndian.Uint64(n[:]) != uint64(len(b)) {
			rerr = fmt.Errorf("%w: a block of %d bytes where this engine has %d", ErrSnapshot, binary.LittleEndian.Uint64(n[:]), len(b))
			return
		}
		blk := make([]byte, len(b))
		if _, rerr = io.ReadFull(tr, blk); rerr == nil {
			blocks = append(blocks, blk)
		}
	})
	if rerr != nil {
		if !errors.Is(rerr, ErrSnapshot) {
			rerr = fmt.Errorf("%w: %w", ErrSnapshot, rerr)
		}
		return rerr
	}
	sum := h.Sum(nil)
	var foot [32]byte
	if _, err := io.ReadFull(br, foot[:]); err != nil || string(foot[:]) != string(sum) {
		return fmt.Errorf("%w: checksum mismatch (damaged or truncated)", ErrSnapshot)
	}
	i := 0
	walkState(reflect.ValueOf(e).Elem(), func(b []byte) {
		copy(b, blocks[i])
		i++
	})
	return nil
}

// walkState calls fn with the bytes of every flat value of the engine's
// state, in a fixed order; fn may read or overwrite them.
func walkState(v reflect.Value, fn func([]byte)) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if snapshotSkip[f.Name] && t == reflect.TypeFor[Engine]() {
			continue
		}
		fv := reflect.NewAt(f.Type, unsafe.Pointer(v.Field(i).UnsafeAddr())).Elem()
		walkValue(fv, fn)
	}
}

func walkValue(v reflect.Value, fn func([]byte)) {
	t := v.Type()
	switch {
	case flat(t):
		fn(unsafe.Slice((*byte)(unsafe.Pointer(v.UnsafeAddr())), t.Size()))
	case t.Kind() == reflect.Slice && flat(t.Elem()):
		if v.Len() > 0 {
			fn(unsafe.Slice((*byte)(v.UnsafePointer()), uintptr(v.Len())*t.Elem().Size()))
		}
	case t.Kind() == reflect.Slice:
		for j := range v.Len() {
			walkValue(v.Index(j), fn)
		}
	case t.Kind() == reflect.Struct:
		for j := range t.NumField() {
			f := t.Field(j)
			if f.Type.Kind() == reflect.String || f.Type.Kind() == reflect.Func {
				continue // configuration (Instrument.Symbol), or behaviour
			}
			walkValue(reflect.NewAt(f.Type, unsafe.Pointer(v.Field(j).UnsafeAddr())).Elem(), fn)
		}
	case t.Kind() == reflect.Array:
		for j := range v.Len() {
			walkValue(v.Index(j), fn)
		}
	case t.Kind() == reflect.String || t.Kind() == reflect.Func:
	default:
		panic(fmt.Sprintf("core: snapshot: cannot copy a %s; keep engine state in flat values and slices", t))
	}
}

// flat reports whether values of t hold no pointer (they copy as bytes).
func flat(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64:
		return true
	case reflect.Array:
		return flat(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if !flat(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// snapshotLayout is a hash of the walk's shape: field names, types, sizes
// and offsets of everything the snapshot copies.
func snapshotLayout() (l [32]byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrSnapshot, r)
		}
	}()
	h := sha256.New()
	var describe func(t reflect.Type, depth int)
	describe = func(t reflect.Type, depth int) {
		fmt.Fprintf(h, "%s/%d/%d;", t.String(), t.Size(), t.Kind())
		if depth > 8 {
			return
		}
		switch t.Kind() {
		case reflect.Struct:
			for i := range t.NumField() {
				f := t.Field(i)
				fmt.Fprintf(h, "%s@%d:", f.Name, f.Offset)
				describe(f.Type, depth+1)
			}
		case reflect.Slice, reflect.Array:
			describe(t.Elem(), depth+1)
		}
	}
	describe(reflect.TypeFor[Engine](), 0)
	h.Sum(l[:0])
	return l, nil
}

// configHash identifies the configuration the engine was built from.
func (e *Engine) configHash() [32]byte {
	return sha256.Sum256(fmt.Appendf(nil, "%#v", e.cfg))
}
