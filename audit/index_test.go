package audit

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
)

func TestIndexQueryAgainstScan(t *testing.T) {
	dir := t.TempDir()
	el := writeEngineLog(t, dir, 1200, 50)
	ctx := context.Background()
	ix, err := OpenIndex(dir)
	require.NoError(t, err)
	// Index part of the log, append more, index again (incremental runs).
	n1, err := ix.Update(ctx)
	require.NoError(t, err)
	w := el.log.Writer()
	for i := 0; i < 30; i++ {
		c := core.Command{Kind: core.CmdCancel, Seq: uint64(1201 + i), Time: time.Now().UnixNano(), Instrument: 1, Account: 7, OrigClOrdID: 1}
		_, err := w.AppendCommand(&c)
		require.NoError(t, err)
	}
	require.NoError(t, w.Commit())
	el.close(t)

	// Reference: a full scan.
	r, _ := OpenReader(dir)
	var all []Entry
	sc := Scales{}
	var acct7, order5 []uint64
	require.NoError(t, r.Read(0, 0, func(e *Entry) error {
		all = append(all, Entry{Index: e.Index, Time: e.Time, Type: e.Type, Leaf: append([]byte(nil), e.Leaf...)})
		var c core.Command
		var ev core.Event
		switch {
		case e.Type == TypeInstruments:
			h, _ := ParseLeaf(e.Leaf)
			sc, _ = parseInstruments(h.Body)
		case strings.HasPrefix(e.Type, "cmd."):
			_, err := DecodeCommand(e.Leaf, &c, sc)
			require.NoError(t, err)
			if c.Account == 7 {
				acct7 = append(acct7, e.Index)
			}
		case strings.HasPrefix(e.Type, "event."):
			_, err := DecodeEvent(e.Leaf, &ev, sc)
			require.NoError(t, err)
			if ev.Account == 7 || ev.ContraAccount == 7 {
				acct7 = append(acct7, e.Index)
			}
			if ev.OrderID == 5 || ev.ContraOrderID == 5 {
				order5 = append(order5, e.Index)
			}
		}
		return nil
	}))
	require.Greater(t, uint64(len(all)), n1)
	idxs := func(es []Entry) []uint64 {
		var out []uint64
		for _, e := range es {
			out = append(out, e.Index)
		}
		return out
	}
	got, err := ix.Search(ctx, Query{Account: 7, Limit: 100000})
	require.NoError(t, err)
	assert.Equal(t, acct7, idxs(got))
	got, err = ix.Search(ctx, Query{Order: 5})
	require.NoError(t, err)
	assert.Equal(t, order5, idxs(got))
	for _, e := range got {
		assert.Equal(t, all[e.Index].Leaf, e.Leaf)
	}
	mid := all[len(all)/2].Time
	got, err = ix.Search(ctx, Query{From: mid, To: mid + 50_000, TypePrefix: "cmd.", Limit: 100000})
	require.NoError(t, err)
	var want []uint64
	for _, e := range all {
		if e.Time >= mid && e.Time < mid+50_000 && strings.HasPrefix(e.Type, "cmd.") {
			want = append(want, e.Index)
		}
	}
	assert.Equal(t, want, idxs(got))
	got, err = ix.Search(ctx, Query{Account: 7, Instrument: 1, TypePrefix: "cmd.cancel", Limit: 5})
	require.NoError(t, err)
	assert.Len(t, got, 5)
}

func TestDailyReportSignedAndRecomputed(t *testing.T) {
	dir := t.TempDir()
	el := writeEngineLog(t, dir, 500, 50)
	el.close(t)
	ctx := context.Background()
	rep, err := BuildReport(ctx, dir, time.Now(), "tradecore")
	require.NoError(t, err)
	assert.EqualValues(t, 500, rep.Orders)
	assert.NotZero(t, rep.Trades)
	assert.NotEmpty(t, rep.Checkpoint)
	note, err := SignReport(ctx, el.keys.Signer(), rep, time.Now())
	require.NoError(t, err)
	got, by, err := VerifyReport(note, el.keys.Verified())
	require.NoError(t, err)
	assert.Equal(t, rep, got)
	assert.Equal(t, el.keys.ID(0), by[0].KeyID)
	// Its checkpoint verifies and can be held against the log later.
	_, err = VerifyDir(ctx, dir, VerifyOptions{Manifest: el.keys.JSON(), PinnedFirstKey: el.keys.FirstID(), Checkpoints: [][]byte{[]byte(got.Checkpoint)}})
	require.NoError(t, err)
	// An altered report fails.
	var m map[string]any
	n, _ := ParseNote(note)
	require.NoError(t, json.Unmarshal(n.Text, &m))
	bad := strings.Replace(string(note), `"orders":500`, `"orders":499`, 1)
	_, _, err = VerifyReport([]byte(bad), el.keys.Verified())
	assert.ErrorIs(t, err, ErrCheckpoint)
}
