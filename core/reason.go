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
// reduced or expired. 4xx pre-trade risk rejects and risk cancels; 5xx the
// admin and market-integrity actions reported by KindAdmin, KindSystem and
// KindRegulatory events.
type Reason uint16

const (
	ReasonNone Reason = 0

	RejectUnknownCommand    Reason = 100 // Kind is not a known command
	RejectUnknownInstrument Reason = 101 // Instrument is not configured
	RejectInvalidAccount    Reason = 102 // Account is zero
	RejectInvalidSide       Reason = 103 // Side is neither Buy nor Sell
	RejectInvalidType       Reason = 104 // Type is not Limit, Market, Stop or StopLimit
	RejectInvalidTIF        Reason = 105 // TIF is not DAY, GTC, IOC or FOK
	RejectInvalidQty        Reason = 106 // Qty is not in 1..MaxOrderQty
	RejectInvalidPrice      Reason = 107 // a limit price is missing (<= 0) or given where none belongs
	RejectPriceOutOfBand    Reason = 108 // a price is outside the instrument's configured band
	RejectInvalidStopPrice  Reason = 109 // a stop price is missing, outside the band, or given where none belongs
	RejectInvalidDisplayQty Reason = 110 // DisplayQty is negative, above Qty, or on an order that cannot rest
	RejectInvalidMinQty     Reason = 111 // MinQty is negative, above Qty, or on an order other than Limit or Market
	RejectInvalidFlags      Reason = 112 // unknown flags, or PostOnly on an order that cannot rest
	RejectInvalidSTP        Reason = 113 // STP is not a known mode
	RejectInvalidClOrdID    Reason = 114 // ClOrdID is zero
	RejectPostOnlyMinQty    Reason = 115 // PostOnly with a MinQty: a post-only order never executes on arrival
	RejectInvalidTradingDay Reason = 116 // an end of day's date (Qty, YYYYMMDD) is not a business day of the calendar
	RejectInvalidSaleMark   Reason = 117 // Mark is not a known mark, or is set on a buy

	RejectDuplicateClOrdID   Reason = 200 // ClOrdID equals the highest reference the account used today (a resend)
	RejectUnknownOrder       Reason = 201 // OrderID is not an open order of the account with current reference OrigClOrdID
	RejectOrderCapacity      Reason = 202 // the engine's preallocated order memory is full (MaxOrders)
	RejectPostOnlyWouldTake  Reason = 203 // a PostOnly order or replace would execute on arrival
	RejectNotReduced         Reason = 204 // cancel-to-size asked for Qty not in 1..open quantity-1
	RejectInstrumentMismatch Reason = 205 // the command names a different instrument than the open order
	RejectStaleClOrdID       Reason = 206 // ClOrdID is below the highest reference the account used today
	RejectAccountCapacity    Reason = 207 // risk layer off: MaxAccounts distinct accounts have already traded
	RejectStaleTradingDay    Reason = 208 // an end of day's date is before the current trading date: it would not advance it

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

	// Pre-trade risk rejects, in the order the checks run (docs/engine.md),
	// except RejectPatternDayTrader, added later and checked between
	// RejectCreditLimit and RejectOrderRate.
	RejectUnknownAccount     Reason = 400 // the account is not configured (risk layer on)
	RejectAccountSuspended   Reason = 401 // the account is suspended
	RejectAccountClosed      Reason = 402 // the account is closed
	RejectAccountKilled      Reason = 403 // the account's kill switch is on
	RejectMarketHalted       Reason = 404 // a market-wide halt is in force
	RejectInstrumentHalted   Reason = 405 // the instrument is halted
	RejectRestricted         Reason = 406 // the instrument is on the restricted list
	RejectOrderQtyLimit      Reason = 407 // Qty above the account's MaxOrderQty
	RejectOrderNotionalLimit Reason = 408 // notional above the account's MaxOrderNotional
	RejectOutsideCollar      Reason = 409 // the limit price is outside the price collar
	RejectInsufficientFunds  Reason = 410 // a buy's hold exceeds the account's buying power
	RejectShortNoLocate      Reason = 411 // a short sale not covered by a locate
	RejectThresholdShort     Reason = 412 // a short sale in a threshold security without a locate
	RejectPositionLimit      Reason = 413 // the position with open orders would exceed MaxPosition
	RejectCreditLimit        Reason = 414 // the day's gross notional would exceed DailyCredit
	RejectOrderRate          Reason = 415 // more new orders and replaces this second than OrdersPerSec
	RejectCancelRate         Reason = 416 // more cancels this second than CancelsPerSec
	RejectInvalidAdmin       Reason = 417 // an admin command's value is out of range
	RejectPatternDayTrader   Reason = 418 // a PDT account under the equity minimum would make a fourth day trade in five days
	RejectSTPOffNotAllowed   Reason = 419 // STPOff on an order of an account whose STP floor does not allow opting out
	RejectShortWhileCovering Reason = 430 // a short sale while the account's buys to cover in the instrument use the short's collateral
	RejectDuplicativeOrder   Reason = 431 // an order identical to one of the account's recent ones within its DuplicateWindow
	RejectShortSalePriceTest Reason = 432 // a short sale at or below the best bid while the Rule 201 price test is on
	RejectLongSaleNotOwned   Reason = 433 // a sale marked long that the position (less open sells) does not cover
	RejectAdminUnattributed  Reason = 434 // an admin command without an Operator or with no known Cause
	CancelShortSalePriceTest Reason = 424 // a short sale stopped by the Rule 201 price test when it triggered or turned on
	CancelMarketHalt         Reason = 420 // a market-wide halt cancelled the order
	CancelKillSwitch         Reason = 421 // the account's kill switch cancelled the order
	CancelAccountStatus      Reason = 422 // the account was suspended or closed, which cancelled the order
	CancelOutsideCollar      Reason = 423 // a stop-limit triggered with its limit price outside the collar around the last sale

	// Admin and market-integrity actions: the Reason of KindAdmin, KindSystem
	// and KindRegulatory events.
	AdminInstrumentHalt   Reason = 500 // the instrument was halted
	AdminInstrumentResume Reason = 501 // the instrument resumed
	AdminMarketHalt       Reason = 502 // a market-wide halt began
	AdminMarketResume     Reason = 503 // the market-wide halt ended
	AdminKill             Reason = 504 // the account's kill switch was set
	AdminKillRelease      Reason = 505 // the account's kill switch was released
	AdminAccountStatus    Reason = 506 // the account's status changed to Qty
	AdminSetLimit         Reason = 507 // the account's limit OrigClOrdID was set to Qty
	AdminLocate           Reason = 508 // the account's locate in the instrument was set to Qty lots
	AdminRestrict         Reason = 509 // the instrument's restricted flag was set to Qty
	AdminShortSaleTest    Reason = 510 // the Rule 201 short-sale price test turned on for the rest of the day and the next
	AdminTradingDate      Reason = 511 // an end of day closed the trading date; Qty = the next one (YYYYMMDD)
	AdminAlert            Reason = 512 // a surveillance alert, recorded by CmdAlert
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
	RejectPostOnlyMinQty:     "post-only-min-qty",
	RejectInvalidSaleMark:    "invalid-sale-mark",
	RejectInvalidTradingDay:  "invalid-trading-date",
	RejectDuplicateClOrdID:   "duplicate-clordid",
	RejectStaleClOrdID:       "stale-clordid",
	RejectAccountCapacity:    "account-capacity",
	RejectStaleTradingDay:    "stale-trading-date",
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
	RejectUnknownAccount:     "unknown-account",
	RejectAccountSuspended:   "account-suspended",
	RejectAccountClosed:      "account-closed",
	RejectAccountKilled:      "account-killed",
	RejectMarketHalted:       "market-halted",
	RejectInstrumentHalted:   "instrument-halted",
	RejectRestricted:         "restricted",
	RejectOrderQtyLimit:      "order-qty-limit",
	RejectOrderNotionalLimit: "order-notional-limit",
	RejectOutsideCollar:      "outside-collar",
	RejectInsufficientFunds:  "insufficient-funds",
	RejectShortNoLocate:      "short-no-locate",
	RejectThresholdShort:     "threshold-short-no-locate",
	RejectPositionLimit:      "position-limit",
	RejectCreditLimit:        "credit-limit",
	RejectOrderRate:          "order-rate",
	RejectCancelRate:         "cancel-rate",
	RejectInvalidAdmin:       "invalid-admin",
	RejectPatternDayTrader:   "pattern-day-trader",
	RejectSTPOffNotAllowed:   "stp-off-not-allowed",
	RejectShortWhileCovering: "short-while-covering",
	RejectDuplicativeOrder:   "duplicative-order",
	RejectShortSalePriceTest: "short-sale-price-test",
	RejectLongSaleNotOwned:   "long-sale-not-owned",
	RejectAdminUnattributed:  "admin-unattributed",
	CancelShortSalePriceTest: "short-sale-price-test-cancel",
	CancelMarketHalt:         "market-halt-cancel",
	CancelKillSwitch:         "kill-switch-cancel",
	CancelAccountStatus:      "account-status-cancel",
	CancelOutsideCollar:      "collar-cancel",
	AdminInstrumentHalt:      "instrument-halt",
	AdminInstrumentResume:    "instrument-resume",
	AdminMarketHalt:          "market-halt",
	AdminMarketResume:        "market-resume",
	AdminKill:                "kill-switch",
	AdminKillRelease:         "kill-switch-release",
	AdminAccountStatus:       "account-status",
	AdminSetLimit:            "set-limit",
	AdminLocate:              "locate",
	AdminRestrict:            "restrict",
	AdminShortSaleTest:       "short-sale-price-test-on",
	AdminTradingDate:         "trading-date",
	AdminAlert:               "surveillance-alert",
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

// Reasons lists, in ascending order, every reason code the engine emits
// with the risk layer off (1xx-3xx): the matcher's codes. RiskReasons lists
// the rest.
func Reasons() []Reason { return sortedReasons(func(r Reason) bool { return r < 400 }) }

// RiskReasons lists, in ascending order, the codes of the pre-trade risk layer
// and the admin commands (4xx-5xx), emitted only when accounts are configured.
func RiskReasons() []Reason { return sortedReasons(func(r Reason) bool { return r >= 400 }) }

func sortedReasons(keep func(Reason) bool) []Reason {
	out := make([]Reason, 0, len(reasonNames))
	for r := range reasonNames {
		if keep(r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}
