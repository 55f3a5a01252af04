package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/client"
	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/netseg"
	"github.com/tradecore/tradecore/surveil"
)

// runServe runs the engine loop on the configuration (embedded defaults
// unless --config) behind the order-entry and market-data ports
// (docs/protocol.md) and serves clients until interrupted. With --rate it
// also runs a generated order flow as clients over the real protocol:
// random limit orders around each instrument's mid, some crossing, and
// cancels. It prints a sample of trades and, every --report interval,
// throughput and the latency from the gateway's receipt of a message to its
// first durable event.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs)
	cfgPath := fs.String("config", "", "configuration file (default: the embedded defaults, see docs/config.md)")
	duration := fs.Duration("duration", 0, "stop after this long (0: run until interrupted)")
	rate := fs.Float64("rate", 0, "generated orders per second, sent over the protocol by in-process clients (0: none)")
	flowSessions := fs.Int("flow-sessions", 4, "sessions of the generated flow")
	demoKey := fs.String("demo-key", "", "write a demo API key file here for tcclient (trade and data scopes; a plain-text secret: local use only)")
	var ov gatewayOverrides
	fs.StringVar(&ov.orderEntry, "order-entry", "", "order-entry listen address (overrides gateway.order_entry; \"-\" off)")
	fs.StringVar(&ov.marketData, "market-data", "", "market-data listen address (overrides gateway.market_data; \"-\" off)")
	fs.StringVar(&ov.metrics, "metrics", "", "Prometheus metrics listen address (overrides gateway.metrics; \"-\" off)")
	trades := fs.Int("trades", 5, "trades to print per report interval")
	every := fs.Duration("report", time.Second, "report interval")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rate < 0 || *every <= 0 || *trades < 0 || *flowSessions < 1 {
		return fmt.Errorf("%w: --rate must not be negative, --report and --flow-sessions must be positive, --trades not negative", errUsage)
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
	// Records queued by operator commands (attest, netseg) while the
	// daemon holds the log: ingested now, every second, and at stop.
	inboxCtx, stopInbox := context.WithCancel(context.WithoutCancel(ctx))
	inboxDone := make(chan struct{})
	go func() { defer close(inboxDone); runInbox(inboxCtx, srv.log, log) }()
	defer func() { stopInbox(); <-inboxDone }()
	stopMirror, err := startMirror(ctx, file, srv.log, filepath.Join(*dataDir, "audit"), log)
	if err != nil {
		return fmt.Errorf("audit: PostgreSQL mirror: %w", err)
	}
	defer stopMirror()

	// Segmentation: enforced, or (netseg.required false) reported off.
	var segOff error
	var seg *netseg.Running
	err = srv.log.CommitDuring(func() error {
		var err error
		seg, err = netseg.StartDaemon(ctx, netseg.DaemonConfig{Config: netseg.Config{Recorder: srv.log, Logger: log,
			PinPath: os.Getenv("TRADECORE_NETSEG_PIN_PATH")}, Policy: file.Netseg.Policy, Optional: !file.Netseg.Required})
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
	var gw *gateway.Gateway
	loop, err := core.NewLoop(coreCfg, core.LoopConfig{Control: ctl, Commands: cmdRing, ProducersStopped: func() bool { return gw.Stopped() }}, in, out)
	if err != nil {
		return err
	}
	// Recovery: the journal is replayed into the engine before anything runs.
	if _, err := recoverEngine(filepath.Join(*dataDir, "audit"), loop, log, stdout); err != nil {
		return err
	}
	startSeq := loop.Seq()
	// The journaler makes commands and events durable; every other consumer
	// of the events comes after it (the durability gate).
	journaler, err := audit.NewJournaler(srv.log, cmdRing, out, loop)
	if err != nil {
		return err
	}
	marks := &audit.SeqMarks{}
	journaler.SetMarks(marks)
	cons, err := out.NewConsumer(journaler.Events())
	if err != nil {
		return err
	}
	oeEvents, err := out.NewConsumer(journaler.Events())
	if err != nil {
		return err
	}
	mdEvents, err := out.NewConsumer(journaler.Events())
	if err != nil {
		return err
	}
	// The network edge: API keys, TLS, metrics, the gateway.
	edge, err := openEdge(ctx, *dataDir, file, srv.tok, ov, log)
	if err != nil {
		return err
	}
	defer edge.close()
	if seg != nil && seg.Collector != nil {
		// One metrics endpoint: the gateway's and the segmentation's.
		if err := edge.reg.Register(seg.Collector); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	// Device attestation of device-bound API keys, on the state the attest
	// verbs keep.
	attestor, closeAttestor, err := openServeAttestor(ctx, *dataDir, srv.log, log)
	if err != nil {
		return err
	}
	defer closeAttestor()
	gw, err = gateway.New(edge.cfg, gateway.Deps{Keys: edge.store, Recorder: srv.log, In: in, Control: ctl, Events: oeEvents, MDEvents: mdEvents,
		Loop: loop, JournalDir: filepath.Join(*dataDir, "audit"), Marks: marks, Registry: edge.reg, Attestor: attestor, Logger: log})
	if err != nil {
		return err
	}
	edge.gw = gw
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
	sink := newEventSink(cons, ctl, loop, mon, *every)
	sink.post = alertRecorder(srv.log, file, log)
	log.Info("tradecore serving", "data_dir", *dataDir, "instruments", len(file.Instruments),
		"max_orders", coreCfg.MaxOrders, "threading", plan.Mode.String(), "pinned", plan.Pin, "cpus", plan.CPUs,
		"engine_idle", plan.PrimaryIdle.String(), "others_idle", plan.OthersIdle.String(), "rate", *rate)

	// At a stop the gateway takes no more orders; the engine then drains the
	// rings, the journaler makes the rest durable, the publishers send it
	// and the sink reads every event before the runners return.
	ctx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	wait, err := agent.Start(ctx, plan, loop, append(append([]agent.Agent{journaler}, gw.Agents()...), sink)...)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- wait() }()
	// abort stops what runs after a failure at start.
	abort := func(err error) error {
		cancelRun()
		<-done
		_ = srv.log.CommitDuring(gw.Close)
		return err
	}
	if err := gw.Start(ctx); err != nil {
		return abort(err)
	}
	oeAddr, mdAddr := edge.addrs()
	fmt.Fprintf(stdout, "order entry on %s, market data on %s (%s)\n", orDash(oeAddr), orDash(mdAddr), edge.tlsNote())
	if edge.metricLn != nil {
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", edge.metricLn.Addr())
		log.Info("metrics endpoint", "url", "http://"+edge.metricLn.Addr().String()+"/metrics")
	}
	keyCtx, stopKeys := context.WithCancel(context.WithoutCancel(ctx))
	keysDone := make(chan struct{})
	go func() { // the key store's changes go to the audit log
		defer close(keysDone)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			if err := edge.recordKeyChanges(keyCtx, srv.log); err != nil && keyCtx.Err() == nil {
				log.Error("apikeys: changes not recorded in the audit log", "err", err)
			}
			select {
			case <-keyCtx.Done():
				return
			case <-t.C:
			}
		}
	}()
	if *demoKey != "" && oeAddr != "" {
		acct := uint32(1)
		if len(coreCfg.Accounts) > 0 {
			acct = coreCfg.Accounts[0].ID
		}
		if err := edge.writeDemoKey(ctx, *demoKey, acct); err != nil {
			stopKeys()
			return abort(fmt.Errorf("demo key: %w", err))
		}
		fmt.Fprintf(stdout, "demo key (account %d) written to %s: try  bin/tcclient place --symbol %s --side buy --qty 100 --price %s\n",
			acct, *demoKey, file.Instruments[0].Symbol, file.Instruments[0].TicksToPrice((coreCfg.Instruments[0].BandLow+coreCfg.Instruments[0].BandHigh)/2))
	}
	var fl *flow
	flowDone := make(chan struct{})
	if *rate > 0 && oeAddr != "" {
		fl = &flow{insts: coreCfg.Instruments, rate: *rate}
		var cfgs []client.Config
		for i := range *flowSessions {
			// Accounts apart from the demo key's (the first): 1001, 1002, …
			// or the configured ones from the last.
			acct := uint32(1001 + i)
			if n := len(coreCfg.Accounts); n > 0 {
				acct = coreCfg.Accounts[n-1-i%n].ID
			}
			k, secret, err := edge.keyFor(ctx, "flow-"+strconv.Itoa(i), acct, apikey.ScopeTrade)
			if err != nil {
				stopKeys()
				return abort(fmt.Errorf("generated flow: %w", err))
			}
			cfgs = append(cfgs, edge.clientConfig(k.ID, secret))
		}
		var wg sync.WaitGroup
		for i, cfg := range cfgs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fl.run(ctx, cfg, uint64(time.Now().UnixNano())+uint64(i), 1/float64(len(cfgs))); err != nil && ctx.Err() == nil {
					log.Error("generated flow: session ended", "err", err)
				}
			}()
		}
		go func() { wg.Wait(); close(flowDone) }()
	} else {
		close(flowDone)
	}
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
	// The plan has stopped: log every session out (what was answered is
	// sent first). The journaler has stopped, so the log commits the
	// sessions' last records itself.
	if err := srv.log.CommitDuring(gw.Close); err != nil {
		log.Error("gateway: close", "err", err)
	}
	<-flowDone
	stopKeys()
	<-keysDone
	if err := srv.log.CommitDuring(func() error { return edge.recordKeyChanges(context.Background(), srv.log) }); err != nil {
		log.Error("apikeys: changes not recorded in the audit log", "err", err)
	}
	if runErr != nil {
		return runErr
	}
	if err := recordStop(context.WithoutCancel(ctx), srv.log, filepath.Join(*dataDir, "audit"), loop, log); err != nil {
		return fmt.Errorf("record the engine's final state in the audit log: %w", err)
	}
	sent := loop.Seq() - startSeq
	fmt.Fprintf(stdout, "stopped after %d commands: %d trades, %d open orders, %d surveillance alerts; journal at %d leaves\n",
		sent, sink.totalTrades, loop.Engine().OpenCount(), rep.alerts, srv.log.Durable())
	if fl != nil {
		fmt.Fprintf(stdout, "generated flow: %d orders sent, %d accepted, %d send errors\n", fl.sent.Load(), fl.acked.Load(), fl.errs.Load())
	}
	// answered is the last sequence number the sink saw; a run that applied
	// nothing (loop.Seq() still the recovered one) has nothing to answer.
	if answered := max(sink.answered.Load(), startSeq); answered < loop.Seq() {
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
	fmt.Fprintf(r.out, "%8.0f cmds/s %8d trades  recv→event p50 %s p90 %s p99 %s p99.9 %s max %s  rejects %d  acked to seq %d\n",
		float64(iv.cmds)/secs, iv.trades,
		time.Duration(iv.lat.ValueAtQuantile(50)), time.Duration(iv.lat.ValueAtQuantile(90)), time.Duration(iv.lat.ValueAtQuantile(99)),
		time.Duration(iv.lat.ValueAtQuantile(99.9)), time.Duration(iv.lat.Max()), iv.rejects, iv.lastSeq)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
