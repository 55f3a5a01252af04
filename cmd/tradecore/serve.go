package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/netseg"
	"github.com/tradecore/tradecore/surveil"
)

// runServe runs the engine loop on the configuration (embedded defaults
// unless --config) and, until the order-entry gateway exists, feeds it a
// generated order flow: random limit orders around each instrument's mid from
// 1,000 accounts, some crossing. It prints a sample of trades and, every
// --report interval, throughput and latency from due time to first event.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded defaults, see docs/config.md)")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	rate := fs.Float64("rate", 100_000, "generated orders per second")
	trades := fs.Int("trades", 5, "trades to print per report interval")
	every := fs.Duration("report", time.Second, "report interval")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rate <= 0 || *every <= 0 || *trades < 0 {
		return fmt.Errorf("%w: --rate and --report must be positive, --trades not negative", errUsage)
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))

	file := config.Default()
	if *cfgPath != "" {
		var err error
		if file, err = config.Load(*cfgPath); err != nil {
			return err
		}
	}
	if file.Risk.Off {
		log.Warn("pre-trade risk is off: the configuration says \"risk\": \"off\"; orders are not checked against accounts, limits, collars, locates or rates (halts and kill switches still work)")
	} else {
		log.Info("pre-trade risk on", "accounts", len(file.Accounts))
	}
	if err := os.MkdirAll(*dataDir, 0o750); err != nil {
		return fmt.Errorf("create the data directory: %w (choose another --data-dir)", err)
	}
	srv, err := startServices(ctx, *dataDir, file, log)
	if err != nil {
		return err
	}
	defer srv.closeAll()
	signer := srv.svc
	active := signer.Active()
	log.Info("signing service ready", "active_key_id", active.ID, "algorithm", active.Algorithm, "expires", active.Expires, "first_key_id", signer.FirstKeyID())
	fmt.Fprintf(stdout, "key manifest: first key %s (pin it: tradecore keys verify --pinned %s)\n", signer.FirstKeyID(), signer.FirstKeyID())
	log.Info("audit log ready", "dir", filepath.Join(*dataDir, "audit"), "durability", file.Audit.Durability, "leaves", srv.log.Durable())
	stopMirror, err := startMirror(ctx, file, srv.log, filepath.Join(*dataDir, "audit"), log)
	if err != nil {
		return fmt.Errorf("audit: PostgreSQL mirror: %w", err)
	}
	defer stopMirror()

	// Segmentation: enforced, or (netseg.required false) reported off.
	var segOff error
	err = srv.log.CommitDuring(func() error {
		seg, err := netseg.StartDaemon(ctx, netseg.DaemonConfig{Config: netseg.Config{Recorder: srv.log, Logger: log},
			Policy: file.Netseg.Policy, Optional: !file.Netseg.Required})
		if err == nil {
			segOff = seg.Off
		}
		return err
	})
	if err != nil {
		return err
	}
	if segOff == nil {
		log.Info("network segmentation enforced")
	}

	plan, err := file.Engine.Plan()
	if err != nil {
		return err
	}
	// Every wait inside a duty cycle spins: a runner never parks on a
	// channel (docs/threading.md).
	spin := ring.WaitStrategy{Mode: ring.BusySpin}
	in, err := ring.NewMPSC[core.Command](file.Engine.InboundRing, spin)
	if err != nil {
		return err
	}
	ctl, err := ring.NewMPSC[core.Command](1024, spin)
	if err != nil {
		return err
	}
	out, err := ring.NewRing[core.Event](file.Engine.OutboundRing, spin)
	if err != nil {
		return err
	}
	cmdRing, err := ring.NewRing[core.Command](file.Engine.InboundRing, spin)
	if err != nil {
		return err
	}
	coreCfg := file.Core()
	recent := new(recentOrders)
	gen := newGenerator(in, coreCfg, *rate, recent)
	loop, err := core.NewLoop(coreCfg, core.LoopConfig{Control: ctl, Commands: cmdRing, ProducersStopped: gen.Stopped}, in, out)
	if err != nil {
		return err
	}
	// Recovery: the journal is replayed into the engine before anything runs.
	if _, err := recoverEngine(filepath.Join(*dataDir, "audit"), loop, log, stdout); err != nil {
		return err
	}
	gen.continueAfter(loop.Seq())
	// The journaler makes commands and events durable; every other consumer
	// of the events comes after it (the durability gate).
	journaler, err := audit.NewJournaler(srv.log, cmdRing, out, loop)
	if err != nil {
		return err
	}
	cons, err := out.NewConsumer(journaler.Events())
	if err != nil {
		return err
	}
	// Surveillance reads the same events on the sink's thread; its throttle,
	// suspend and kill actions go back in through the control lane, which
	// order flow cannot fill.
	mon, err := surveil.New(surveil.Config{Accounts: surveil.RefsOf(coreCfg.Accounts), Submit: ctl.TryPush})
	if err != nil {
		return err
	}
	if off := mon.Disabled(); len(off) > 0 {
		log.Warn("surveillance detectors disabled by configuration", "detectors", fmt.Sprint(off))
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	sink := newEventSink(cons, ctl, loop, mon, *every, recent)
	log.Info("tradecore serving", "data_dir", *dataDir, "instruments", len(file.Instruments),
		"max_orders", coreCfg.MaxOrders, "threading", plan.Mode.String(), "pinned", plan.Pin, "cpus", plan.CPUs,
		"engine_idle", plan.PrimaryIdle.String(), "others_idle", plan.OthersIdle.String(), "rate", *rate)

	// The generator stops with ctx; the engine then drains the rings, the
	// journaler makes the rest durable and the sink reads every event before
	// the runners return.
	wait, err := agent.Start(ctx, plan, loop, gen, journaler, sink)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- wait() }()
	rep := &reporter{out: stdout, file: file, trades: *trades, log: log}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	var runErr error
	for running := true; running; {
		select {
		case runErr = <-done:
			running = false
		case <-tick.C:
		}
		if iv := sink.take(); iv != nil {
			rep.report(iv)
			sink.giveBack(iv)
		}
	}
	if runErr != nil {
		return runErr
	}
	if err := recordStop(context.WithoutCancel(ctx), srv.log, filepath.Join(*dataDir, "audit"), loop, log); err != nil {
		return fmt.Errorf("record the engine's final state in the audit log: %w", err)
	}
	sent := gen.sent.Load()
	fmt.Fprintf(stdout, "stopped after %d commands: %d trades, %d open orders, %d surveillance alerts; journal at %d leaves\n",
		sent, sink.totalTrades, loop.Engine().OpenCount(), rep.alerts, srv.log.Durable())
	if answered := sink.answered.Load(); answered < loop.Seq() {
		return fmt.Errorf("serve: the engine applied %d commands but only %d were answered", loop.Seq(), answered)
	}
	log.Info("tradecore stopped", "commands", sent, "trades", sink.totalTrades, "seq", loop.Seq())
	return nil
}

// reporter prints the sink's intervals: throughput, due→event latency and a
// sample of trades, on its own goroutine, off the agents' threads.
type reporter struct {
	out    io.Writer
	file   *config.File
	trades int
	log    *slog.Logger
	alerts uint64
}

func (r *reporter) report(iv *interval) {
	for i := range min(iv.nSample, r.trades) {
		ev := &iv.sample[i]
		inst, _ := r.file.Instrument(ev.Instrument)
		fmt.Fprintf(r.out, "trade %-5s %s @ %s aggressor=%s match=%d\n", inst.Symbol,
			inst.LotsToQty(ev.Qty), inst.TicksToPrice(ev.Price), ev.Side, ev.MatchID)
	}
	for i := range iv.nAlerts {
		r.log.Warn("surveillance alert", "alert", iv.alertSample[i].String())
	}
	if iv.alerts > uint64(iv.nAlerts) {
		r.log.Warn("surveillance alerts not logged one by one", "count", iv.alerts-uint64(iv.nAlerts))
	}
	r.alerts += iv.alerts
	if iv.cmds == 0 {
		return
	}
	secs := float64(iv.end-iv.start) / 1e9
	fmt.Fprintf(r.out, "%8.0f cmds/s %8d trades  due→event p50 %s p90 %s p99 %s p99.9 %s max %s  rejects %d  acked to seq %d\n",
		float64(iv.cmds)/secs, iv.trades,
		time.Duration(iv.lat.ValueAtQuantile(50)), time.Duration(iv.lat.ValueAtQuantile(90)), time.Duration(iv.lat.ValueAtQuantile(99)),
		time.Duration(iv.lat.ValueAtQuantile(99.9)), time.Duration(iv.lat.Max()), iv.rejects, iv.lastSeq)
}
