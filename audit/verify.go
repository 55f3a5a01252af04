package audit

import (
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

	"github.com/tradecore/tradecore/audit/merkle"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/hsm/manifest"
)

// VerifyOptions says what to verify a log against.
type VerifyOptions struct {
	// Manifest is the key manifest (JSON) and PinnedFirstKey the id of its
	// first key, obtained out of band. Both are required.
	Manifest       []byte
	PinnedFirstKey string
	// Origin every checkpoint must carry; default the manifest's name.
	Origin string
	// Checkpoints are further signed checkpoints the auditor holds (for
	// example from a daily report): each must verify and match the log, so
	// a log cut short together with its own checkpoints is still caught.
	Checkpoints [][]byte
	// RequireSnapshots fails verification when a snapshot file a record
	// references is missing (by default a missing one is only counted).
	RequireSnapshots bool
	// KeyRecordGrace is how long after a manifest revocation the log may go
	// on without recording it (default DefaultKeyRecordGrace).
	KeyRecordGrace time.Duration
	// Progress, when set, is called now and then with the leaves verified.
	Progress func(done uint64)
}

// VerifyResult is what a successful verification found.
type VerifyResult struct {
	From             uint64          `json:"from"`   // first leaf verified
	Leaves           uint64          `json:"leaves"` // leaves verified
	Commands         uint64          `json:"commands"`
	Events           uint64          `json:"events"`
	Records          uint64          `json:"records"` // other records
	Checkpoints      int             `json:"checkpoints"`
	Last             *CheckpointView `json:"last_checkpoint,omitempty"`
	Unsigned         uint64          `json:"unsigned"` // leaves after the last checkpoint: not covered by a signature
	SnapshotsChecked int             `json:"snapshots_checked"`
	SnapshotsMissing int             `json:"snapshots_missing"`
	Keys             []string        `json:"keys"` // manifest keys that signed checkpoints
	// KeyRecords counts the keys.* records, which match the manifest's
	// entries; UnrecordedKeyEntries are the manifest entries the log does
	// not record (made after the log's end, or while no daemon recorded
	// them; docs/auditverify.md).
	KeyRecords           uint64   `json:"key_records"`
	UnrecordedKeyEntries []uint64 `json:"unrecorded_key_entries"`
	FirstTime            int64    `json:"first_time"`
	LastTime             int64    `json:"last_time"`
}

// CheckpointView is a checkpoint for reports and JSON output.
type CheckpointView struct {
	Size uint64 `json:"size"`
	Root string `json:"root"` // base64
	Time int64  `json:"time"`
}

func viewOf(c Checkpoint) *CheckpointView {
	return &CheckpointView{Size: c.Size, Root: b64(c.Root[:]), Time: c.Time}
}

// ErrVerify is wrapped by every *VerifyError.
var ErrVerify = errors.New("audit: verification failed")

// VerifyError is a verification failure: the first bad leaf index (or -1),
// the checkpoint concerned (1-based in storage order, or 0) and why.
type VerifyError struct {
	Index      int64
	Checkpoint int
	Reason     string
	Err        error
}

func (e *VerifyError) Error() string {
	var where string
	switch {
	case e.Index >= 0 && e.Checkpoint > 0:
		where = fmt.Sprintf("leaf %d, checkpoint %d: ", e.Index, e.Checkpoint)
	case e.Index >= 0:
		where = fmt.Sprintf("leaf %d: ", e.Index)
	case e.Checkpoint > 0:
		where = fmt.Sprintf("checkpoint %d: ", e.Checkpoint)
	}
	s := "audit: verification failed: " + where + e.Reason
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *VerifyError) Unwrap() error { return e.Err }

// Is matches ErrVerify.
func (e *VerifyError) Is(target error) bool { return target == ErrVerify }

// VerifyDir verifies the audit folder dir. It returns a *VerifyError (which
// matches ErrVerify) when the log fails verification, and other errors for
// bad options or unreadable files.
func VerifyDir(ctx context.Context, dir string, opts VerifyOptions) (*VerifyResult, error) {
	r, err := OpenReader(dir)
	if err != nil {
		return nil, err
	}
	notes, err := ReadCheckpoints(dir)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, &VerifyError{Index: -1, Reason: "checkpoints file damaged", Err: err}
		}
		return nil, err
	}
	v, err := newVerifier(opts, notes, 0, nil)
	if err != nil {
		return nil, err
	}
	v.snapDir = dir
	if !parallelVerify {
		err = r.read(0, 0, false, func(e *Entry, h *LeafHeader, _ uint64, _ int64) error {
			if e.Index&0xfff == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			return v.parsedLeaf(h, e.Leaf)
		})
		return v.finishRead(err)
	}
	// Two stages, so both CPUs work: a reader goroutine reads, checksums,
	// copies and hashes leaves in batches; this goroutine parses and checks
	// them and builds the tree.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan *leafBatch, 2)
	free := make(chan *leafBatch, 4)
	for i := 0; i < 4; i++ {
		free <- &leafBatch{}
	}
	var rerr error
	go func() {
		defer close(batches)
		lh := merkle.NewLeafHasher()
		b := <-free
		b.reset()
		rerr = r.read(0, 0, false, func(e *Entry, h *LeafHeader, _ uint64, _ int64) error {
			b.add(e.Leaf, h, lh)
			if len(b.ends) < batchLeaves {
				return nil
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case b = <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
			b.reset()
			return nil
		})
		batches <- b
	}()
	var verr error
	for b := range batches {
		for i := 0; verr == nil && i < len(b.ends); i++ {
			h, leaf := b.header(i)
			verr = v.checkedLeaf(&h, leaf, &b.hs[i])
			if verr != nil {
				cancel()
			}
		}
		free <- b
	}
	if verr != nil {
		return nil, verr
	}
	return v.finishRead(rerr)
}

// parallelVerify selects the two-stage verification (a variable so the
// benchmark compares it with the one-goroutine loop in the same run).
var parallelVerify = true

// leafBatch holds copies of consecutive leaves, their hashes and their
// parsed headers (as positions in the copies).
type leafBatch struct {
	buf  []byte
	ends []int
	hs   []merkle.Hash
	hdrs []hdrPos
}

// hdrPos is a LeafHeader with its slices as offsets into the leaf.
type hdrPos struct {
	index                    uint64
	time                     int64
	typeOff, typeEnd, bodyAt int32
}

const batchLeaves = 1024

func (b *leafBatch) reset() {
	if b.ends == nil {
		b.ends = make([]int, 0, batchLeaves)
		b.hs = make([]merkle.Hash, 0, batchLeaves)
		b.hdrs = make([]hdrPos, 0, batchLeaves)
		b.buf = make([]byte, 0, batchLeaves*512)
	}
	b.buf, b.ends, b.hs, b.hdrs = b.buf[:0], b.ends[:0], b.hs[:0], b.hdrs[:0]
}

// add copies leaf, whose header the reader parsed into h (slices of leaf).
func (b *leafBatch) add(leaf []byte, h *LeafHeader, lh *merkle.LeafHasher) {
	off := func(s []byte) int32 { return int32(cap(leaf) - cap(s)) } // s is a plain slice of leaf
	b.hdrs = append(b.hdrs, hdrPos{index: h.Index, time: h.Time, typeOff: off(h.Type), typeEnd: off(h.Type) + int32(len(h.Type)), bodyAt: off(h.Body)})
	b.buf = append(b.buf, leaf...)
	b.ends = append(b.ends, len(b.buf))
	b.hs = append(b.hs, lh.Hash(leaf))
}

// header returns leaf i's header, its slices into the batch's copy.
func (b *leafBatch) header(i int) (LeafHeader, []byte) {
	leaf := b.leaf(i)
	p := &b.hdrs[i]
	return LeafHeader{Index: p.index, Time: p.time, Type: leaf[p.typeOff:p.typeEnd], Body: leaf[p.bodyAt : len(leaf)-1]}, leaf
}

func (b *leafBatch) leaf(i int) []byte {
	start := 0
	if i > 0 {
		start = b.ends[i-1]
	}
	return b.buf[start:b.ends[i]]
}

func (v *verifier) finishRead(err error) (*VerifyResult, error) {
	if err != nil {
		var ve *VerifyError
		if errors.As(err, &ve) {
			return nil, err
		}
		if errors.Is(err, ErrCorrupt) {
			return nil, &VerifyError{Index: int64(v.pos), Reason: "stored record damaged or missing", Err: err}
		}
		return nil, err
	}
	return v.finish(nil)
}

// verifier holds the state of one verification.
type verifier struct {
	opts    VerifyOptions
	keys    *manifest.Verified
	nk      *noteKeys
	cps     []Checkpoint
	cpNum   []int        // storage number of each checkpoint (1-based); extra ones are negative
	cpBy    [][]SignedBy // who signed each checkpoint
	anchor  *keyAnchor
	next    int // next checkpoint to match
	from    uint64
	pos     uint64
	rng     *merkle.Range
	snapDir string
	scales  Scales
	rep     VerifyResult
	used    map[string]bool

	prevTime int64
	haveCmd  bool
	lastCmd  uint64
	lastEv   uint64
	snapSeq  uint64
	haveSnap bool
	cmd      core.Command
	ev       core.Event
	hasher   *merkle.LeafHasher
	good     uint64 // leaves below this matched a signed root (or are the bundle's left edge)
}

func newVerifier(opts VerifyOptions, notes [][]byte, from uint64, left *merkle.Range) (*verifier, error) {
	if len(opts.Manifest) == 0 || opts.PinnedFirstKey == "" {
		return nil, errors.New("audit: verification needs the key manifest and the pinned first key id (--manifest, --pin)")
	}
	keys, err := manifest.Verify(opts.Manifest, opts.PinnedFirstKey)
	if err != nil {
		return nil, &VerifyError{Index: -1, Reason: "key manifest does not verify against the pinned first key", Err: err}
	}
	nk, err := newNoteKeys(keys)
	if err != nil {
		return nil, err
	}
	v := &verifier{opts: opts, keys: keys, nk: nk, from: from, pos: from, good: from, scales: Scales{}, used: map[string]bool{}, hasher: merkle.NewLeafHasher(),
		anchor: newKeyAnchor(keys, from, opts.KeyRecordGrace)}
	v.rep.From = from
	if left != nil {
		v.rng = left
	} else {
		v.rng = merkle.NewRange(0)
	}
	add := func(note []byte, num int) error {
		c, by, err := nk.verifyCheckpoint(note, opts.Origin)
		if err != nil {
			return &VerifyError{Index: -1, Checkpoint: abs(num), Reason: "checkpoint rejected", Err: err}
		}
		for _, b := range by {
			v.used[b.KeyID] = true
		}
		if num > 0 && len(v.cps) > 0 {
			p := v.cps[len(v.cps)-1]
			switch {
			case c.Size < p.Size:
				return &VerifyError{Index: -1, Checkpoint: num, Reason: fmt.Sprintf("tree size %d is smaller than the previous checkpoint's %d (checkpoints reordered or replaced)", c.Size, p.Size)}
			case c.Size == p.Size && c.Root != p.Root:
				return &VerifyError{Index: -1, Checkpoint: num, Reason: fmt.Sprintf("two checkpoints of size %d with different roots (the log was forked)", c.Size)}
			case c.Time < p.Time:
				return &VerifyError{Index: -1, Checkpoint: num, Reason: "checkpoint time goes backwards"}
			}
		}
		v.cps = append(v.cps, c)
		v.cpNum = append(v.cpNum, num)
		v.cpBy = append(v.cpBy, by)
		return nil
	}
	for i, n := range notes {
		if err := add(n, i+1); err != nil {
			return nil, err
		}
	}
	v.rep.Checkpoints = len(v.cps)
	for i, n := range opts.Checkpoints {
		if err := add(n, -(i + 1)); err != nil {
			var ve *VerifyError
			if errors.As(err, &ve) {
				ve.Reason = fmt.Sprintf("checkpoint given with --checkpoint (#%d) rejected", i+1)
			}
			return nil, err
		}
	}
	// Match in size order (extra checkpoints interleave with stored ones).
	sortCheckpoints(v.cps, v.cpNum, v.cpBy)
	for v.next < len(v.cps) && v.cps[v.next].Size < from {
		v.next++ // covered by the bundle's left edge: checked through the final root
	}
	return v, nil
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func sortCheckpoints(cps []Checkpoint, nums []int, by [][]SignedBy) {
	for i := 1; i < len(cps); i++ {
		for j := i; j > 0 && cps[j].Size < cps[j-1].Size; j-- {
			cps[j], cps[j-1] = cps[j-1], cps[j]
			nums[j], nums[j-1] = nums[j-1], nums[j]
			by[j], by[j-1] = by[j-1], by[j]
		}
	}
}

func (v *verifier) fail(reason string, err error) error {
	return &VerifyError{Index: int64(v.pos), Reason: reason, Err: err}
}

// leaf checks one leaf at position v.pos.
func (v *verifier) leaf(leaf []byte) error {
	h, err := ParseLeaf(leaf)
	if err != nil {
		return v.fail("not a leaf", err)
	}
	return v.parsedLeaf(&h, leaf)
}

// parsedLeaf is leaf with its header already parsed.
func (v *verifier) parsedLeaf(h *LeafHeader, leaf []byte) error {
	lh := v.hasher.Hash(leaf)
	return v.checkedLeaf(h, leaf, &lh)
}

// checkedLeaf is parsedLeaf with the leaf hash already computed.
func (v *verifier) checkedLeaf(h *LeafHeader, leaf []byte, lh *merkle.Hash) error {
	if h.Index != v.pos {
		return v.fail(fmt.Sprintf("leaf says index %d (records deleted, reordered or duplicated)", h.Index), nil)
	}
	if v.pos > v.from && h.Time < v.prevTime {
		return v.fail(fmt.Sprintf("time %d is before the previous leaf's %d", h.Time, v.prevTime), nil)
	}
	if v.pos == v.from {
		v.rep.FirstTime = h.Time
	}
	typ := h.Type
	switch {
	case bytes.HasPrefix(typ, []byte("cmd.")):
		if err := decodeCommand(h, &v.cmd, v.scales); err != nil {
			return v.fail("command record is not canonical", err)
		}
		if err := v.cmdSeq(v.cmd.Seq); err != nil {
			return err
		}
		v.rep.Commands++
	case bytes.HasPrefix(typ, []byte("event.")):
		if err := decodeEvent(h, &v.ev, v.scales); err != nil {
			return v.fail("event record is not canonical", err)
		}
		if err := v.evSeq(v.ev.Seq); err != nil {
			return err
		}
		v.rep.Events++
	case string(typ) == TypeInstruments:
		sc, err := parseInstruments(h.Body)
		if err != nil {
			return v.fail("instruments record is not canonical", err)
		}
		v.scales = sc
		v.rep.Records++
	case string(typ) == TypeSnapshot:
		if err := v.snapshot(h.Body); err != nil {
			return err
		}
		v.rep.Records++
	default:
		if err := CheckBody(h.Body); err != nil {
			return v.fail("record body breaks the log's JSON rules", err)
		}
		if isKeyRecord(typ) {
			if reason := v.anchor.record(v.pos, string(typ), h.Body); reason != "" {
				return v.fail(reason, nil)
			}
			v.rep.KeyRecords++
		}
		v.rep.Records++
	}
	v.rng.AppendLeaf(lh)
	v.prevTime = h.Time
	v.pos++
	v.rep.Leaves++
	if v.opts.Progress != nil && v.rep.Leaves&0xffff == 0 {
		v.opts.Progress(v.rep.Leaves)
	}
	return v.matchCheckpoints()
}

// matchCheckpoints compares the root at the current size with every
// checkpoint of that size.
func (v *verifier) matchCheckpoints() error {
	for v.next < len(v.cps) && v.cps[v.next].Size == v.pos {
		c := v.cps[v.next]
		root, err := v.rng.Root()
		if err != nil {
			return err
		}
		if root != c.Root {
			return &VerifyError{Index: int64(v.good), Checkpoint: abs(v.cpNum[v.next]), Reason: fmt.Sprintf("the signed root of tree size %d does not match the leaves: a record in [%d, %d) was altered, removed or inserted (the tree up to %d matched its checkpoint)", c.Size, v.good, c.Size, v.good)}
		}
		v.good = c.Size
		if c.Time < v.prevTime {
			return &VerifyError{Index: int64(v.pos - 1), Checkpoint: abs(v.cpNum[v.next]), Reason: "checkpoint is timed before the last record it covers"}
		}
		if reason := v.anchor.checkpoint(c, v.cpBy[v.next]); reason != "" {
			return &VerifyError{Index: int64(v.pos - 1), Checkpoint: abs(v.cpNum[v.next]), Reason: reason}
		}
		v.next++
	}
	return nil
}

func (v *verifier) cmdSeq(seq uint64) error {
	switch {
	case v.haveCmd && seq == v.lastCmd:
		return v.fail(fmt.Sprintf("command seq %d repeats the previous command's (duplicated record)", seq), nil)
	case v.haveCmd && seq != v.lastCmd+1:
		return v.fail(fmt.Sprintf("command seq %d after %d (a gap: commands missing or reordered)", seq, v.lastCmd), nil)
	case !v.haveCmd && v.from == 0 && v.haveSnap && seq != v.snapSeq+1:
		return v.fail(fmt.Sprintf("first command after the snapshot of seq %d has seq %d", v.snapSeq, seq), nil)
	case !v.haveCmd && v.from == 0 && !v.haveSnap && seq != 1:
		return v.fail(fmt.Sprintf("first command has seq %d, want 1 (commands missing at the start)", seq), nil)
	}
	v.haveCmd, v.lastCmd = true, seq
	return nil
}

func (v *verifier) evSeq(seq uint64) error {
	if !v.haveCmd {
		if v.from == 0 && !v.haveSnap {
			return v.fail(fmt.Sprintf("event of seq %d before any command", seq), nil)
		}
		v.lastEv = seq
		return nil
	}
	switch {
	case seq > v.lastCmd:
		return v.fail(fmt.Sprintf("event of seq %d before its command (last command %d)", seq, v.lastCmd), nil)
	case seq < v.lastEv:
		return v.fail(fmt.Sprintf("event of seq %d after an event of seq %d (reordered)", seq, v.lastEv), nil)
	}
	v.lastEv = seq
	return nil
}

func (v *verifier) snapshot(body []byte) error {
	var s SnapshotBody
	if err := strictJSON(body, &s); err != nil {
		return v.fail("snapshot record is not canonical", err)
	}
	if err := checkSnapshotPath(s.File); err != nil {
		return v.fail("snapshot record", err)
	}
	if len(s.SHA256) != 64 || len(s.StateHash) != 64 {
		return v.fail("snapshot record: hashes must be 64 hex digits", nil)
	}
	if v.haveCmd && s.Seq > v.lastCmd {
		return v.fail(fmt.Sprintf("snapshot of seq %d before that command", s.Seq), nil)
	}
	if !v.haveCmd {
		v.haveSnap, v.snapSeq = true, s.Seq
	}
	if v.snapDir == "" {
		v.rep.SnapshotsMissing++
		return nil
	}
	f, err := os.Open(filepath.Join(v.snapDir, filepath.FromSlash(s.File)))
	if errors.Is(err, fs.ErrNotExist) {
		if v.opts.RequireSnapshots {
			return v.fail(fmt.Sprintf("snapshot file %s is missing", s.File), nil)
		}
		v.rep.SnapshotsMissing++
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if hex.EncodeToString(h.Sum(nil)) != s.SHA256 || n != s.Size {
		return v.fail(fmt.Sprintf("snapshot file %s does not match its SHA-256 or size in the log", s.File), nil)
	}
	v.rep.SnapshotsChecked++
	return nil
}

// strictJSON decodes body into v rejecting unknown fields, and requires
// that re-encoding gives the same bytes (canonical form).
func strictJSON(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	again, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, body) {
		return errors.New("not in canonical form")
	}
	return nil
}

func parseInstruments(body []byte) (Scales, error) {
	var ib InstrumentsBody
	if err := strictJSON(body, &ib); err != nil {
		return nil, err
	}
	sc := Scales{}
	for _, in := range ib.Instruments {
		s, err := ParseScale(in.Tick, in.Lot)
		if err != nil {
			return nil, err
		}
		if _, dup := sc[in.ID]; dup {
			return nil, fmt.Errorf("instrument %d listed twice", in.ID)
		}
		sc[in.ID] = s
	}
	return sc, nil
}

// finish checks what remains after the last leaf. right is the bundle's
// compact range after the last leaf (nil for a whole log).
func (v *verifier) finish(right *merkle.Range) (*VerifyResult, error) {
	if v.next < len(v.cps) && right != nil {
		c := v.cps[v.next]
		if right.Begin() != v.pos || right.End() != c.Size {
			return nil, &VerifyError{Index: int64(v.pos), Checkpoint: abs(v.cpNum[v.next]), Reason: "the bundle's closing range does not reach its final checkpoint"}
		}
		full := v.rng.Clone()
		if err := full.Merge(right); err != nil {
			return nil, err
		}
		root, err := full.Root()
		if err != nil {
			return nil, err
		}
		if root != c.Root {
			return nil, &VerifyError{Index: int64(v.good), Checkpoint: abs(v.cpNum[v.next]), Reason: fmt.Sprintf("the bundle's records do not lead to its final checkpoint's root: a record in [%d, %d) was altered, removed or inserted", v.good, v.pos)}
		}
		if c.Time < v.prevTime {
			return nil, &VerifyError{Index: int64(v.pos - 1), Checkpoint: abs(v.cpNum[v.next]), Reason: "checkpoint is timed before the last record it covers"}
		}
		if reason := v.anchor.checkpoint(c, v.cpBy[v.next]); reason != "" {
			return nil, &VerifyError{Index: int64(v.pos - 1), Checkpoint: abs(v.cpNum[v.next]), Reason: reason}
		}
		v.next++
	}
	if v.next < len(v.cps) {
		c := v.cps[v.next]
		return nil, &VerifyError{Index: int64(v.pos), Checkpoint: abs(v.cpNum[v.next]), Reason: fmt.Sprintf("the log ends after %d leaves but a signed checkpoint covers %d (records were removed from the end)", v.pos, c.Size)}
	}
	if len(v.cps) == 0 {
		return nil, &VerifyError{Index: -1, Reason: "no signed checkpoint: nothing proves these records"}
	}
	last := v.cps[len(v.cps)-1]
	v.rep.Last = viewOf(last)
	if last.Size < v.pos {
		v.rep.Unsigned = v.pos - last.Size
	}
	v.rep.LastTime = v.prevTime
	v.rep.UnrecordedKeyEntries = v.anchor.unrecorded()
	for id := range v.used {
		v.rep.Keys = append(v.rep.Keys, id)
	}
	sortStrings(v.rep.Keys)
	return &v.rep, nil
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
