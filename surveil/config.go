package surveil

import (
	"errors"
	"fmt"

	"github.com/tradecore/tradecore/core"
)

// ErrConfig is wrapped by every configuration error of New; the message names
// the field and the fix. Correct the Config and call New again.
var ErrConfig = errors.New("surveil: invalid config")

// Ref is the reference data of one watched account, as in core.Account.
// Accounts that are not configured are not watched by any detector.
type Ref struct {
	ID          uint32 // account id, 1..core.MaxAccountID, unique
	Firm        uint32 // clearing firm id (0 = none)
	Owner       uint32 // beneficial owner id (0 = unknown: never linked to another account)
	Proprietary bool   // a proprietary (market-making) account of Firm
}

// RefsOf returns the reference data of the engine's accounts, so a Monitor
// watches exactly the accounts the risk layer knows.
func RefsOf(accounts []core.Account) []Ref {
	refs := make([]Ref, len(accounts))
	for i, a := range accounts {
		refs[i] = Ref{ID: a.ID, Firm: a.Firm, Owner: a.Owner, Proprietary: a.Proprietary}
	}
	return refs
}

// Action is what a detector does when it fires, besides recording the alert.
// The zero value, ActionDefault, is the detector's documented default.
type Action uint8

const (
	ActionDefault  Action = iota // the detector's default (see each detector's config)
	ActionAlert                  // record the alert only
	ActionThrottle               // also emit a core.CmdSetLimit of LimitOrdersPerSec for each account
	ActionSuspend                // also emit a core.CmdAccountStatus to AccountSuspended for each account
	ActionKill                   // also emit a core.CmdKill (cancel open orders, block new ones) for each account
	actions
)

var actionNames = [...]string{"default", "alert", "throttle", "suspend", "kill"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Wash configures the wash-trade detector: an execution between two different
// accounts with the same non-zero beneficial owner.
type Wash struct {
	Disabled bool
	Action   Action // default ActionAlert
	Report   bool   // mark each alert as a regulator-report record
}

// Layering configures the layering / spoofing detector.
type Layering struct {
	Disabled bool
	// MinOrders is the number of open orders on one side, priced away from
	// the instrument's last trade and entered within Window before the
	// account trades on the other side, that make a layer. Default 3.
	MinOrders int
	// MaxGenuine is the most open orders the account may have on the trade's
	// side (the trading order included) for the trade to count as the
	// genuine leg; a market maker quoting both sides has more. Default 2.
	MaxGenuine int
	// Window is how long before the trade, in nanoseconds of event Time,
	// a layered order must have been entered. Default 10s.
	Window int64
	// CancelWindow is how long after the trade the account has to cancel
	// the layer, in nanoseconds. Default 2s.
	CancelWindow int64
	// CancelPct is the share of the layered orders, in percent, that must be
	// cancelled by the account within CancelWindow. Default 80.
	CancelPct int
	Action    Action // default ActionAlert
	Report    bool
}

// Rapid configures the rapid-order-placement detector: per account, over a
// sliding window of event Time.
type Rapid struct {
	Disabled bool
	// Window in nanoseconds of event Time. Default 1s.
	Window int64
	// MinOrders is the number of orders (accepted new orders and replaces)
	// in the window below which the account is never flagged. Default 50.
	MinOrders int
	// MaxOrderToTrade: flagged when orders > MaxOrderToTrade x max(fills, 1).
	// Default 20.
	MaxOrderToTrade int
	// CancelPct: flagged when client cancels x 100 >= CancelPct x orders.
	// Default 95.
	CancelPct int
	Action    Action // default ActionThrottle
	Report    bool
}

// PumpDump configures the pump-and-dump detector: linked accounts (one
// beneficial owner) buy, the price rises, then one of them sells into the
// rise.
type PumpDump struct {
	Disabled bool
	// MinAccounts is the number of distinct linked accounts that must have
	// bought within Window. Default 2.
	MinAccounts int
	// MinBuys is the number of buy fills of the linked accounts within
	// Window. Default 2.
	MinBuys int
	// RiseBps is how far, in basis points, the sell price must be above the
	// last trade price before the first of those buys. Default 500 (5%).
	RiseBps int64
	// Window in nanoseconds of event Time, from the first buy to the sell.
	// Default 60s.
	Window int64
	Action Action // default ActionAlert
	Report bool
}

// FrontRun configures the front-running detector: a proprietary account of a
// firm trades in the same instrument and direction shortly before a large
// order of a customer (non-proprietary) account of the same firm.
type FrontRun struct {
	Disabled bool
	// LargeQty is the customer order size, in lots, that counts as large.
	// Default 1000.
	LargeQty int64
	// Window in nanoseconds of event Time: how long before the customer's
	// order the proprietary fill may be. Default 5s.
	Window int64
	Action Action // default ActionAlert; applies to the proprietary account only
	Report bool
}

// Config is the Monitor's configuration. The zero value of every field but
// Accounts works; defaults are filled by New.
type Config struct {
	// Accounts are the watched accounts and their reference data
	// (RefsOf(engineConfig.Accounts) is the usual value).
	Accounts []Ref

	Wash     Wash
	Layering Layering
	Rapid    Rapid
	PumpDump PumpDump
	FrontRun FrontRun

	// ThrottleOrdersPerSec is the OrdersPerSec limit a throttle command sets.
	// Default 10.
	ThrottleOrdersPerSec int64
	// Tag is set on every command the Monitor emits, so the gateway and the
	// audit trail can tell surveillance actions apart. Default 0.
	Tag uint64
}

const (
	defaultLayerMinOrders  = 3
	defaultLayerMaxGenuine = 2
	defaultLayerWindow     = 10e9
	defaultLayerCancelWin  = 2e9
	defaultLayerCancelPct  = 80
	defaultRapidWindow     = 1e9
	defaultRapidMinOrders  = 50
	defaultRapidOTR        = 20
	defaultRapidCancelPct  = 95
	defaultThrottleRate    = 10
	defaultPumpAccounts    = 2
	defaultPumpBuys        = 2
	defaultPumpRiseBps     = 500
	defaultPumpWindow      = 60e9
	defaultFrontLargeQty   = 1000
	defaultFrontWindow     = 5e9
	maxLayer               = 32 // layer candidates tracked per account (oldest dropped)
	maxFills               = 32 // buy fills per owner and proprietary fills per firm kept (oldest dropped)
)

func (c *Config) fill() error {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def64 := func(p *int64, v int64) {
		if *p == 0 {
			*p = v
		}
	}
	if c.Wash.Action == ActionDefault {
		c.Wash.Action = ActionAlert
	}
	l := &c.Layering
	def(&l.MinOrders, defaultLayerMinOrders)
	def(&l.MaxGenuine, defaultLayerMaxGenuine)
	def64(&l.Window, defaultLayerWindow)
	def64(&l.CancelWindow, defaultLayerCancelWin)
	def(&l.CancelPct, defaultLayerCancelPct)
	if l.Action == ActionDefault {
		l.Action = ActionAlert
	}
	r := &c.Rapid
	def64(&r.Window, defaultRapidWindow)
	def(&r.MinOrders, defaultRapidMinOrders)
	def(&r.MaxOrderToTrade, defaultRapidOTR)
	def(&r.CancelPct, defaultRapidCancelPct)
	if r.Action == ActionDefault {
		r.Action = ActionThrottle
	}
	def64(&c.ThrottleOrdersPerSec, defaultThrottleRate)
	p := &c.PumpDump
	def(&p.MinAccounts, defaultPumpAccounts)
	def(&p.MinBuys, defaultPumpBuys)
	def64(&p.RiseBps, defaultPumpRiseBps)
	def64(&p.Window, defaultPumpWindow)
	if p.Action == ActionDefault {
		p.Action = ActionAlert
	}
	f := &c.FrontRun
	def64(&f.LargeQty, defaultFrontLargeQty)
	def64(&f.Window, defaultFrontWindow)
	if f.Action == ActionDefault {
		f.Action = ActionAlert
	}

	switch {
	case c.Wash.Action >= actions:
		return fmt.Errorf("%w: Wash.Action is %d; use an Action constant", ErrConfig, c.Wash.Action)
	case l.Action >= actions:
		return fmt.Errorf("%w: Layering.Action is %d; use an Action constant", ErrConfig, l.Action)
	case r.Action >= actions:
		return fmt.Errorf("%w: Rapid.Action is %d; use an Action constant", ErrConfig, r.Action)
	case l.MinOrders < 1 || l.MinOrders > maxLayer:
		return fmt.Errorf("%w: Layering.MinOrders is %d; use 1..%d", ErrConfig, l.MinOrders, maxLayer)
	case l.MaxGenuine < 1:
		return fmt.Errorf("%w: Layering.MaxGenuine is %d; use at least 1", ErrConfig, l.MaxGenuine)
	case l.Window < 0 || l.CancelWindow < 0:
		return fmt.Errorf("%w: Layering windows are negative; use nanoseconds > 0 (0 = default)", ErrConfig)
	case l.CancelPct < 1 || l.CancelPct > 100:
		return fmt.Errorf("%w: Layering.CancelPct is %d; use 1..100", ErrConfig, l.CancelPct)
	case r.Window < rapidBuckets:
		return fmt.Errorf("%w: Rapid.Window is %d ns; use at least %d ns (0 = default 1s)", ErrConfig, r.Window, rapidBuckets)
	case r.MinOrders < 1 || r.MaxOrderToTrade < 1:
		return fmt.Errorf("%w: Rapid.MinOrders and Rapid.MaxOrderToTrade must be at least 1 (0 = default)", ErrConfig)
	case r.CancelPct < 1 || r.CancelPct > 100:
		return fmt.Errorf("%w: Rapid.CancelPct is %d; use 1..100", ErrConfig, r.CancelPct)
	case p.Action >= actions:
		return fmt.Errorf("%w: PumpDump.Action is %d; use an Action constant", ErrConfig, p.Action)
	case f.Action >= actions:
		return fmt.Errorf("%w: FrontRun.Action is %d; use an Action constant", ErrConfig, f.Action)
	case p.MinAccounts < 1 || p.MinAccounts > maxLinked:
		return fmt.Errorf("%w: PumpDump.MinAccounts is %d; use 1..%d", ErrConfig, p.MinAccounts, maxLinked)
	case p.MinBuys < 1 || p.MinBuys > maxFills:
		return fmt.Errorf("%w: PumpDump.MinBuys is %d; use 1..%d", ErrConfig, p.MinBuys, maxFills)
	case p.RiseBps < 1 || p.Window < 0:
		return fmt.Errorf("%w: PumpDump.RiseBps must be >= 1 and Window >= 0 ns (0 = default)", ErrConfig)
	case f.LargeQty < 1 || f.Window < 0:
		return fmt.Errorf("%w: FrontRun.LargeQty must be >= 1 lot and Window >= 0 ns (0 = default)", ErrConfig)
	case c.ThrottleOrdersPerSec < 1:
		return fmt.Errorf("%w: ThrottleOrdersPerSec is %d; use at least 1", ErrConfig, c.ThrottleOrdersPerSec)
	}
	seen := make(map[uint32]bool, len(c.Accounts))
	for i, a := range c.Accounts {
		switch {
		case a.ID == 0 || a.ID > core.MaxAccountID:
			return fmt.Errorf("%w: Accounts[%d].ID is %d; use 1..%d", ErrConfig, i, a.ID, core.MaxAccountID)
		case seen[a.ID]:
			return fmt.Errorf("%w: Accounts[%d].ID %d is used twice; list each account once", ErrConfig, i, a.ID)
		}
		seen[a.ID] = true
	}
	return nil
}
