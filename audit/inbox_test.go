package audit

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/internal/audittest"
)

type inboxTestBody struct {
	Device string `json:"device"`
	N      int    `json:"n"`
}

// inboxRecords reads the records of type typ from the log in dir.
func inboxRecords(t *testing.T, dir, typ string) []InboxBody {
	t.Helper()
	r, err := OpenReader(dir)
	require.NoError(t, err)
	var out []InboxBody
	require.NoError(t, r.Read(0, 0, func(e *Entry) error {
		if e.Type != typ {
			return nil
		}
		h, err := ParseLeaf(e.Leaf)
		require.NoError(t, err)
		var b InboxBody
		require.NoError(t, json.Unmarshal(h.Body, &b))
		out = append(out, b)
		return nil
	}))
	return out
}

func openCommittingLog(t *testing.T, dir string) (*Log, func() error) {
	l, cls, _ := openCommittingLogKeys(t, dir)
	return l, cls
}

func openCommittingLogKeys(t *testing.T, dir string) (*Log, func() error, *audittest.Keys) {
	t.Helper()
	keys := audittest.New("tradecore", time.Now().Add(-time.Hour))
	l, cls := openTestLog(t, dir, keys, func(c *Config) { c.ExternalCommit = false })
	return l, cls, keys
}

// Records submitted while another process holds the log reach the log, in
// order, with their bodies unchanged, and only once.
func TestInboxSubmitThenIngest(t *testing.T) {
	dir := t.TempDir()
	l, cls, keys := openCommittingLogKeys(t, dir)
	var ids []string
	for i := range 3 {
		id, err := Submit(dir, "tpm.device.approved", inboxTestBody{Device: "d1", N: i})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	waiting, err := ReadInbox(dir)
	require.NoError(t, err)
	require.Len(t, waiting, 3)

	n, err := l.IngestInbox(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	n, err = l.IngestInbox(context.Background())
	require.NoError(t, err)
	assert.Zero(t, n, "an ingested inbox is empty")
	require.NoError(t, cls())

	got := inboxRecords(t, dir, "tpm.device.approved")
	require.Len(t, got, 3)
	for i, b := range got {
		assert.Equal(t, ids[i], b.InboxID, "submission order is kept")
		var body inboxTestBody
		require.NoError(t, json.Unmarshal(b.Body, &body))
		assert.Equal(t, inboxTestBody{Device: "d1", N: i}, body)
		assert.NotZero(t, b.Submitted)
	}
	_, err = VerifyDir(context.Background(), dir, VerifyOptions{Manifest: keys.JSON(), PinnedFirstKey: keys.FirstID()})
	require.NoError(t, err, "the ingested records verify like any other")
}

// The inbox refuses what Log.Record refuses: reserved types and bodies that
// break the log's rules are never queued.
func TestInboxRefusesWhatRecordRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		typ  string
		body any
	}{
		"reserved-prefix": {"event.executed", inboxTestBody{}},
		"bad-type":        {"Not A Type", inboxTestBody{}},
		"float-body":      {"x.y", struct{ F float64 }{1.5}},
		"not-an-object":   {"x.y", 7},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Submit(dir, tc.typ, tc.body)
			require.ErrorIs(t, err, ErrRecord)
		})
	}
	waiting, err := ReadInbox(dir)
	require.NoError(t, err)
	assert.Empty(t, waiting)
}

// A submitter that died in the middle of its write left half a line: it was
// never acknowledged, is not ingested, and does not damage the next entry.
func TestInboxTornLineIsDropped(t *testing.T) {
	dir := t.TempDir()
	_, err := Submit(dir, "netseg.policy.applied", inboxTestBody{N: 1})
	require.NoError(t, err)
	path := filepath.Join(dir, inboxDir, inboxFile)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"id":"0123456789abcdef0123456789abcdef","type":"netseg.po`)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	waiting, err := ReadInbox(dir)
	require.NoError(t, err)
	assert.Len(t, waiting, 1, "the torn line is not an entry")
	_, err = Submit(dir, "netseg.policy.applied", inboxTestBody{N: 2})
	require.NoError(t, err)

	l, cls := openCommittingLog(t, dir)
	n, err := l.IngestInbox(context.Background())
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	require.NoError(t, cls())
	got := inboxRecords(t, dir, "netseg.policy.applied")
	require.Len(t, got, 2)
}

// A damaged line (not a torn tail) stops ingestion without losing anything.
func TestInboxDamagedLineRefused(t *testing.T) {
	dir := t.TempDir()
	_, err := Submit(dir, "netseg.policy.applied", inboxTestBody{N: 1})
	require.NoError(t, err)
	path := filepath.Join(dir, inboxDir, inboxFile)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, append([]byte("garbage\n"), b...), 0o600))
	l, cls := openCommittingLog(t, dir)
	defer cls()
	_, err = l.IngestInbox(context.Background())
	require.ErrorIs(t, err, ErrInbox)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, append([]byte("garbage\n"), b...), after, "nothing is dropped")
}

// Many submitters at once while the log ingests: every entry lands exactly
// once.
func TestInboxConcurrentSubmitters(t *testing.T) {
	dir := t.TempDir()
	l, cls := openCommittingLog(t, dir)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	stop := make(chan struct{})
	ingested := make(chan int, 1)
	go func() {
		total := 0
		for {
			n, err := l.IngestInbox(context.Background())
			assert.NoError(t, err)
			total += n
			select {
			case <-stop:
				n, err := l.IngestInbox(context.Background())
				assert.NoError(t, err)
				ingested <- total + n
				return
			default:
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := Submit(dir, "attest.concurrent", inboxTestBody{N: w*1000 + i})
				assert.NoError(t, err)
			}
		}()
	}
	wg.Wait()
	close(stop)
	assert.Equal(t, writers*each, <-ingested)
	require.NoError(t, cls())
	got := inboxRecords(t, dir, "attest.concurrent")
	seen := map[string]bool{}
	for _, b := range got {
		assert.False(t, seen[b.InboxID], "each entry once")
		seen[b.InboxID] = true
	}
	assert.Len(t, seen, writers*each)
}

func FuzzParseInbox(f *testing.F) {
	f.Add([]byte(`{"id":"0123456789abcdef0123456789abcdef","type":"a.b","submitted":1,"body":{"n":1}}` + "\n"))
	f.Add([]byte("garbage\n{\n"))
	f.Add([]byte(`{"id":"0123456789abcdef0123456789abcdef","type":"a.b","submitted":1,"body":{"n":1.5}}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseInbox(data)
		if err != nil {
			return
		}
		for _, e := range entries {
			if len(e.ID) != 32 || checkServiceType(e.Type) != nil || CheckBody(e.Body) != nil {
				t.Fatalf("accepted an invalid entry %+v", e)
			}
		}
	})
}
