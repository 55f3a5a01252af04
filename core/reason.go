package core

import (
	"slices"
	"strconv"
)

// Reason is the numeric reason code of a rejected command or of a cancelled,
// reduced or expired order. Codes are stable: they are part of the protocol
// and the audit log, never renumbered or reused. docs/reasons.md lists them
// all with what triggers each and what the client sees (a test keeps the two
// in step).
//
// Ranges: 1xx a command's fields are invalid; 2xx the command is valid but the
// book or engine state refuses it; 3xx why an open order was cancelled,
// reduced or expired. 4xx-5xx are reserved for pre-trade risk and market
// integrity controls.
type Reason uint16

const (
	ReasonNone Reason = 0

	RejectUnknownCommand    Reason = 100 // Kind is not a known command
	RejectUnknownInstrument Reason = 101 // Instrument is not configured
	RejectInvalidAccount    Reason = 102 // Account is zero
	RejectInvalidSide       Reason = 103 // Side is neither Buy nor Sell
	RejectInvalidType       Reason = 104 // Type is not Limit, Market, Stop or StopLimit
	RejectInvalidTIF        Reason = 105 // TIF is not DAY, GTC, IOC or FOK, or does not fit the type
	RejectInvalidQty        Reason = 106 // Qty is not in 1..MaxOrderQty
	RejectInvalidPrice      Reason = 107 // a limit price is missing (<= 0) or given where none belongs
	RejectPriceOutOfBand    Reason = 108 // a price is outside the instrument's configured band
	RejectInvalidStopPrice  Reason = 109 // a stop price is missing, outside the band, or given where none belongs
	RejectInvalidDisplayQty Reason = 110 // DisplayQty is negative, above Qty, or on an order that cannot rest
	RejectInvalidMinQty     Reason = 111 // MinQty is negative or above Qty
	RejectInvalidFlags      Reason = 112 // unknown flags, or PostOnly on an order that cannot rest
	RejectInvalidSTP        Reason = 113 // STP is not a known mode
	RejectInvalidClOrdID    Reason = 114 // ClOrdID is zero

	RejectDuplicateClOrdID   Reason = 200 // ClOrdID is already used by an open order of the account
	RejectUnknownOrder       Reason = 201 // OrigClOrdID is not an open order of the account
	RejectOrderCapacity      Reason = 202 // the engine's preallocated order memory is full (MaxOrders)
	RejectPostOnlyWouldTake  Reason = 203 // a PostOnly order or replace would execute on arrival
	RejectNotReduced         Reason = 204 // cancel-to-size asked for Qty not in 1..open quantity-1
	RejectInstrumentMismatch Reason = 205 // the command names a different instrument than the open order

	CancelRequested       Reason = 300 // the client cancelled the order
	CancelIOCRemainder    Reason = 301 // the unfilled remainder of an IOC order
	CancelMarketRemainder Reason = 302 // the unfilled remainder of a market order (including a triggered stop)
	CancelFOKNotFillable  Reason = 303 // a FOK order could not fill in full on arrival; nothing executed
	CancelMinQtyNotMet    Reason = 304 // less than MinQty could execute on arrival; nothing executed
	CancelSTPNewest       Reason = 305 // self-trade prevention cancelled the incoming order
	CancelSTPOldest       Reason = 306 // self-trade prevention cancelled the resting order
	CancelSTPBoth         Reason = 307 // self-trade prevention cancelled both orders
	CancelSTPDecrement    Reason = 308 // self-trade prevention decremented (Reduced) or cancelled the order
	CancelMass            Reason = 309 // a mass cancel removed the order
	ExpireEndOfDay        Reason = 310 // the end-of-day expiry removed a DAY order
)

var reasonNames = map[Reason]string{
	RejectUnknownCommand:     "unknown-command",
	RejectUnknownInstrument:  "unknown-instrument",
	RejectInvalidAccount:     "invalid-account",
	RejectInvalidSide:        "invalid-side",
	RejectInvalidType:        "invalid-type",
	RejectInvalidTIF:         "invalid-tif",
	RejectInvalidQty:         "invalid-qty",
	RejectInvalidPrice:       "invalid-price",
	RejectPriceOutOfBand:     "price-out-of-band",
	RejectInvalidStopPrice:   "invalid-stop-price",
	RejectInvalidDisplayQty:  "invalid-display-qty",
	RejectInvalidMinQty:      "invalid-min-qty",
	RejectInvalidFlags:       "invalid-flags",
	RejectInvalidSTP:         "invalid-stp",
	RejectInvalidClOrdID:     "invalid-clordid",
	RejectDuplicateClOrdID:   "duplicate-clordid",
	RejectUnknownOrder:       "unknown-order",
	RejectOrderCapacity:      "order-capacity",
	RejectPostOnlyWouldTake:  "post-only-would-take",
	RejectNotReduced:         "not-reduced",
	RejectInstrumentMismatch: "instrument-mismatch",
	CancelRequested:          "cancel-requested",
	CancelIOCRemainder:       "ioc-remainder",
	CancelMarketRemainder:    "market-remainder",
	CancelFOKNotFillable:     "fok-not-fillable",
	CancelMinQtyNotMet:       "min-qty-not-met",
	CancelSTPNewest:          "stp-cancel-newest",
	CancelSTPOldest:          "stp-cancel-oldest",
	CancelSTPBoth:            "stp-cancel-both",
	CancelSTPDecrement:       "stp-decrement",
	CancelMass:               "mass-cancel",
	ExpireEndOfDay:           "end-of-day",
}

// String returns the reason's stable name, as used in docs/reasons.md and logs.
func (r Reason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	if r == ReasonNone {
		return "none"
	}
	return "reason-" + strconv.Itoa(int(r))
}

// Reasons lists every defined reason code in ascending order.
func Reasons() []Reason {
	out := make([]Reason, 0, len(reasonNames))
	for r := range reasonNames {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}
