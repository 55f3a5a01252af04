package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/tradecore/tradecore/client"
	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/proto"
	"github.com/tradecore/tradecore/tpm/device"
)

// The trading commands: each logs in with a key file, sends one message,
// prints what comes back, and logs out.
func init() {
	subcommands["place"] = subcommand{"enter an order: --symbol S --side buy|sell --qty Q [--price P] [--type] [--tif] …", runPlace}
	subcommands["cancel"] = subcommand{"cancel an order: --order ID --ref REF", runCancel}
	subcommands["reduce"] = subcommand{"cancel an order down to --qty Q: --order ID --ref REF --qty Q", runReduce}
	subcommands["replace"] = subcommand{"replace an order: --order ID --ref REF --price P --qty Q", runReplace}
	subcommands["mass-cancel"] = subcommand{"cancel every open order of the account [--symbol S]", runMassCancel}
	subcommands["kill"] = subcommand{"set the account's kill switch", runKill}
	subcommands["next-ref"] = subcommand{"print the next client reference to use", runNextRef}
	subcommands["events"] = subcommand{"print the account's messages from --from SEQ (replayed), --follow for live ones", runEvents}
	subcommands["shell"] = subcommand{"interactive: one command per line (place, cancel, …) on one session", runShell}
}

// conn holds the connection flags of the trading commands.
type conn struct {
	keyFile, addr, pin, ca, config, format string
	plain                                  bool
	wait                                   time.Duration
	deviceKey, tpm                         string // TPM attestation: the AK file and the TPM
}

func defaultKeyFile() string {
	dir := os.Getenv("TRADECORE_DATA_DIR")
	if dir == "" {
		dir = "./var"
	}
	return filepath.Join(dir, "demo-key.json")
}

func (c *conn) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.keyFile, "key-file", defaultKeyFile(), "API key file (tradecore apikeys create --out, or the demo key of make run)")
	fs.StringVar(&c.addr, "addr", "", "order-entry address host:port (default: the key file's, else 127.0.0.1:7001)")
	fs.StringVar(&c.pin, "pin", "", "SHA-256 pin of the server's key, hex (default: the key file's)")
	fs.StringVar(&c.ca, "ca", "", "PEM file of CA certificates to verify the server with")
	fs.BoolVar(&c.plain, "plain", false, "plain TCP (a server configured for co-location without TLS)")
	fs.StringVar(&c.config, "config", "", "configuration file for symbols, tick and lot sizes (default: the embedded defaults, as make run)")
	fs.StringVar(&c.format, "format", "text", "output: text or json (one object per line)")
	fs.DurationVar(&c.wait, "wait", time.Second, "how long to wait for further messages after the last one")
	fs.StringVar(&c.deviceKey, "device-key", os.Getenv("TCCLIENT_DEVICE_KEY"),
		"attest the session with this host's TPM: the AK file of 'tcclient attest activate' (default $TCCLIENT_DEVICE_KEY; empty: no attestation)")
	fs.StringVar(&c.tpm, "tpm", envOr("TCCLIENT_TPM", device.DefaultPath), "the TPM for --device-key: a character device or a swtpm unix socket")
}

// session is an open trading session with its configuration.
type session struct {
	cl       *client.Client
	closeDev func() error // the TPM of an attested session
	file     *config.File
	out      io.Writer
	json     bool
	wait     time.Duration
}

// closeClient closes the client, then the TPM it attested with.
func (s *session) closeClient() error {
	err := s.cl.Close()
	if s.closeDev != nil {
		_ = s.closeDev()
	}
	return err
}

func (c *conn) open(ctx context.Context, stdout io.Writer, nextSeq uint64) (*session, error) {
	if c.format != "text" && c.format != "json" {
		return nil, fmt.Errorf("%w: --format %q: use text or json", errUsage, c.format)
	}
	kf, secret, err := client.LoadKeyFile(c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w (make run writes the demo key; or give --key-file)", err)
	}
	cfg := client.Config{Addr: c.addr, KeyID: kf.KeyID, Secret: secret, PinSHA256: c.pin, Plain: c.plain || kf.Plain, NextSeq: nextSeq}
	if cfg.Addr == "" {
		cfg.Addr = kf.OrderEntry
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:7001"
	}
	if cfg.PinSHA256 == "" {
		cfg.PinSHA256 = kf.PinSHA256
	}
	if c.ca != "" {
		pem, err := os.ReadFile(c.ca)
		if err != nil {
			return nil, err
		}
		roots, err := client.RootsFromPEM(pem)
		if err != nil {
			return nil, err
		}
		cfg.TLS = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}
	}
	file := config.Default()
	if c.config != "" {
		if file, err = config.Load(c.config); err != nil {
			return nil, err
		}
	}
	var closeDev func() error
	if c.deviceKey != "" {
		dev, closeTPM, err := client.OpenDevice(c.tpm, c.deviceKey)
		if err != nil {
			return nil, fmt.Errorf("%w (--device-key is the AK file of 'tcclient attest activate', --tpm the TPM)", err)
		}
		cfg.Device, closeDev = dev, closeTPM
	}
	cl, err := client.Dial(ctx, cfg)
	if err != nil {
		if closeDev != nil {
			_ = closeDev()
		}
		return nil, err
	}
	return &session{cl: cl, closeDev: closeDev, file: file, out: stdout, json: c.format == "json", wait: c.wait}, nil
}

// instrument resolves a symbol (or a numeric id).
func (s *session) instrument(sym string) (*config.Instrument, error) {
	if in, ok := s.file.BySymbol(sym); ok {
		return in, nil
	}
	if id, err := strconv.ParseUint(sym, 10, 32); err == nil {
		if in, ok := s.file.Instrument(uint32(id)); ok {
			return in, nil
		}
	}
	return nil, fmt.Errorf("%w: unknown symbol %q", errUsage, sym)
}

// show prints one message.
func (s *session) show(m proto.Message) {
	v := s.view(m)
	if s.json {
		b, _ := json.Marshal(v)
		fmt.Fprintln(s.out, string(b))
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-14s", v["type"])
	for _, k := range []string{"seq", "reason", "order_id", "clordid", "orig_clordid", "symbol", "side", "liquidity", "price", "stop_price", "qty", "leaves", "match_id", "next_clordid", "value"} {
		if x, ok := v[k]; ok {
			fmt.Fprintf(&b, " %s=%v", k, x)
		}
	}
	fmt.Fprintln(s.out, b.String())
}

// view maps a message to named fields, with decimal prices and quantities.
func (s *session) view(m proto.Message) map[string]any {
	v := map[string]any{}
	inst := func(id uint32) *config.Instrument {
		in, _ := s.file.Instrument(id)
		if in != nil {
			v["symbol"] = in.Symbol
		} else if id != 0 {
			v["symbol"] = strconv.Itoa(int(id))
		}
		return in
	}
	price := func(in *config.Instrument, name string, t int64) {
		if t == 0 && name == "stop_price" {
			return
		}
		if in != nil {
			v[name] = in.TicksToPrice(t).StringFixed(-in.TickSize.Exponent())
		} else {
			v[name] = t
		}
	}
	qty := func(in *config.Instrument, name string, l int64) {
		if in != nil {
			v[name] = in.LotsToQty(l).String()
		} else {
			v[name] = l
		}
	}
	reason := func(r core.Reason) {
		v["reason"] = proto.ReasonName(r)
		v["reason_code"] = int(r)
	}
	switch x := m.(type) {
	case *proto.Accepted:
		v["type"], v["seq"], v["time"], v["order_id"], v["clordid"] = "accepted", x.Seq, x.Time, x.OrderID, x.ClOrdID
		in := inst(x.Instrument)
		v["side"], v["order_type"], v["tif"] = x.Side.String(), x.OrdType.String(), x.TIF.String()
		price(in, "price", x.Price)
		price(in, "stop_price", x.StopPrice)
		qty(in, "qty", x.Qty)
	case *proto.Rejected:
		v["type"], v["seq"], v["time"], v["order_id"], v["clordid"] = "rejected", x.Seq, x.Time, x.OrderID, x.ClOrdID
		reason(x.Reason)
		in := inst(x.Instrument)
		v["side"] = x.Side.String()
		price(in, "price", x.Price)
		qty(in, "qty", x.Qty)
	case *proto.Executed:
		v["type"], v["seq"], v["time"], v["order_id"], v["clordid"], v["match_id"] = "executed", x.Seq, x.Time, x.OrderID, x.ClOrdID, x.MatchID
		in := inst(x.Instrument)
		v["side"], v["liquidity"] = x.Side.String(), map[byte]string{'A': "added", 'R': "removed"}[x.Liquidity]
		price(in, "price", x.Price)
		qty(in, "qty", x.Qty)
		qty(in, "leaves", x.Leaves)
	case *proto.Cancelled:
		v["type"], v["seq"], v["time"], v["order_id"], v["clordid"] = "cancelled", x.Seq, x.Time, x.OrderID, x.ClOrdID
		reason(x.Reason)
		in := inst(x.Instrument)
		v["side"] = x.Side.String()
		qty(in, "qty", x.Qty)
	case *proto.Reduced:
		v["type"], v["seq"], v["time"], v["order_id"], v["clordid"] = "reduced", x.Seq, x.Time, x.OrderID, x.ClOrdID
		reason(x.Reason)
		in := inst(x.Instrument)
		qty(in, "qty", x.Qty)
		qty(in, "leaves", x.Leaves)
	case *proto.Replaced:
		v["type"], v["seq"], v["time"], v["order_id"], v["clordid"], v["orig_clordid"] = "replaced", x.Seq, x.Time, x.OrderID, x.ClOrdID, x.OrigClOrdID
		in := inst(x.Instrument)
		price(in, "price", x.Price)
		price(in, "stop_price", x.StopPrice)
		qty(in, "leaves", x.Leaves)
	case *proto.Triggered:
		v["type"], v["seq"], v["time"], v["order_id"], v["clordid"] = "triggered", x.Seq, x.Time, x.OrderID, x.ClOrdID
		in := inst(x.Instrument)
		price(in, "price", x.Price)
		qty(in, "leaves", x.Leaves)
	case *proto.SystemEvent:
		v["type"], v["seq"], v["time"] = "system", x.Seq, x.Time
		reason(x.Reason)
		inst(x.Instrument)
	case *proto.AccountAlert:
		v["type"], v["seq"], v["time"], v["value"] = "account-alert", x.Seq, x.Time, x.Value
		reason(x.Reason)
	case *proto.SessionReject:
		v["type"], v["clordid"], v["order_id"] = "session-reject", x.ClOrdID, x.OrderID
		reason(x.Reason)
	case *proto.NextReference:
		v["type"], v["next_clordid"] = "next-reference", x.NextClOrdID
	default:
		v["type"] = m.Type().String()
	}
	return v
}

// drain prints messages until none came for s.wait (or, with done, until
// done reports true for a message).
func (s *session) drain(ctx context.Context, done func(proto.Message) bool) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, s.wait)
		m, err := s.cl.Recv(rctx)
		cancel()
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || rctx.Err() != nil {
				return nil
			}
			return err
		}
		s.show(m)
		if done != nil && done(m) {
			return nil
		}
	}
}

// close logs out, printing what the server still sends.
func (s *session) close(ctx context.Context) error {
	if err := s.cl.Logout(); err != nil {
		return s.closeClient()
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		m, err := s.cl.Recv(rctx)
		cancel()
		if err != nil {
			break
		}
		s.show(m)
	}
	return s.closeClient()
}

// one runs a single-message command: open, act, print until quiet, close.
func one(ctx context.Context, name string, args []string, stdout, stderr io.Writer, extra func(fs *flag.FlagSet) func(s *session) error) error {
	fs := flag.NewFlagSet("tcclient "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c conn
	c.flags(fs)
	act := extra(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	s, err := c.open(ctx, stdout, 0)
	if err != nil {
		return err
	}
	if err := act(s); err != nil {
		_ = s.close(ctx)
		return err
	}
	if err := s.drain(ctx, nil); err != nil {
		_ = s.close(ctx)
		return err
	}
	return s.close(ctx)
}

// orderFlags are the flags of place.
type orderFlags struct {
	symbol, side, typ, tif, price, stop, qty, display, minQty, stp string
	ref                                                            uint64
	postOnly                                                       bool
}

func (o *orderFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&o.symbol, "symbol", "", "instrument symbol (or id)")
	fs.StringVar(&o.side, "side", "", "buy or sell")
	fs.StringVar(&o.typ, "type", "limit", "limit, market, stop or stop-limit")
	fs.StringVar(&o.tif, "tif", "day", "day, gtc, ioc or fok")
	fs.StringVar(&o.price, "price", "", "limit price (decimal)")
	fs.StringVar(&o.stop, "stop", "", "stop price (decimal)")
	fs.StringVar(&o.qty, "qty", "", "quantity (shares)")
	fs.StringVar(&o.display, "display", "", "iceberg: quantity shown")
	fs.StringVar(&o.minQty, "min", "", "minimum quantity to execute on arrival")
	fs.StringVar(&o.stp, "stp", "cancel-newest", "self-trade prevention: cancel-newest, cancel-oldest, cancel-both, decrement, off")
	fs.BoolVar(&o.postOnly, "post-only", false, "refuse the order if it would take liquidity")
	fs.Uint64Var(&o.ref, "ref", 0, "client reference (default: the next one the server gives)")
}

func parseEnum(what, s string, names []string) (uint8, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %s %q; use one of %s", errUsage, what, s, strings.Join(names[1:], ", "))
}

func decimalOf(what, s string) (decimal.Decimal, error) {
	d, err := decimal.NewFromString(s)
	if err != nil {
		return d, fmt.Errorf("%w: %s %q is not a decimal", errUsage, what, s)
	}
	return d, nil
}

// build makes the NewOrder.
func (o *orderFlags) build(s *session) (*proto.NewOrder, error) {
	if o.symbol == "" || o.side == "" || o.qty == "" {
		return nil, fmt.Errorf("%w: place needs --symbol, --side and --qty", errUsage)
	}
	in, err := s.instrument(o.symbol)
	if err != nil {
		return nil, err
	}
	m := &proto.NewOrder{Instrument: in.ID, ClOrdID: o.ref}
	side, err := parseEnum("--side", o.side, []string{"", "buy", "sell"})
	if err != nil {
		return nil, err
	}
	typ, err := parseEnum("--type", o.typ, []string{"", "limit", "market", "stop", "stop-limit"})
	if err != nil {
		return nil, err
	}
	tif, err := parseEnum("--tif", o.tif, []string{"", "day", "gtc", "ioc", "fok"})
	if err != nil {
		return nil, err
	}
	stp, err := parseEnum("--stp", o.stp, []string{"cancel-newest", "cancel-oldest", "cancel-both", "decrement", "off"})
	if err != nil {
		return nil, err
	}
	m.Side, m.OrdType, m.TIF, m.STP = core.Side(side), core.OrderType(typ), core.TIF(tif), core.STPMode(stp)
	if o.postOnly {
		m.Flags = core.PostOnly
	}
	conv := func(what, s string, lots bool) (int64, error) {
		if s == "" {
			return 0, nil
		}
		d, err := decimalOf(what, s)
		if err != nil {
			return 0, err
		}
		if lots {
			return in.QtyToLots(d)
		}
		return in.PriceToTicks(d)
	}
	if m.Qty, err = conv("--qty", o.qty, true); err != nil {
		return nil, err
	}
	if m.DisplayQty, err = conv("--display", o.display, true); err != nil {
		return nil, err
	}
	if m.MinQty, err = conv("--min", o.minQty, true); err != nil {
		return nil, err
	}
	if m.Price, err = conv("--price", o.price, false); err != nil {
		return nil, err
	}
	if m.StopPrice, err = conv("--stop", o.stop, false); err != nil {
		return nil, err
	}
	if m.ClOrdID == 0 {
		m.ClOrdID = s.cl.NewRef()
	}
	return m, nil
}

func runPlace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return one(ctx, "place", args, stdout, stderr, func(fs *flag.FlagSet) func(*session) error {
		var o orderFlags
		o.register(fs)
		return func(s *session) error {
			m, err := o.build(s)
			if err != nil {
				return err
			}
			return s.cl.NewOrder(m)
		}
	})
}

// target holds --order, --ref and --symbol of the commands on one order.
type target struct {
	order, ref uint64
	symbol     string
}

func (tg *target) register(fs *flag.FlagSet) {
	fs.Uint64Var(&tg.order, "order", 0, "the order's id (from its accepted message)")
	fs.Uint64Var(&tg.ref, "ref", 0, "the order's current client reference")
	fs.StringVar(&tg.symbol, "symbol", "", "the order's symbol (optional)")
}

func (tg *target) resolve(s *session) (uint32, error) {
	if tg.order == 0 || tg.ref == 0 {
		return 0, fmt.Errorf("%w: give --order and --ref", errUsage)
	}
	if tg.symbol == "" {
		return 0, nil
	}
	in, err := s.instrument(tg.symbol)
	if err != nil {
		return 0, err
	}
	return in.ID, nil
}

func runCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return one(ctx, "cancel", args, stdout, stderr, func(fs *flag.FlagSet) func(*session) error {
		var tg target
		tg.register(fs)
		return func(s *session) error {
			inst, err := tg.resolve(s)
			if err != nil {
				return err
			}
			return s.cl.Cancel(tg.order, tg.ref, inst)
		}
	})
}

func runReduce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return one(ctx, "reduce", args, stdout, stderr, func(fs *flag.FlagSet) func(*session) error {
		var tg target
		tg.register(fs)
		qty := fs.String("qty", "", "the new open quantity")
		return func(s *session) error {
			inst, err := tg.resolve(s)
			if err != nil {
				return err
			}
			if tg.symbol == "" || *qty == "" {
				return fmt.Errorf("%w: reduce needs --symbol and --qty", errUsage)
			}
			in, _ := s.instrument(tg.symbol)
			d, err := decimalOf("--qty", *qty)
			if err != nil {
				return err
			}
			lots, err := in.QtyToLots(d)
			if err != nil {
				return err
			}
			return s.cl.CancelToSize(tg.order, tg.ref, inst, lots)
		}
	})
}

func runReplace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return one(ctx, "replace", args, stdout, stderr, func(fs *flag.FlagSet) func(*session) error {
		var tg target
		tg.register(fs)
		price := fs.String("price", "", "new limit price")
		stop := fs.String("stop", "", "new stop price")
		qty := fs.String("qty", "", "new open quantity")
		newRef := fs.Uint64("new-ref", 0, "the new client reference (default: the next one)")
		return func(s *session) error {
			inst, err := tg.resolve(s)
			if err != nil {
				return err
			}
			if tg.symbol == "" || *qty == "" {
				return fmt.Errorf("%w: replace needs --symbol, --qty and a price", errUsage)
			}
			in, _ := s.instrument(tg.symbol)
			r := &proto.Replace{OrderID: tg.order, OrigClOrdID: tg.ref, ClOrdID: *newRef, Instrument: inst}
			if r.ClOrdID == 0 {
				r.ClOrdID = s.cl.NewRef()
			}
			d, err := decimalOf("--qty", *qty)
			if err != nil {
				return err
			}
			if r.Qty, err = in.QtyToLots(d); err != nil {
				return err
			}
			for _, p := range []struct {
				s   string
				dst *int64
			}{{*price, &r.Price}, {*stop, &r.StopPrice}} {
				if p.s == "" {
					continue
				}
				d, err := decimalOf("price", p.s)
				if err != nil {
					return err
				}
				if *p.dst, err = in.PriceToTicks(d); err != nil {
					return err
				}
			}
			return s.cl.Replace(r)
		}
	})
}

func runMassCancel(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return one(ctx, "mass-cancel", args, stdout, stderr, func(fs *flag.FlagSet) func(*session) error {
		sym := fs.String("symbol", "", "only this instrument (default all)")
		return func(s *session) error {
			var id uint32
			if *sym != "" {
				in, err := s.instrument(*sym)
				if err != nil {
					return err
				}
				id = in.ID
			}
			return s.cl.MassCancel(id)
		}
	})
}

func runKill(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return one(ctx, "kill", args, stdout, stderr, func(*flag.FlagSet) func(*session) error {
		return func(s *session) error { return s.cl.KillSwitch() }
	})
}

func runNextRef(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return one(ctx, "next-ref", args, stdout, stderr, func(*flag.FlagSet) func(*session) error {
		return func(s *session) error { return s.cl.QueryReference() }
	})
}

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tcclient events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c conn
	c.flags(fs)
	from := fs.Uint64("from", 1, "first sequence number to print (replayed from the journal)")
	follow := fs.Bool("follow", false, "keep printing live messages until interrupted")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	s, err := c.open(ctx, stdout, *from)
	if err != nil {
		return err
	}
	if *follow {
		s.wait = 100 * 365 * 24 * time.Hour
	}
	if err := s.drain(ctx, nil); err != nil && ctx.Err() == nil {
		s.closeClient()
		return err
	}
	return s.close(context.WithoutCancel(ctx))
}

// runShell reads commands, one a line, and runs them on one session:
//
//	place --symbol AAPL --side buy --qty 100 --price 190.50
//	cancel --order 7 --ref 3
//	quit
func runShell(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tcclient shell", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c conn
	c.flags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	s, err := c.open(ctx, stdout, 0)
	if err != nil {
		return err
	}
	msgs := make(chan []byte, 1024)
	go func() {
		defer close(msgs)
		for {
			m, err := s.cl.Recv(context.Background())
			if err != nil {
				return
			}
			msgs <- m.AppendFrame(nil)
		}
	}()
	printPending := func(wait time.Duration) {
		t := time.NewTimer(wait)
		defer t.Stop()
		for {
			select {
			case f, ok := <-msgs:
				if !ok {
					return
				}
				if m, err := proto.Decode(f); err == nil {
					s.show(m)
				}
			case <-t.C:
				return
			}
		}
	}
	in := bufio.NewScanner(os.Stdin)
	if f, ok := ctx.Value(stdinKey{}).(io.Reader); ok {
		in = bufio.NewScanner(f)
	}
	for in.Scan() {
		line := strings.TrimSpace(in.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if fields[0] == "quit" || fields[0] == "exit" {
			break
		}
		if err := shellCommand(s, fields, stderr); err != nil {
			fmt.Fprintln(stderr, "tcclient:", err)
		}
		printPending(s.wait)
	}
	_ = s.cl.Logout()
	printPending(2 * time.Second)
	return s.closeClient()
}

// stdinKey lets tests give the shell its input.
type stdinKey struct{}

func shellCommand(s *session, fields []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(fields[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var act func() error
	switch fields[0] {
	case "place":
		var o orderFlags
		o.register(fs)
		act = func() error {
			m, err := o.build(s)
			if err != nil {
				return err
			}
			return s.cl.NewOrder(m)
		}
	case "cancel":
		var tg target
		tg.register(fs)
		act = func() error {
			inst, err := tg.resolve(s)
			if err != nil {
				return err
			}
			return s.cl.Cancel(tg.order, tg.ref, inst)
		}
	case "mass-cancel":
		act = func() error { return s.cl.MassCancel(0) }
	case "kill":
		act = func() error { return s.cl.KillSwitch() }
	case "next-ref":
		act = func() error { return s.cl.QueryReference() }
	default:
		return fmt.Errorf("unknown command %q; use place, cancel, mass-cancel, kill, next-ref or quit", fields[0])
	}
	if err := fs.Parse(fields[1:]); err != nil {
		return err
	}
	return act()
}
