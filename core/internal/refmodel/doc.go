// Package refmodel is a slow, simple reference model of the matching engine
// specified in docs/engine.md. It exists for the differential test
// (core/diff_test.go), which runs core.Engine and a Model on the same command
// stream and requires the same events and open orders after every command.
//
// Use New, then Apply for each command (Seq, Time and Tag already set) and
// OpenOrders to read the books in the specification's traversal order.
// Nothing to close.
//
// The model is written from the specification alone, for clarity and not for
// speed: a book side is a slice of orders kept sorted by priority, orders are
// found by map or linear search, and every command allocates freely.
//
// # Event fields
//
// Every event carries the command's Seq, Time and Tag. Fields not listed are
// zero.
//
//   - Order events (Accepted, Cancelled, Reduced, Replaced, Triggered, Expired,
//     and Executed for the taker) carry the order's Instrument, Account,
//     OrderID, ClOrdID, Side, Type, TIF, Price (its limit; 0 for Market and
//     Stop) and StopPrice (0 for Limit and Market). Type stays Stop or
//     StopLimit after a trigger.
//   - Accepted: Qty = Leaves = the order's Qty.
//   - Cancelled, Expired: Reason, Qty = lots removed; Leaves = 0.
//   - Reduced: Reason, Qty = lots removed, Leaves = open lots after.
//   - Replaced: the new ClOrdID, Price and StopPrice; OrigClOrdID; Qty =
//     Leaves = the new open quantity.
//   - Triggered: Qty = Leaves = open lots.
//   - Executed: the taker's order event with Price = the maker's price, Qty,
//     Leaves = the taker's open lots after, MatchID, and ContraAccount,
//     ContraOrderID, ContraClOrdID, ContraLeaves = the maker's open lots
//     (shown + hidden) after.
//   - Rejected: Reason; Account, ClOrdID, OrigClOrdID, Instrument, Side, Type,
//     TIF, Price, StopPrice and Qty copied from the command, whatever its kind;
//     OrderID = 0.
//   - Book events carry Instrument, OrderID, Side and Price. BookAdd and
//     BookReplace: Qty = Leaves = shown lots. BookExecute: Qty executed,
//     Leaves = shown after (no MatchID). BookCancel: Qty = shown lots removed,
//     Leaves = shown after. BookDelete: the price it rested at, Qty = the shown
//     lots that leave, Leaves = 0.
//   - Trade: Instrument, Side (aggressor), Price, Qty, MatchID.
//
// # Readings of the specification
//
// Where docs/engine.md leaves room, the model reads it as follows.
//
//  1. A triggered Stop or StopLimit with TIF FOK gets the FOK fillable check
//     when it enters (it keeps "its TIF"; only MinQty and PostOnly are
//     dropped): fok-not-fillable, nothing executes.
//  2. Remainder rules apply in the listed order: a Market or triggered Stop
//     remainder is market-remainder even when the TIF is IOC or FOK.
//  3. A stop whose trigger is already met on arrival (or by the new
//     StopPrice of a replace) joins the election queue at once; the queue is
//     empty then, so its Triggered event follows its Accepted (Replaced).
//  4. The order-capacity check applies to every New, including IOC, FOK and
//     Market orders that would never rest.
//  5. PostOnly "crosses the opposite best" ignores STP: crossing the
//     account's own order is a reject too. The same for a PostOnly replace.
//  6. DisplayQty = Qty on an order that cannot rest (Market, Stop, IOC, FOK)
//     is invalid-display-qty, like any other DisplayQty > 0 there.
//  7. Replace, "same Price and StopPrice and Qty <= open" keeps priority for
//     waiting stops too (in the stop book); "a waiting stop moves to the back"
//     applies otherwise.
//  8. Replace of a triggered StopLimit that rests: the StopPrice is validated
//     as for a new StopLimit and stored; a change of StopPrice alone loses
//     priority (BookReplace).
//  9. "Oldest first within a price" is queue order: a refilled iceberg or a
//     replace that lost priority counts from when it rejoined the queue.
//  10. End of day expires TIF DAY only; a waiting stop with TIF IOC or FOK
//     stays, like GTC.
//  11. Stops: after every print the model scans the whole stop book for the
//     stops the print reaches, sorts them (furthest through the print first,
//     then the aggressor's side, then stop-book order) and appends them to
//     the election queue; the queue runs, first in first out, once the
//     command's own order is done. It keeps no invariant about waiting stops
//     and the last price (the engine relies on one).
//  12. A mass cancel that matches nothing emits nothing.
//  13. A crossing replace matches its full new Qty; its BookDelete carries
//     the old price.
//  14. FOK is checked before MinQty; the first that fails gives the reason.
//  15. CmdNone is an unknown kind (unknown-command).
package refmodel
