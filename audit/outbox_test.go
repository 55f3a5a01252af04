package audit

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/internal/audittest"
)

// outboxRecords returns the log's records of outbox lines (and damaged
// ones) in order: type and outbox index.
func outboxRecords(t *testing.T, dir string) (types []string, idx []uint64) {
	t.Helper()
	r, err := OpenReader(dir)
	require.NoError(t, err)
	require.NoError(t, r.Read(0, 0, func(e *Entry) error {
		if e.Type != "netseg.policy.applied" && e.Type != TypeOutboxDamaged {
			return nil
		}
		h, err := ParseLeaf(e.Leaf)
		require.NoError(t, err)
		var b struct {
			OutboxIndex uint64 `json:"outbox_index"`
		}
		require.NoError(t, json.Unmarshal(h.Body, &b))
		types, idx = append(types, e.Type), append(idx, b.OutboxIndex)
		return nil
	}))
	return types, idx
}

// TestOutboxReachesTheLog: records another process leaves in the outbox
// while the log is closed are copied in at open, those left while it is
// open within the interval, a torn line is cut off before the next append,
// a damaged line is recorded as damaged (never skipped), and a reopen copies
// nothing twice. The copies verify with the rest of the log.
func TestOutboxReachesTheLog(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	ob := Outbox{Dir: dir}
	type applied struct {
		Digest string `json:"digest"`
	}
	i, err := ob.Record(ctx, "netseg.policy.applied", applied{"sha256:aa"})
	require.NoError(t, err)
	assert.Equal(t, uint64(0), i)
	// A torn line (a writer killed mid-write) is cut off by the next append.
	f, err := os.OpenFile(filepath.Join(dir, OutboxFile), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"index":1,"time":"2026-`)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	i, err = ob.Record(ctx, "netseg.policy.applied", applied{"sha256:bb"})
	require.NoError(t, err)
	assert.Equal(t, uint64(1), i)
	_, err = ob.Record(ctx, "cmd.new", applied{"x"})
	require.ErrorIs(t, err, ErrRecord, "reserved types are refused as by Log.Record")

	keys := audittest.New("tradecore", time.Now().Add(-time.Hour))
	open := func() (*Log, func() error) {
		l, cls, err := Open(ctx, Config{WriterConfig: WriterConfig{Dir: dir, Logger: quiet()}, Signer: keys.Signer(),
			OutboxInterval: 20 * time.Millisecond})
		require.NoError(t, err)
		return l, cls
	}
	wait := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool {
			b, err := os.ReadFile(filepath.Join(dir, outboxStateFile))
			var st outboxState
			return err == nil && json.Unmarshal(b, &st) == nil && st.Next == uint64(n)
		}, 10*time.Second, 10*time.Millisecond)
	}
	_, cls := open()
	wait(2)
	_, err = ob.Record(ctx, "netseg.policy.applied", applied{"sha256:cc"})
	require.NoError(t, err)
	// A damaged line, written behind the outbox's back.
	f, err = os.OpenFile(filepath.Join(dir, OutboxFile), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"index":3,"time":"now","type":"netseg.policy.applied","body":{}}` + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	wait(4)
	require.NoError(t, cls())
	_, cls = open()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, cls())

	types, idx := outboxRecords(t, dir)
	assert.Equal(t, []string{"netseg.policy.applied", "netseg.policy.applied", "netseg.policy.applied", TypeOutboxDamaged}, types)
	assert.Equal(t, []uint64{0, 1, 2, 3}, idx)
	_, err = VerifyDir(ctx, dir, VerifyOptions{Manifest: keys.JSON(), PinnedFirstKey: keys.FirstID()})
	require.NoError(t, err)
}

func FuzzParseOutboxLine(f *testing.F) {
	f.Add([]byte(`{"index":0,"time":"2026-01-02T03:04:05.1Z","type":"netseg.policy.applied","body":{"digest":"x"}}`), uint64(0))
	f.Add([]byte(`{"index":3,"time":"now","type":"netseg.policy.applied","body":{}}`), uint64(3))
	f.Add([]byte(`{"index":1,"time":"2026-01-02T03:04:05Z","type":"cmd.new","body":{"a":1.5}}`), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, want uint64) {
		l, err := ParseOutboxLine(b, want)
		if err != nil {
			return
		}
		// What parses is a record Log.Record accepts.
		_, err = EncodeBody(OutboxRecord{OutboxIndex: l.Index, OutboxTime: l.Time, Body: l.Body})
		require.NoError(t, err)
	})
}
