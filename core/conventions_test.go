package core_test

// Tests of the matching conventions of issue 14 (docs/engine.md): stops
// elected by every print, the order in which elected stops enter, the
// fillable pre-check under every STP mode, DisplayQty across a replace, and
// PostOnly with MinQty.

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
)

// script applies scenario-style command lines (the syntax of TestScenarios:
// `new acct=1 cl=1 side=sell px=100 qty=1`, `replace acct=1 orig=1 cl=2 ...`)
// to a fresh engine with one instrument (id 1, band 1..1000) and returns the
// events of each line. It checks the invariants after every line.
func script(t *testing.T, lines ...string) [][]core.Event {
	t.Helper()
	evs, _ := scriptEngine(t, lines...)
	return evs
}

// scriptEngine is script, also returning the engine.
func scriptEngine(t *testing.T, lines ...string) ([][]core.Event, *core.Engine) {
	t.Helper()
	cfg := core.Config{Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000}}, MaxOrders: 1024}
	var got []core.Event
	eng, err := core.New(cfg, func(b []core.Event) { got = append(got, b...) })
	require.NoError(t, err)
	refs := refBook{}
	out := make([][]core.Event, 0, len(lines))
	for i, line := range lines {
		verb, kv := parseLine(t, "script", i+1, line)
		c := command(t, "script", i+1, verb, kv)
		c.Seq = uint64(i + 1)
		refs.name(&c)
		got = got[:0]
		eng.Apply(&c)
		eng.Flush()
		refs.learn(got)
		out = append(out, append([]core.Event(nil), got...))
		require.NoError(t, eng.CheckInvariants(), "after line %d: %s", i+1, line)
	}
	return out, eng
}

// story condenses events to what an order's owner sees, one short line per
// order event (book events, trades and acceptances left out):
// "executed oid=7 px=99 qty=1", "triggered oid=3", "cancelled oid=5 qty=1
// market-remainder", "rejected post-only-min-qty".
func story(evs []core.Event) []string {
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case core.KindExecuted:
			out = append(out, fmt.Sprintf("executed oid=%d px=%d qty=%d", e.OrderID, e.Price, e.Qty))
		case core.KindTriggered:
			out = append(out, fmt.Sprintf("triggered oid=%d", e.OrderID))
		case core.KindCancelled, core.KindReduced, core.KindExpired:
			out = append(out, fmt.Sprintf("%s oid=%d qty=%d %s", e.Kind, e.OrderID, e.Qty, e.Reason))
		case core.KindRejected:
			out = append(out, fmt.Sprintf("rejected %s", e.Reason))
		case core.KindReplaced:
			out = append(out, fmt.Sprintf("replaced oid=%d", e.OrderID))
		}
	}
	return out
}

// feed condenses the public market-data events: "book-add oid=1 px=100
// qty=10" (Qty = shown lots).
func feed(evs []core.Event) []string {
	var out []string
	for _, e := range evs {
		switch e.Kind {
		case core.KindBookAdd, core.KindBookReplace, core.KindBookCancel, core.KindBookDelete, core.KindBookExecute:
			out = append(out, fmt.Sprintf("%s oid=%d px=%d qty=%d leaves=%d", e.Kind, e.OrderID, e.Price, e.Qty, e.Leaves))
		}
	}
	return out
}

func last(evs [][]core.Event) []core.Event { return evs[len(evs)-1] }

// TestPostOnlyMinQty (issue 14, item 5): a post-only order never executes on
// arrival, so a minimum quantity could never be met; it is refused at entry
// with its own reason instead of being accepted and always cancelled. A
// replace carries no MinQty, so it cannot add one to a post-only order.
func TestPostOnlyMinQty(t *testing.T) {
	cases := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"refused", []string{
			"new acct=1 cl=1 side=buy px=100 qty=10 min=1 post=1",
		}, []string{"rejected post-only-min-qty"}},
		{"refused-gtc-full-min", []string{
			"new acct=1 cl=1 side=sell px=100 qty=10 min=10 post=1 tif=gtc",
		}, []string{"rejected post-only-min-qty"}},
		{"refused-before-would-take", []string{ // check 14 precedes check 16
			"new acct=2 cl=1 side=sell px=100 qty=5",
			"new acct=1 cl=1 side=buy px=100 qty=10 min=1 post=1",
		}, []string{"rejected post-only-min-qty"}},
		{"post-only-alone-rests", []string{
			"new acct=1 cl=1 side=buy px=100 qty=10 post=1",
		}, nil},
		{"min-qty-alone-trades", []string{
			"new acct=2 cl=1 side=sell px=100 qty=10",
			"new acct=1 cl=1 side=buy px=100 qty=10 min=5",
		}, []string{"executed oid=2 px=100 qty=10"}},
		{"replace-ignores-min-qty", []string{
			"new acct=1 cl=1 side=buy px=100 qty=10 post=1",
			"replace acct=1 orig=1 cl=2 px=101 qty=12 min=5",
		}, []string{"replaced oid=1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := last(script(t, tc.lines...))
			require.Equal(t, tc.want, story(got))
		})
	}
}

// TestDisplayQtyAcrossReplace (issue 14, item 4): DisplayQty stays across a
// replace, also when it equalled the quantity at entry ("show all" of that
// quantity): a replace to a larger size shows DisplayQty lots and hides the
// rest, whichever way the replace goes (keeps its price, moves, or crosses
// and rests the remainder). DisplayQty 0 shows everything, always.
func TestDisplayQtyAcrossReplace(t *testing.T) {
	cases := []struct {
		name  string
		lines []string
		feed  []string // market data of the last line
		open  string   // "shown+hidden" of order 1 after it
	}{
		{"equal-then-larger", []string{
			"new acct=1 cl=1 side=sell px=100 qty=10 display=10 tif=gtc",
			"replace acct=1 orig=1 cl=2 px=100 qty=20",
		}, []string{"book-replace oid=1 px=100 qty=10 leaves=10"}, "10+10"},
		{"equal-then-larger-moved", []string{
			"new acct=1 cl=1 side=sell px=100 qty=10 display=10 tif=gtc",
			"replace acct=1 orig=1 cl=2 px=105 qty=30",
		}, []string{"book-replace oid=1 px=105 qty=10 leaves=10"}, "10+20"},
		{"equal-then-larger-crossing", []string{
			"new acct=2 cl=1 side=buy px=99 qty=4",
			"new acct=1 cl=1 side=sell px=100 qty=10 display=10 tif=gtc",
			"replace acct=1 orig=1 cl=2 px=99 qty=20",
		}, []string{
			"book-delete oid=2 px=100 qty=10 leaves=0",
			"book-execute oid=1 px=99 qty=4 leaves=0",
			"book-add oid=2 px=99 qty=10 leaves=10",
		}, "10+6"},
		{"equal-then-smaller", []string{
			"new acct=1 cl=1 side=sell px=100 qty=10 display=10 tif=gtc",
			"replace acct=1 orig=1 cl=2 px=100 qty=4",
		}, []string{"book-cancel oid=1 px=100 qty=6 leaves=4"}, "4+0"},
		{"zero-shows-all", []string{
			"new acct=1 cl=1 side=sell px=100 qty=10 tif=gtc",
			"replace acct=1 orig=1 cl=2 px=100 qty=20",
		}, []string{"book-replace oid=1 px=100 qty=20 leaves=20"}, "20+0"},
		{"iceberg-then-larger", []string{
			"new acct=1 cl=1 side=sell px=100 qty=10 display=3 tif=gtc",
			"replace acct=1 orig=1 cl=2 px=100 qty=20",
		}, []string{"book-replace oid=1 px=100 qty=3 leaves=3"}, "3+17"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, eng := scriptEngine(t, tc.lines...)
			require.Equal(t, tc.feed, feed(last(evs)))
			open := ""
			for _, o := range eng.OpenOrders() {
				if o.Account == 1 {
					open = fmt.Sprintf("%d+%d", o.Shown, o.Hidden)
				}
			}
			require.Equal(t, tc.open, open)
		})
	}
}

// TestMinQtySTP (issue 14, item 3): the fillable pre-check of MinQty and FOK
// simulates self-trade prevention as matching applies it: decrement-and-
// cancel shrinks the order by the lots of the account's own orders it meets
// and goes on, cancel-oldest skips them, cancel-newest and cancel-both end
// the walk; an iceberg's hidden lots come after the own order it is ahead of.
func TestMinQtySTP(t *testing.T) {
	// asks: account 1 sells 1 at 100 (oid 1), account 2 sells 10 at 100 (oid 2)
	book := []string{
		"new acct=1 cl=1 side=sell px=100 qty=1",
		"new acct=2 cl=1 side=sell px=100 qty=10",
	}
	cases := []struct {
		name  string
		setup []string
		order string
		want  []string
	}{
		{"decrement-fills-after-own-order", book, // the case
			"new acct=1 cl=2 side=buy px=100 qty=6 tif=ioc min=5 stp=decrement", []string{
				"cancelled oid=1 qty=1 stp-decrement",
				"reduced oid=3 qty=1 stp-decrement",
				"executed oid=3 px=100 qty=5",
			}},
		{"decrement-short-after-own-order", book,
			"new acct=1 cl=2 side=buy px=100 qty=6 tif=ioc min=6 stp=decrement", []string{
				"cancelled oid=3 qty=6 min-qty-not-met",
			}},
		{"decrement-market", book,
			"new acct=1 cl=2 side=buy type=market qty=6 tif=ioc min=5 stp=decrement", []string{
				"cancelled oid=1 qty=1 stp-decrement",
				"reduced oid=3 qty=1 stp-decrement",
				"executed oid=3 px=100 qty=5",
			}},
		{"decrement-fok-cannot-fill-whole", book,
			"new acct=1 cl=2 side=buy px=100 qty=6 tif=fok stp=decrement", []string{
				"cancelled oid=3 qty=6 fok-not-fillable",
			}},
		{"decrement-own-order-larger", []string{
			"new acct=1 cl=1 side=sell px=100 qty=10",
			"new acct=2 cl=1 side=sell px=100 qty=10",
		}, "new acct=1 cl=2 side=buy px=100 qty=6 tif=ioc min=1 stp=decrement", []string{
			"cancelled oid=3 qty=6 min-qty-not-met",
		}},
		{"decrement-iceberg-refills-behind-own-order", []string{
			"new acct=2 cl=1 side=sell px=100 qty=10 display=2",
			"new acct=1 cl=1 side=sell px=100 qty=3",
			"new acct=3 cl=1 side=sell px=101 qty=4",
		}, "new acct=1 cl=2 side=buy px=101 qty=12 tif=ioc min=9 stp=decrement", []string{
			"executed oid=4 px=100 qty=2",
			"cancelled oid=2 qty=3 stp-decrement",
			"reduced oid=4 qty=3 stp-decrement",
			"executed oid=4 px=100 qty=2",
			"executed oid=4 px=100 qty=2",
			"executed oid=4 px=100 qty=2",
			"executed oid=4 px=100 qty=1",
		}},
		{"decrement-iceberg-short", []string{
			"new acct=2 cl=1 side=sell px=100 qty=10 display=2",
			"new acct=1 cl=1 side=sell px=100 qty=3",
			"new acct=3 cl=1 side=sell px=101 qty=4",
		}, "new acct=1 cl=2 side=buy px=101 qty=12 tif=ioc min=10 stp=decrement", []string{
			"cancelled oid=4 qty=12 min-qty-not-met",
		}},
		{"decrement-next-level", []string{
			"new acct=1 cl=1 side=sell px=100 qty=1",
			"new acct=2 cl=1 side=sell px=100 qty=3",
			"new acct=3 cl=1 side=sell px=101 qty=5",
		}, "new acct=1 cl=2 side=buy px=101 qty=8 tif=ioc min=7 stp=decrement", []string{
			"cancelled oid=1 qty=1 stp-decrement",
			"reduced oid=4 qty=1 stp-decrement",
			"executed oid=4 px=100 qty=3",
			"executed oid=4 px=101 qty=4",
		}},
		{"cancel-oldest-skips-own-order", book,
			"new acct=1 cl=2 side=buy px=100 qty=6 tif=ioc min=6 stp=cancel-oldest", []string{
				"cancelled oid=1 qty=1 stp-cancel-oldest",
				"executed oid=3 px=100 qty=6",
			}},
		{"cancel-newest-stops-at-own-order", book,
			"new acct=1 cl=2 side=buy px=100 qty=6 tif=ioc min=1 stp=cancel-newest", []string{
				"cancelled oid=3 qty=6 min-qty-not-met",
			}},
		{"cancel-both-stops-at-own-order", book,
			"new acct=1 cl=2 side=buy px=100 qty=6 tif=ioc min=1 stp=cancel-both", []string{
				"cancelled oid=3 qty=6 min-qty-not-met",
			}},
		{"stp-off-trades-own-order", book,
			"new acct=1 cl=2 side=buy px=100 qty=6 tif=ioc min=6 stp=off", []string{
				"executed oid=3 px=100 qty=1",
				"executed oid=3 px=100 qty=5",
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := last(script(t, append(append([]string(nil), tc.setup...), tc.order)...))
			require.Equal(t, tc.want, story(got))
		})
	}
}

// TestStopsTriggerOnEveryPrint (issue 14, item 1): a stop is elected by any
// print that reaches it, not only by the last price after the command; the
// order that printed finishes first, then the elected stops enter.
func TestStopsTriggerOnEveryPrint(t *testing.T) {
	// The last trade is at 105; a sell stop at 100 waits (oid 3) and a bid
	// for 5 rests at 95 (oid 4).
	at105 := []string{
		"new acct=1 cl=1 side=sell px=105 qty=1",
		"new acct=2 cl=1 side=buy px=105 qty=1",
		"new acct=3 cl=1 side=sell type=stop stop=100 qty=1",
		"new acct=4 cl=1 side=buy px=95 qty=5",
	}
	with := func(lines ...string) []string { return append(append([]string(nil), at105...), lines...) }
	cases := []struct {
		name  string
		lines []string
		want  []string // the story of the last line
	}{
		{"buy-sweep-prints-through-sell-stop", with( // the case
			"new acct=1 cl=2 side=sell px=99 qty=1",
			"new acct=1 cl=3 side=sell px=101 qty=1",
			"new acct=5 cl=1 side=buy px=101 qty=2",
		), []string{
			"executed oid=7 px=99 qty=1",
			"executed oid=7 px=101 qty=1",
			"triggered oid=3",
			"executed oid=3 px=95 qty=1",
		}},
		{"market-sweep", with(
			"new acct=1 cl=2 side=sell px=99 qty=1",
			"new acct=1 cl=3 side=sell px=101 qty=1",
			"new acct=5 cl=1 side=buy type=market tif=ioc qty=3",
		), []string{
			"executed oid=7 px=99 qty=1",
			"executed oid=7 px=101 qty=1",
			"cancelled oid=7 qty=1 market-remainder",
			"triggered oid=3",
			"executed oid=3 px=95 qty=1",
		}},
		{"remainder-rests-before-stop-enters", with(
			"new acct=1 cl=2 side=sell px=99 qty=1",
			"new acct=1 cl=3 side=sell px=101 qty=1",
			"new acct=5 cl=1 side=buy px=101 qty=3",
		), []string{
			"executed oid=7 px=99 qty=1",
			"executed oid=7 px=101 qty=1",
			"triggered oid=3",
			"executed oid=3 px=101 qty=1", // the buy's remainder rested at 101: the best bid
		}},
		{"crossing-replace-prints-through", with(
			"new acct=1 cl=2 side=sell px=99 qty=1",
			"new acct=1 cl=3 side=sell px=101 qty=1",
			"new acct=5 cl=1 side=buy px=98 qty=2",
			"replace acct=5 orig=1 cl=2 px=101 qty=2",
		), []string{
			"replaced oid=7",
			"executed oid=7 px=99 qty=1",
			"executed oid=7 px=101 qty=1",
			"triggered oid=3",
			"executed oid=3 px=95 qty=1",
		}},
		{"stop-limit-rests-at-its-limit", []string{
			"new acct=1 cl=1 side=sell px=105 qty=1",
			"new acct=2 cl=1 side=buy px=105 qty=1",
			"new acct=3 cl=1 side=sell type=stop-limit stop=100 px=97 qty=1",
			"new acct=4 cl=1 side=buy px=95 qty=5",
			"new acct=1 cl=2 side=sell px=99 qty=1",
			"new acct=1 cl=3 side=sell px=101 qty=1",
			"new acct=5 cl=1 side=buy px=101 qty=2",
		}, []string{
			"executed oid=7 px=99 qty=1",
			"executed oid=7 px=101 qty=1",
			"triggered oid=3",
		}},
		{"sell-sweep-prints-through-buy-stop", []string{
			"new acct=1 cl=1 side=buy px=95 qty=1",
			"new acct=2 cl=1 side=sell px=95 qty=1",
			"new acct=3 cl=1 side=buy type=stop stop=100 qty=1",
			"new acct=4 cl=1 side=sell px=105 qty=5",
			"new acct=1 cl=2 side=buy px=101 qty=1",
			"new acct=1 cl=3 side=buy px=99 qty=1",
			"new acct=5 cl=1 side=sell px=99 qty=2",
		}, []string{
			"executed oid=7 px=101 qty=1",
			"executed oid=7 px=99 qty=1",
			"triggered oid=3",
			"executed oid=3 px=105 qty=1",
		}},
		{"cascade-through-a-second-stop", with(
			"new acct=6 cl=1 side=sell type=stop stop=96 qty=5",
			"new acct=1 cl=2 side=sell px=99 qty=1",
			"new acct=1 cl=3 side=sell px=101 qty=1",
			"new acct=4 cl=2 side=buy px=90 qty=5",
			"new acct=5 cl=1 side=buy px=101 qty=2",
		), []string{
			"executed oid=9 px=99 qty=1",
			"executed oid=9 px=101 qty=1",
			"triggered oid=3",
			"executed oid=3 px=95 qty=1", // prints 95: elects the stop at 96
			"triggered oid=5",
			"executed oid=5 px=95 qty=4",
			"executed oid=5 px=90 qty=1",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := last(script(t, tc.lines...))
			require.Equal(t, tc.want, story(got))
		})
	}
}

// TestStopElectionOrder (issue 14, item 2): stops enter in the order they
// were elected: by print, in print order; among the stops one print elects,
// the one furthest through the print first (a buy stop's distance is the
// print minus its stop price, a sell stop's the stop price minus the print);
// at equal distance the stop on the print's aggressor side first, and oldest
// first within a stop price. Stops elected while elected stops enter queue
// behind those elected before them.
func TestStopElectionOrder(t *testing.T) {
	// No trade yet: stops on both sides wait. Asks at 110, bids at 90 give the
	// triggered stops something to trade with.
	book := func(stops ...string) []string {
		return append(append([]string(nil), stops...),
			"new acct=8 cl=1 side=sell px=110 qty=9",
			"new acct=8 cl=2 side=buy px=90 qty=9",
			"new acct=9 cl=1 side=sell px=100 qty=1",
		)
	}
	buyAt100 := "new acct=7 cl=1 side=buy px=100 qty=1"
	cases := []struct {
		name  string
		lines []string
		want  []string
	}{
		{"sell-stop-further-through", append(book( // the case: today the buy stop went first and the sell stop never
			"new acct=1 cl=1 side=buy type=stop stop=98 qty=1",
			"new acct=2 cl=1 side=sell type=stop stop=105 qty=1",
		), buyAt100), []string{
			"executed oid=6 px=100 qty=1",
			"triggered oid=2",
			"executed oid=2 px=90 qty=1",
			"triggered oid=1",
			"executed oid=1 px=110 qty=1",
		}},
		{"buy-stop-further-through", append(book(
			"new acct=1 cl=1 side=buy type=stop stop=95 qty=1",
			"new acct=2 cl=1 side=sell type=stop stop=103 qty=1",
		), buyAt100), []string{
			"executed oid=6 px=100 qty=1",
			"triggered oid=1",
			"executed oid=1 px=110 qty=1",
			"triggered oid=2",
			"executed oid=2 px=90 qty=1",
		}},
		{"tie-aggressor-buy", append(book(
			"new acct=2 cl=1 side=sell type=stop stop=102 qty=1",
			"new acct=1 cl=1 side=buy type=stop stop=98 qty=1",
		), buyAt100), []string{
			"executed oid=6 px=100 qty=1",
			"triggered oid=2",
			"executed oid=2 px=110 qty=1",
			"triggered oid=1",
			"executed oid=1 px=90 qty=1",
		}},
		{"tie-aggressor-sell", []string{
			"new acct=2 cl=1 side=sell type=stop stop=102 qty=1",
			"new acct=1 cl=1 side=buy type=stop stop=98 qty=1",
			"new acct=8 cl=1 side=sell px=110 qty=9",
			"new acct=8 cl=2 side=buy px=90 qty=9",
			"new acct=9 cl=1 side=buy px=100 qty=1",
			"new acct=7 cl=1 side=sell px=100 qty=1",
		}, []string{
			"executed oid=6 px=100 qty=1",
			"triggered oid=1",
			"executed oid=1 px=90 qty=1",
			"triggered oid=2",
			"executed oid=2 px=110 qty=1",
		}},
		{"same-side-lowest-then-oldest", append(book(
			"new acct=1 cl=1 side=buy type=stop stop=100 qty=1",
			"new acct=2 cl=1 side=buy type=stop stop=97 qty=1",
			"new acct=3 cl=1 side=buy type=stop stop=100 qty=1",
		), buyAt100), []string{
			"executed oid=7 px=100 qty=1",
			"triggered oid=2",
			"executed oid=2 px=110 qty=1",
			"triggered oid=1",
			"executed oid=1 px=110 qty=1",
			"triggered oid=3",
			"executed oid=3 px=110 qty=1",
		}},
		{"print-order-before-distance", []string{
			// last 101: a sell stop at 100 and a buy stop at 102 wait
			"new acct=8 cl=1 side=sell px=101 qty=1",
			"new acct=6 cl=1 side=buy px=101 qty=1",
			"new acct=1 cl=1 side=buy type=stop stop=102 qty=1",
			"new acct=2 cl=1 side=sell type=stop stop=100 qty=1",
			"new acct=8 cl=2 side=buy px=90 qty=9",
			"new acct=8 cl=3 side=sell px=99 qty=1",
			"new acct=8 cl=4 side=sell px=105 qty=1",
			"new acct=8 cl=5 side=sell px=110 qty=9",
			// prints 99 (elects the sell stop, 1 through) then 105 (the buy
			// stop, 3 through): print order decides
			"new acct=7 cl=1 side=buy px=105 qty=2",
		}, []string{
			"executed oid=9 px=99 qty=1",
			"executed oid=9 px=105 qty=1",
			"triggered oid=4",
			"executed oid=4 px=90 qty=1",
			"triggered oid=3",
			"executed oid=3 px=110 qty=1",
		}},
		{"cascade-queues-behind-earlier-elections", append(book(
			"new acct=1 cl=1 side=buy type=stop stop=98 qty=1",
			"new acct=2 cl=1 side=sell type=stop stop=105 qty=1",
			"new acct=3 cl=1 side=sell type=stop stop=91 qty=1",
		), buyAt100), []string{
			"executed oid=7 px=100 qty=1",
			"triggered oid=2",
			"executed oid=2 px=90 qty=1", // prints 90: elects the sell stop at 91, behind the buy stop
			"triggered oid=1",
			"executed oid=1 px=110 qty=1",
			"triggered oid=3",
			"executed oid=3 px=90 qty=1",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := last(script(t, tc.lines...))
			require.Equal(t, tc.want, story(got))
		})
	}
}
