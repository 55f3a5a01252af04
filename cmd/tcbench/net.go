package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/bench/netbench"
	"github.com/tradecore/tradecore/proto"
)

// NetBudget is the budget file of `tcbench net` (bench/budgets/network.json):
// limits on the default variant (write durability, plain TCP). Zero fields
// are not checked.
type NetBudget struct {
	AckP50VsEcho  float64 `json:"ack_p50_vs_echo"`
	AckP99VsEcho  float64 `json:"ack_p99_vs_echo"`
	AckP50us      float64 `json:"ack_p50_us"`
	AckP99us      float64 `json:"ack_p99_us"`
	FillP50us     float64 `json:"fill_p50_us"`
	FillP99us     float64 `json:"fill_p99_us"`
	MinOrdersPerS float64 `json:"min_orders_per_s"`
}

// Pcts are a distribution's percentiles, ns.
type Pcts struct {
	Count int64 `json:"count"`
	P50   int64 `json:"p50_ns"`
	P90   int64 `json:"p90_ns"`
	P99   int64 `json:"p99_ns"`
	P999  int64 `json:"p99_9_ns"`
	P9999 int64 `json:"p99_99_ns"`
	Max   int64 `json:"max_ns"`
}

func pcts(h *hdrhistogram.Histogram) Pcts {
	return Pcts{Count: h.TotalCount(), P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90), P99: h.ValueAtQuantile(99),
		P999: h.ValueAtQuantile(99.9), P9999: h.ValueAtQuantile(99.99), Max: h.Max()}
}

// NetVariant is one server setup's figures.
type NetVariant struct {
	Name string `json:"name"`
	// PingPong: order → ack with one order in flight; Echo the bare TCP
	// echo round trip measured alternately with it.
	PingPong Pcts    `json:"order_ack_one_in_flight"`
	Echo     Pcts    `json:"echo_round_trip"`
	P50Ratio float64 `json:"ack_p50_vs_echo"`
	P99Ratio float64 `json:"ack_p99_vs_echo"`
	// Load: the sessions' open-loop (or sustained) load.
	Sessions   int     `json:"sessions"`
	Offered    float64 `json:"offered_per_s"`
	OrdersPerS float64 `json:"orders_per_s"`
	Refused    int64   `json:"refused"`
	LoadAck    Pcts    `json:"order_ack_under_load"`
	LoadFill   Pcts    `json:"order_fill_under_load"`
}

// NetReport is the JSON summary of `tcbench net`.
type NetReport struct {
	Machine  string       `json:"machine"`
	Variants []NetVariant `json:"variants"`
	Budgets  []Budget     `json:"budgets"`
}

const netUsage = `usage: tcbench net [flags]

Starts tradecore's engine, journal and gateway in this process (one variant
after another: write durability over plain TCP, fsync, TLS 1.3), measures
order→ack with one order in flight alternately with a bare TCP echo round
trip, then open-loop load over --sessions client sessions (unpaced with
--rate 0: the sustained rate), with coordinated-omission correction, and
reports HdrHistogram percentiles, a JSON summary (--json), a latency plot
(--svg) and the budgets of --budget (exit 1 when one is missed).
`

func runNet(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("tcbench net", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), netUsage, "\nflags:\n"); fs.PrintDefaults() }
	sessions := fs.Int("sessions", 4, "client sessions of the load")
	rate := fs.Float64("rate", 0, "offered orders/s over all sessions (0: as fast as the window allows)")
	seconds := fs.Float64("seconds", 5, "measured seconds of load per variant")
	warmup := fs.Float64("warmup", 1, "unrecorded seconds before")
	samples := fs.Int("samples", 20000, "one-in-flight samples of order→ack and of echo per variant")
	cross := fs.Int("cross", 30, "percent of the load's orders that are marketable IOCs (fills)")
	variants := fs.String("variants", "write,fsync,tls", "server variants: write (plain TCP, the default durability), fsync, tls")
	budgetFile := fs.String("budget", "", "budget file (bench/budgets/network.json); exit 1 when missed")
	jsonFile := fs.String("json", "", "write the JSON summary here")
	svgFile := fs.String("svg", "", "write the latency plot (SVG) here")
	format := fs.String("format", "text", "stdout: text or json")
	cpu := fs.Int("cpu", runtime.NumCPU()-1, "CPU to pin the engine to (-1: no pinning)")
	engineIdle := fs.String("engine-idle", "busy-spin", "engine runner's idle strategy")
	othersIdle := fs.String("others-idle", "backoff", "the other agents' runner's idle strategy")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if *sessions < 1 || *seconds <= 0 || *samples < 100 || *rate < 0 || *cross < 0 || *cross > 100 {
		return fmt.Errorf("%w: --sessions ≥ 1, --seconds > 0, --samples ≥ 100, --rate ≥ 0, --cross in 0..100", errUsage)
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("%w: --format is text or json", errUsage)
	}
	plan, err := pipelinePlan("shared", *engineIdle, *othersIdle, *cpu)
	if err != nil {
		return err
	}
	var budget *NetBudget
	if *budgetFile != "" {
		data, err := os.ReadFile(*budgetFile)
		if err != nil {
			return err
		}
		budget = new(NetBudget)
		if err := json.Unmarshal(data, budget); err != nil {
			return fmt.Errorf("%w: --budget %s: %w", errUsage, *budgetFile, err)
		}
	}
	echo, err := netbench.StartEcho()
	if err != nil {
		return err
	}
	defer echo.Close()
	rep := NetReport{Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())}
	var series []bench.Series
	for _, v := range strings.Split(*variants, ",") {
		v = strings.TrimSpace(v)
		cfg := netbench.NetServerConfig{Sessions: *sessions, Plan: plan}
		switch v {
		case "write":
			cfg.Durability = audit.DurabilityWrite
		case "fsync":
			cfg.Durability = audit.DurabilityFsync
		case "tls":
			cfg.Durability, cfg.TLS = audit.DurabilityWrite, true
		default:
			return fmt.Errorf("%w: --variants: %q; use write, fsync or tls", errUsage, v)
		}
		dir, cleanup, err := netbench.TempDir()
		if err != nil {
			return err
		}
		cfg.Dir = dir
		nv, ack, ech, load, err := netVariant(ctx, cfg, echo, v, *samples, netbench.NetLoad{Rate: *rate, Duration: secs(*seconds), Warmup: secs(*warmup), CrossPct: *cross, Seed: 1})
		cleanup()
		if err != nil {
			return fmt.Errorf("variant %s: %w", v, err)
		}
		rep.Variants = append(rep.Variants, nv)
		series = append(series, bench.Series{Name: v + " ack (1 in flight)", H: ack}, bench.Series{Name: v + " ack (load)", H: load.Ack})
		if v == "write" {
			series = append(series, bench.Series{Name: "write fill (load)", H: load.Fill}, bench.Series{Name: "TCP echo", H: ech})
		}
	}
	if budget != nil {
		for _, nv := range rep.Variants {
			if nv.Name != "write" {
				continue
			}
			us := func(ns int64) float64 { return float64(ns) / 1e3 }
			check := func(what string, target, got float64, unit string, lower bool) {
				if target == 0 {
					return
				}
				met := got <= target
				if lower {
					met = got >= target
				}
				rep.Budgets = append(rep.Budgets, Budget{What: what, Target: target, Got: got, Unit: unit, Met: met})
			}
			check("order→ack p50 / echo p50", budget.AckP50VsEcho, nv.P50Ratio, "×", false)
			check("order→ack p99 / echo p99", budget.AckP99VsEcho, nv.P99Ratio, "×", false)
			check("order→ack p50 (1 in flight)", budget.AckP50us, us(nv.PingPong.P50), "µs", false)
			check("order→ack p99 (1 in flight)", budget.AckP99us, us(nv.PingPong.P99), "µs", false)
			check("order→fill p50 (load)", budget.FillP50us, us(nv.LoadFill.P50), "µs", false)
			check("order→fill p99 (load)", budget.FillP99us, us(nv.LoadFill.P99), "µs", false)
			check(fmt.Sprintf("orders/s over %d sessions", nv.Sessions), budget.MinOrdersPerS, nv.OrdersPerS, "orders/s", true)
		}
	}
	if *jsonFile != "" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*jsonFile, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	if *svgFile != "" {
		f, err := os.Create(*svgFile)
		if err != nil {
			return err
		}
		if err := bench.WriteSVG(f, "tradecore order→ack / order→fill vs TCP echo (loopback)", series); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	if *format == "json" {
		data, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Fprintln(stdout, string(data))
	} else {
		printNet(stdout, &rep)
	}
	for _, b := range rep.Budgets {
		if !b.Met {
			return errBudget
		}
	}
	return nil
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// netVariant runs one server variant: one-in-flight order→ack alternated
// with the echo, then the load.
func netVariant(ctx context.Context, cfg netbench.NetServerConfig, echo *netbench.Echo, name string, samples int, load netbench.NetLoad) (NetVariant, *hdrhistogram.Histogram, *hdrhistogram.Histogram, netbench.NetResult, error) {
	nv := NetVariant{Name: name, Sessions: cfg.Sessions, Offered: load.Rate}
	srv, err := netbench.StartNetServer(ctx, cfg)
	if err != nil {
		return nv, nil, nil, netbench.NetResult{}, err
	}
	defer srv.Stop()
	ack, ech := bench.NewHistogram(), bench.NewHistogram()
	const chunk = 500
	for done := 0; done < samples; done += chunk {
		n := min(chunk, samples-done)
		h, err := netbench.PingPong(ctx, srv.Keys[0], n)
		if err != nil {
			return nv, nil, nil, netbench.NetResult{}, err
		}
		ack.Merge(h)
		e, err := echo.PingPong(n, proto.Size(proto.TNewOrder))
		if err != nil {
			return nv, nil, nil, netbench.NetResult{}, err
		}
		ech.Merge(e)
	}
	nv.PingPong, nv.Echo = pcts(ack), pcts(ech)
	nv.P50Ratio = float64(nv.PingPong.P50) / float64(nv.Echo.P50)
	nv.P99Ratio = float64(nv.PingPong.P99) / float64(nv.Echo.P99)
	res, err := netbench.RunNetLoad(ctx, srv, load)
	if err != nil {
		return nv, nil, nil, res, err
	}
	nv.OrdersPerS, nv.Refused = res.PerSecond(), res.Refused
	nv.LoadAck, nv.LoadFill = pcts(res.Ack), pcts(res.Fill)
	return nv, ack, ech, res, srv.Stop()
}

func printNet(w io.Writer, rep *NetReport) {
	fmt.Fprintf(w, "tcbench net on %s\n", rep.Machine)
	us := func(ns int64) string { return fmt.Sprintf("%.1f", float64(ns)/1e3) }
	row := func(name string, p Pcts) {
		fmt.Fprintf(w, "  %-28s p50 %7s  p90 %7s  p99 %7s  p99.9 %7s  (machine: p99.99 %7s  max %8s) µs  n=%d\n",
			name, us(p.P50), us(p.P90), us(p.P99), us(p.P999), us(p.P9999), us(p.Max), p.Count)
	}
	for _, v := range rep.Variants {
		fmt.Fprintf(w, "\nvariant %s\n", v.Name)
		row("order→ack, 1 in flight", v.PingPong)
		row("TCP echo round trip", v.Echo)
		fmt.Fprintf(w, "  ratio order→ack / echo: p50 %.2f×, p99 %.2f×\n", v.P50Ratio, v.P99Ratio)
		offered := "unpaced"
		if v.Offered > 0 {
			offered = fmt.Sprintf("%.0f/s offered", v.Offered)
		}
		fmt.Fprintf(w, "  load over %d sessions (%s): %.0f orders/s acknowledged, %d refused (engine-busy)\n", v.Sessions, offered, v.OrdersPerS, v.Refused)
		row("order→ack under load", v.LoadAck)
		row("order→fill under load", v.LoadFill)
	}
	if len(rep.Budgets) > 0 {
		fmt.Fprintln(w, "\nbudgets (variant write):")
		for _, b := range rep.Budgets {
			mark := "MET "
			if !b.Met {
				mark = "MISS"
			}
			fmt.Fprintf(w, "  %s %-34s target %10.2f %s  got %10.2f\n", mark, b.What, b.Target, b.Unit, b.Got)
		}
	}
}
