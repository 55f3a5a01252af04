package core

// EventVersion is the layout version of Event's binary encoding.
const EventVersion = 2

// EventKind says what happened. Kinds below KindBookAdd concern the orders of
// one or two accounts (order entry, private); kinds from KindBookAdd on are the
// public, order-by-order market-data view of the same changes.
type EventKind uint8

const (
	KindNone      EventKind = iota
	KindAccepted            // the order is live; OrderID assigned
	KindRejected            // the command was refused; Reason says why; nothing changed
	KindExecuted            // a trade: the taker (Account, OrderID, ...) and the maker (Contra...)
	KindCancelled           // the order is gone; Qty lots cancelled; Reason says why
	KindReduced             // the order's open quantity fell by Qty to Leaves, keeping priority
	KindReplaced            // OrigClOrdID is now ClOrdID at Price for Leaves lots
	KindTriggered           // a stop order's StopPrice was reached; it now enters as Market or Limit
	KindExpired             // a DAY order expired at the end of day

	KindBookAdd     // an order shows Qty lots at Price (at the back of its level)
	KindBookExecute // a shown order executed Qty lots; Leaves lots remain shown (0 = gone)
	KindBookCancel  // a shown order was reduced by Qty lots to Leaves, keeping its place
	KindBookDelete  // a shown order left the book
	KindBookReplace // a shown order moved to Price with Leaves lots shown, at the back of its level
	KindTrade       // a trade print: Price, Qty, aggressor Side, MatchID

	KindAdmin      // an admin command about an account or the restricted list took effect; Reason says which
	KindSystem     // public trading status: an instrument (or, Instrument 0, the market) halted or resumed
	KindRegulatory // a record for the regulator: a halt or resume, Qty = orders cancelled; the Rule 201 test turning on
	KindAlert      // a surveillance alert recorded in the stream (CmdAlert): detector OrigClOrdID, completing event Seq MatchID
	eventKinds
)

// Public reports whether the kind belongs to the market-data feed.
func (k EventKind) Public() bool { return k >= KindBookAdd && k <= KindTrade || k == KindSystem }

// Event is one outcome of a command, fixed size and pointer-free. One command
// yields its events contiguously and in order; Seq and Time are the command's.
//
// For KindExecuted the taker is Account/OrderID/ClOrdID/Leaves and the maker
// is ContraAccount/ContraOrderID/ContraClOrdID/ContraLeaves; Side is the
// taker's (aggressor's) side. Price is always the maker's resting price.
type Event struct {
	Seq  uint64
	Time int64

	Kind   EventKind
	Side   Side
	Type   OrderType
	TIF    TIF
	Reason Reason
	Mark   SaleMark // order events of a sell: its (effective) Reg SHO mark
	Cause  Cause    // events of an admin command: its Cause

	Instrument uint32
	Account    uint32

	OrderID     uint64 // engine-assigned, unique for the engine's life; never reused
	ClOrdID     uint64
	OrigClOrdID uint64

	Price     int64
	StopPrice int64 // order events of Stop and StopLimit orders; Rejected echoes the command's
	Qty       int64
	Leaves    int64 // open lots of the order after this event (shown lots for book events)

	MatchID       uint64
	ContraAccount uint32
	Operator      uint32 // events of an admin command: its Operator
	ContraOrderID uint64
	ContraClOrdID uint64
	ContraLeaves  int64

	// Tag is the Tag of the command that caused this event, so a gateway can
	// answer the submitting session. Events about another account's order
	// (the maker of a trade, orders cancelled by a mass cancel, STP or expiry)
	// are routed by account.
	Tag uint64
}
