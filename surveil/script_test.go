package surveil_test

import (
	"cmp"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/surveil"
)

var rewrite = flag.Bool("rewrite", false, "rewrite golden files under testdata/ instead of comparing")

// result is what a script run produced.
type result struct {
	alerts   []surveil.Alert
	commands []core.Command // the Monitor's commands the engine applied
	dropped  int            // submissions refused (drop=N)
	recorded int            // alert records (core.CmdAlert) the engine applied
	eng      *core.Engine
	mon      *surveil.Monitor
	golden   string
}

// runScript runs testdata/<name>.txt through a real core.Engine with the risk
// layer on, feeds every batch of events to a Monitor, and applies the
// commands the Monitor submits back into the engine (as the control lane
// would), unless the script makes the submission fail.
//
// Script lines (# starts a comment):
//
//	instrument id=1 band=1..1000
//	account id=1 firm=1 owner=10 prop=1       (cash 2^40, +1e6 lots of every instrument)
//	set wash.action=kill layering.report=1 ... (Monitor config; see setConfig)
//	[t=MS] new acct= cl= side=buy|sell px= qty= [tif=ioc] [inst=] [alt=]
//	[t=MS] cancel acct= orig=
//	[t=MS] cancelsize acct= orig= qty=
//	[t=MS] replace acct= orig= cl= px= qty= [alt=]
//	[t=MS] repeat n=N step=MS <new|cancel|cancelsize|replace ...>
//	       (cl and orig grow by 1 per step; with alt=D the price is px+D on odd steps)
//	[t=MS] tick                               (Monitor.Tick at t: retries on an idle stream)
//
// t is milliseconds of event Time, sticky. In files under testdata/benign
// only the close schedule (close.*) may be set: the benign corpus runs on
// the default thresholds.
func runScript(t *testing.T, name string) result {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".txt"))
	require.NoError(t, err)
	benign := strings.HasPrefix(name, "benign/")

	type step struct {
		c    core.Command
		tick bool
	}
	var (
		ecfg  core.Config
		scfg  = surveil.Config{MarkClose: surveil.MarkClose{Location: time.UTC}}
		steps []step
		now   int64
		drop  int
	)
	for n, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		where := fmt.Sprintf("%s.txt:%d", name, n+1)
		if strings.HasPrefix(f[0], "t=") {
			ms, err := strconv.ParseInt(f[0][2:], 10, 64)
			require.NoError(t, err, where)
			now = ms * 1e6
			f = f[1:]
		}
		kv := fields(f[1:])
		switch f[0] {
		case "instrument":
			lo, hi, ok := strings.Cut(kv["band"], "..")
			require.True(t, ok, where)
			ecfg.Instruments = append(ecfg.Instruments, core.Instrument{ID: u32(t, kv["id"]), BandLow: i64(t, lo), BandHigh: i64(t, hi)})
		case "account":
			a := core.Account{ID: u32(t, kv["id"]), Firm: u32(t, kv["firm"]), Owner: u32(t, kv["owner"]), Proprietary: kv["prop"] == "1", Cash: 1 << 40,
				AllowSTPOff: true} // the scripts opt out of STP: surveillance is the second line
			for _, in := range ecfg.Instruments {
				a.Positions = append(a.Positions, core.Position{Instrument: in.ID, Lots: 1_000_000})
			}
			ecfg.Accounts = append(ecfg.Accounts, a)
		case "set":
			for k, v := range kv {
				require.False(t, benign && !strings.HasPrefix(k, "close."), "%s: the benign corpus runs on the default thresholds; only close.* may be set", where)
				if k == "drop" {
					drop = int(i64(t, v))
					continue
				}
				setConfig(t, where, &scfg, k, v)
			}
		case "tick":
			steps = append(steps, step{c: core.Command{Time: now}, tick: true})
		case "repeat":
			count, stepMS := int(i64(t, kv["n"])), i64(t, kv["step"])*1e6
			v := 1
			for v < len(f) && strings.Contains(f[v], "=") {
				v++
			}
			require.Less(t, v, len(f), "%s: repeat needs a command", where)
			sub := fields(f[v+1:])
			for i := range count {
				c := command(t, where, f[v], sub, uint64(i))
				c.Time = now
				steps = append(steps, step{c: c})
				now += stepMS
			}
		default:
			c := command(t, where, f[0], kv, 0)
			c.Time = now
			steps = append(steps, step{c: c})
		}
	}

	// Commands run in Time order (stable), so repeats interleave.
	slices.SortStableFunc(steps, func(a, b step) int { return cmp.Compare(a.c.Time, b.c.Time) })

	var (
		res    result
		events []core.Event
		queue  []core.Command // submitted, not yet applied
		notes  []string       // submissions refused
	)
	eng, err := core.New(ecfg, func(b []core.Event) { events = append(events, b...) })
	require.NoError(t, err)
	scfg.Accounts = surveil.RefsOf(ecfg.Accounts)
	scfg.Submit = func(c *core.Command) bool {
		if drop > 0 && c.Kind != core.CmdAlert { // drop= refuses action commands; alert records go through

			drop--
			res.dropped++
			notes = append(notes, fmt.Sprintf("dropped %s acct=%d", c.Kind, c.Account))
			return false
		}
		queue = append(queue, *c)
		return true
	}
	mon, err := surveil.New(scfg)
	require.NoError(t, err)
	res.eng, res.mon = eng, mon

	var (
		out surveil.Output
		b   strings.Builder
		seq uint64
		// Scripts give each order a reference of their own choosing (say
		// 1000.. for bids, 2000.. for asks); the runner does what a client
		// library does: it sends the engine each account's references in
		// increasing order, and names orders by the OrderID the engine gave.
		refs   = map[[2]uint64]uint64{} // (account, engine reference) -> OrderID
		alias  = map[[2]uint64]uint64{} // (account, script reference) -> engine reference
		nextCl = map[uint32]uint64{}
		feed   = func(c core.Command) {
			seq++
			c.Seq = seq
			switch c.Kind {
			case core.CmdCancel, core.CmdCancelSize, core.CmdReplace:
				if cl, ok := alias[[2]uint64{uint64(c.Account), c.OrigClOrdID}]; ok {
					c.OrigClOrdID = cl
				}
				if c.OrderID == 0 {
					c.OrderID = refs[[2]uint64{uint64(c.Account), c.OrigClOrdID}]
				}
			}
			if (c.Kind == core.CmdNew || c.Kind == core.CmdReplace) && c.ClOrdID != 0 {
				nextCl[c.Account]++
				alias[[2]uint64{uint64(c.Account), c.ClOrdID}] = nextCl[c.Account]
				c.ClOrdID = nextCl[c.Account]
			}
			events = events[:0]
			eng.Apply(&c)
			eng.Flush()
			for _, ev := range events {
				if ev.Kind == core.KindAccepted || ev.Kind == core.KindReplaced {
					refs[[2]uint64{uint64(ev.Account), ev.ClOrdID}] = ev.OrderID
				}
			}
			mon.Observe(events, &out)
		}
		drain func(at int64)
	)
	drain = func(at int64) {
		for len(out.Alerts)+len(notes)+len(queue) > 0 {
			for _, a := range out.Alerts {
				fmt.Fprintf(&b, "alert %s\n", a)
			}
			res.alerts = append(res.alerts, out.Alerts...)
			require.Empty(t, out.Commands, "with Submit set, Output.Commands stays empty")
			out.Reset()
			for _, n := range notes {
				fmt.Fprintf(&b, "%s\n", n)
			}
			notes = notes[:0]
			pending := queue
			queue = nil
			for _, pc := range pending {
				fmt.Fprintf(&b, "command %s acct=%d orig=%d qty=%d\n", pc.Kind, pc.Account, pc.OrigClOrdID, pc.Qty)
				if pc.Kind == core.CmdAlert {
					res.recorded++
				} else {
					res.commands = append(res.commands, pc)
				}
				pc.Time = at
				feed(pc)
				for _, ev := range events {
					fmt.Fprintf(&b, "  -> %s\n", ev)
				}
			}
		}
	}
	for _, s := range steps {
		if s.tick {
			mon.Tick(s.c.Time, &out)
			drain(s.c.Time)
			continue
		}
		feed(s.c)
		for _, ev := range events {
			if ev.Kind == core.KindRejected { // shows the effect of the Monitor's commands
				fmt.Fprintf(&b, "reject %s\n", ev)
			}
		}
		drain(s.c.Time)
	}
	// Time passes: one more event an hour after the last step, so pending
	// decisions (layering grace, the close) are taken. Not shown.
	if len(steps) > 0 && len(ecfg.Accounts) > 0 {
		at := steps[len(steps)-1].c.Time + 3600e9
		feed(core.Command{Kind: core.CmdCancel, Account: ecfg.Accounts[0].ID, OrigClOrdID: 1 << 62, Time: at})
		drain(at)
	}
	if len(res.alerts) == 0 {
		b.WriteString("no alerts\n")
	}
	res.golden = b.String()

	golden := filepath.Join("testdata", name+".golden")
	if *rewrite {
		require.NoError(t, os.WriteFile(golden, []byte(res.golden), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test ./surveil -rewrite and review the diff")
	require.Equal(t, string(want), res.golden, "golden %s differs", golden)
	return res
}

func command(t *testing.T, where, verb string, kv map[string]string, i uint64) core.Command {
	t.Helper()
	c := core.Command{Account: u32(t, kv["acct"]), Instrument: 1, STP: core.STPOff}
	if v, ok := kv["inst"]; ok {
		c.Instrument = u32(t, v)
	}
	px := i64(t, kv["px"])
	if i%2 == 1 {
		px += i64(t, kv["alt"])
	}
	switch verb {
	case "new":
		c.Kind, c.Type, c.TIF = core.CmdNew, core.Limit, core.DAY
		c.ClOrdID = uint64(i64(t, kv["cl"])) + i
		c.Price, c.Qty = px, i64(t, kv["qty"])
		switch kv["side"] {
		case "buy":
			c.Side = core.Buy
		case "sell":
			c.Side = core.Sell
		default:
			t.Fatalf("%s: side=%q", where, kv["side"])
		}
		if kv["tif"] == "ioc" {
			c.TIF = core.IOC
		}
	case "cancel":
		c.Kind = core.CmdCancel
		c.OrigClOrdID = uint64(i64(t, kv["orig"])) + i
	case "cancelsize":
		c.Kind = core.CmdCancelSize
		c.OrigClOrdID = uint64(i64(t, kv["orig"])) + i
		c.Qty = i64(t, kv["qty"])
	case "replace":
		c.Kind = core.CmdReplace
		c.OrigClOrdID = uint64(i64(t, kv["orig"])) + i
		c.ClOrdID = uint64(i64(t, kv["cl"])) + i
		c.Price, c.Qty = px, i64(t, kv["qty"])
	default:
		t.Fatalf("%s: unknown verb %q", where, verb)
	}
	return c
}

// setConfig applies one "set" key; durations are in milliseconds.
func setConfig(t *testing.T, where string, c *surveil.Config, k, v string) {
	t.Helper()
	actions := map[string]surveil.Action{"alert": surveil.ActionAlert, "throttle": surveil.ActionThrottle, "suspend": surveil.ActionSuspend, "kill": surveil.ActionKill}
	action := func() surveil.Action {
		a, ok := actions[v]
		require.True(t, ok, "%s: action %q", where, v)
		return a
	}
	ms := func() int64 { return i64(t, v) * 1e6 }
	switch k {
	case "wash.action":
		c.Wash.Action = action()
	case "wash.report":
		c.Wash.Report = v == "1"
	case "layering.action":
		c.Layering.Action = action()
	case "layering.min":
		c.Layering.MinOrders = int(i64(t, v))
	case "spoofing.action":
		c.Spoofing.Action = action()
	case "frontrun.action":
		c.FrontRun.Action = action()
	case "rapid.action":
		c.Rapid.Action = action()
	case "ramp.action":
		c.Ramp.Action = action()
	case "close.action":
		c.MarkClose.Action = action()
	case "close.at":
		c.MarkClose.Close = ms()
	case "close.window":
		c.MarkClose.Window = ms()
	case "close.share":
		c.MarkClose.MinSharePct = i64(t, v)
	case "rapid.two":
		c.Rapid.TwoSidedOrderToTrade = int(i64(t, v))
	case "ramp.retain":
		c.Ramp.RetainPct = i64(t, v)
	case "ramp.levels":
		c.Ramp.MinLevels = int(i64(t, v))
	case "layering.window":
		c.Layering.Window = ms()
	case "layering.ratio":
		c.Layering.MinRatio = i64(t, v)
	case "layering.grace":
		c.Layering.Grace = ms()
	case "spoofing.ratio":
		c.Spoofing.MinRatio = i64(t, v)
	case "retry.min":
		c.Retry.Min = ms()
	case "retry.max":
		c.Retry.Max = ms()
	case "retry.confirm":
		c.Retry.Confirm = ms()
	default:
		t.Fatalf("%s: unknown setting %q", where, k)
	}
}

func fields(f []string) map[string]string {
	kv := make(map[string]string, len(f))
	for _, s := range f {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return kv // the rest is a sub-command (repeat)
		}
		kv[k] = v
	}
	return kv
}

func i64(t *testing.T, s string) int64 {
	t.Helper()
	if s == "" {
		return 0
	}
	v, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return v
}

func u32(t *testing.T, s string) uint32 { t.Helper(); return uint32(i64(t, s)) }
