package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/hsm"
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
	if err := os.MkdirAll(*dataDir, 0o750); err != nil {
		return fmt.Errorf("create the data directory: %w (choose another --data-dir)", err)
	}
	signer, closeSigner, err := startSigner(ctx, *dataDir, log)
	if err != nil {
		return err
	}
	defer closeSigner()
	active := signer.Active()
	log.Info("signing service ready", "active_key_id", active.ID, "algorithm", active.Algorithm, "expires", active.Expires, "first_key_id", signer.FirstKeyID())
	fmt.Fprintf(stdout, "key manifest: first key %s (pin it: tradecore keys verify --pinned %s)\n", signer.FirstKeyID(), signer.FirstKeyID())

	ws, err := ring.ParseWaitStrategy(file.Engine.Wait)
	if err != nil {
		return err
	}
	in, err := ring.NewMPSC[core.Command](file.Engine.InboundRing, ws)
	if err != nil {
		return err
	}
	out, err := ring.NewRing[core.Event](file.Engine.OutboundRing, ws)
	if err != nil {
		return err
	}
	cons, err := out.NewConsumer()
	if err != nil {
		return err
	}
	lc := core.LoopConfig{Pin: file.Engine.CPU >= 0, CPU: max(file.Engine.CPU, 0)}
	coreCfg := file.Core()
	loop, err := core.NewLoop(coreCfg, lc, in, out)
	if err != nil {
		return err
	}
	// Surveillance reads the same events, off the engine thread; its throttle,
	// suspend and kill actions go back in through the inbound ring.
	mon, err := surveil.New(surveil.Config{Accounts: surveil.RefsOf(coreCfg.Accounts)})
	if err != nil {
		return err
	}
	var alerts surveil.Output
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	log.Info("tradecore serving", "data_dir", *dataDir, "instruments", len(file.Instruments),
		"max_orders", file.Core().MaxOrders, "wait", ws.String(), "pinned_cpu", file.Engine.CPU, "rate", *rate)

	loopCtx, stopLoop := context.WithCancel(context.Background())
	defer stopLoop()
	loopDone := make(chan error, 1)
	go func() { loopDone <- loop.Run(loopCtx) }()
	genDone := make(chan uint64, 1)
	go func() { genDone <- generate(ctx, in, file, *rate) }()

	s := &stats{lat: hdrhistogram.New(1, int64(10*time.Second), 3), out: stdout, file: file, trades: *trades}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	sent := uint64(0)
	generating := true
	for {
		// Drain what the engine published; after the generator stopped, stop
		// once every command sent has been answered.
		if w := cons.Poll(); len(w) > 0 {
			s.consume(w, time.Now().UnixNano())
			mon.Observe(w, &alerts)
			cons.Release(len(w))
			for _, a := range alerts.Alerts {
				s.alerts++
				log.Warn("surveillance alert", "alert", a.String())
			}
			for i := range alerts.Commands {
				if in.TryPush(&alerts.Commands[i]) {
					sent++ // answered like any command before the loop stops
				} else {
					log.Error("surveillance action dropped: inbound ring full", "kind", alerts.Commands[i].Kind.String(), "account", alerts.Commands[i].Account)
				}
			}
			alerts.Reset()
			continue
		}
		if !generating && s.lastSeq >= sent {
			break
		}
		select {
		case n := <-genDone:
			sent, generating = sent+n, false
		case <-tick.C:
			s.report(*every)
		default:
			waitCtx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			_ = cons.Wait(waitCtx)
			cancel()
		}
	}
	s.report(*every)
	stopLoop()
	if err := <-loopDone; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintf(stdout, "stopped after %d commands: %d trades, %d open orders, %d surveillance alerts\n", sent, s.totalTrades, loop.Engine().OpenCount(), s.alerts)
	log.Info("tradecore stopped", "commands", sent, "trades", s.totalTrades)
	return nil
}

// startSigner brings up the local default HSM: the SoftHSM2 token under
// <data-dir>/softhsm (created on first run, PINs generated in the
// credentials folder outside the data dir: $CREDENTIALS_DIRECTORY, else
// $TRADECORE_CREDENTIALS_DIR, else ~/.config/tradecore/credentials), the key
// manifest under <data-dir>/keys (first key generated on first run; a
// missing manifest beside existing keys is refused, see docs/keys.md), and
// the signing service, which checks key age hourly and rotates at 90 days.
func startSigner(ctx context.Context, dataDir string, log *slog.Logger) (*hsm.Service, func() error, error) {
	sel := tokenSelection{DataDir: dataDir, Token: hsm.DefaultTokenLabel}
	tok, closeTok, err := sel.open(ctx, log, true)
	if err != nil {
		return nil, nil, fmt.Errorf("open the local SoftHSM token: %w", err)
	}
	cfg := hsm.ServiceConfig{Dir: sel.keysDir(), Logger: log, CheckInterval: time.Hour}
	if _, err := hsm.Init(ctx, tok, cfg); err != nil {
		closeTok()
		return nil, nil, err
	}
	svc, closeSvc, err := hsm.NewService(ctx, tok, cfg)
	if err != nil {
		closeTok()
		return nil, nil, err
	}
	return svc, func() error { return errors.Join(closeSvc(), closeTok()) }, nil
}

// generate pushes random limit orders at rate per second until ctx ends and
// returns how many it pushed. Each command's Tag is its due time, so latency
// counts from when it should have been sent (no coordinated omission).
func generate(ctx context.Context, in *ring.MPSC[core.Command], file *config.File, rate float64) uint64 {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	insts := file.Core().Instruments
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var n uint64
	for ctx.Err() == nil {
		due := start.Add(time.Duration(n) * interval)
		if d := time.Until(due); d > 50*time.Microsecond {
			time.Sleep(d)
		}
		in0 := insts[r.IntN(len(insts))]
		mid := (in0.BandLow + in0.BandHigh) / 2
		c := core.Command{Kind: core.CmdNew, Instrument: in0.ID, Account: 1 + uint32(r.IntN(1000)), ClOrdID: n + 1,
			Type: core.Limit, TIF: core.DAY, Qty: 1 + r.Int64N(100), Side: core.Side(1 + r.IntN(2)), Tag: uint64(due.UnixNano())}
		off := 1 + r.Int64N(200)
		if r.IntN(100) < 30 {
			off = -200 // marketable
		}
		c.Price = mid - off
		if c.Side == core.Sell {
			c.Price = mid + off
		}
		if r.IntN(100) < 20 && n > 0 { // cancel an earlier order of ours, if still open
			c = core.Command{Kind: core.CmdCancel, Account: c.Account, OrigClOrdID: 1 + r.Uint64N(n), Tag: c.Tag}
		}
		if err := in.Push(ctx, &c); err != nil {
			break
		}
		n++
	}
	return n
}

type stats struct {
	lat                    *hdrhistogram.Histogram
	out                    io.Writer
	file                   *config.File
	trades, printed        int
	lastSeq, cmds, events  uint64
	intervalTrades         uint64
	totalTrades            uint64
	rejects, intervalStart uint64
	alerts                 uint64
}

func (s *stats) consume(w []core.Event, now int64) {
	for i := range w {
		ev := &w[i]
		s.events++
		if ev.Seq != s.lastSeq {
			s.lastSeq = ev.Seq
			s.cmds++
			_ = s.lat.RecordValue(max(now-int64(ev.Tag), 1))
		}
		switch ev.Kind {
		case core.KindRejected:
			s.rejects++
		case core.KindTrade:
			s.totalTrades++
			s.intervalTrades++
			if s.printed < s.trades {
				s.printed++
				inst, _ := s.file.Instrument(ev.Instrument)
				fmt.Fprintf(s.out, "trade %-5s %s @ %s aggressor=%s match=%d\n", inst.Symbol,
					inst.LotsToQty(ev.Qty), inst.TicksToPrice(ev.Price), ev.Side, ev.MatchID)
			}
		}
	}
}

func (s *stats) report(every time.Duration) {
	if s.cmds == s.intervalStart {
		return
	}
	fmt.Fprintf(s.out, "%8.0f cmds/s %8d trades  due→event p50 %s p99 %s p99.9 %s max %s  rejects %d\n",
		float64(s.cmds-s.intervalStart)/every.Seconds(), s.intervalTrades,
		time.Duration(s.lat.ValueAtQuantile(50)), time.Duration(s.lat.ValueAtQuantile(99)),
		time.Duration(s.lat.ValueAtQuantile(99.9)), time.Duration(s.lat.Max()), s.rejects)
	s.lat.Reset()
	s.intervalStart, s.intervalTrades, s.printed = s.cmds, 0, 0
}
