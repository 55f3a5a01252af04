package gateway_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/proto"
)

// received collects one account's sequenced messages by Seq, failing on a
// gap or on a message that differs from the one received before under the
// same Seq.
type received struct {
	t    *testing.T
	byNo map[uint64][]byte
	last uint64
}

func (r *received) add(m proto.Message) {
	r.t.Helper()
	f := m.AppendFrame(nil)
	seq, ok := proto.Sequenced(f)
	require.True(r.t, ok, "%#v is not sequenced", m)
	require.Equal(r.t, r.last+1, seq, "gapless: after %d came %d", r.last, seq)
	if old, ok := r.byNo[seq]; ok {
		require.True(r.t, bytes.Equal(old, f), "message %d differs on replay:\n%x\n%x", seq, old, f)
	}
	r.byNo[seq] = f
	r.last = seq
}

// TestReconnectReplays: a client that disconnects in the middle of a flow
// — while the other side keeps trading against its orders — and logs in
// again with the last Seq it processed + 1 gets exactly the messages it
// missed, then the live ones; across a server restart too; and a full
// replay from 1 gives back every message byte for byte. Nothing lost,
// nothing duplicated.
func TestReconnectReplays(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	ka, kb := h.trader("a", 1), h.trader("b", 2)
	rec := &received{t: t, byNo: map[uint64][]byte{}}
	accepted := map[uint64]bool{}
	note := func(m proto.Message) {
		rec.add(m)
		if acc, ok := m.(*proto.Accepted); ok {
			accepted[acc.ClOrdID] = true
		}
	}
	ref := uint64(0)
	place := func(c *conn, n int) {
		for range n {
			ref++
			c.send(&proto.NewOrder{ClOrdID: ref, Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.GTC, Price: 100 + int64(ref%50), Qty: 2})
		}
	}
	bref := uint64(0)
	hit := func(b *conn, n int) { // account 2 sells into account 1's bids: fills for account 1
		for range n {
			bref++
			b.send(&proto.NewOrder{ClOrdID: bref, Instrument: 1, Side: core.Sell, OrdType: core.Limit, TIF: core.IOC, Price: 100, Qty: 3})
		}
	}
	b, _ := h.session(kb, 0)
	drainB := func() {
		for {
			if _, err := b.tryNext(50_000_000); err != nil { // 50 ms of quiet
				return
			}
		}
	}

	a, la := h.session(ka, 0)
	require.Equal(t, uint64(1), la.NextSeq)
	place(a, 150)
	for range 100 { // read only part of it
		note(a.next())
	}
	a.c.Close() // gone, 50+ messages unread
	hit(b, 20)  // fills for account 1 while it is away
	drainB()

	for round := range 3 {
		t.Run(fmt.Sprintf("reconnect %d", round), func(t *testing.T) {
			if round == 1 {
				h.restart()
				b, _ = h.session(kb, 0)
			}
			c, la := h.relogin(ka, rec.last+1)
			require.Equal(t, rec.last+1, la.ReplayFrom)
			require.Greater(t, la.NextSeq, la.ReplayFrom, "there is something to replay")
			for rec.last+1 < la.NextSeq {
				note(c.next())
			}
			require.Greater(t, la.NextClOrdID, ref, "the next reference is above every one used")
			// Live again: more orders and fills, read partly.
			place(c, 40)
			hit(b, 10)
			drainB()
			for range 45 {
				note(c.next())
			}
			c.c.Close()
		})
	}

	// Everything from the start, byte for byte as first sent; then nothing
	// more than the stream holds.
	c, la := h.relogin(ka, 1)
	require.Equal(t, uint64(1), la.ReplayFrom)
	full := &received{t: t, byNo: rec.byNo}
	for full.last+1 < la.NextSeq {
		full.add(c.next())
	}
	for i := uint64(1); i <= ref; i++ {
		require.True(t, accepted[i] || full.byNo[i] != nil, "order %d acknowledged", i)
	}
	n := 0
	for _, f := range full.byNo {
		if proto.Type(f[2]) == proto.TAccepted {
			n++
		}
	}
	require.Equal(t, int(ref), n, "one Accepted per order, no more")
	c.send(&proto.ReferenceQuery{})
	require.Equal(t, ref+1, expect[proto.NextReference](t, c).NextClOrdID)
}
