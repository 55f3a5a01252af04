package core

import (
	"errors"
	"fmt"
	"slices"
)

// ErrConfig is wrapped by every configuration error; the message names the
// field and the fix.
var ErrConfig = errors.New("core: invalid config")

// Instrument is the engine's view of a tradable instrument: a numeric id and a
// price band in ticks. The decimal tick and lot sizes live at the edges (see
// package config); inside the engine a price is a count of ticks and a
// quantity a count of lots.
type Instrument struct {
	ID     uint32 // 1..MaxInstrumentID, unique
	Symbol string // for reports only; the engine keys on ID
	// BandLow and BandHigh bound every price and stop price, in ticks
	// (1 <= BandLow <= BandHigh). The engine preallocates one price level per
	// tick of the band on each side, so the band's width is a memory budget:
	// about 4 x 24 bytes per tick.
	BandLow, BandHigh int64

	// The fields below are read only by the pre-trade risk layer, which is on
	// when Config.Accounts is non-empty (docs/engine.md, "Pre-trade risk").

	// TickValue is the notional of one lot at a price of one tick, in the
	// currency's minor unit (for example cents): an order of q lots at p ticks
	// is worth q*p*TickValue. Default 1.
	TickValue int64
	// RefPrice is the reference price in ticks used for the price collar until
	// the instrument's first trade; after it the last sale is the reference.
	// 0 = no reference (no collar until the first trade).
	RefPrice int64
	// CollarBps and CollarTicks set the half-width of the price collar around
	// the reference: CollarBps basis points of it, or CollarTicks ticks; when
	// both are set the wider applies. Both 0 = no collar (the band bounds).
	CollarBps, CollarTicks int64
	// Halted starts the instrument halted; Restricted starts it on the
	// restricted list; Threshold marks it a Reg SHO threshold security.
	Halted, Restricted, Threshold bool
	// PrevClose is the previous trading day's closing price in ticks, the
	// base of the Rule 201 trigger (a trade 10% or more below it); 0 = none
	// until the first end of day, which sets it from the last sale.
	PrevClose int64
	// ShortSaleTest starts the instrument with the Rule 201 price test on
	// for the first trading day (it was triggered the day before).
	ShortSaleTest bool
}

// LocatePolicy says how short sales use an account's locates.
type LocatePolicy uint8

const (
	// LocateConsume (the default): a locate is used up by the short sales
	// it covers; buying the shares back does not restore it.
	LocateConsume LocatePolicy = iota
	// LocateCap: a locate caps the short position; buying back frees it
	// for another short sale.
	LocateCap
	locatePolicies
)

// AccountStatus is an account's trading status. The zero value is active.
type AccountStatus uint8

const (
	AccountActive    AccountStatus = iota // may trade
	AccountSuspended                      // new orders and replaces rejected; cancels allowed
	AccountClosed                         // new orders and replaces rejected; cancels allowed
	accountStatuses
)

// Position is an account's opening position in one instrument, in lots
// (negative = short).
type Position struct {
	Instrument uint32
	Lots       int64
}

// Locate is a borrow located for an account in one instrument: the account
// may be short up to Qty lots there (docs/engine.md, "Pre-trade risk").
type Locate struct {
	Instrument uint32
	Qty        int64
}

// Limits are an account's pre-trade limits. A zero field means no limit.
type Limits struct {
	MaxOrderQty      int64 // lots per order
	MaxOrderNotional int64 // minor units per order (qty x risk price x TickValue)
	MaxPosition      int64 // lots, absolute, per instrument, counting open orders
	DailyCredit      int64 // minor units: executed notional today + open orders' notional
	OrdersPerSec     int64 // new order and replace messages a second of Command.Time, every one counted (a token bucket)
	CancelsPerSec    int64 // cancel and cancel-to-size messages a second, every one counted (a token bucket)
	// DuplicateWindow refuses a new order identical to one of the
	// account's last 16 accepted new orders (instrument, side, type, price,
	// stop price, quantity) entered less than this many nanoseconds of
	// Command.Time before: 15c3-5's duplicative orders.
	DuplicateWindow int64
}

// Account is the reference data and opening state of one trading account.
// Ids are random numbers (no personal data enters the engine).
type Account struct {
	ID     uint32        // 1..MaxAccountID, unique
	Status AccountStatus // zero = active
	Cash   int64         // minor currency units; 0..2^62
	Firm   uint32        // clearing firm id
	// STPGroup overrides Command.STPGroup of the account's orders (0 = none;
	// below 2^31). Without one, the accounts of one non-zero beneficial
	// Owner (below 2^31) form an STP group: they never trade with each other.
	STPGroup uint32
	Owner    uint32 // beneficial owner id
	// AllowSTPOff lowers the account's self-trade-prevention floor: its
	// orders may then opt out with STPOff (an omnibus account whose orders
	// belong to different beneficial owners). Without it (the default) an
	// STPOff order is rejected stp-off-not-allowed.
	AllowSTPOff bool
	// Proprietary marks a market-making (proprietary) account: its short sales
	// need no locate, except in a threshold security.
	Proprietary bool
	// PDT flags a pattern day trader: while Equity is below
	// Config.PDTMinEquity the account may not make a fourth day trade in five
	// trading days (docs/engine.md, "Day trades").
	PDT    bool
	Equity int64 // minor units; 0..2^62; read once, at New
	// ShortMarginPct is the account's short-sale requirement in percent of a
	// short position's value, the proceeds included (Reg T: 150): 100..1000,
	// 0 = Config.ShortMarginPct. Set it by account type (docs/engine.md,
	// "Short sales").
	ShortMarginPct int64

	Positions []Position
	Locates   []Locate
	Limits    Limits
}

// MaxAccountID is the largest account id the risk layer accepts. The engine
// allocates an id-to-slot table as long as the largest configured id.
const MaxAccountID = 1<<24 - 1

// MaxInstrumentID is the largest instrument id the engine accepts.
const MaxInstrumentID = 1<<16 - 1

// Config sizes and shapes an Engine. The zero value of every field but
// Instruments works: defaults are filled by New.
type Config struct {
	Instruments []Instrument

	// MaxOrders is the number of open orders (resting and waiting stops) the
	// engine can hold at once, preallocated (twice as many order slots, see
	// Engine). A new order beyond it is rejected with RejectOrderCapacity.
	// Default 1<<20.
	MaxOrders int

	// MaxOrderQty bounds Qty of any order, in lots. Default 1e9.
	MaxOrderQty int64

	// EventBatch is the number of events buffered before the sink is called.
	// Default 4096.
	EventBatch int

	// MaxAccounts bounds the distinct accounts that may trade while the risk
	// layer is off (with it on, Accounts lists them): the engine keeps each
	// account's client-reference state in a preallocated slot. An order of an
	// account beyond it is rejected with RejectAccountCapacity. Default 65536.
	MaxAccounts int

	// Accounts turns the pre-trade risk layer on: every order must name one
	// of them, passes the checks of docs/engine.md and updates its cash and
	// positions. Empty (the default) = risk layer off, admin commands unknown.
	Accounts []Account

	// PDTMinEquity is the equity, in minor units, at or above which an
	// account flagged PDT is exempt from the day-trade limit. Default
	// 2,500,000 ($25,000 in cents).
	PDTMinEquity int64

	// Calendar decides which dates are business days: CmdEndOfDay names
	// the date it ends, and the day-trade window counts business days.
	Calendar Calendar

	// LocatePolicy says how short sales use the locates; the zero value
	// consumes them.
	LocatePolicy LocatePolicy

	// ShortMarginPct is the short-sale requirement of accounts that do not
	// set their own, in percent of a short position's value with the
	// proceeds included: 100..1000. Default 150 (Reg T).
	ShortMarginPct int64
}

const (
	defaultMaxOrders   = 1 << 20
	defaultMaxOrderQty = 1_000_000_000
	defaultEventBatch  = 4096
	defaultMaxAccounts = 1 << 16
	defaultPDTEquity   = 2_500_000
	defaultShortMargin = 150
	maxBandTicks       = 1 << 24
)

// Validate reports whether New would accept c, without building an engine:
// the same checks, each error wrapping ErrConfig and naming the field.
func (c Config) Validate() error { return c.fill() }

func (c *Config) fill() error {
	if c.MaxOrders == 0 {
		c.MaxOrders = defaultMaxOrders
	}
	if c.MaxOrderQty == 0 {
		c.MaxOrderQty = defaultMaxOrderQty
	}
	if c.EventBatch == 0 {
		c.EventBatch = defaultEventBatch
	}
	if c.PDTMinEquity == 0 {
		c.PDTMinEquity = defaultPDTEquity
	}
	if c.MaxAccounts == 0 {
		c.MaxAccounts = defaultMaxAccounts
	}
	if c.ShortMarginPct == 0 {
		c.ShortMarginPct = defaultShortMargin
	}
	switch {
	case c.MaxOrders < 1 || c.MaxOrders > 1<<30:
		return fmt.Errorf("%w: MaxOrders is %d; set it between 1 and 2^30", ErrConfig, c.MaxOrders)
	case c.MaxOrderQty < 1 || c.MaxOrderQty > 1<<53:
		return fmt.Errorf("%w: MaxOrderQty is %d; set it between 1 and 2^53", ErrConfig, c.MaxOrderQty)
	case c.EventBatch < 16:
		return fmt.Errorf("%w: EventBatch is %d; set it to at least 16", ErrConfig, c.EventBatch)
	case c.MaxAccounts < 1 || c.MaxAccounts > MaxAccountID:
		return fmt.Errorf("%w: MaxAccounts is %d; set it between 1 and %d", ErrConfig, c.MaxAccounts, MaxAccountID)
	case c.PDTMinEquity < 0 || c.PDTMinEquity > maxNotional:
		return fmt.Errorf("%w: PDTMinEquity is %d; use 0 (default $25,000 = 2,500,000) or up to 2^62 minor units", ErrConfig, c.PDTMinEquity)
	case c.LocatePolicy >= locatePolicies:
		return fmt.Errorf("%w: LocatePolicy is %d; use LocateConsume or LocateCap", ErrConfig, c.LocatePolicy)
	case c.ShortMarginPct < 100 || c.ShortMarginPct > 1000:
		return fmt.Errorf("%w: ShortMarginPct is %d; use 100..1000 percent (0: Reg T's 150)", ErrConfig, c.ShortMarginPct)
	case len(c.Instruments) == 0:
		return fmt.Errorf("%w: Instruments is empty; configure at least one instrument", ErrConfig)
	}
	if err := c.Calendar.fill(); err != nil {
		return err
	}
	seen := make(map[uint32]bool, len(c.Instruments))
	for i, in := range c.Instruments {
		switch {
		case in.ID == 0 || in.ID > MaxInstrumentID:
			return fmt.Errorf("%w: Instruments[%d].ID is %d; use 1..%d", ErrConfig, i, in.ID, MaxInstrumentID)
		case seen[in.ID]:
			return fmt.Errorf("%w: Instruments[%d].ID %d is used twice; give each instrument its own id", ErrConfig, i, in.ID)
		case in.BandLow < 1 || in.BandHigh < in.BandLow:
			return fmt.Errorf("%w: Instruments[%d] (id %d) band is [%d, %d] ticks; need 1 <= BandLow <= BandHigh", ErrConfig, i, in.ID, in.BandLow, in.BandHigh)
		case in.BandHigh-in.BandLow >= maxBandTicks:
			return fmt.Errorf("%w: Instruments[%d] (id %d) band spans %d ticks; narrow it to under %d", ErrConfig, i, in.ID, in.BandHigh-in.BandLow+1, maxBandTicks)
		case in.BandHigh > maxNotional:
			return fmt.Errorf("%w: Instruments[%d] (id %d) BandHigh is %d ticks; keep prices at most 2^62 ticks (a larger tick size)", ErrConfig, i, in.ID, in.BandHigh)
		}
		seen[in.ID] = true
	}
	return c.fillRisk()
}

// maxNotional bounds every amount of money, lot count and price the risk
// layer keeps: products are bounded by configuration (an order's notional,
// a position's), sums of two never overflow int64, and counters that only
// grow saturate at it (docs/engine.md, "Money and reference data").
const maxNotional = 1 << 62

func (c *Config) fillRisk() error {
	c.Instruments = slices.Clone(c.Instruments) // defaults are filled in the engine's copy, not the caller's
	for i := range c.Instruments {
		in := &c.Instruments[i]
		if in.TickValue == 0 {
			in.TickValue = 1
		}
		switch {
		case in.TickValue < 0:
			return fmt.Errorf("%w: Instruments[%d] (id %d) TickValue is %d; set it positive (minor units per lot per tick)", ErrConfig, i, in.ID, in.TickValue)
		case len(c.Accounts) > 0 && in.TickValue > maxNotional/in.BandHigh/c.MaxOrderQty:
			return fmt.Errorf("%w: Instruments[%d] (id %d) MaxOrderQty x BandHigh x TickValue exceeds 2^62; lower MaxOrderQty or TickValue", ErrConfig, i, in.ID)
		case in.RefPrice != 0 && (in.RefPrice < in.BandLow || in.RefPrice > in.BandHigh):
			return fmt.Errorf("%w: Instruments[%d] (id %d) RefPrice %d is outside the band; set it inside [%d, %d] or 0", ErrConfig, i, in.ID, in.RefPrice, in.BandLow, in.BandHigh)
		case in.PrevClose != 0 && (in.PrevClose < in.BandLow || in.PrevClose > in.BandHigh):
			return fmt.Errorf("%w: Instruments[%d] (id %d) PrevClose %d is outside the band; set it inside [%d, %d] or 0", ErrConfig, i, in.ID, in.PrevClose, in.BandLow, in.BandHigh)
		case in.CollarBps < 0 || in.CollarBps > 10_000 || in.CollarTicks < 0 || in.CollarTicks > maxBandTicks:
			return fmt.Errorf("%w: Instruments[%d] (id %d) collar is %d bps / %d ticks; use 0..10000 bps and 0..%d ticks", ErrConfig, i, in.ID, in.CollarBps, in.CollarTicks, maxBandTicks)
		}
	}
	lotCap := make(map[uint32]int64, len(c.Instruments)) // lots whose notional at BandHigh stays within 2^62
	for _, in := range c.Instruments {
		lotCap[in.ID] = positionCap(&in)
	}
	seen := make(map[uint32]bool, len(c.Accounts))
	var cash int64
	for i, a := range c.Accounts {
		l := a.Limits
		switch {
		case a.ID == 0 || a.ID > MaxAccountID:
			return fmt.Errorf("%w: Accounts[%d].ID is %d; use 1..%d", ErrConfig, i, a.ID, MaxAccountID)
		case seen[a.ID]:
			return fmt.Errorf("%w: Accounts[%d].ID %d is used twice; give each account its own id", ErrConfig, i, a.ID)
		case a.Status >= accountStatuses:
			return fmt.Errorf("%w: Accounts[%d] (id %d) Status is %d; use AccountActive, AccountSuspended or AccountClosed", ErrConfig, i, a.ID, a.Status)
		case a.STPGroup >= ownerGroup || a.Owner >= ownerGroup:
			return fmt.Errorf("%w: Accounts[%d] (id %d) STPGroup %d / Owner %d: use ids below 2^31 (the engine forms owner groups above)", ErrConfig, i, a.ID, a.STPGroup, a.Owner)
		case a.Cash < 0 || a.Cash > maxNotional:
			return fmt.Errorf("%w: Accounts[%d] (id %d) Cash is %d; use 0..2^62 minor units", ErrConfig, i, a.ID, a.Cash)
		case a.ShortMarginPct != 0 && (a.ShortMarginPct < 100 || a.ShortMarginPct > 1000):
			return fmt.Errorf("%w: Accounts[%d] (id %d) ShortMarginPct is %d; use 100..1000 percent, or 0 for Config.ShortMarginPct", ErrConfig, i, a.ID, a.ShortMarginPct)
		case a.Equity < 0 || a.Equity > maxNotional:
			return fmt.Errorf("%w: Accounts[%d] (id %d) Equity is %d; use 0..2^62 minor units", ErrConfig, i, a.ID, a.Equity)
		case !limitOK(l.MaxOrderQty) || !limitOK(l.MaxOrderNotional) || !limitOK(l.MaxPosition) || !limitOK(l.DailyCredit) ||
			!limitOK(l.OrdersPerSec) || !limitOK(l.CancelsPerSec) || !limitOK(l.DuplicateWindow):
			return fmt.Errorf("%w: Accounts[%d] (id %d) has a limit below 0 or above 2^62; use 0 for no limit", ErrConfig, i, a.ID)
		}
		seen[a.ID] = true
		if a.Cash > maxNotional-cash {
			return fmt.Errorf("%w: Accounts[%d] (id %d) Cash brings the accounts' cash together above 2^62 minor units; fills move cash between accounts, so no balance may exceed it: lower it", ErrConfig, i, a.ID)
		}
		cash += a.Cash
		for _, p := range a.Positions {
			if cp, ok := lotCap[p.Instrument]; !ok || p.Lots < -cp || p.Lots > cp {
				return fmt.Errorf("%w: Accounts[%d] (id %d) position in instrument %d: configure the instrument and keep |lots| x BandHigh x TickValue <= 2^62", ErrConfig, i, a.ID, p.Instrument)
			}
		}
		for _, l := range a.Locates {
			if cp, ok := lotCap[l.Instrument]; !ok || l.Qty < 0 || l.Qty > cp {
				return fmt.Errorf("%w: Accounts[%d] (id %d) locate in instrument %d: configure the instrument and use 0 <= Qty, Qty x BandHigh x TickValue <= 2^62", ErrConfig, i, a.ID, l.Instrument)
			}
		}
	}
	return nil
}

// limitOK reports whether v is a valid limit: 0 (none) up to 2^62.
func limitOK(v int64) bool { return v >= 0 && v <= maxNotional }

// positionCap returns the most lots of in one account may hold or have open
// on one side (long or short, counting open orders): the lots whose notional
// at BandHigh stays within 2^62, so a position's value never overflows.
// MaxPosition applies below it.
func positionCap(in *Instrument) int64 {
	return maxNotional / in.BandHigh / max(in.TickValue, 1)
}
