package core

// CommandVersion is the layout version of Command's binary encoding. It is
// the first byte of every encoded command; decoders reject other versions.
const CommandVersion = 3

// CmdKind says what a Command asks the engine to do.
type CmdKind uint8

const (
	CmdNone       CmdKind = iota
	CmdNew                // enter a new order
	CmdCancel             // cancel the account's open order OrderID (current reference OrigClOrdID)
	CmdCancelSize         // reduce the account's order OrderID to Qty open lots, keeping priority
	CmdReplace            // replace order OrderID (reference OrigClOrdID) with ClOrdID at Price / StopPrice for Qty open lots
	CmdMassCancel         // cancel every open order matching Account (0 = any) and Instrument (0 = any)
	CmdEndOfDay           // end trading date Qty (YYYYMMDD): expire every DAY order (resting or waiting stop); reset daily credit; next business day

	// Admin commands: sequenced like orders; each names its Operator and
	// Cause. The account commands (status, limits, locates) need the risk
	// layer on (Config.Accounts non-empty).
	CmdHalt          // halt Instrument: new orders and replaces rejected; resting orders stay
	CmdResume        // resume Instrument
	CmdMarketHalt    // market-wide halt: cancel every open order, reject new ones
	CmdMarketResume  // lift the market-wide halt
	CmdKill          // kill switch: cancel every open order of Account and block new ones
	CmdKillRelease   // release Account's kill switch
	CmdAccountStatus // set Account's status to AccountStatus(Qty); suspending or closing cancels its open orders
	CmdSetLimit      // set Account's limit LimitID(OrigClOrdID) to Qty (0 = none)
	CmdLocate        // set Account's locate in Instrument to Qty lots
	CmdRestrict      // put Instrument on the restricted list (Qty = 1) or take it off (Qty = 0)
	CmdAlert         // record a surveillance alert: detector OrigClOrdID, completing event Seq OrderID, Instrument, Account, second account ClOrdID, Qty, Price
	cmdKinds
)

// LimitID names one of an account's limits in a CmdSetLimit command (carried
// in OrigClOrdID).
type LimitID uint8

const (
	LimitNone            LimitID = iota
	LimitOrderQty                // Limits.MaxOrderQty
	LimitOrderNotional           // Limits.MaxOrderNotional
	LimitPosition                // Limits.MaxPosition
	LimitDailyCredit             // Limits.DailyCredit
	LimitOrdersPerSec            // Limits.OrdersPerSec
	LimitCancelsPerSec           // Limits.CancelsPerSec
	LimitDuplicateWindow         // Limits.DuplicateWindow
	limitIDs
)

// Side of an order.
type Side uint8

const (
	SideNone Side = iota
	Buy
	Sell
)

// Opposite returns the other side.
func (s Side) Opposite() Side { return 3 - s }

// OrderType is the order's pricing instruction.
type OrderType uint8

const (
	TypeNone  OrderType = iota
	Limit               // executes at Price or better; the remainder rests (per TIF)
	Market              // executes at any price; the remainder is cancelled, never rests
	Stop                // waits for the last trade to reach StopPrice, then enters as Market
	StopLimit           // waits for the last trade to reach StopPrice, then enters as Limit at Price
	orderTypes
)

// TIF is an order's time in force.
type TIF uint8

const (
	TIFNone TIF = iota
	DAY         // rests until filled, cancelled or the end-of-day expiry
	GTC         // rests until filled or cancelled
	IOC         // executes what it can on arrival; the remainder is cancelled
	FOK         // executes in full on arrival or not at all
	tifs
)

// Flags are order instructions that combine.
type Flags uint8

const (
	// PostOnly rejects the order (or the replace) if it would take liquidity on arrival.
	PostOnly Flags = 1 << iota
	flagsAll       = PostOnly
)

// STPMode is what self-trade prevention does when an incoming order would
// match a resting order of the same account, or of the same non-zero STP
// group. The incoming (newest) order's mode applies. The zero value is
// STPCancelNewest, so prevention is on unless an order opts out with STPOff.
type STPMode uint8

const (
	STPCancelNewest STPMode = iota // cancel the incoming order's remainder; the resting order stays
	STPCancelOldest                // cancel the resting order; the incoming order continues
	STPCancelBoth                  // cancel both
	STPDecrement                   // decrement both by the smaller open quantity; cancel whichever reaches zero
	STPOff                         // allow the self-match
	stpModes
)

// SaleMark is a sell order's Reg SHO marking (Rule 200(g)): long, short or
// short exempt (docs/engine.md, "Reg SHO").
type SaleMark uint8

const (
	MarkNone        SaleMark = iota // buys; a sell left unmarked is marked by the risk layer: long when the position covers it, else short
	MarkLong                        // a long sale: the account owns the shares (its position covers the order)
	MarkShort                       // a short sale: needs a locate; subject to the Rule 201 price test
	MarkShortExempt                 // a short sale exempt from the Rule 201 price test (Rule 201(d)); still needs a locate
	saleMarks
)

// Cause is why an admin command was given: every admin command names one,
// with the Operator who gave it, and its events carry both (docs/engine.md,
// "Admin commands"). Codes are stable, like reason codes.
type Cause uint8

const (
	CauseNone            Cause = iota // not given: an admin command without a cause is rejected
	CauseOperator                     // an operator's decision
	CauseRiskLimit                    // a risk limit or the risk desk
	CauseSurveillance                 // a surveillance alert
	CauseNewsPending                  // regulatory halt: news pending
	CauseNewsReleased                 // news released / dissemination complete
	CauseVolatility                   // a volatility (limit up-limit down) pause
	CauseCircuitBreaker               // a market-wide circuit breaker
	CauseRegulatory                   // a regulatory concern or trading suspension
	CauseTechnical                    // a technical problem
	CauseClientRequest                // the client (or its firm) asked
	CauseCompliance                   // compliance review or the restricted list
	CauseCorporateAction              // a corporate action
	CauseCredit                       // credit or a margin call
	causes
)

// Command is one sequenced input to the engine: fixed size, no pointers, so it
// travels through the inbound ring and into the journal by value. Prices are
// in ticks of the instrument and quantities in lots.
//
// The loop's sequencer sets Seq (gapless, from 1) and Time (nanoseconds from
// the injected clock); every other field comes from the submitter.
type Command struct {
	Seq  uint64
	Time int64

	Kind  CmdKind
	Side  Side
	Type  OrderType
	TIF   TIF
	Flags Flags
	STP   STPMode
	Mark  SaleMark // sells: long, short or short exempt; buys: none
	Cause Cause    // admin commands: why (required)

	Instrument uint32 // instrument id from the config
	Account    uint32 // account id; never zero for order commands
	STPGroup   uint32 // 0 = no group; orders of one group never match each other (see STPMode)
	Operator   uint32 // admin commands: who (a random id of the person or system; required)

	// ClOrdID is the client's reference for a new order, or the new
	// reference of a replace: above every reference the account has used
	// this trading day (docs/engine.md, "Client references").
	ClOrdID uint64
	// OrderID and OrigClOrdID name the open order a cancel, cancel-to-size
	// or replace acts on: the engine's OrderID (from its Accepted event) and
	// the order's current reference; both must match.
	OrderID     uint64
	OrigClOrdID uint64

	Price      int64 // limit price in ticks (Limit, StopLimit, replace)
	StopPrice  int64 // trigger price in ticks (Stop, StopLimit)
	Qty        int64 // lots: order quantity; open quantity after cancel-to-size or replace
	DisplayQty int64 // iceberg: lots shown at a time (0 = all)
	MinQty     int64 // lots that must execute on arrival, or the order is cancelled (0 = none)

	// Tag is opaque to the engine and copied to every event the command
	// causes, so a gateway can route results (for example a session id).
	Tag uint64
}
