package core_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
)

var rewrite = flag.Bool("rewrite", false, "rewrite golden files under testdata/ instead of comparing")

// TestScenarios replays every testdata/scenarios/*.txt script through a fresh
// engine and compares the events and final book with the .golden file beside
// it. Run `go test ./core -run Scenarios -rewrite` and review the diff after
// an intended change.
//
// Script lines: `instrument id=1 band=1..1000`, `config max-orders=N max-accounts=N`, then
// commands: `new`, `cancel`, `size`, `replace`, `mass`, `eod`, `raw kind=N`
// with key=value fields (acct cl orig oid side type tif px stop qty display
// min stp group inst post tag time). `new` defaults to inst=1 type=limit
// tif=day. A cancel, size or replace names its order by orig= (the order's
// current reference), as a client does; the script runner fills in the
// OrderID the engine gave that reference, as a gateway does (oid= overrides).
//
// Risk layer: `instrument` also takes tv= ref= collar-bps= collar-ticks=
// halted=1 restricted=1 threshold=1; `account id=N ...` (see account) turns
// the layer on; admin verbs `halt`, `resume`, `market-halt`,
// `market-resume`, `kill`, `release`, `status`, `limit` (orig = limit id),
// `locate`, `restrict` take the same fields, and op= (operator, default 7)
// and cause= (a Cause number, default 1, operator). Scripts with accounts
// end with every account's state.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/scenarios/*.txt")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txt")
		t.Run(name, func(t *testing.T) {
			got := runScenario(t, file)
			golden := strings.TrimSuffix(file, ".txt") + ".golden"
			if *rewrite {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
				return
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "no golden file: run go test ./core -run Scenarios -rewrite")
			require.Equal(t, string(want), got)
		})
	}
}

func runScenario(t *testing.T, file string) string {
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	var (
		cfg    core.Config
		out    strings.Builder
		events []core.Event
		eng    *core.Engine
		seq    uint64
		refs   = refBook{}
	)
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		verb, kv := parseLine(t, file, n+1, line)
		switch verb {
		case "instrument":
			lo, hi, ok := strings.Cut(kv["band"], "..")
			require.True(t, ok, "%s:%d: band=LOW..HIGH", file, n+1)
			cfg.Instruments = append(cfg.Instruments, core.Instrument{
				ID: uint32(num(t, kv["id"])), BandLow: num(t, lo), BandHigh: num(t, hi),
				TickValue: optNum(t, kv["tv"]), RefPrice: optNum(t, kv["ref"]),
				CollarBps: optNum(t, kv["collar-bps"]), CollarTicks: optNum(t, kv["collar-ticks"]),
				Halted: kv["halted"] == "1", Restricted: kv["restricted"] == "1", Threshold: kv["threshold"] == "1",
			})
			continue
		case "account":
			cfg.Accounts = append(cfg.Accounts, account(t, kv))
			continue
		case "config":
			cfg.MaxOrders = int(optNum(t, kv["max-orders"]))
			cfg.MaxAccounts = int(optNum(t, kv["max-accounts"]))
			continue
		}
		if eng == nil {
			eng, err = core.New(cfg, func(b []core.Event) { events = append(events, b...) })
			require.NoError(t, err)
		}
		seq++
		cmd := command(t, file, n+1, verb, kv)
		cmd.Seq = seq
		refs.name(&cmd)
		eng.Apply(&cmd)
		eng.Flush()
		refs.learn(events)
		fmt.Fprintf(&out, "> %s\n", line)
		for _, ev := range events {
			ev.Seq = 0
			fmt.Fprintf(&out, "  %s\n", ev)
		}
		events = events[:0]
		require.NoError(t, eng.CheckInvariants(), "%s:%d", file, n+1)
	}
	out.WriteString("open orders:\n")
	for _, o := range eng.OpenOrders() {
		fmt.Fprintf(&out, "  inst=%d oid=%d acct=%d cl=%d %s %s %s px=%d stop=%d shown=%d hidden=%d waiting=%v\n",
			o.Instrument, o.OrderID, o.Account, o.ClOrdID, o.Side, o.Type, o.TIF, o.Price, o.StopPrice, o.Shown, o.Hidden, o.Waiting)
	}
	if len(cfg.Accounts) > 0 {
		out.WriteString("accounts:\n")
		for _, a := range cfg.Accounts {
			st, ok := eng.Account(a.ID)
			require.True(t, ok)
			fmt.Fprintf(&out, "  acct=%d status=%d killed=%v cash=%d held=%d short-req=%d open-sell=%d credit=%d pos=%v locate=%v\n",
				st.ID, st.Status, st.Killed, st.Cash, st.Held, st.ShortReq, st.OpenSell, st.Credit, st.Positions, st.Locates)
		}
	}
	return out.String()
}

func optNum(t *testing.T, s string) int64 {
	if s == "" {
		return 0
	}
	return num(t, s)
}

// account parses `account id=N cash=C pos=INST:LOTS,... locate=INST:QTY,...
// group=G prop=1 status=S max-qty= max-notional= max-pos= credit= ops= cps=`.
func account(t *testing.T, kv map[string]string) core.Account {
	a := core.Account{
		ID: uint32(num(t, kv["id"])), Cash: optNum(t, kv["cash"]), STPGroup: uint32(optNum(t, kv["group"])),
		Proprietary: kv["prop"] == "1", Status: core.AccountStatus(optNum(t, kv["status"])),
		Limits: core.Limits{
			MaxOrderQty: optNum(t, kv["max-qty"]), MaxOrderNotional: optNum(t, kv["max-notional"]),
			MaxPosition: optNum(t, kv["max-pos"]), DailyCredit: optNum(t, kv["credit"]),
			OrdersPerSec: optNum(t, kv["ops"]), CancelsPerSec: optNum(t, kv["cps"]),
		},
	}
	pairs := func(v string, fn func(inst uint32, n int64)) {
		if v == "" {
			return
		}
		for _, p := range strings.Split(v, ",") {
			i, n, ok := strings.Cut(p, ":")
			require.True(t, ok, "want INST:N, got %q", p)
			fn(uint32(num(t, i)), num(t, n))
		}
	}
	pairs(kv["pos"], func(i uint32, n int64) { a.Positions = append(a.Positions, core.Position{Instrument: i, Lots: n}) })
	pairs(kv["locate"], func(i uint32, n int64) { a.Locates = append(a.Locates, core.Locate{Instrument: i, Qty: n}) })
	return a
}

func parseLine(t *testing.T, file string, n int, line string) (string, map[string]string) {
	fields := strings.Fields(line)
	kv := map[string]string{}
	for _, f := range fields[1:] {
		k, v, ok := strings.Cut(f, "=")
		require.True(t, ok, "%s:%d: %q is not key=value", file, n, f)
		kv[k] = v
	}
	return fields[0], kv
}

func num(t *testing.T, s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err)
	return v
}

func enum(t *testing.T, file string, n int, names map[string]uint8, v string) uint8 {
	x, ok := names[v]
	require.True(t, ok, "%s:%d: unknown value %q", file, n, v)
	return x
}

func command(t *testing.T, file string, n int, verb string, kv map[string]string) core.Command {
	kinds := map[string]core.CmdKind{"new": core.CmdNew, "cancel": core.CmdCancel, "size": core.CmdCancelSize,
		"replace": core.CmdReplace, "mass": core.CmdMassCancel, "eod": core.CmdEndOfDay,
		"halt": core.CmdHalt, "resume": core.CmdResume, "market-halt": core.CmdMarketHalt,
		"market-resume": core.CmdMarketResume, "kill": core.CmdKill, "release": core.CmdKillRelease,
		"status": core.CmdAccountStatus, "limit": core.CmdSetLimit, "locate": core.CmdLocate, "restrict": core.CmdRestrict}
	var c core.Command
	if verb == "raw" {
		c.Kind = core.CmdKind(num(t, kv["kind"]))
		delete(kv, "kind")
	} else {
		k, ok := kinds[verb]
		require.True(t, ok, "%s:%d: unknown verb %q", file, n, verb)
		c.Kind = k
	}
	if c.Kind == core.CmdNew {
		c.Instrument, c.Type, c.TIF = 1, core.Limit, core.DAY
	}
	if c.Kind >= core.CmdHalt { // admin verbs are attributed unless the line says otherwise
		c.Operator, c.Cause = 7, core.CauseOperator
	}
	for k, v := range kv {
		switch k {
		case "acct":
			c.Account = uint32(num(t, v))
		case "cl":
			c.ClOrdID = uint64(num(t, v))
		case "orig":
			c.OrigClOrdID = uint64(num(t, v))
		case "oid":
			c.OrderID = uint64(num(t, v))
		case "inst":
			c.Instrument = uint32(num(t, v))
		case "group":
			c.STPGroup = uint32(num(t, v))
		case "px":
			c.Price = num(t, v)
		case "stop":
			c.StopPrice = num(t, v)
		case "qty":
			c.Qty = num(t, v)
		case "display":
			c.DisplayQty = num(t, v)
		case "min":
			c.MinQty = num(t, v)
		case "tag":
			c.Tag = uint64(num(t, v))
		case "op":
			c.Operator = uint32(num(t, v))
		case "cause":
			c.Cause = core.Cause(num(t, v))
		case "mark":
			c.Mark = core.SaleMark(enum(t, file, n, map[string]uint8{"none": 0, "long": 1, "short": 2, "short-exempt": 3, "bad": 9}, v))
		case "time":
			c.Time = num(t, v)
		case "post":
			c.Flags |= core.PostOnly
		case "flags":
			c.Flags = core.Flags(num(t, v))
		case "side":
			c.Side = core.Side(enum(t, file, n, map[string]uint8{"buy": 1, "sell": 2, "none": 0, "bad": 9}, v))
		case "type":
			c.Type = core.OrderType(enum(t, file, n, map[string]uint8{"limit": 1, "market": 2, "stop": 3, "stop-limit": 4, "none": 0, "bad": 9}, v))
		case "tif":
			c.TIF = core.TIF(enum(t, file, n, map[string]uint8{"day": 1, "gtc": 2, "ioc": 3, "fok": 4, "none": 0, "bad": 9}, v))
		case "stp":
			c.STP = core.STPMode(enum(t, file, n, map[string]uint8{"cancel-newest": 0, "cancel-oldest": 1, "cancel-both": 2, "decrement": 3, "off": 4, "bad": 9}, v))
		default:
			t.Fatalf("%s:%d: unknown field %q", file, n, k)
		}
	}
	return c
}
