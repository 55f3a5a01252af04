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

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/surveil"
)

var rewrite = flag.Bool("rewrite", false, "rewrite golden files under testdata/ instead of comparing")

// result is what a script run produced.
type result struct {
	alerts   []surveil.Alert
	commands []core.Command
	golden   string
}

// runScript runs testdata/<name>.txt through a real core.Engine with the risk
// layer on, feeds every batch of events to a Monitor, and applies the
// Monitor's commands back into the engine (as the caller would push them into
// the inbound ring).
//
// Script lines (# starts a comment):
//
//	instrument id=1 band=1..1000
//	account id=1 firm=1 owner=10 prop=1       (cash 2^40, +1e6 lots of every instrument)
//	set wash.action=kill layering.report=1 ... (Monitor config; see setConfig)
//	[t=MS] new acct= cl= side=buy|sell px= qty= [tif=ioc] [inst=]
//	[t=MS] cancel acct= orig=
//	[t=MS] repeat n=N step=MS <new|cancel ...>  (cl and orig grow by 1 per step)
//
// t is milliseconds of event Time, sticky.
func runScript(t *testing.T, name string) result {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".txt"))
	require.NoError(t, err)

	var (
		ecfg core.Config
		scfg surveil.Config
		cmds []core.Command
		now  int64
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
		kv := fields(t, where, f[1:])
		switch f[0] {
		case "instrument":
			lo, hi, ok := strings.Cut(kv["band"], "..")
			require.True(t, ok, where)
			ecfg.Instruments = append(ecfg.Instruments, core.Instrument{ID: u32(t, kv["id"]), BandLow: i64(t, lo), BandHigh: i64(t, hi)})
		case "account":
			a := core.Account{ID: u32(t, kv["id"]), Firm: u32(t, kv["firm"]), Owner: u32(t, kv["owner"]), Proprietary: kv["prop"] == "1", Cash: 1 << 40}
			for _, in := range ecfg.Instruments {
				a.Positions = append(a.Positions, core.Position{Instrument: in.ID, Lots: 1_000_000})
			}
			ecfg.Accounts = append(ecfg.Accounts, a)
		case "set":
			for k, v := range kv {
				setConfig(t, where, &scfg, k, v)
			}
		case "repeat":
			count, step := int(i64(t, kv["n"])), i64(t, kv["step"])*1e6
			v := 1
			for v < len(f) && strings.Contains(f[v], "=") {
				v++
			}
			require.Less(t, v, len(f), "%s: repeat needs a command", where)
			sub := fields(t, where, f[v+1:])
			for i := range count {
				c := command(t, where, f[v], sub, uint64(i))
				c.Time = now
				cmds = append(cmds, c)
				now += step
			}
		default:
			c := command(t, where, f[0], kv, 0)
			c.Time = now
			cmds = append(cmds, c)
		}
	}

	// Commands run in Time order (stable), so repeats interleave.
	slices.SortStableFunc(cmds, func(a, b core.Command) int { return cmp.Compare(a.Time, b.Time) })

	var events []core.Event
	eng, err := core.New(ecfg, func(b []core.Event) { events = append(events, b...) })
	require.NoError(t, err)
	scfg.Accounts = surveil.RefsOf(ecfg.Accounts)
	mon, err := surveil.New(scfg)
	require.NoError(t, err)

	var (
		res  result
		out  surveil.Output
		b    strings.Builder
		seq  uint64
		feed = func(c core.Command) {
			seq++
			c.Seq = seq
			events = events[:0]
			eng.Apply(&c)
			eng.Flush()
			mon.Observe(events, &out)
		}
	)
	for _, c := range cmds {
		feed(c)
		for _, ev := range events {
			if ev.Kind == core.KindRejected { // shows the effect of the Monitor's commands
				fmt.Fprintf(&b, "reject %s\n", ev)
			}
		}
		for len(out.Alerts)+len(out.Commands) > 0 {
			for _, a := range out.Alerts {
				fmt.Fprintf(&b, "alert %s\n", a)
			}
			res.alerts = append(res.alerts, out.Alerts...)
			pending := append([]core.Command(nil), out.Commands...)
			res.commands = append(res.commands, pending...)
			out.Reset()
			for _, pc := range pending {
				fmt.Fprintf(&b, "command %s acct=%d orig=%d qty=%d\n", pc.Kind, pc.Account, pc.OrigClOrdID, pc.Qty)
				pc.Time = c.Time
				feed(pc)
				for _, ev := range events {
					fmt.Fprintf(&b, "  -> %s\n", ev)
				}
			}
		}
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
	switch verb {
	case "new":
		c.Kind, c.Type, c.TIF = core.CmdNew, core.Limit, core.DAY
		c.ClOrdID = uint64(i64(t, kv["cl"])) + i
		c.Price, c.Qty = i64(t, kv["px"]), i64(t, kv["qty"])
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
	default:
		t.Fatalf("%s: unknown verb %q", where, verb)
	}
	return c
}

func setConfig(t *testing.T, where string, c *surveil.Config, k, v string) {
	t.Helper()
	actions := map[string]surveil.Action{"alert": surveil.ActionAlert, "throttle": surveil.ActionThrottle, "suspend": surveil.ActionSuspend, "kill": surveil.ActionKill}
	switch k {
	case "wash.action":
		c.Wash.Action = actions[v]
	case "wash.report":
		c.Wash.Report = v == "1"
	case "layering.action":
		c.Layering.Action = actions[v]
	case "layering.min":
		c.Layering.MinOrders = int(i64(t, v))
	case "frontrun.action":
		c.FrontRun.Action = actions[v]
	case "rapid.action":
		c.Rapid.Action = actions[v]
	default:
		t.Fatalf("%s: unknown setting %q", where, k)
	}
}

func fields(t *testing.T, where string, f []string) map[string]string {
	t.Helper()
	kv := make(map[string]string, len(f))
	for _, s := range f {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return kv // the rest is a sub-command (repeat)
		}
		kv[k] = v
	}
	_ = where
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
