// Command tcbench measures the engine on the three workloads and
// reports throughput and latency percentiles against the latency budgets.
//
//	tcbench [--workloads limits,move,pipeline] [--orders N] [--runs N] [--rates 10000,...] [--seconds S]
//	        [--mode shared|dedicated] [--cpu N] [--engine-idle S] [--others-idle S] [--format text|json] [--enforce]
//
// Workloads: (1) random limit orders around a mid, ~30% crossing; (2) the
// move-heavy mix (9% GTC, 3% IOC, 6% cancel, 82% replace); (3) the ring
// pipeline, producer agent → inbound ring → engine agent → outbound ring →
// latency-sink agent, placed on threads as tradecore serve places its agents
// (docs/threading.md), open loop at each offered rate and unpaced for the
// sustained rate. Throughput passes run several times, alternating workloads, with GC
// off and no per-order timing; latency passes time every command.
//
// p50/p99/p99.9 are the engine's figures. p99.99 and max are printed beside
// them as the machine's: this shared VM stalls every vCPU for ~35 µs about
// once a millisecond.
//
// `tcbench net` measures the network path instead: order→ack against a bare
// TCP echo, the sustained rate over N sessions, the cost of fsync and TLS
// (see its -h).
//
// Exit codes: 0 report written (budgets missed are marked MISS); 1 a run
// failed, or --enforce (net: --budget) and a budget was missed; 2 usage.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
)

func main() {
	runtime.LockOSThread() // run() sets this thread's CPU affinity; keep it on this thread
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "tcbench:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tcbench:", err)
		os.Exit(1)
	}
}

var (
	errUsage  = errors.New("usage")
	errBudget = errors.New("a latency or throughput budget was missed")
)

// Row is one line of the report.
type Row struct {
	Workload     string  `json:"workload"`
	Mode         string  `json:"mode"` // throughput | latency | open-loop | sustained
	OfferedPerS  float64 `json:"offered_per_s,omitempty"`
	Commands     int     `json:"commands"`
	PerSecond    float64 `json:"per_s"`
	NsPerCommand float64 `json:"ns_per_command"`
	AllocsPerCmd float64 `json:"allocs_per_command"`
	GCs          uint32  `json:"gc_cycles"`
	TookPercent  float64 `json:"took_percent,omitempty"`
	P50          int64   `json:"p50_ns,omitempty"`
	P90          int64   `json:"p90_ns,omitempty"`
	P99          int64   `json:"p99_ns,omitempty"`
	P999         int64   `json:"p99_9_ns,omitempty"`
	P9999        int64   `json:"p99_99_ns,omitempty"`
	Max          int64   `json:"max_ns,omitempty"`
}

// Budget is a target from the engine issue and whether it was met.
type Budget struct {
	What   string  `json:"what"`
	Target float64 `json:"target"`
	Got    float64 `json:"got"`
	Unit   string  `json:"unit"`
	Met    bool    `json:"met"`
}

// Report is tcbench's output.
type Report struct {
	Machine  string        `json:"machine"`
	Rows     []Row         `json:"rows"`
	Baseline []BaselineRow `json:"baseline,omitempty"`
	Budgets  []Budget      `json:"budgets"`
}

// BaselineRow is the median throughput of the baseline binary's pass of a
// workload, run alternately with this binary's.
type BaselineRow struct {
	Workload  string  `json:"workload"`
	PerSecond float64 `json:"per_s"`
	Runs      int     `json:"runs"`
}

// runBaseline runs one throughput round of an earlier tcbench and returns
// its commands/s by workload. Old binaries know only their own flags, so it
// asks for JSON, one run and its fastest pipeline setting, and keeps only the
// throughput rows.
func runBaseline(ctx context.Context, bin string, orders int) (map[string]float64, error) {
	cmd := exec.CommandContext(ctx, bin, "--format", "json", "--runs", "1", "--orders", strconv.Itoa(orders), "--rates", "1000000")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("baseline %s: %w: %s (build it with make bench, or drop --baseline)", bin, err, strings.TrimSpace(stderr.String()))
	}
	var rep Report
	if err := json.Unmarshal(out, &rep); err != nil {
		return nil, fmt.Errorf("baseline %s: its output is not a tcbench JSON report: %w", bin, err)
	}
	got := map[string]float64{}
	for _, r := range rep.Rows {
		if r.Mode == "throughput" {
			got[r.Workload] = r.PerSecond
		}
	}
	return got, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "net" {
		return runNet(ctx, args[1:], stdout)
	}
	fs := flag.NewFlagSet("tcbench", flag.ContinueOnError)
	orders := fs.Int("orders", 1_000_000, "commands per pass")
	runs := fs.Int("runs", 3, "throughput passes per workload (alternating; the median is reported)")
	rates := fs.String("rates", "10000,100000,250000,500000,1000000", "offered rates for the open-loop pipeline, commands/s")
	seconds := fs.Float64("seconds", 2, "length of each open-loop pipeline pass, in seconds of offered load (at most --orders commands)")
	cpu := fs.Int("cpu", runtime.NumCPU()-1, "CPU to pin the engine to (-1: no pinning); the other agents go on the other CPUs")
	mode := fs.String("mode", "shared", "threading mode: shared (engine alone, the other agents on one thread) or dedicated (a thread each)")
	engineIdle := fs.String("engine-idle", "busy-spin", "engine runner's idle strategy: busy-spin, yield, backoff or sleep")
	othersIdle := fs.String("others-idle", "backoff", "idle strategy of the producer's and consumer's runner(s), as serve's others_idle")
	only := fs.String("workloads", "limits,move,pipeline", "which workloads to run: any of limits, move, pipeline")
	journal := fs.String("journal", "write,write-ungated,fsync", "pipeline variants with the audit journal in the path: any of write, fsync (the sink gated after the journaler: the durability gate), write-ungated, fsync-ungated (the journal runs but the sink reads beside it: the gate's own cost), off")
	baseline := fs.String("baseline", "", "a tcbench binary built from an earlier commit (make bench builds one): its random-limits and move-heavy throughput passes run alternately with these, and the ratios are reported")
	format := fs.String("format", "text", "output: text or json")
	enforce := fs.Bool("enforce", false, "exit 1 when a budget is missed")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof reads it): what limits each workload next")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	plan, err := pipelinePlan(*mode, *engineIdle, *othersIdle, *cpu)
	if err != nil {
		return err
	}
	var offered []float64
	for _, s := range strings.Split(*rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("%w: --rates: %q is not a positive number", errUsage, s)
		}
		offered = append(offered, v)
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("%w: --format is text or json", errUsage)
	}
	if *orders < 1000 || *runs < 1 {
		return fmt.Errorf("%w: --orders must be at least 1000 and --runs at least 1", errUsage)
	}
	rep := Report{Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())}
	want := map[string]bool{}
	for _, w := range strings.Split(*only, ",") {
		switch w = strings.TrimSpace(w); w {
		case "limits", "move", "pipeline":
			want[w] = true
		default:
			return fmt.Errorf("%w: --workloads: %q; use limits, move or pipeline", errUsage, w)
		}
	}
	// Every engine runs at production capacity (2^20 open orders) with, for
	// the risk variants, the 1,000 accounts the workloads trade from.
	type workload struct {
		name string
		cmds []core.Command
		cfg  func() core.Config
	}
	var workloads []workload
	off := func() core.Config { return bench.EngineConfig(bench.ProductionMaxOrders) }
	on := func() core.Config { return bench.RiskEngineConfig(bench.ProductionMaxOrders) }
	if want["limits"] {
		cmds := bench.RandomLimits(1, *orders, 30)
		workloads = append(workloads, workload{"random-limits", cmds, off}, workload{"random-limits+risk", cmds, on})
	}
	if want["move"] {
		cmds := bench.MoveHeavy(1, *orders)
		workloads = append(workloads, workload{"move-heavy", cmds, off}, workload{"move-heavy+risk", cmds, on})
	}
	// Throughput: alternate the workloads (and the baseline binary, if any)
	// run by run, report the median of each.
	passes := make([][]bench.Result, len(workloads))
	var basePasses map[string][]float64
	for range *runs {
		if *baseline != "" && len(workloads) > 0 {
			got, err := runBaseline(ctx, *baseline, *orders)
			if err != nil {
				return err
			}
			if basePasses == nil {
				basePasses = map[string][]float64{}
			}
			for k, v := range got {
				basePasses[k] = append(basePasses[k], v)
			}
		}
		for i, w := range workloads {
			r, err := bench.Engine(w.name, w.cfg(), w.cmds, false)
			if err != nil {
				return err
			}
			passes[i] = append(passes[i], r)
		}
	}
	for i, w := range workloads {
		ps := passes[i]
		slices.SortFunc(ps, func(a, b bench.Result) int { return int(a.Elapsed - b.Elapsed) })
		rep.Rows = append(rep.Rows, row(w.name, "throughput", 0, ps[len(ps)/2]))
		r, err := bench.Engine(w.name, w.cfg(), w.cmds, true)
		if err != nil {
			return err
		}
		rep.Rows = append(rep.Rows, row(w.name, "latency", 0, r))
	}
	for name, vs := range basePasses {
		slices.Sort(vs)
		rep.Baseline = append(rep.Baseline, BaselineRow{Workload: name, PerSecond: vs[len(vs)/2], Runs: len(vs)})
	}
	slices.SortFunc(rep.Baseline, func(a, b BaselineRow) int { return strings.Compare(a.Workload, b.Workload) })
	pipeCmds := bench.RandomLimits(1, *orders, 30)
	// The pipeline without the journal, then with it at each durability
	// level: the journaler appends every command and event and the sink sees
	// only what it made durable (the durability gate serve runs).
	variants := []struct {
		name    string
		on      bool
		d       audit.Durability
		ungated bool
	}{{"pipeline", false, 0, false}}
	for _, j := range strings.Split(*journal, ",") {
		switch j = strings.TrimSpace(j); j {
		case "", "off":
		case "write", "fsync", "write-ungated", "fsync-ungated":
			level, ungated := strings.CutSuffix(j, "-ungated")
			d, _ := audit.ParseDurability(level)
			variants = append(variants, struct {
				name    string
				on      bool
				d       audit.Durability
				ungated bool
			}{"pipeline+journal-" + j, true, d, ungated})
		default:
			return fmt.Errorf("%w: --journal: %q; use off, write, fsync, write-ungated or fsync-ungated", errUsage, j)
		}
	}
	pass := func(v int, rate float64, cmds []core.Command) (bench.Result, error) {
		pc := bench.PipelineConfig{Rate: rate, Plan: plan}
		if variants[v].on {
			dir, err := os.MkdirTemp("", "tcbench-journal-")
			if err != nil {
				return bench.Result{}, err
			}
			defer os.RemoveAll(dir)
			pc.Journal = journalIn(ctx, dir, variants[v].d, variants[v].ungated)
		}
		return bench.Pipeline(ctx, variants[v].name, cmds, pc)
	}
	for _, rate := range offered {
		if !want["pipeline"] {
			break
		}
		n := min(len(pipeCmds), max(10_000, int(rate**seconds)))
		for v := range variants {
			r, err := pass(v, rate, pipeCmds[:n])
			if err != nil {
				return err
			}
			rep.Rows = append(rep.Rows, row(variants[v].name, "open-loop", rate, r))
		}
	}
	for v := range variants {
		if !want["pipeline"] {
			break
		}
		r, err := pass(v, 0, pipeCmds)
		if err != nil {
			return err
		}
		rep.Rows = append(rep.Rows, row(variants[v].name, "sustained", 0, r))
	}
	rep.Budgets = budgets(rep.Rows)

	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printText(stdout, rep)
	}
	if *enforce {
		for _, b := range rep.Budgets {
			if !b.Met {
				return errBudget
			}
		}
	}
	return nil
}

// journalIn returns the pipeline's journal: an audit log in dir at
// durability d (checkpoints unsigned: no HSM in a benchmark) and its
// journaler, gated before the sink unless ungated (then the sink reads the
// outbound ring beside the journaler: the journal's work without the gate).
func journalIn(ctx context.Context, dir string, d audit.Durability, ungated bool) func(*ring.Ring[core.Command], *ring.Ring[core.Event], *core.Loop) (agent.Agent, *ring.Consumer[core.Event], func() error, error) {
	return func(cmds *ring.Ring[core.Command], out *ring.Ring[core.Event], loop *core.Loop) (agent.Agent, *ring.Consumer[core.Event], func() error, error) {
		alog, closeLog, err := audit.Open(ctx, audit.Config{WriterConfig: audit.WriterConfig{Dir: dir, Durability: d,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, NoCheckpoints: true, ExternalCommit: true})
		if err != nil {
			return nil, nil, nil, err
		}
		j, err := audit.NewJournaler(alog, cmds, out, loop)
		if err != nil {
			closeLog()
			return nil, nil, nil, err
		}
		if ungated {
			return j, nil, closeLog, nil
		}
		return j, j.Events(), closeLog, nil
	}
}

// pipelinePlan is the threading plan of the pipeline passes: the engine on
// cpu (isolated from every other thread), the other agents on the other CPUs.
func pipelinePlan(mode, engineIdle, othersIdle string, cpu int) (agent.Plan, error) {
	m, err := agent.ParseMode(mode)
	if err != nil {
		return agent.Plan{}, fmt.Errorf("%w: --mode: %w", errUsage, err)
	}
	ei, err := agent.ParseIdleStrategy(engineIdle)
	if err != nil {
		return agent.Plan{}, fmt.Errorf("%w: --engine-idle: %w", errUsage, err)
	}
	oi, err := agent.ParseIdleStrategy(othersIdle)
	if err != nil {
		return agent.Plan{}, fmt.Errorf("%w: --others-idle: %w", errUsage, err)
	}
	p := agent.Plan{Mode: m, PrimaryIdle: ei, OthersIdle: oi}
	if cpu < 0 {
		return p, nil
	}
	if cpu >= runtime.NumCPU() {
		return p, fmt.Errorf("%w: --cpu %d: this machine has CPUs 0..%d", errUsage, cpu, runtime.NumCPU()-1)
	}
	if runtime.NumCPU() < 2 {
		return p, fmt.Errorf("%w: --cpu %d leaves no CPU for the other agents on a 1-CPU machine; use --cpu -1", errUsage, cpu)
	}
	p.Pin, p.Isolate, p.CPUs = true, true, []int{cpu}
	for c := range runtime.NumCPU() {
		if c != cpu {
			p.CPUs = append(p.CPUs, c)
		}
	}
	return p, nil
}

func row(workload, mode string, offered float64, r bench.Result) Row {
	out := Row{Workload: workload, Mode: mode, OfferedPerS: offered, Commands: r.Orders, PerSecond: r.PerSecond(),
		NsPerCommand: r.NsPerOrder(), AllocsPerCmd: r.AllocsPerOrder(), GCs: r.GCs, TookPercent: r.CrossedPercent}
	if r.Latency != nil {
		out.P50, out.P99, out.P999, out.P9999, out.Max = bench.Percentiles(r.Latency)
		out.P90 = r.Latency.ValueAtQuantile(90)
	}
	return out
}

// budgets are the engine issue's targets for this 2-core machine.
func budgets(rows []Row) []Budget {
	find := func(workload, mode string, offered float64) Row {
		for _, r := range rows {
			if r.Workload == workload && r.Mode == mode && (offered == 0 || r.OfferedPerS == offered) {
				return r
			}
		}
		return Row{}
	}
	var out []Budget
	add := func(what string, target, got float64, unit string, atMost bool) {
		met := got >= target
		if atMost {
			met = got <= target
		}
		out = append(out, Budget{What: what, Target: target, Got: got, Unit: unit, Met: met})
	}
	// Engine-throughput issue: production capacity, risk off and on.
	tp := find("random-limits", "throughput", 0)
	if tp.Commands > 0 {
		add("(1) random limits throughput", 10e6, tp.PerSecond, "orders/s", false)
	}
	if mh := find("move-heavy", "throughput", 0); mh.Commands > 0 {
		add("(2) move-heavy throughput", 13e6, mh.PerSecond, "orders/s", false)
	}
	for _, w := range []string{"random-limits", "move-heavy"} {
		t, tr := find(w, "throughput", 0), find(w+"+risk", "throughput", 0)
		if t.Commands == 0 || tr.Commands == 0 {
			continue
		}
		add(w+": risk on costs", 0.15, 1-tr.PerSecond/t.PerSecond, "fraction", true)
		for _, v := range []string{w, w + "+risk"} {
			lat := find(v, "latency", 0)
			add(v+" p99", 400, float64(lat.P99), "ns", true)
			add(v+" p99.9", 1000, float64(lat.P999), "ns", true)
			add(v+" allocations", 0, find(v, "throughput", 0).AllocsPerCmd, "allocs/order", true)
		}
	}
	// Engine-loop latency issue: due→event through both rings.
	for _, rate := range []float64{1e4, 1e5, 2.5e5, 5e5, 1e6} {
		if r := find("pipeline", "open-loop", rate); r.Commands > 0 {
			add(fmt.Sprintf("(3) pipeline p50 at %s/s offered", rateName(rate)), 5000, float64(r.P50), "ns", true)
		}
	}
	for _, rate := range []float64{1e4, 1e5} {
		if r := find("pipeline", "open-loop", rate); r.Commands > 0 {
			add(fmt.Sprintf("(3) pipeline p90 at %s/s offered", rateName(rate)), 20000, float64(r.P90), "ns", true)
		}
	}
	if r := find("pipeline", "open-loop", 1e5); r.Commands > 0 {
		add("(3) pipeline p99 at 100k/s offered", 250000, float64(r.P99), "ns", true)
	}
	// Audit-log issue: the durability gate at write costs at most 10%.
	for _, rate := range []float64{1e4, 1e5} {
		off, on := find("pipeline", "open-loop", rate), find("pipeline+journal-write", "open-loop", rate)
		if off.Commands > 0 && on.Commands > 0 {
			add(fmt.Sprintf("(3) journal at write: p50 at %s/s vs none", rateName(rate)), 1.10, float64(on.P50)/float64(off.P50), "ratio", true)
			add(fmt.Sprintf("(3) journal at write: p99 at %s/s vs none", rateName(rate)), 1.10, float64(on.P99)/float64(off.P99), "ratio", true)
		}
	}
	// The gate alone: the same journal with and without the sink gated
	// after it.
	for _, rate := range []float64{1e4, 1e5} {
		off, on := find("pipeline+journal-write-ungated", "open-loop", rate), find("pipeline+journal-write", "open-loop", rate)
		if off.Commands > 0 && on.Commands > 0 {
			add(fmt.Sprintf("(3) durability gate at write: p50 at %s/s vs ungated", rateName(rate)), 1.10, float64(on.P50)/float64(off.P50), "ratio", true)
			add(fmt.Sprintf("(3) durability gate at write: p99 at %s/s vs ungated", rateName(rate)), 1.10, float64(on.P99)/float64(off.P99), "ratio", true)
		}
	}
	if sus := find("pipeline", "sustained", 0); tp.PerSecond > 0 && sus.Commands > 0 {
		add("(3) pipeline sustained / engine in-process", 0.8, sus.PerSecond/tp.PerSecond, "ratio", false)
	}
	return out
}

func printText(w io.Writer, rep Report) {
	fmt.Fprintf(w, "tcbench on %s\n\n", rep.Machine)
	fmt.Fprintf(w, "%-14s %-11s %10s %10s %9s %8s %6s %8s %8s %8s %9s | %10s %10s\n",
		"workload", "mode", "offered/s", "cmds/s", "ns/cmd", "allocs", "took%", "p50", "p90", "p99", "p99.9", "p99.99*", "max*")
	for _, r := range rep.Rows {
		offered := "-"
		if r.OfferedPerS > 0 {
			offered = fmt.Sprintf("%.0f", r.OfferedPerS)
		}
		lat := func(v int64) string {
			if r.P50 == 0 {
				return "-"
			}
			return fmtNs(v)
		}
		took := "-"
		if r.TookPercent > 0 {
			took = fmt.Sprintf("%.1f", r.TookPercent)
		}
		fmt.Fprintf(w, "%-14s %-11s %10s %10.0f %9.1f %8.2f %6s %8s %8s %8s %9s | %10s %10s\n",
			r.Workload, r.Mode, offered, r.PerSecond, r.NsPerCommand, r.AllocsPerCmd, took,
			lat(r.P50), lat(r.P90), lat(r.P99), lat(r.P999), lat(r.P9999), lat(r.Max))
	}
	fmt.Fprintln(w, "\n* p99.99 and max are the machine's (VM stalls), not the engine's figures.")
	if len(rep.Baseline) > 0 {
		fmt.Fprintln(w, "\nagainst the baseline binary, same run, alternating (median of each):")
		for _, b := range rep.Baseline {
			for _, r := range rep.Rows {
				if r.Mode == "throughput" && r.Workload == b.Workload {
					fmt.Fprintf(w, "  %-14s baseline %6.2fM/s  this %6.2fM/s  ratio %.2f (%d runs)\n", b.Workload, b.PerSecond/1e6, r.PerSecond/1e6, r.PerSecond/b.PerSecond, b.Runs)
				}
			}
		}
	}
	fmt.Fprintln(w, "\nbudgets (engine issue, this 2-core machine):")
	for _, b := range rep.Budgets {
		mark := "MET "
		if !b.Met {
			mark = "MISS"
		}
		fmt.Fprintf(w, "  %s %-36s target %-10s got %s\n", mark, b.What, fmtVal(b.Target, b.Unit), fmtVal(b.Got, b.Unit))
	}
}

func rateName(r float64) string {
	if r >= 1e6 {
		return fmt.Sprintf("%gM", r/1e6)
	}
	return fmt.Sprintf("%gk", r/1e3)
}

func fmtNs(v int64) string {
	if v >= 10_000 {
		return fmt.Sprintf("%.1fµs", float64(v)/1000)
	}
	return fmt.Sprintf("%dns", v)
}

func fmtVal(v float64, unit string) string {
	switch unit {
	case "orders/s":
		return fmt.Sprintf("%.2fM %s", v/1e6, unit)
	case "fraction":
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}
