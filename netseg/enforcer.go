package netseg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// DefaultPinPath is where a deployment pins its programs, links and maps.
// Tests use their own bpf filesystem and pin path.
const DefaultPinPath = "/sys/fs/bpf/tradecore"

// defaultBPFRoot is the usual bpf filesystem mount point; ensurePinDir
// mounts one there when it is missing.
const defaultBPFRoot = "/sys/fs/bpf"

// Recorder writes audit records (the audit log's Record method). Apply and
// Detach refuse to change anything whose record cannot be written.
type Recorder interface {
	Record(ctx context.Context, typ string, body any) (uint64, error)
}

// Audit record types written through Config.Recorder (bodies in
// docs/netseg.md).
const (
	RecordApplied  = "netseg.policy.applied"
	RecordDetached = "netseg.policy.detached"
)

// Config configures an Enforcer. The zero value works for reading status
// and stats; Apply and Detach need a Recorder.
type Config struct {
	// PinPath is the folder on a bpf filesystem that holds the pinned
	// objects, the one source of truth every process reads; default
	// DefaultPinPath. Its parent must exist on a bpf filesystem, except
	// /sys/fs/bpf, which Apply mounts when it is missing.
	PinPath string
	// CgroupMount is the cgroup v2 mount point segment cgroups are
	// resolved under; default: found in /proc/self/mountinfo.
	CgroupMount string
	// Recorder receives an audit record for every policy change.
	Recorder Recorder
	// Logger gets one line per change; default: discard.
	Logger *slog.Logger
	// Now stamps the applied time in the pinned state; default time.Now.
	Now func() time.Time
}

// Enforcer applies, inspects and removes segmentation policies in the
// kernel. It holds no kernel objects between calls: every call reads the
// pins, so a daemon and the CLI always see the same state. Apply and Detach
// take an exclusive lock on the pin folder; it is safe for concurrent use.
type Enforcer struct {
	cfg Config
}

// New checks that this process can enforce segmentation (Probe) and returns
// an Enforcer. Errors wrap ErrNoRoot or ErrNoBPF.
func New(cfg Config) (*Enforcer, error) {
	if err := Probe(); err != nil {
		return nil, err
	}
	if cfg.PinPath == "" {
		cfg.PinPath = DefaultPinPath
	}
	cfg.PinPath = filepath.Clean(cfg.PinPath)
	if cfg.CgroupMount == "" {
		m, err := cgroup2Mount("/proc/self/mountinfo")
		if err != nil {
			return nil, err
		}
		cfg.CgroupMount = m
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Enforcer{cfg: cfg}, nil
}

// PinPath returns the pin folder in use.
func (e *Enforcer) PinPath() string { return e.cfg.PinPath }

// Map specifications. Names are the pin file names.
func tableSpec() *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: "netseg_table", Type: ebpf.LPMTrie, KeySize: keySize, ValueSize: valueSize,
		MaxEntries: maxTable, Flags: unix.BPF_F_NO_PREALLOC}
}

const (
	stateChunk   = 4096
	stateEntries = 1 + MaxPolicyBytes/stateChunk
	stateMagic   = "TCNS"
	stateVersion = 1
	headerSize   = 4 + 4 + 4 + 4 + 8 + 32
	totalsMax    = MaxSegments * int(numHooks) * 2
	destsMax     = 16384
)

func sharedSpecs() (policy, totals, dests, state *ebpf.MapSpec) {
	policy = &ebpf.MapSpec{Name: "netseg_policy", Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1,
		InnerMap: tableSpec(), Pinning: ebpf.PinByName}
	totals = &ebpf.MapSpec{Name: "netseg_totals", Type: ebpf.Hash, KeySize: 16, ValueSize: 8, MaxEntries: uint32(totalsMax), Pinning: ebpf.PinByName}
	dests = &ebpf.MapSpec{Name: "netseg_dests", Type: ebpf.LRUHash, KeySize: destKeyLen, ValueSize: 8, MaxEntries: destsMax, Pinning: ebpf.PinByName}
	state = &ebpf.MapSpec{Name: "netseg_state", Type: ebpf.Array, KeySize: 4, ValueSize: stateChunk, MaxEntries: stateEntries, Pinning: ebpf.PinByName}
	return
}

// pinned is the set of shared maps under a pin folder.
type pinned struct {
	sharedMaps
	state *ebpf.Map
}

func (p *pinned) close() {
	for _, m := range []*ebpf.Map{p.policy, p.totals, p.dests, p.state} {
		if m != nil {
			m.Close()
		}
	}
}

// openShared loads the shared maps, creating and pinning them when create
// is set and they are missing. It returns os.ErrNotExist (wrapped) when they
// are missing and create is not set.
func (e *Enforcer) openShared(create bool) (*pinned, error) {
	specs := [4]*ebpf.MapSpec{}
	specs[0], specs[1], specs[2], specs[3] = sharedSpecs()
	var ms [4]*ebpf.Map
	for i, spec := range specs {
		var (
			m   *ebpf.Map
			err error
		)
		if create {
			m, err = ebpf.NewMapWithOptions(spec, ebpf.MapOptions{PinPath: e.cfg.PinPath})
		} else {
			m, err = ebpf.LoadPinnedMap(filepath.Join(e.cfg.PinPath, spec.Name), nil)
			if err == nil {
				err = spec.Compatible(m)
			}
		}
		if err != nil {
			for _, o := range ms[:i] {
				o.Close()
			}
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("netseg: %s: %w", spec.Name, os.ErrNotExist)
			}
			return nil, fmt.Errorf("%w: map %s: %v", ErrPinned, spec.Name, err)
		}
		ms[i] = m
	}
	return &pinned{sharedMaps: sharedMaps{policy: ms[0], totals: ms[1], dests: ms[2]}, state: ms[3]}, nil
}

// state is what the pinned state map records about the applied policy.
type state struct {
	innerID   ebpf.MapID
	appliedAt time.Time
	digest    string
	policy    *Policy
}

func writeState(m *ebpf.Map, st state) error {
	body, err := st.policy.MarshalJSON()
	if err != nil {
		return err
	}
	if len(body) > MaxPolicyBytes {
		return fmt.Errorf("%w: segments: the canonical policy is %d bytes, more than %d; remove rules", ErrPolicy, len(body), MaxPolicyBytes)
	}
	for i := 0; i*stateChunk < len(body); i++ {
		chunk := make([]byte, stateChunk)
		copy(chunk, body[i*stateChunk:])
		if err := m.Put(uint32(1+i), chunk); err != nil {
			return fmt.Errorf("netseg: writing pinned state: %w", err)
		}
	}
	hdr := make([]byte, stateChunk)
	copy(hdr, stateMagic)
	binary.NativeEndian.PutUint32(hdr[4:], stateVersion)
	binary.NativeEndian.PutUint32(hdr[8:], uint32(len(body)))
	binary.NativeEndian.PutUint32(hdr[12:], uint32(st.innerID))
	binary.NativeEndian.PutUint64(hdr[16:], uint64(st.appliedAt.UnixNano()))
	sum := sha256Sum(body)
	copy(hdr[24:56], sum[:])
	if err := m.Put(uint32(0), hdr); err != nil {
		return fmt.Errorf("netseg: writing pinned state: %w", err)
	}
	return nil
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func clearState(m *ebpf.Map) error {
	return m.Put(uint32(0), make([]byte, stateChunk))
}

// readState returns the recorded state, or ok false when none is recorded.
func readState(m *ebpf.Map) (state, bool, error) {
	var st state
	hdr := make([]byte, stateChunk)
	if err := m.Lookup(uint32(0), &hdr); err != nil {
		return st, false, fmt.Errorf("%w: reading state: %v", ErrPinned, err)
	}
	if bytes.Equal(hdr[:headerSize], make([]byte, headerSize)) {
		return st, false, nil
	}
	if string(hdr[:4]) != stateMagic || binary.NativeEndian.Uint32(hdr[4:]) != stateVersion {
		return st, false, fmt.Errorf("%w: state header is not one this version writes", ErrPinned)
	}
	n := int(binary.NativeEndian.Uint32(hdr[8:]))
	if n > MaxPolicyBytes {
		return st, false, fmt.Errorf("%w: state length %d", ErrPinned, n)
	}
	st.innerID = ebpf.MapID(binary.NativeEndian.Uint32(hdr[12:]))
	st.appliedAt = time.Unix(0, int64(binary.NativeEndian.Uint64(hdr[16:])))
	body := make([]byte, 0, n)
	chunk := make([]byte, stateChunk)
	for i := 0; len(body) < n; i++ {
		if err := m.Lookup(uint32(1+i), &chunk); err != nil {
			return st, false, fmt.Errorf("%w: reading state: %v", ErrPinned, err)
		}
		body = append(body, chunk[:min(stateChunk, n-len(body))]...)
	}
	if sum := sha256Sum(body); !bytes.Equal(sum[:], hdr[24:56]) {
		return st, false, fmt.Errorf("%w: state checksum mismatch (interrupted write); apply the policy again", ErrPinned)
	}
	p, err := Parse(body)
	if err != nil {
		return st, false, fmt.Errorf("%w: recorded policy: %v", ErrPinned, err)
	}
	st.policy = p
	st.digest = p.Digest()
	return st, true, nil
}

// lock takes the pin folder's lock (exclusive for changes, shared for
// reads). The returned function releases it.
func lockDir(ctx context.Context, dir string, exclusive bool) (func(), error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err = unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("%w (lock on %s held for 10s)", ErrBusy, dir)
			}
			return nil, fmt.Errorf("netseg: locking %s: %w", dir, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (e *Enforcer) segmentDir(name string) string {
	return filepath.Join(e.cfg.PinPath, "segments", name)
}

// segLinks are the attached links of one segment, loaded from pins or new.
type segLinks struct {
	name     string
	cgroupID uint64
	links    [numHooks]link.Link
	progs    [numHooks]*ebpf.Program
}

func (s *segLinks) close() {
	for i := range s.links {
		if s.links[i] != nil {
			s.links[i].Close()
		}
		if s.progs[i] != nil {
			s.progs[i].Close()
		}
	}
}

// detach detaches every link even if another process holds it open, and
// removes the segment's pins.
func (s *segLinks) detach(dir string) error {
	var errs []error
	for i, l := range s.links {
		if l == nil {
			continue
		}
		if err := l.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
			errs = append(errs, fmt.Errorf("detach %s: %w", hook(i), err))
		}
	}
	s.close()
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// loadPinnedSegments returns the segments pinned under the pin folder, by
// name. A segment with a missing or broken link is returned with that link
// nil.
func (e *Enforcer) loadPinnedSegments() (map[string]*segLinks, error) {
	out := map[string]*segLinks{}
	ents, err := os.ReadDir(filepath.Join(e.cfg.PinPath, "segments"))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	for _, ent := range ents {
		s := &segLinks{name: ent.Name()}
		dir := e.segmentDir(ent.Name())
		for h := range numHooks {
			l, err := link.LoadPinnedLink(filepath.Join(dir, h.String()+"_link"), nil)
			if err != nil {
				continue
			}
			s.links[h] = l
			if info, err := l.Info(); err == nil {
				if cg := info.Cgroup(); cg != nil {
					s.cgroupID = cg.CgroupId
				}
			}
		}
		out[s.name] = s
	}
	return out, nil
}

// complete reports whether every hook of the segment is attached to the
// cgroup with the given id.
func (s *segLinks) complete(cgroupID uint64) bool {
	for _, l := range s.links {
		if l == nil {
			return false
		}
		info, err := l.Info()
		if err != nil {
			return false
		}
		cg := info.Cgroup()
		if cg == nil || cg.CgroupId != cgroupID {
			return false
		}
	}
	return true
}

// resolved is a segment with its cgroup's id.
type resolved struct {
	seg Segment
	id  uint64
}

func ids2cgroup(segs []resolved, name string) string {
	for _, r := range segs {
		if r.seg.Name == name {
			return r.seg.Cgroup
		}
	}
	return ""
}

func (e *Enforcer) resolve(p *Policy) ([]resolved, error) {
	out := make([]resolved, 0, len(p.Segments))
	for _, s := range p.Segments {
		full := filepath.Join(e.cfg.CgroupMount, s.Cgroup)
		id, err := cgroupID(full)
		if err != nil {
			return nil, fmt.Errorf("%w: segment %q: cgroup %s (%s): %v; create the cgroup and move the service into it, or fix the segment's cgroup field",
				ErrCgroup, s.Name, s.Cgroup, full, err)
		}
		out = append(out, resolved{seg: s, id: id})
	}
	return out, nil
}

// SegmentSummary describes a segment in audit records and status.
type SegmentSummary struct {
	Name     string `json:"name"`
	Cgroup   string `json:"cgroup"`
	CgroupID uint64 `json:"cgroup_id"`
	Default  string `json:"default"`
	Allow    int    `json:"allow_rules"`
	Deny     int    `json:"deny_rules"`
}

// AppliedRecord is the body of a netseg.policy.applied record.
type AppliedRecord struct {
	Digest   string           `json:"digest"`
	Previous string           `json:"previous_digest"` // "" when nothing was applied
	Segments []SegmentSummary `json:"segments"`
	Changes  []string         `json:"changes"` // Diff(previous, new)
}

// DetachedRecord is the body of a netseg.policy.detached record.
type DetachedRecord struct {
	Digest   string           `json:"digest"` // "" when the pinned state was unreadable
	Segments []SegmentSummary `json:"segments"`
}

// ApplyResult says what Apply did.
type ApplyResult struct {
	// Changed is false when the same policy was already in force and
	// intact: nothing was touched and no record written.
	Changed  bool
	Digest   string
	Previous string
	// Changes are Diff(previous, new).
	Changes []string
	// Record is the audit record's leaf index (when Changed).
	Record uint64
}

// Apply puts p in force: it loads and attaches each new segment's programs,
// builds the new policy table, writes the audit record, then swaps the table
// in with one map update, so every connect and packet sees either the old
// policy or the new one, never none. Segments that left the policy are
// detached after the swap. Applying the policy already in force changes
// nothing. Any failure before the swap (a missing cgroup, a kernel refusal,
// the audit record) leaves the previous state as it was.
func (e *Enforcer) Apply(ctx context.Context, p *Policy) (ApplyResult, error) {
	var res ApplyResult
	if e.cfg.Recorder == nil {
		return res, fmt.Errorf("%w: no audit log is configured (Config.Recorder is nil); configure one before applying", ErrAudit)
	}
	if p == nil || len(p.Segments) == 0 {
		return res, fmt.Errorf("%w: the policy has no segments; to remove segmentation use detach", ErrPolicy)
	}
	table, err := compile(p)
	if err != nil {
		return res, err
	}
	if err := ensurePinDir(e.cfg.PinPath, defaultBPFRoot); err != nil {
		return res, err
	}
	unlock, err := lockDir(ctx, e.cfg.PinPath, true)
	if err != nil {
		return res, err
	}
	defer unlock()

	segs, err := e.resolve(p)
	if err != nil {
		return res, err
	}
	sh, err := e.openShared(true)
	if err != nil {
		return res, err
	}
	defer sh.close()
	old, hadOld, err := readState(sh.state)
	if err != nil {
		e.cfg.Logger.Warn("netseg: pinned state unreadable; applying over it", "err", err)
		hadOld = false
	}
	var oldPolicy *Policy
	if hadOld {
		oldPolicy = old.policy
		res.Previous = old.digest
	}
	res.Digest = p.Digest()
	res.Changes = Diff(oldPolicy, p)

	existing, err := e.loadPinnedSegments()
	if err != nil {
		return res, err
	}
	defer func() {
		for _, s := range existing {
			s.close()
		}
	}()

	// Idempotent: the same policy, intact, changes nothing.
	if hadOld && old.digest == res.Digest && len(existing) == len(segs) {
		var cur ebpf.MapID
		intact := sh.policy.Lookup(uint32(0), &cur) == nil && cur == old.innerID
		for _, r := range segs {
			s, ok := existing[r.seg.Name]
			intact = intact && ok && s.complete(r.id)
		}
		if intact {
			return res, nil
		}
	}

	// Build the new table.
	inner, err := ebpf.NewMap(tableSpec())
	if err != nil {
		return res, fmt.Errorf("netseg: creating the policy table: %w", err)
	}
	defer inner.Close()
	ids := map[string]uint64{}
	for _, r := range segs {
		ids[r.seg.Name] = r.id
	}
	for _, te := range table {
		k := tableKey(ids[te.segment], te.prefix)
		if err := inner.Put(k[:], te.value[:]); err != nil {
			return res, fmt.Errorf("netseg: filling the policy table: %w", err)
		}
	}
	innerInfo, err := inner.Info()
	if err != nil {
		return res, fmt.Errorf("netseg: policy table info: %w", err)
	}
	innerID, _ := innerInfo.ID()

	// Load the programs of new or moved segments, then attach them. Until
	// the swap their lookups miss and they deny: never an open window.
	var fresh []*segLinks
	committed := false
	defer func() {
		if !committed {
			for _, s := range fresh {
				s.close() // closing an unpinned link detaches it
			}
		}
	}()
	for _, r := range segs {
		if s, ok := existing[r.seg.Name]; ok && s.complete(r.id) {
			continue
		}
		s := &segLinks{name: r.seg.Name, cgroupID: r.id}
		fresh = append(fresh, s)
		for h := range numHooks {
			prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
				Name:         "netseg_" + h.String(),
				Type:         h.programType(),
				AttachType:   h.attachType(),
				Instructions: program(h, r.id, sh.sharedMaps),
				License:      "GPL",
			})
			if err != nil {
				return res, fmt.Errorf("%w: loading the %s program for segment %q: %v", ErrNoBPF, h, r.seg.Name, err)
			}
			s.progs[h] = prog
		}
	}
	for _, s := range fresh {
		path := filepath.Join(e.cfg.CgroupMount, ids2cgroup(segs, s.name))
		for h := range numHooks {
			l, err := link.AttachCgroup(link.CgroupOptions{Path: path, Attach: h.attachType(), Program: s.progs[h]})
			if err != nil {
				return res, fmt.Errorf("%w: attaching the %s program of segment %q: %v", ErrNoBPF, h, s.name, err)
			}
			s.links[h] = l
			info, err := l.Info()
			if err != nil || info.Cgroup() == nil {
				return res, fmt.Errorf("%w: the kernel has no BPF links on cgroups (needs Linux 5.7+), so enforcement could not outlive this process", ErrNoBPF)
			}
			if info.Cgroup().CgroupId != s.cgroupID {
				return res, fmt.Errorf("%w: segment %q: cgroup %s was replaced while applying; apply again", ErrCgroup, s.name, path)
			}
		}
		for h := range numHooks {
			for _, v := range []Action{Deny, Allow} {
				k := counterKey(s.cgroupID, h, v)
				if err := sh.totals.Update(k[:], uint64(0), ebpf.UpdateNoExist); err != nil && !errors.Is(err, ebpf.ErrKeyExist) {
					return res, fmt.Errorf("netseg: creating counters: %w", err)
				}
			}
		}
	}

	// The audit record: refused, nothing has changed for running processes
	// of existing segments.
	rec := AppliedRecord{Digest: res.Digest, Previous: res.Previous, Segments: summaries(p, ids), Changes: res.Changes}
	idx, err := e.cfg.Recorder.Record(ctx, RecordApplied, rec)
	if err != nil {
		return res, fmt.Errorf("%w: %v; the policy was not applied and the previous state stays in force", ErrAudit, err)
	}
	res.Record = idx

	// Commit: state, swap, pins, removals.
	if err := writeState(sh.state, state{innerID: innerID, appliedAt: e.cfg.Now(), policy: p}); err != nil {
		return res, fmt.Errorf("netseg: policy %s was recorded but not applied: %w; apply it again", res.Digest, err)
	}
	if err := sh.policy.Put(uint32(0), inner); err != nil {
		if hadOld {
			_ = writeState(sh.state, old)
		} else {
			_ = clearState(sh.state)
		}
		return res, fmt.Errorf("netseg: policy %s was recorded but the table swap failed: %w; apply it again", res.Digest, err)
	}
	committed = true
	res.Changed = true
	var errs []error
	for _, s := range fresh {
		if prev, ok := existing[s.name]; ok {
			if err := prev.detach(e.segmentDir(s.name)); err != nil {
				errs = append(errs, err)
			}
			delete(existing, s.name)
		}
		dir := e.segmentDir(s.name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			errs = append(errs, err)
			continue
		}
		for h := range numHooks {
			if err := s.links[h].Pin(filepath.Join(dir, h.String()+"_link")); err != nil {
				errs = append(errs, fmt.Errorf("pin %s link of %q: %w", h, s.name, err))
			}
			if err := s.progs[h].Pin(filepath.Join(dir, h.String()+"_prog")); err != nil {
				errs = append(errs, fmt.Errorf("pin %s program of %q: %w", h, s.name, err))
			}
		}
		s.close() // pinned links stay attached
	}
	for name, s := range existing {
		if _, ok := ids[name]; ok {
			continue
		}
		id := s.cgroupID
		if err := s.detach(e.segmentDir(name)); err != nil {
			errs = append(errs, err)
		}
		deleteCounters(sh.totals, id)
		delete(existing, name)
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("netseg: policy %s is in force, but finishing failed: %w; run apply again", res.Digest, errors.Join(errs...))
	}
	e.cfg.Logger.Info("netseg: policy applied", "digest", res.Digest, "previous", res.Previous, "changes", len(res.Changes), "record", idx)
	return res, nil
}

func summaries(p *Policy, ids map[string]uint64) []SegmentSummary {
	out := make([]SegmentSummary, 0, len(p.Segments))
	for _, s := range p.Segments {
		out = append(out, SegmentSummary{Name: s.Name, Cgroup: s.Cgroup, CgroupID: ids[s.Name], Default: s.Default.String(), Allow: len(s.Allow), Deny: len(s.Deny)})
	}
	return out
}

// counterKey is the totals map key: cgroup id, hook, verdict.
func counterKey(cgroupID uint64, h hook, v Action) [16]byte {
	var k [16]byte
	binary.NativeEndian.PutUint64(k[0:], cgroupID)
	k[8] = byte(h)
	k[9] = byte(v)
	return k
}

func deleteCounters(m *ebpf.Map, cgroupID uint64) {
	for h := range numHooks {
		for _, v := range []Action{Deny, Allow} {
			k := counterKey(cgroupID, h, v)
			_ = m.Delete(k[:])
		}
	}
}

// Detach removes everything under the pin folder: every segment's links
// (detaching them even if another process holds them), programs and maps.
// Access is open again for the segments' processes. It writes a
// netseg.policy.detached record first and refuses if it cannot. With nothing
// applied it does nothing and returns false.
func (e *Enforcer) Detach(ctx context.Context) (bool, error) {
	if e.cfg.Recorder == nil {
		return false, fmt.Errorf("%w: no audit log is configured (Config.Recorder is nil); configure one before detaching", ErrAudit)
	}
	if _, err := os.Stat(e.cfg.PinPath); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	unlock, err := lockDir(ctx, e.cfg.PinPath, true)
	if err != nil {
		return false, err
	}
	defer unlock()
	existing, err := e.loadPinnedSegments()
	if err != nil {
		return false, err
	}
	defer func() {
		for _, s := range existing {
			s.close()
		}
	}()
	rec := DetachedRecord{Segments: []SegmentSummary{}}
	sh, err := e.openShared(false)
	if err == nil {
		defer sh.close()
		if st, ok, err := readState(sh.state); err == nil && ok {
			ids := map[string]uint64{}
			for n, s := range existing {
				ids[n] = s.cgroupID
			}
			rec.Digest = st.digest
			rec.Segments = summaries(st.policy, ids)
		}
	}
	if sh == nil && len(existing) == 0 {
		ents, _ := os.ReadDir(e.cfg.PinPath)
		if len(ents) == 0 {
			_ = os.Remove(e.cfg.PinPath)
			return false, nil
		}
	}
	if _, err := e.cfg.Recorder.Record(ctx, RecordDetached, rec); err != nil {
		return false, fmt.Errorf("%w: %v; nothing was detached", ErrAudit, err)
	}
	var errs []error
	names := make([]string, 0, len(existing))
	for n := range existing {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := existing[n].detach(e.segmentDir(n)); err != nil {
			errs = append(errs, err)
		}
		delete(existing, n)
	}
	if err := os.RemoveAll(e.cfg.PinPath); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return true, fmt.Errorf("netseg: detach recorded but incomplete: %w; run detach again", errors.Join(errs...))
	}
	e.cfg.Logger.Info("netseg: policy detached", "digest", rec.Digest)
	return true, nil
}
