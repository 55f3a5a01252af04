package config

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"runtime"

	"github.com/shopspring/decimal"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/agent"
)

// File is a parsed, validated configuration file: plain data that can be
// compared and tested. Core turns it into the engine's core.Config.
type File struct {
	Engine      Engine
	Risk        Risk
	Instruments []Instrument // in file order
	// Accounts are the trading accounts the engine's pre-trade risk layer
	// checks. A file needs them unless Risk.Off.
	Accounts []Account // in file order
	Calendar Calendar
	Audit    Audit
	Netseg   Netseg
	Gateway  Gateway

	byID  map[uint32]int // index into Instruments; checked on use
	bySym map[string]int
}

// Engine sizes the engine and its loop and places them on threads. Parse
// fills the defaults of the threading fields and the ring sizes;
// MaxOrders, MaxOrderQty and EventBatch stay 0 when the file leaves them
// out, and core.New fills them.
type Engine struct {
	// MaxOrders is the number of open orders the engine preallocates
	// (about 120 bytes each); 0 means core's default, 1<<20.
	MaxOrders int
	// MaxOrderQty bounds the quantity of any order, in lots; 0 means core's
	// default, 1e9.
	MaxOrderQty int64
	// EventBatch is the number of events buffered before they are handed
	// on; 0 means core's default, 4096.
	EventBatch int
	// Threading is the threading mode (docs/threading.md): "shared" (the
	// default: the engine on a CPU of its own, every other agent sharing one
	// thread) or "dedicated" (a thread per agent), the names
	// agent.ParseMode accepts.
	Threading string
	// Pin pins the runners' threads to CPUs and keeps every other thread of
	// the process off the engine's CPU (default true). CPUs, when set, lists
	// the CPUs in runner order, the engine's first; otherwise the engine
	// takes the last CPU and the other runners the ones before it.
	Pin  bool
	CPUs []int
	// EngineIdle and OthersIdle are the idle strategies of the engine's
	// runner (default "busy-spin") and of every other runner (default
	// "backoff"), the names agent.ParseIdleStrategy accepts.
	EngineIdle, OthersIdle string
	// InboundRing and OutboundRing are the sizes of the command and event
	// rings, powers of two; defaults DefaultInboundRing and
	// DefaultOutboundRing.
	InboundRing, OutboundRing int
}

// Defaults Parse fills into Engine when the file leaves a field out or sets
// it to zero.
const (
	DefaultThreading    = "shared"
	DefaultPin          = true
	DefaultEngineIdle   = "busy-spin"
	DefaultOthersIdle   = "backoff"
	DefaultInboundRing  = 1 << 14
	DefaultOutboundRing = 1 << 15
)

// Instrument is one tradable instrument as the operator configured it, in
// decimals. Its methods convert between decimal prices and quantities and
// the engine's int64 ticks and lots.
type Instrument struct {
	Symbol string // 1 to 16 characters of A-Z, 0-9, '.' and '-'; unique
	ID     uint32 // 1..core.MaxInstrumentID; unique

	// TickSize is the price increment and LotSize the quantity increment
	// (shares per lot); both are positive.
	TickSize, LotSize decimal.Decimal

	// BandLow and BandHigh bound every price, inclusive: positive multiples
	// of TickSize, BandLow <= BandHigh, at most MaxBandTicks ticks apart.
	BandLow, BandHigh decimal.Decimal

	// The risk fields, read only when the file has accounts
	// (docs/engine.md, "Pre-trade risk"); zero values mean none.

	// TickValue is the money value of one lot at a price of one tick, a
	// whole number of Risk.MinorUnit; zero means TickSize x LotSize.
	TickValue decimal.Decimal
	// ReferencePrice is the collar's reference until the first trade: a
	// price on the tick inside the band; zero means none.
	ReferencePrice decimal.Decimal
	// CollarPercent (0..100, in steps of 0.01) and CollarAbsolute (a price
	// distance on the tick) set the collar's half-width; the wider applies.
	CollarPercent, CollarAbsolute decimal.Decimal
	// Restricted puts the instrument on the restricted list; Threshold marks
	// it a Reg SHO threshold security.
	Restricted, Threshold bool
	// PreviousClose is the last trading day's closing price, the base of the
	// Rule 201 trigger until the first end of day: on the tick, in the band;
	// zero means none. ShortSaleTest starts the first day with the Rule 201
	// price test on (it was triggered the day before).
	PreviousClose decimal.Decimal
	ShortSaleTest bool
}

// MaxBandTicks is the widest price band the engine accepts, in ticks
// ((BandHigh - BandLow) / TickSize). The engine preallocates about
// BandBytesPerTick bytes for each tick of every instrument's band.
const MaxBandTicks = 1<<24 - 1

// BandBytesPerTick is the engine's approximate memory cost of one tick of a
// price band: four ladders (bids, asks, buy stops, sell stops) of 24-byte
// price levels and their bitmaps.
const BandBytesPerTick = 97

//go:embed default.json
var defaultJSON []byte

// Default returns the embedded default configuration (config/default.json),
// the one `make run` uses. Each call returns a new File the caller may change.
// It never fails: a test parses the embedded file.
func Default() *File {
	f, err := Parse(defaultJSON)
	if err != nil {
		panic("config: embedded default.json is invalid: " + err.Error())
	}
	return f
}

// Load reads and parses the configuration file at path. An error reading it
// wraps the os error (errors.Is(err, fs.ErrNotExist) for a missing file); an
// invalid file gives an *Error, with File set to path, that wraps ErrInvalid.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		if e, ok := err.(*Error); ok {
			e.File = path
		}
		return nil, err
	}
	return f, nil
}

// Parse parses and validates a configuration file in the format of
// docs/config.md. It stops at the first problem and returns an *Error that
// wraps ErrInvalid and names the field. data may be untrusted: Parse does not
// panic on any input.
func Parse(data []byte) (*File, error) {
	if err := checkSyntax(data); err != nil {
		return nil, err
	}
	if err := checkDuplicates(data); err != nil {
		return nil, err
	}
	var fj fileJSON
	if err := decodeObject(data, "", fileFields, &fj); err != nil {
		return nil, err
	}
	f := &File{}
	if err := parseEngine(fj.Engine, &f.Engine); err != nil {
		return nil, err
	}
	if err := parseRisk(fj.Risk, &f.Risk); err != nil {
		return nil, err
	}
	if err := parseInstruments(fj.Instruments, f); err != nil {
		return nil, err
	}
	if err := parseAccounts(fj.Accounts, f); err != nil {
		return nil, err
	}
	if err := parseCalendar(fj.Calendar, &f.Calendar); err != nil {
		return nil, err
	}
	if err := parseAudit(fj.Audit, &f.Audit); err != nil {
		return nil, err
	}
	if err := parseNetseg(fj.Netseg, &f.Netseg); err != nil {
		return nil, err
	}
	if err := parseGateway(fj.Gateway, &f.Gateway); err != nil {
		return nil, err
	}
	if err := checkRiskOn(f); err != nil {
		return nil, err
	}
	// The engine's own checks, which bound every product it forms (an
	// order's notional, a position's value): a backstop behind the field
	// checks above, so a file Parse accepts always builds an engine.
	if err := f.Core().Validate(); err != nil {
		return nil, invalid("", "the engine refuses it: %v; see docs/config.md", err)
	}
	return f, nil
}

func parseEngine(raw json.RawMessage, e *Engine) error {
	*e = Engine{Threading: DefaultThreading, Pin: DefaultPin, EngineIdle: DefaultEngineIdle, OthersIdle: DefaultOthersIdle,
		InboundRing: DefaultInboundRing, OutboundRing: DefaultOutboundRing}
	if absent(raw) {
		return nil
	}
	var ej engineJSON
	if err := decodeObject(raw, "engine", engineFields, &ej); err != nil {
		return err
	}
	v, ok, err := decodeInt(ej.MaxOrders, "engine.max_orders")
	switch {
	case err != nil:
		return err
	case ok && (v < 0 || v > 1<<30):
		return invalid("engine.max_orders", "%d is out of range; set 1 to 1073741824 (2^30), or 0 or leave it out for the default 1048576", v)
	}
	e.MaxOrders = int(v)

	v, ok, err = decodeInt(ej.MaxOrderQty, "engine.max_order_qty")
	switch {
	case err != nil:
		return err
	case ok && (v < 0 || v > 1<<53):
		return invalid("engine.max_order_qty", "%d is out of range; set 1 to 9007199254740992 (2^53) lots, or 0 or leave it out for the default 1000000000", v)
	}
	e.MaxOrderQty = v

	v, ok, err = decodeInt(ej.EventBatch, "engine.event_batch")
	switch {
	case err != nil:
		return err
	case ok && v != 0 && (v < 16 || v > 1<<20):
		return invalid("engine.event_batch", "%d is out of range; set 16 to 1048576, or 0 or leave it out for the default 4096", v)
	}
	e.EventBatch = int(v)

	s, ok, err := decodeString(ej.Threading, "engine.threading")
	switch {
	case err != nil:
		return err
	case !ok || s == "":
	case s == "shared" || s == "dedicated":
		e.Threading = s
	default:
		return invalid("engine.threading", "%q is not a threading mode; use \"shared\" (the default) or \"dedicated\"", truncate(s))
	}
	if !absent(ej.Pin) {
		if e.Pin, err = decodeBool(ej.Pin, "engine.pin"); err != nil {
			return err
		}
	}
	if !absent(ej.CPUs) {
		var raws []json.RawMessage
		if err := json.Unmarshal(ej.CPUs, &raws); err != nil {
			return invalid("engine.cpus", "got %s; write a list of CPU numbers, the engine's first, such as [1, 0]", kind(ej.CPUs))
		}
		seen := map[int64]bool{}
		for i, raw := range raws {
			field := fmt.Sprintf("engine.cpus[%d]", i)
			v, _, err := decodeInt(raw, field)
			switch {
			case err != nil:
				return err
			case v < 0 || v > 1023:
				return invalid(field, "%d is out of range; use CPU numbers from 0 to 1023", v)
			case seen[v]:
				return invalid(field, "CPU %d is listed twice; give each runner its own CPU", v)
			}
			seen[v] = true
			e.CPUs = append(e.CPUs, int(v))
		}
		if !e.Pin && len(e.CPUs) > 0 {
			return invalid("engine.cpus", "is set but engine.pin is false; remove one of them")
		}
	}
	for _, f := range []struct {
		raw   json.RawMessage
		field string
		dst   *string
	}{
		{ej.EngineIdle, "engine.engine_idle", &e.EngineIdle},
		{ej.OthersIdle, "engine.others_idle", &e.OthersIdle},
	} {
		s, ok, err := decodeString(f.raw, f.field)
		switch {
		case err != nil:
			return err
		case !ok || s == "":
		case s == "busy-spin" || s == "backoff" || s == "yield" || s == "sleep":
			*f.dst = s
		default:
			return invalid(f.field, "%q is not an idle strategy; use \"busy-spin\", \"backoff\", \"yield\" or \"sleep\"", truncate(s))
		}
	}

	for _, r := range []struct {
		raw   json.RawMessage
		field string
		dst   *int
	}{
		{ej.InboundRing, "engine.inbound_ring", &e.InboundRing},
		{ej.OutboundRing, "engine.outbound_ring", &e.OutboundRing},
	} {
		v, ok, err := decodeInt(r.raw, r.field)
		switch {
		case err != nil:
			return err
		case !ok || v == 0:
		case v < 2 || v > 1<<30 || v&(v-1) != 0:
			return invalid(r.field, "%d is not a power of two from 2 to 1073741824 (2^30); round it up to one, such as %d, or leave it out for the default %d",
				v, nextPow2(v), *r.dst)
		default:
			*r.dst = int(v)
		}
	}
	return nil
}

// nextPow2 returns the smallest power of two >= v within the ring limits.
func nextPow2(v int64) int64 {
	p := int64(2)
	for p < v && p < 1<<30 {
		p <<= 1
	}
	return p
}

func parseInstruments(raw json.RawMessage, f *File) error {
	if absent(raw) {
		return invalid("instruments", "missing; configure at least one instrument (see docs/config.md)")
	}
	if raw[0] != '[' {
		return invalid("instruments", "got %s; want an array of instruments", kind(raw))
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return invalid("instruments", "%v", err)
	}
	if len(list) == 0 {
		return invalid("instruments", "empty; configure at least one instrument")
	}
	if len(list) > core.MaxInstrumentID {
		return invalid("instruments", "%d instruments; configure at most %d", len(list), core.MaxInstrumentID)
	}
	f.Instruments = make([]Instrument, len(list))
	f.byID = make(map[uint32]int, len(list))
	f.bySym = make(map[string]int, len(list))
	for i, r := range list {
		path := fmt.Sprintf("instruments[%d]", i)
		in := &f.Instruments[i]
		if err := parseInstrument(r, path, f.Risk.MinorUnit, in); err != nil {
			return err
		}
		if j, dup := f.bySym[in.Symbol]; dup {
			return invalid(path+".symbol", "%q is also the symbol of instruments[%d]; give each instrument its own symbol", in.Symbol, j)
		}
		if j, dup := f.byID[in.ID]; dup {
			return invalid(path+".id", "%d is also the id of instruments[%d]; give each instrument its own id", in.ID, j)
		}
		f.bySym[in.Symbol], f.byID[in.ID] = i, i
	}
	return nil
}

func parseInstrument(raw json.RawMessage, path string, unit decimal.Decimal, in *Instrument) error {
	var ij instrumentJSON
	if err := decodeObject(raw, path, instrumentFields, &ij); err != nil {
		return err
	}

	field := path + ".symbol"
	s, ok, err := decodeString(ij.Symbol, field)
	switch {
	case err != nil:
		return err
	case !ok || s == "":
		return invalid(field, "missing; set the ticker, such as \"AAPL\"")
	case !validSymbol(s):
		return invalid(field, "%q is not a symbol; use 1 to 16 characters of A-Z, 0-9, '.' and '-', such as \"BRK.B\"", truncate(s))
	}
	in.Symbol = s

	field = path + ".id"
	id, ok, err := decodeInt(ij.ID, field)
	switch {
	case err != nil:
		return err
	case !ok:
		return invalid(field, "missing; set a number from 1 to %d, unique among the instruments", core.MaxInstrumentID)
	case id < 1 || id > core.MaxInstrumentID:
		return invalid(field, "%d is out of range; use 1 to %d", id, core.MaxInstrumentID)
	}
	in.ID = uint32(id)

	if in.TickSize, err = positiveDecimal(ij.TickSize, path+".tick_size", "price increment", "0.01"); err != nil {
		return err
	}
	if in.LotSize, err = positiveDecimal(ij.LotSize, path+".lot_size", "number of shares per lot", "1"); err != nil {
		return err
	}
	if err := parseBand(ij.PriceBand, path+".price_band", in); err != nil {
		return err
	}
	return parseInstrumentRisk(&ij, path, unit, in)
}

func validSymbol(s string) bool {
	if len(s) < 1 || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func positiveDecimal(raw json.RawMessage, field, what, example string) (decimal.Decimal, error) {
	d, text, ok, err := decodeDecimal(raw, field, example)
	switch {
	case err != nil:
		return decimal.Decimal{}, err
	case !ok:
		return decimal.Decimal{}, invalid(field, "missing; set the %s as a decimal string, such as %q", what, example)
	case d.Sign() <= 0:
		return decimal.Decimal{}, invalid(field, "%s is not positive; set the %s above zero, such as %q", text, what, example)
	}
	return d, nil
}

func parseBand(raw json.RawMessage, path string, in *Instrument) error {
	if absent(raw) {
		return invalid(path, "missing; set the lowest and highest price the instrument may trade at, such as {\"low\": \"1.00\", \"high\": \"1000.00\"}")
	}
	var bj bandJSON
	if err := decodeObject(raw, path, bandFields, &bj); err != nil {
		return err
	}
	tick := in.TickSize.String()
	var ticks [2]int64
	var texts [2]string
	for i, b := range []struct {
		raw  json.RawMessage
		name string
		dst  *decimal.Decimal
	}{{bj.Low, "low", &in.BandLow}, {bj.High, "high", &in.BandHigh}} {
		field := path + "." + b.name
		d, text, ok, err := decodeDecimal(b.raw, field, "1.00")
		switch {
		case err != nil:
			return err
		case !ok:
			return invalid(field, "missing; set the %s end of the band as a decimal string, such as \"1.00\"", b.name)
		case d.Sign() <= 0:
			return invalid(field, "%s is not positive; set a price of at least one tick (%s)", text, tick)
		}
		n, err := toUnits(d, in.TickSize)
		if err != nil {
			if ue := err.(*unitError); ue.notMultiple {
				return invalid(field, "%s is not a multiple of the tick size %s; use %s or %s",
					text, tick, fmtIn(ue.near[0], in.TickSize), fmtIn(ue.near[1], in.TickSize))
			}
			return invalid(field, "%s is too many ticks of %s for an int64; lower it", text, tick)
		}
		*b.dst, ticks[i], texts[i] = d, n, text
	}
	switch width := ticks[1] - ticks[0]; {
	case width < 0:
		return invalid(path+".high", "%s is below low %s; set high >= low", texts[1], texts[0])
	case width > MaxBandTicks:
		return invalid(path, "spans %d ticks of %s (high - low); narrow it to at most %d ticks (the engine preallocates about %d bytes per tick: %.1f GiB for this band)",
			width, tick, MaxBandTicks, BandBytesPerTick, float64(width)*BandBytesPerTick/(1<<30))
	}
	return nil
}

// Core returns the engine's configuration: the instruments with their bands
// in ticks and their risk fields, the accounts with money in minor units and
// holdings in lots, and the engine sizes (zero ones are filled by core.New).
// It expects a File from Parse, Load or Default; for values built by hand
// that do not convert (a band off the tick, money off the minor unit, a
// holding of an unknown symbol) it sets values core.New rejects.
func (f *File) Core() core.Config {
	ins := make([]core.Instrument, len(f.Instruments))
	for i := range f.Instruments {
		in := &f.Instruments[i]
		lo, err1 := in.PriceToTicks(in.BandLow)
		hi, err2 := in.PriceToTicks(in.BandHigh)
		if err1 != nil || err2 != nil {
			lo, hi = 0, 0
		}
		ins[i] = core.Instrument{ID: in.ID, Symbol: in.Symbol, BandLow: lo, BandHigh: hi}
		f.coreRisk(in, &ins[i])
	}
	cfg := core.Config{
		Instruments: ins,
		MaxOrders:   f.Engine.MaxOrders,
		MaxOrderQty: f.Engine.MaxOrderQty,
		EventBatch:  f.Engine.EventBatch,
		Accounts:    f.coreAccounts(),
		Calendar:    f.Calendar.coreCalendar(),
	}
	if f.Risk.PDTMinEquity.Sign() != 0 {
		cfg.PDTMinEquity = units(f.Risk.PDTMinEquity, f.minorUnit())
	}
	if len(cfg.Accounts) > 0 {
		cfg.ShortMarginPct, cfg.LocatePolicy = f.Risk.ShortMarginPct, f.Risk.LocatePolicy
	}
	return cfg
}

// Instrument returns the instrument with the given id. The pointer is into
// f.Instruments.
func (f *File) Instrument(id uint32) (*Instrument, bool) {
	if i, ok := f.byID[id]; ok && i < len(f.Instruments) && f.Instruments[i].ID == id {
		return &f.Instruments[i], true
	}
	for i := range f.Instruments { // a File built or changed by hand
		if f.Instruments[i].ID == id {
			return &f.Instruments[i], true
		}
	}
	return nil, false
}

// BySymbol returns the instrument with the given symbol (case-sensitive).
// The pointer is into f.Instruments.
func (f *File) BySymbol(sym string) (*Instrument, bool) {
	if i, ok := f.bySym[sym]; ok && i < len(f.Instruments) && f.Instruments[i].Symbol == sym {
		return &f.Instruments[i], true
	}
	for i := range f.Instruments {
		if f.Instruments[i].Symbol == sym {
			return &f.Instruments[i], true
		}
	}
	return nil, false
}

// Plan is the threading plan (package agent) the engine section asks for on
// this machine: the mode, the runners' idle strategies, and, with Pin on a
// machine of two or more CPUs, the engine pinned to its CPU with every other
// thread of the process kept off it. On one CPU nothing is pinned.
func (e Engine) Plan() (agent.Plan, error) {
	mode, err := agent.ParseMode(e.Threading)
	if err != nil {
		return agent.Plan{}, fmt.Errorf("config: engine.threading: %w", err)
	}
	ei, err := agent.ParseIdleStrategy(e.EngineIdle)
	if err != nil {
		return agent.Plan{}, fmt.Errorf("config: engine.engine_idle: %w", err)
	}
	oi, err := agent.ParseIdleStrategy(e.OthersIdle)
	if err != nil {
		return agent.Plan{}, fmt.Errorf("config: engine.others_idle: %w", err)
	}
	p := agent.Plan{Mode: mode, PrimaryIdle: ei, OthersIdle: oi}
	if !e.Pin || runtime.NumCPU() < 2 {
		return p, nil
	}
	for i, c := range e.CPUs {
		if c >= runtime.NumCPU() {
			return agent.Plan{}, fmt.Errorf("config: engine.cpus[%d]: CPU %d does not exist here (CPUs 0..%d); change engine.cpus or leave it out", i, c, runtime.NumCPU()-1)
		}
	}
	p.Pin, p.Isolate, p.CPUs = true, true, e.CPUs
	return p, nil
}
