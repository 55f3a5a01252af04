package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/internal/audittest"
)

func TestLogRoundTripAndVerify(t *testing.T) {
	dir := t.TempDir()
	el := writeEngineLog(t, dir, 3000, 100)
	// The journaler (here: this goroutine) commits service records.
	type res struct {
		idx uint64
		err error
	}
	ch := make(chan res, 1)
	go func() {
		typ, body := el.keys.Record(0)
		idx, err := el.log.Record(context.Background(), typ, body)
		ch <- res{idx, err}
	}()
	for !el.log.Writer().Pending() {
		time.Sleep(time.Millisecond)
	}
	require.NoError(t, el.log.Writer().Commit())
	rs := <-ch
	idx, err := rs.idx, rs.err
	require.NoError(t, err)
	assert.Equal(t, el.log.Durable()-1, idx, "Record returns the index once durable")
	el.close(t)

	// Read back: every command decodes to exactly what was appended.
	r, err := OpenReader(dir)
	require.NoError(t, err)
	var got []core.Command
	var sc Scales
	n := uint64(0)
	require.NoError(t, r.Read(0, 0, func(e *Entry) error {
		require.Equal(t, n, e.Index)
		n++
		switch {
		case e.Type == TypeInstruments:
			h, _ := ParseLeaf(e.Leaf)
			sc, err = parseInstruments(h.Body)
			require.NoError(t, err)
		case IsCoreType(e.Type) && e.Type[:4] == "cmd.":
			var c core.Command
			_, err := DecodeCommand(e.Leaf, &c, sc)
			require.NoError(t, err)
			got = append(got, c)
		}
		return nil
	}))
	require.Equal(t, el.cmds, got)
	size, err := r.Size()
	require.NoError(t, err)
	assert.Equal(t, n, size)
	assert.EqualValues(t, 1+3000+el.evs+1, n, "instruments + commands + events + one record")

	rep, err := VerifyDir(context.Background(), dir, el.opts())
	require.NoError(t, err)
	assert.EqualValues(t, n, rep.Leaves)
	parallelVerify = false
	seq, err := VerifyDir(context.Background(), dir, el.opts())
	parallelVerify = true
	require.NoError(t, err)
	assert.Equal(t, rep, seq, "the one-goroutine and the two-stage verifier agree")
	assert.EqualValues(t, 3000, rep.Commands)
	assert.Zero(t, rep.Unsigned, "Close signs a final checkpoint")

	// Every stored checkpoint is a C2SP signed note that the standard
	// verifier (golang.org/x/mod/sumdb/note) accepts with the manifest's
	// verifier key.
	notes, err := ReadCheckpoints(dir)
	require.NoError(t, err)
	require.NotEmpty(t, notes)
	vk := el.keys.Verified().Keys[0].NoteVerifier
	nv, err := note.NewVerifier(vk)
	require.NoError(t, err)
	for _, b := range notes {
		m, err := note.Open(b, note.VerifierList(nv))
		require.NoError(t, err)
		c, err := ParseCheckpointText([]byte(m.Text))
		require.NoError(t, err)
		assert.Equal(t, "tradecore", c.Origin)
	}
}

func TestOpenTruncatesTornTail(t *testing.T) {
	dir := t.TempDir()
	el := writeEngineLog(t, dir, 200, 50)
	el.close(t)
	seg := filepath.Join(dir, segDir, segName(0))
	good, err := os.ReadFile(seg)
	require.NoError(t, err)
	for name, tail := range map[string][]byte{
		"half header":          {0x20, 0},
		"header, partial leaf": append([]byte{0x40, 0, 0, 0, 1, 2, 3, 4}, `{"i":`...),
		"zeroed block":         make([]byte, 4096),
		"bad checksum at end":  append([]byte{5, 0, 0, 0, 9, 9, 9, 9}, `{"i":`...),
	} {
		t.Run(name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(seg, append(append([]byte(nil), good...), tail...), 0o600))
			w, err := OpenWriter(WriterConfig{Dir: dir, Instruments: testInstruments, Logger: quiet()})
			require.NoError(t, err)
			assert.EqualValues(t, len(tail), w.Recovered().TruncatedBytes, "the torn bytes are reported")
			require.NoError(t, w.Close())
			b, err := os.ReadFile(seg)
			require.NoError(t, err)
			require.Greater(t, len(b), len(good))
			assert.Equal(t, good, b[:len(good)], "complete records are kept")
			require.NoError(t, os.WriteFile(seg, good, 0o600))
		})
	}
	// Damage followed by good records is corruption, never truncated away.
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0x40
	require.NoError(t, os.WriteFile(seg, bad, 0o600))
	_, err = OpenWriter(WriterConfig{Dir: dir, Logger: quiet()})
	require.ErrorIs(t, err, ErrCorrupt)
	b, _ := os.ReadFile(seg)
	assert.Equal(t, bad, b, "a corrupt log is left untouched")
}

func TestWriterLockAndDurability(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(WriterConfig{Dir: dir, Durability: DurabilityFsync, Logger: quiet()})
	require.NoError(t, err)
	_, err = OpenWriter(WriterConfig{Dir: dir, Logger: quiet()})
	require.ErrorIs(t, err, ErrLocked, "a second writer is refused")
	before := w.Durable()
	c := core.Command{Kind: core.CmdEndOfDay, Seq: 1, Time: time.Now().UnixNano()}
	idx, err := w.AppendCommand(&c)
	require.NoError(t, err)
	assert.Equal(t, before, w.Durable(), "not durable before Commit")
	require.NoError(t, w.Commit())
	assert.Equal(t, idx+1, w.Durable())
	assert.Equal(t, idx+1, w.Head().Size)
	c.Time -= 10
	_, err = w.AppendCommand(&c)
	require.ErrorIs(t, err, ErrTimeBackwards)
	require.NoError(t, w.Close())
	_, err = w.AppendCommand(&c)
	require.ErrorIs(t, err, ErrClosed)
	_, err = ParseDurability("sometimes")
	require.Error(t, err)
}

func TestSegmentRollAndReopen(t *testing.T) {
	dir := t.TempDir()
	el := writeEngineLog(t, dir, 1500, 100, func(c *Config) { c.SegmentSize = 64 << 10; c.BufferSize = 128 << 10 })
	el.close(t)
	segs, err := listSegments(dir)
	require.NoError(t, err)
	require.Greater(t, len(segs), 3)
	// Reopen (tree restored from the tree file, or rebuilt without it) and
	// continue: the log still verifies.
	for _, dropTree := range []bool{false, true} {
		if dropTree {
			require.NoError(t, os.Remove(filepath.Join(dir, treeFile)))
		}
		l, cls := openTestLog(t, dir, el.keys)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err = l.Record(ctx, "test.reopened", map[string]int{"n": 1})
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "ExternalCommit: nobody commits yet")
		require.NoError(t, l.Writer().Commit())
		require.NoError(t, cls())
		_, err = VerifyDir(context.Background(), dir, el.opts())
		require.NoError(t, err)
	}
	// Reading from the middle starts in the right segment.
	r, _ := OpenReader(dir)
	var first uint64 = 1 << 63
	require.NoError(t, r.Read(segs[2]+3, segs[2]+5, func(e *Entry) error { first = min(first, e.Index); return nil }))
	assert.Equal(t, segs[2]+3, first)
}

func TestRecordRules(t *testing.T) {
	dir := t.TempDir()
	keys := audittest.New("tradecore", time.Now().Add(-time.Hour))
	l, cls := openTestLog(t, dir, keys, func(c *Config) { c.ExternalCommit = false })
	defer cls()
	ctx := context.Background()
	for name, tc := range map[string]struct {
		typ  string
		body any
	}{
		"float":           {"risk.limit.changed", struct{ X float64 }{1.5}},
		"reserved cmd":    {"cmd.new", struct{}{}},
		"reserved audit":  {"audit.instruments", struct{}{}},
		"bad type":        {"Keys Revoked", struct{}{}},
		"not an object":   {"keys.revoked", []int{1}},
		"unmarshalable":   {"keys.revoked", make(chan int)},
		"snapshot direct": {TypeSnapshot, struct{}{}},
	} {
		_, err := l.Record(ctx, tc.typ, tc.body)
		assert.ErrorIs(t, err, ErrRecord, name)
	}
	i1, err := l.Record(ctx, "keys.revoked", struct {
		KeyID string `json:"key_id"`
	}{"k1"})
	require.NoError(t, err)
	i2, err := l.Record(ctx, "netseg.policy.applied", &struct {
		Rules int `json:"rules"`
	}{3})
	require.NoError(t, err)
	assert.Equal(t, i1+1, i2)
	assert.GreaterOrEqual(t, l.Durable(), i2+1)

	cls()
	_, err = l.Record(ctx, "keys.revoked", struct{}{})
	require.ErrorIs(t, err, ErrClosed, "after close the record is refused")
}

func TestSignerFailureIsReported(t *testing.T) {
	dir := t.TempDir()
	keys := audittest.New("tradecore", time.Now().Add(-time.Hour))
	s := keys.Signer()
	l, cls, err := Open(context.Background(), Config{WriterConfig: WriterConfig{Dir: dir, Logger: quiet()}, Signer: s, CheckpointInterval: time.Hour})
	require.NoError(t, err)
	s.Fail = errors.New("token removed")
	_, err = l.Record(context.Background(), "keys.test", struct{}{})
	require.NoError(t, err)
	_, err = l.Checkpoint(context.Background())
	require.Error(t, err)
	assert.Error(t, l.CheckpointErr())
	s.Fail = nil
	_, err = l.Checkpoint(context.Background())
	require.NoError(t, err)
	require.NoError(t, l.CheckpointErr())
	require.NoError(t, cls())
	_, _, err = Open(context.Background(), Config{WriterConfig: WriterConfig{Dir: dir}})
	require.ErrorContains(t, err, "Config.Signer is nil")
}

func TestHandoverCheckpoint(t *testing.T) {
	dir := t.TempDir()
	start := time.Now().Add(-time.Hour)
	keys := audittest.New("tradecore", start)
	clk := &testClock{t: time.Now()}
	keys.Now = func() time.Time { return clk.t.Add(time.Millisecond) } // rotation happens just after the clock's reading
	l, cls := openTestLog(t, dir, keys, func(c *Config) { c.Now = clk.Now })
	ctx := context.Background()
	w := l.Writer()
	c := core.Command{Kind: core.CmdEndOfDay, Seq: 1, Time: clk.t.UnixNano()}
	_, err := w.AppendCommand(&c)
	require.NoError(t, err)
	require.NoError(t, w.Commit())
	_, err = l.Checkpoint(ctx)
	require.NoError(t, err)
	clk.t = clk.t.Add(time.Second)
	_, err = l.RotateKey(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, keys.Len())
	clk.t = clk.t.Add(time.Second)
	c.Seq, c.Time = 2, clk.t.UnixNano()
	_, err = w.AppendCommand(&c)
	require.NoError(t, err)
	require.NoError(t, w.Commit())
	require.NoError(t, cls())

	notes, err := ReadCheckpoints(dir)
	require.NoError(t, err)
	require.Len(t, notes, 3)
	n, err := ParseNote(notes[1])
	require.NoError(t, err)
	require.Len(t, n.Sigs, 2, "the handover checkpoint carries both keys' signatures")
	_, by, err := VerifyCheckpoint(notes[1], keys.Verified(), "")
	require.NoError(t, err)
	assert.Equal(t, []SignedBy{{KeyID: keys.ID(0), Role: "valid"}, {KeyID: keys.ID(1), Role: "handover"}}, by)
	// Both signatures verify with the standard note verifier too.
	for i := 0; i < 2; i++ {
		nv, err := note.NewVerifier(keys.Verified().Keys[i].NoteVerifier)
		require.NoError(t, err)
		_, err = note.Open(notes[1], note.VerifierList(nv))
		require.NoError(t, err, "key %d", i)
	}
	rep, err := VerifyDir(ctx, dir, VerifyOptions{Manifest: keys.JSON(), PinnedFirstKey: keys.FirstID()})
	require.NoError(t, err)
	assert.Equal(t, sortedCopy([]string{keys.ID(0), keys.ID(1)}), sortedCopy(rep.Keys))

	// Automatic handover when the key nears its age.
	clk.t = keys.Verified().Active().Expires.Add(-30 * time.Second)
	_, cls = openTestLog(t, dir, keys, func(c *Config) { c.Now = clk.Now })
	require.NoError(t, cls())
	assert.Equal(t, 3, keys.Len(), "the log rotated the key before it expired")
	notes, _ = ReadCheckpoints(dir)
	n, _ = ParseNote(notes[len(notes)-1])
	assert.Len(t, n.Sigs, 2)
	_, err = VerifyDir(ctx, dir, VerifyOptions{Manifest: keys.JSON(), PinnedFirstKey: keys.FirstID()})
	require.NoError(t, err)
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	sortStrings(out)
	return out
}

// TestAppendAllocatesNothing: the journaler's per-record path copies into
// the preallocated buffer and hashes without allocating.
func TestAppendAllocatesNothing(t *testing.T) {
	w, err := OpenWriter(WriterConfig{Dir: t.TempDir(), Instruments: testInstruments, Logger: quiet()})
	require.NoError(t, err)
	defer w.Close()
	ev := core.Event{Kind: core.KindExecuted, Seq: 1, Instrument: 1, Account: 7, OrderID: 9, Price: 10125, Qty: 3, Leaves: 2, MatchID: 4, ContraAccount: 8, ContraOrderID: 5, ContraLeaves: 1}
	c := core.Command{Kind: core.CmdNew, Seq: 1, Instrument: 1, Account: 7, ClOrdID: 1, Side: core.Buy, Type: core.Limit, TIF: core.DAY, Price: 10125, Qty: 3}
	allocs := testing.AllocsPerRun(2000, func() {
		ev.Time++
		c.Time = ev.Time
		if _, err := w.AppendCommand(&c); err != nil {
			t.Fatal(err)
		}
		if _, err := w.AppendEvent(&ev); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

func TestOpenRepairsTornSegmentHeader(t *testing.T) {
	dir := t.TempDir()
	el := writeEngineLog(t, dir, 50, 10)
	el.close(t)
	n, _ := (&Reader{dir: dir, types: map[string]string{}}).Size()
	// A crash right after creating the next segment file.
	require.NoError(t, os.WriteFile(filepath.Join(dir, segDir, segName(n)), []byte("TCAU"), 0o600))
	w, err := OpenWriter(WriterConfig{Dir: dir, Instruments: testInstruments, Logger: quiet()})
	require.NoError(t, err)
	assert.Equal(t, n+1, w.Next(), "the instruments record follows the last complete record")
	require.NoError(t, w.Close())
	_, err = VerifyDir(context.Background(), dir, el.opts())
	require.NoError(t, err)
}

// TestWriteFailureFailsClosed: once a write fails, the writer refuses every
// record, Record returns the error (so the caller refuses the action), and
// the watermark never claims the lost records.
// TestMappedSegmentFailureFailsClosed: at write durability records are
// copied into a mapped segment; a failure to trim or roll it is sticky too.
func TestMappedSegmentFailureFailsClosed(t *testing.T) {
	w, err := OpenWriter(WriterConfig{Dir: t.TempDir(), Instruments: testInstruments, Logger: quiet()})
	require.NoError(t, err)
	require.NotNil(t, w.mm, "write durability maps its segment")
	c := core.Command{Kind: core.CmdEndOfDay, Seq: 1, Time: time.Now().UnixNano()}
	_, err = w.AppendCommand(&c)
	require.NoError(t, err)
	require.NoError(t, w.Commit())
	w.f.Close() // the disk goes away under the journaler
	require.Error(t, w.roll())
	c.Seq++
	_, err = w.AppendCommand(&c)
	require.Error(t, err, "sticky")
}

func TestWriteFailureFailsClosed(t *testing.T) {
	dir := t.TempDir()
	keys := audittest.New("tradecore", time.Now().Add(-time.Hour))
	// The write(2) path: fsync durability.
	l, cls := openTestLog(t, dir, keys, func(c *Config) { c.Durability = DurabilityFsync })
	defer cls()
	w := l.Writer()
	c := core.Command{Kind: core.CmdEndOfDay, Seq: 1, Time: time.Now().UnixNano()}
	_, err := w.AppendCommand(&c)
	require.NoError(t, err)
	before := w.Durable()
	w.f.Close() // the disk goes away under the journaler
	require.Error(t, w.Commit())
	assert.Equal(t, before, w.Durable())
	c.Seq++
	_, err = w.AppendCommand(&c)
	require.Error(t, err, "sticky")
	done := make(chan error, 1)
	go func() {
		_, err := l.Record(context.Background(), "keys.revoked", struct{}{})
		done <- err
	}()
	for !w.Pending() {
		time.Sleep(time.Millisecond)
	}
	w.fail(w.err) // the journaler's next cycle fails queued records too
	require.Error(t, <-done)
}

// TestDurableFromAnotherGoroutine reads the watermark and head while the
// journaler commits (run with -race).
func TestDurableFromAnotherGoroutine(t *testing.T) {
	w, err := OpenWriter(WriterConfig{Dir: t.TempDir(), Logger: quiet()})
	require.NoError(t, err)
	stop := make(chan struct{})
	seen := make(chan uint64)
	go func() {
		var last uint64
		for {
			select {
			case <-stop:
				seen <- last
				return
			default:
			}
			d := w.Durable()
			if d < last {
				panic("watermark went down")
			}
			last = d
			_ = w.Head()
		}
	}()
	t0 := time.Now().UnixNano()
	for i := 0; i < 2000; i++ {
		c := core.Command{Kind: core.CmdEndOfDay, Seq: uint64(i + 1), Time: t0 + int64(i)}
		_, err := w.AppendCommand(&c)
		require.NoError(t, err)
		if i%7 == 0 {
			require.NoError(t, w.Commit())
		}
	}
	require.NoError(t, w.Commit())
	close(stop)
	assert.LessOrEqual(t, <-seen, w.Durable())
	require.NoError(t, w.Close())
}

// TestReaderDuringWrites reads a log another writer is appending to: it sees
// a prefix of complete records, never a partial one.
func TestReaderDuringWrites(t *testing.T) {
	dir := t.TempDir()
	w, err := OpenWriter(WriterConfig{Dir: dir, Logger: quiet(), SegmentSize: 1 << 16, BufferSize: 1 << 17})
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t0 := time.Now().UnixNano()
		for i := 0; i < 3000; i++ {
			c := core.Command{Kind: core.CmdEndOfDay, Seq: uint64(i + 1), Time: t0 + int64(i)}
			w.AppendCommand(&c)
			if i%5 == 0 {
				w.Commit()
			}
		}
		w.Commit()
	}()
	r, _ := OpenReader(dir)
	for k := 0; k < 20; k++ {
		var n uint64
		require.NoError(t, r.Read(0, 0, func(e *Entry) error {
			require.Equal(t, n, e.Index)
			n++
			return nil
		}))
	}
	<-done
	require.NoError(t, w.Close())
}
