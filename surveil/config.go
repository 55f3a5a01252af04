package surveil

import (
	"errors"
	"fmt"
	"time"
	_ "time/tzdata" // the default close is in America/New_York, whatever the host's zone files

	"github.com/tradecore/tradecore/core"
)

// DefaultOperator is the operator id of the Monitor's commands unless
// Config.Operator sets another: surveillance itself, as the engine's events
// and the audit log name it.
const DefaultOperator uint32 = 0x5_0000

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
	ActionThrottle               // also submit a core.CmdSetLimit of LimitOrdersPerSec for each account
	ActionSuspend                // also submit a core.CmdAccountStatus to AccountSuspended for each account
	ActionKill                   // also submit a core.CmdKill (cancel open orders, block new ones) for each account
	actions
)

var actionNames = [...]string{"default", "alert", "throttle", "suspend", "kill"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Wash configures the wash-trade detector: an execution between two accounts
// of one non-zero beneficial owner, or an account trading with itself.
type Wash struct {
	Disabled bool
	Action   Action // default ActionAlert
	Report   bool   // mark each alert as a regulator-report record
}

// Layering configures the layering detector and the windows it shares with
// the spoofing detector. Both watch one trader: a beneficial owner's accounts
// together (an owner-less account alone).
//
// A pattern starts when the trader trades on one side while it has open
// limit orders on the other side (the layer) entered within Window before the
// trade. It completes when the trader withdraws at least CancelPct percent of
// the layer's lots (cancels, cancels-to-size, replaces to a less aggressive
// price than the layer's least aggressive order) within CancelWindow after
// its last trade on the genuine side, net of what it re-adds at the layer's
// prices, and still has by Grace later; and when the layer's lots are at
// least MinRatio times the genuine interest (lots traded on the genuine side
// plus its open lots there, no further from the last trade than the layer,
// still resting at the decision).
type Layering struct {
	Disabled bool
	// MinOrders is the number of orders in a layer that make it layering;
	// fewer is spoofing (Spoofing). Default 3, at most 16 (the open orders
	// tracked per trader).
	MinOrders int
	// MinRatio: the layer's lots must be at least MinRatio times the genuine
	// interest. Default 4.
	MinRatio int64
	// Window is how long before the genuine trade, in nanoseconds of event
	// Time, a layer order may have been entered. Default 60s.
	Window int64
	// CancelWindow is how long after the trader's last genuine trade a
	// withdrawal counts, in nanoseconds. Default 30s.
	CancelWindow int64
	// CancelPct is the share of the layer's lots, in percent, that must be
	// withdrawn (net). Default 80.
	CancelPct int
	// Grace is how long, in nanoseconds, the withdrawal must stand before
	// the alert: a market maker requoting at the same prices within Grace is
	// not withdrawing. Default 1s.
	Grace  int64
	Action Action // default ActionAlert
	Report bool
}

// Spoofing configures the single-order spoofing detector: the layering
// pattern (windows and CancelPct from Layering) with fewer than
// Layering.MinOrders orders in the layer.
type Spoofing struct {
	Disabled bool
	// MinRatio: the spoofing orders' lots must be at least MinRatio times the
	// genuine interest. Default 10.
	MinRatio int64
	Action   Action // default ActionAlert
	Report   bool
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
	// OneSidedPct: the account's flow is one-sided when at least this
	// percentage of its orders in the window are on one side. Default 80.
	OneSidedPct int
	// MaxOrderToTrade: one-sided flow is flagged when orders >
	// MaxOrderToTrade x max(fills, 1). Default 20.
	MaxOrderToTrade int
	// CancelPct: one-sided flow is flagged when client cancels x 100 >=
	// CancelPct x orders. Default 95.
	CancelPct int
	// TwoSidedOrderToTrade: two-sided flow (quoting) is flagged when orders >
	// TwoSidedOrderToTrade x max(fills, 1). Default 250.
	TwoSidedOrderToTrade int
	Action               Action // default ActionThrottle
	Report               bool
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
// firm trades in the same instrument and direction shortly before a customer
// (non-proprietary) account of the same firm sends a large order, whole or as
// child orders.
type FrontRun struct {
	Disabled bool
	// LargeQty is the customer order size, in lots, that counts as large: one
	// order, or the customer's orders in one instrument and direction each
	// within ParentWindow of the previous one. Default 1000.
	LargeQty int64
	// Window in nanoseconds of event Time: how long before the customer's
	// first order the proprietary fill may be. Default 5s.
	Window int64
	// ParentWindow: the longest gap, in nanoseconds, between two child
	// orders of one parent. Default 10s.
	ParentWindow int64
	Action       Action // default ActionAlert; applies to the proprietary account only
	Report       bool
}

// Ramp configures the momentum-ignition (ramping) detector: one account's
// aggressive fills push the price through several levels within Window, then
// the account trades on the other side near the price it made.
type Ramp struct {
	Disabled bool
	// MinLevels is the number of the account's aggressive fills that each
	// moved the last trade price in its direction. Default 3.
	MinLevels int
	// MoveBps is the least total move, in basis points of the price before
	// the first of them, those fills made. Default 100 (1%).
	MoveBps int64
	// Window in nanoseconds: from the first to the last pushing fill.
	// Default 30s.
	Window int64
	// ReverseWindow in nanoseconds: how long after the last pushing fill the
	// account's fill on the other side may come. Default 60s.
	ReverseWindow int64
	// RetainPct: the other-side fill's price must keep at least this share,
	// in percent, of the move the account made. Default 50.
	RetainPct int64
	Action    Action // default ActionAlert
	Report    bool
}

// MarkClose configures the marking-the-close detector: in the last Window
// before the daily close, one account's aggressive fills made most of a move
// of the instrument's closing price.
type MarkClose struct {
	Disabled bool
	// Close is the time of the daily close, in nanoseconds after midnight in
	// Location. Default 16:00.
	Close int64
	// Location of the close; nil means America/New_York.
	Location *time.Location
	// Window before the close, in nanoseconds. Default 10 minutes.
	Window int64
	// MoveBps is the least move, in basis points, from the last trade before
	// the window to the closing price (the last trade before the close).
	// Default 100 (1%).
	MoveBps int64
	// MinSharePct: the account's own aggressive fills must account for at
	// least this share of the move, in percent. Default 50.
	MinSharePct int64
	Action      Action // default ActionAlert
	Report      bool
}

// Retry bounds how the Monitor re-submits an action until it takes effect.
type Retry struct {
	// Min is the wait, in nanoseconds of engine time, after the first failed
	// submission; it doubles per further failure up to Max. Default 1ms.
	Min int64
	// Max bounds the wait between two attempts. Default 100ms.
	Max int64
	// Confirm is how long, in nanoseconds, a submitted command may go
	// unconfirmed (no KindAdmin event showing its effect) before it is
	// submitted again. Default 500ms.
	Confirm int64
}

// Config is the Monitor's configuration. The zero value of every field but
// Accounts works; defaults are filled by New, and every detector is on.
type Config struct {
	// Accounts are the watched accounts and their reference data
	// (RefsOf(engineConfig.Accounts) is the usual value).
	Accounts []Ref

	Wash      Wash
	Layering  Layering
	Spoofing  Spoofing
	Rapid     Rapid
	PumpDump  PumpDump
	FrontRun  FrontRun
	Ramp      Ramp
	MarkClose MarkClose

	// ThrottleOrdersPerSec is the OrdersPerSec limit a throttle command sets.
	// Default 10.
	ThrottleOrdersPerSec int64
	// Tag is set on every command the Monitor submits, so the gateway and
	// the audit trail can tell surveillance actions apart. Default 0.
	Tag uint64
	// Operator is the operator id every command the Monitor submits names
	// (the engine refuses admin commands without one), with the cause
	// core.CauseSurveillance. Default DefaultOperator.
	Operator uint32

	// Submit hands one action command to the engine (the control lane) and
	// reports whether it was taken; it must not block, and must copy the
	// command rather than keep the pointer. The Monitor retries a
	// command that was not taken, and one that was taken but whose effect
	// has not appeared in the event stream within Retry.Confirm, until the
	// effect appears. Nil: commands go to Output.Commands for the caller to
	// push, and are re-emitted there until confirmed.
	Submit func(*core.Command) bool
	Retry  Retry
	// MaxPendingAlerts bounds the alerts waiting to be seen recorded in the
	// event stream (each is submitted as a core.CmdAlert and retried like an
	// action). Default 1024.
	MaxPendingAlerts int
}

const (
	defaultLayerMinOrders = 3
	defaultLayerRatio     = 4
	defaultLayerWindow    = 60e9
	defaultLayerCancelWin = 30e9
	defaultLayerCancelPct = 80
	defaultLayerGrace     = 1e9
	defaultSpoofRatio     = 10
	defaultRapidWindow    = 1e9
	defaultRapidMinOrders = 50
	defaultRapidOneSided  = 80
	defaultRapidOTR       = 20
	defaultRapidCancelPct = 95
	defaultRapidTwoSided  = 250
	defaultThrottleRate   = 10
	defaultPumpAccounts   = 2
	defaultPumpBuys       = 2
	defaultPumpRiseBps    = 500
	defaultPumpWindow     = 60e9
	defaultFrontLargeQty  = 1000
	defaultFrontWindow    = 5e9
	defaultFrontParent    = 10e9
	defaultRampLevels     = 3
	defaultRampMoveBps    = 100
	defaultRampWindow     = 30e9
	defaultRampReverse    = 60e9
	defaultRampRetain     = 50
	defaultCloseAt        = 16 * 3600e9
	defaultCloseWindow    = 600e9
	defaultCloseMoveBps   = 100
	defaultCloseSharePct  = 50
	defaultRetryMin       = 1e6
	defaultRetryMax       = 100e6
	defaultRetryConfirm   = 500e6
	defaultCloseLocation  = "America/New_York"
	maxTrack              = 16 // open orders tracked per trader
	maxPatterns           = 4  // layering / spoofing patterns per trader at once
	maxFills              = 32 // buy fills per owner and proprietary fills per firm kept (oldest dropped)
	maxMarks              = 4  // instruments per account tracked in the closing window
	maxRuns               = 4  // customer parent orders per account tracked for front-running
	maxBps                = 1_000_000
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
	defAction := func(p *Action, v Action) {
		if *p == ActionDefault {
			*p = v
		}
	}
	defAction(&c.Wash.Action, ActionAlert)
	l := &c.Layering
	def(&l.MinOrders, defaultLayerMinOrders)
	def64(&l.MinRatio, defaultLayerRatio)
	def64(&l.Window, defaultLayerWindow)
	def64(&l.CancelWindow, defaultLayerCancelWin)
	def(&l.CancelPct, defaultLayerCancelPct)
	def64(&l.Grace, defaultLayerGrace)
	defAction(&l.Action, ActionAlert)
	s := &c.Spoofing
	def64(&s.MinRatio, defaultSpoofRatio)
	defAction(&s.Action, ActionAlert)
	r := &c.Rapid
	def64(&r.Window, defaultRapidWindow)
	def(&r.MinOrders, defaultRapidMinOrders)
	def(&r.OneSidedPct, defaultRapidOneSided)
	def(&r.MaxOrderToTrade, defaultRapidOTR)
	def(&r.CancelPct, defaultRapidCancelPct)
	def(&r.TwoSidedOrderToTrade, defaultRapidTwoSided)
	defAction(&r.Action, ActionThrottle)
	def64(&c.ThrottleOrdersPerSec, defaultThrottleRate)
	def(&c.MaxPendingAlerts, 1024)
	if c.Operator == 0 {
		c.Operator = DefaultOperator
	}
	p := &c.PumpDump
	def(&p.MinAccounts, defaultPumpAccounts)
	def(&p.MinBuys, defaultPumpBuys)
	def64(&p.RiseBps, defaultPumpRiseBps)
	def64(&p.Window, defaultPumpWindow)
	defAction(&p.Action, ActionAlert)
	f := &c.FrontRun
	def64(&f.LargeQty, defaultFrontLargeQty)
	def64(&f.Window, defaultFrontWindow)
	def64(&f.ParentWindow, defaultFrontParent)
	defAction(&f.Action, ActionAlert)
	g := &c.Ramp
	def(&g.MinLevels, defaultRampLevels)
	def64(&g.MoveBps, defaultRampMoveBps)
	def64(&g.Window, defaultRampWindow)
	def64(&g.ReverseWindow, defaultRampReverse)
	def64(&g.RetainPct, defaultRampRetain)
	defAction(&g.Action, ActionAlert)
	k := &c.MarkClose
	def64(&k.Close, defaultCloseAt)
	def64(&k.Window, defaultCloseWindow)
	def64(&k.MoveBps, defaultCloseMoveBps)
	def64(&k.MinSharePct, defaultCloseSharePct)
	defAction(&k.Action, ActionAlert)
	if k.Location == nil {
		loc, err := time.LoadLocation(defaultCloseLocation)
		if err != nil {
			return fmt.Errorf("%w: MarkClose.Location: loading %s: %v; set MarkClose.Location", ErrConfig, defaultCloseLocation, err)
		}
		k.Location = loc
	}
	t := &c.Retry
	def64(&t.Min, defaultRetryMin)
	def64(&t.Max, defaultRetryMax)
	def64(&t.Confirm, defaultRetryConfirm)

	for _, a := range []struct {
		name string
		a    Action
	}{{"Wash", c.Wash.Action}, {"Layering", l.Action}, {"Spoofing", s.Action}, {"Rapid", r.Action},
		{"PumpDump", p.Action}, {"FrontRun", f.Action}, {"Ramp", g.Action}, {"MarkClose", k.Action}} {
		if a.a >= actions {
			return fmt.Errorf("%w: %s.Action is %d; use an Action constant", ErrConfig, a.name, a.a)
		}
	}
	pct := func(v int) bool { return v >= 1 && v <= 100 }
	switch {
	case l.MinOrders < 1 || l.MinOrders > maxTrack:
		return fmt.Errorf("%w: Layering.MinOrders is %d; use 1..%d", ErrConfig, l.MinOrders, maxTrack)
	case l.MinRatio < 1 || s.MinRatio < 1:
		return fmt.Errorf("%w: Layering.MinRatio and Spoofing.MinRatio must be at least 1 (0 = default)", ErrConfig)
	case l.Window < 0 || l.CancelWindow < 0 || l.Grace < 0:
		return fmt.Errorf("%w: Layering windows are negative; use nanoseconds > 0 (0 = default)", ErrConfig)
	case !pct(l.CancelPct):
		return fmt.Errorf("%w: Layering.CancelPct is %d; use 1..100", ErrConfig, l.CancelPct)
	case r.Window < rapidBuckets:
		return fmt.Errorf("%w: Rapid.Window is %d ns; use at least %d ns (0 = default 1s)", ErrConfig, r.Window, rapidBuckets)
	case r.MinOrders < 1 || r.MaxOrderToTrade < 1 || r.TwoSidedOrderToTrade < 1:
		return fmt.Errorf("%w: Rapid.MinOrders, Rapid.MaxOrderToTrade and Rapid.TwoSidedOrderToTrade must be at least 1 (0 = default)", ErrConfig)
	case !pct(r.CancelPct):
		return fmt.Errorf("%w: Rapid.CancelPct is %d; use 1..100", ErrConfig, r.CancelPct)
	case r.OneSidedPct < 50 || r.OneSidedPct > 100:
		return fmt.Errorf("%w: Rapid.OneSidedPct is %d; use 50..100", ErrConfig, r.OneSidedPct)
	case p.MinAccounts < 1 || p.MinAccounts > maxLinked:
		return fmt.Errorf("%w: PumpDump.MinAccounts is %d; use 1..%d", ErrConfig, p.MinAccounts, maxLinked)
	case p.MinBuys < 1 || p.MinBuys > maxFills:
		return fmt.Errorf("%w: PumpDump.MinBuys is %d; use 1..%d", ErrConfig, p.MinBuys, maxFills)
	case p.RiseBps < 1 || p.RiseBps > maxBps || p.Window < 0:
		return fmt.Errorf("%w: PumpDump.RiseBps must be 1..%d and Window >= 0 ns (0 = default)", ErrConfig, maxBps)
	case f.LargeQty < 1 || f.Window < 0 || f.ParentWindow < 0:
		return fmt.Errorf("%w: FrontRun.LargeQty must be >= 1 lot and FrontRun windows >= 0 ns (0 = default)", ErrConfig)
	case g.MinLevels < 1 || g.MoveBps < 1 || g.MoveBps > maxBps || g.Window < 0 || g.ReverseWindow < 0:
		return fmt.Errorf("%w: Ramp.MinLevels must be >= 1, Ramp.MoveBps 1..%d and Ramp windows >= 0 ns (0 = default)", ErrConfig, maxBps)
	case g.RetainPct < 1 || g.RetainPct > 100:
		return fmt.Errorf("%w: Ramp.RetainPct is %d; use 1..100", ErrConfig, g.RetainPct)
	case k.Close < 0 || k.Close >= 24*3600e9:
		return fmt.Errorf("%w: MarkClose.Close is %d ns; use a time of day, 0..24h in nanoseconds", ErrConfig, k.Close)
	case k.Window < 0 || k.Window > 12*3600e9:
		return fmt.Errorf("%w: MarkClose.Window is %d ns; use 0..12h in nanoseconds (0 = default 10 minutes)", ErrConfig, k.Window)
	case k.MoveBps < 1 || k.MoveBps > maxBps || k.MinSharePct < 1 || k.MinSharePct > 100:
		return fmt.Errorf("%w: MarkClose.MoveBps must be 1..%d and MarkClose.MinSharePct 1..100 (0 = default)", ErrConfig, maxBps)
	case c.ThrottleOrdersPerSec < 1:
		return fmt.Errorf("%w: ThrottleOrdersPerSec is %d; use at least 1", ErrConfig, c.ThrottleOrdersPerSec)
	case c.MaxPendingAlerts < 1 || c.MaxPendingAlerts > 1<<20:
		return fmt.Errorf("%w: MaxPendingAlerts is %d; use 1 to 1048576, or 0 for the default 1024", ErrConfig, c.MaxPendingAlerts)
	case t.Min < 1 || t.Max < t.Min || t.Confirm < 1:
		return fmt.Errorf("%w: Retry.Min, Retry.Max and Retry.Confirm must be > 0 ns with Max >= Min (0 = default)", ErrConfig)
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
