package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/internal/audittest"
)

// keyLog writes a log of service records at explicit times, with the keys.*
// records of a test manifest, and signs checkpoints on a test clock.
type keyLog struct {
	t     *testing.T
	dir   string
	keys  *audittest.Keys
	clock *testClock
	l     *Log
	cls   func() error
	at    time.Time
	sg    *audittest.Signer
}

func newKeyLog(t *testing.T, keys *audittest.Keys, start time.Time) *keyLog {
	k := &keyLog{t: t, dir: t.TempDir(), keys: keys, clock: &testClock{t: start}, at: start, sg: keys.Signer()}
	k.l, k.cls = openTestLog(t, k.dir, keys, func(c *Config) { c.Now, c.Signer = k.clock.Now, k.sg })
	return k
}

// add appends a record at the log's next time (one second after the last).
func (k *keyLog) add(typ string, body any) {
	k.t.Helper()
	b, err := EncodeBody(body)
	require.NoError(k.t, err)
	k.at = k.at.Add(time.Second)
	_, err = k.l.Writer().AppendRecord(k.at.UnixNano(), typ, b)
	require.NoError(k.t, err)
	require.NoError(k.t, k.l.Writer().Commit())
}

func (k *keyLog) keyRecord(i int) {
	k.t.Helper()
	typ, body := k.keys.Record(i)
	k.add(typ, body)
}

func (k *keyLog) checkpoint() Checkpoint {
	k.t.Helper()
	k.clock.t = k.at
	c, err := k.l.Checkpoint(context.Background())
	require.NoError(k.t, err)
	return c
}

func (k *keyLog) close() { k.t.Helper(); require.NoError(k.t, k.cls()) }

func (k *keyLog) opts() VerifyOptions {
	return VerifyOptions{Manifest: k.keys.JSON(), PinnedFirstKey: k.keys.FirstID()}
}

// forge closes the log and appends a checkpoint of the whole tree, claiming
// time at, signed by key priv (a thief's copy of a key).
func (k *keyLog) forge(at time.Time, priv ed25519.PrivateKey) {
	k.t.Helper()
	h := k.l.Writer().Head()
	k.sg.Fail = errors.New("the operator's HSM is not the thief's")
	_ = k.cls() // its final checkpoint fails: the thief's is the last
	c := Checkpoint{Origin: "tradecore", Size: h.Size, Root: h.Root, Time: at.UnixNano()}
	text := c.Text()
	kid, err := NoteKeyID("tradecore", priv.Public())
	require.NoError(k.t, err)
	n := Note{Text: text, Sigs: []NoteSig{{Name: "tradecore", KeyID: kid, Sig: ed25519.Sign(priv, text)}}}
	require.NoError(k.t, appendCheckpointFile(k.dir, n.Marshal()))
}

// TestKeyRecordsAnchorCheckpoints: the log's keys.* records are checked
// against the auditor's manifest, and a checkpoint whose tree records the
// revocation of its signing key is refused whatever time it claims (the
// log-anchored rule of docs/keys.md), so a thief holding a copy of a
// revoked key cannot extend the log by back-dating.
func TestKeyRecordsAnchorCheckpoints(t *testing.T) {
	t0 := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	ctx := context.Background()

	t.Run("good-log", func(t *testing.T) {
		keys := audittest.New("tradecore", t0)
		k := newKeyLog(t, keys, t0)
		k.keyRecord(0)
		k.add("test.marker", struct{ N int }{1})
		k.checkpoint()
		rev := k.at.Add(time.Second)
		keys.Revoke(0, rev, rev, "stolen laptop")
		k.at = rev
		k.keyRecord(1)
		k.keyRecord(1) // recorded twice after a crash: the same entry
		k.add("test.marker", struct{ N int }{2})
		k.checkpoint()
		k.close()
		res, err := VerifyDir(ctx, k.dir, k.opts())
		require.NoError(t, err)
		assert.Equal(t, uint64(3), res.KeyRecords)
		assert.Empty(t, res.UnrecordedKeyEntries)
	})

	t.Run("revoked-key-backdated-over-its-revocation", func(t *testing.T) {
		keys := audittest.New("tradecore", t0)
		k := newKeyLog(t, keys, t0)
		k.keyRecord(0)
		k.checkpoint()
		// The revocation takes effect an hour after the records: a
		// checkpoint claiming a time before it passes the time rule.
		rev := t0.Add(time.Hour)
		keys.Revoke(0, rev, rev, "stolen laptop")
		k.keyRecord(1)
		k.add("test.forged", struct{ N int }{1})
		k.forge(k.at, keys.Private(0))
		_, err := VerifyDir(ctx, k.dir, k.opts())
		require.ErrorIs(t, err, ErrVerify)
		assert.Contains(t, err.Error(), "revoked")
		assert.Contains(t, err.Error(), "inside this checkpoint's tree")
	})

	t.Run("manifest-older-than-the-log", func(t *testing.T) {
		keys := audittest.New("tradecore", t0)
		old := keys.JSON()
		k := newKeyLog(t, keys, t0)
		k.keyRecord(0)
		k.checkpoint()
		keys.Rotate(t0.Add(time.Hour))
		k.keyRecord(1)
		// A thief holding key 0 and the manifest before its rotation.
		k.forge(k.at, keys.Private(0))
		o := k.opts()
		o.Manifest = old
		_, err := VerifyDir(ctx, k.dir, o)
		require.ErrorIs(t, err, ErrVerify)
		assert.Contains(t, err.Error(), "older than the log")
	})

	t.Run("record-of-another-manifest", func(t *testing.T) {
		keys := audittest.New("tradecore", t0)
		k := newKeyLog(t, keys, t0)
		typ, body := keys.Record(0)
		body.EntryHash = "00" + body.EntryHash[2:]
		k.add(typ, body)
		k.checkpoint()
		k.close()
		_, err := VerifyDir(ctx, k.dir, k.opts())
		require.ErrorIs(t, err, ErrVerify)
		assert.Contains(t, err.Error(), "recorded another manifest")
	})

	t.Run("records-out-of-order", func(t *testing.T) {
		keys := audittest.New("tradecore", t0)
		keys.Rotate(t0.Add(time.Minute))
		keys.Rotate(t0.Add(2 * time.Minute))
		k := newKeyLog(t, keys, t0.Add(3*time.Minute))
		k.keyRecord(0)
		k.keyRecord(2)
		k.checkpoint()
		k.close()
		_, err := VerifyDir(ctx, k.dir, k.opts())
		require.ErrorIs(t, err, ErrVerify)
		assert.Contains(t, err.Error(), "entries 1 to 1 are missing")
	})

	t.Run("unrecorded-revocation", func(t *testing.T) {
		keys := audittest.New("tradecore", t0)
		k := newKeyLog(t, keys, t0)
		k.keyRecord(0)
		k.checkpoint()
		rev := k.at.Add(time.Second)
		keys.Revoke(0, rev, rev, "stolen laptop")
		k.at = rev
		// Within the grace the log may not have recorded it yet: reported.
		k.add("test.marker", struct{ N int }{1})
		k.checkpoint()
		res, err := VerifyDir(ctx, k.dir, k.opts())
		require.NoError(t, err)
		assert.Equal(t, []uint64{1}, res.UnrecordedKeyEntries)
		// A checkpoint a grace later still without it fails.
		k.at = k.at.Add(DefaultKeyRecordGrace)
		k.add("test.marker", struct{ N int }{2})
		k.checkpoint()
		k.close()
		_, err = VerifyDir(ctx, k.dir, k.opts())
		require.ErrorIs(t, err, ErrVerify)
		assert.Contains(t, err.Error(), "does not record that revocation")
	})

	t.Run("bundle-checks-records-too", func(t *testing.T) {
		keys := audittest.New("tradecore", t0)
		k := newKeyLog(t, keys, t0)
		k.keyRecord(0)
		k.checkpoint()
		rev := t0.Add(time.Hour)
		keys.Revoke(0, rev, rev, "stolen laptop")
		k.keyRecord(1)
		k.forge(k.at, keys.Private(0))
		f := filepath.Join(t.TempDir(), "bundle.jsonl")
		out, err := os.Create(f)
		require.NoError(t, err)
		_, err = ExportBundle(ctx, k.dir, 0, 0, out)
		out.Close()
		require.NoError(t, err, "export copies the log as it is; the verifier judges it")
		in, err := os.Open(f)
		require.NoError(t, err)
		defer in.Close()
		_, err = VerifyBundle(ctx, in, k.opts())
		require.ErrorIs(t, err, ErrVerify)
	})
}
