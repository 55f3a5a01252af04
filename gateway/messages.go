package gateway

import (
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/proto"
)

// recipient is one account that receives a message for an event; maker
// says it receives the maker's side of an Executed.
type recipient struct {
	acct  uint32
	maker bool
}

// recipients returns the accounts an engine event is sent to, in order:
// the taker before the maker of a trade (both when they are the same
// account). System events go to every started stream instead, and the
// market-data view and regulatory records to no account.
func recipients(ev *core.Event) (r [2]recipient, n int) {
	switch ev.Kind {
	case core.KindAccepted, core.KindRejected, core.KindCancelled, core.KindReduced, core.KindReplaced,
		core.KindTriggered, core.KindExpired:
		if ev.Account != 0 {
			r[0], n = recipient{ev.Account, false}, 1
		}
	case core.KindExecuted:
		if ev.Account != 0 {
			r[n] = recipient{ev.Account, false}
			n++
		}
		if ev.ContraAccount != 0 {
			r[n] = recipient{ev.ContraAccount, true}
			n++
		}
	case core.KindAdmin:
		if ev.Account != 0 && ev.Reason >= core.AdminKill && ev.Reason <= core.AdminLocate {
			r[0], n = recipient{ev.Account, false}, 1
		}
	}
	return r, n
}

// refOf is the client reference an event shows for the recipient: the
// highest reference the gateway has seen bounds the next one.
func refOf(ev *core.Event, maker bool) uint64 {
	if maker {
		return ev.ContraClOrdID
	}
	return ev.ClOrdID
}

// appendOE appends the order-entry frame, numbered seq, that recipient
// (maker or not) receives for ev. ev is a kind recipients routes, or a
// system event.
func appendOE(dst []byte, ev *core.Event, seq uint64, maker bool) []byte {
	switch ev.Kind {
	case core.KindAccepted:
		m := proto.Accepted{Seq: seq, Time: ev.Time, OrderID: ev.OrderID, ClOrdID: ev.ClOrdID, Instrument: ev.Instrument,
			Side: ev.Side, OrdType: ev.Type, TIF: ev.TIF, Price: ev.Price, StopPrice: ev.StopPrice, Qty: ev.Leaves}
		return m.AppendFrame(dst)
	case core.KindRejected:
		m := proto.Rejected{Seq: seq, Time: ev.Time, Reason: ev.Reason, Side: ev.Side, OrdType: ev.Type, TIF: ev.TIF,
			Instrument: ev.Instrument, OrderID: ev.OrderID, ClOrdID: ev.ClOrdID, OrigClOrdID: ev.OrigClOrdID,
			Price: ev.Price, StopPrice: ev.StopPrice, Qty: ev.Qty}
		return m.AppendFrame(dst)
	case core.KindExecuted:
		m := proto.Executed{Seq: seq, Time: ev.Time, Instrument: ev.Instrument, MatchID: ev.MatchID, Price: ev.Price, Qty: ev.Qty}
		if maker {
			m.OrderID, m.ClOrdID, m.Side, m.Liquidity, m.Leaves = ev.ContraOrderID, ev.ContraClOrdID, ev.Side.Opposite(), 'A', ev.ContraLeaves
		} else {
			m.OrderID, m.ClOrdID, m.Side, m.Liquidity, m.Leaves = ev.OrderID, ev.ClOrdID, ev.Side, 'R', ev.Leaves
		}
		return m.AppendFrame(dst)
	case core.KindCancelled, core.KindExpired:
		m := proto.Cancelled{Seq: seq, Time: ev.Time, Reason: ev.Reason, Side: ev.Side, Instrument: ev.Instrument,
			OrderID: ev.OrderID, ClOrdID: ev.ClOrdID, Qty: ev.Qty, Leaves: ev.Leaves}
		return m.AppendFrame(dst)
	case core.KindReduced:
		m := proto.Reduced{Seq: seq, Time: ev.Time, Reason: ev.Reason, Side: ev.Side, Instrument: ev.Instrument,
			OrderID: ev.OrderID, ClOrdID: ev.ClOrdID, Qty: ev.Qty, Leaves: ev.Leaves}
		return m.AppendFrame(dst)
	case core.KindReplaced:
		m := proto.Replaced{Seq: seq, Time: ev.Time, OrderID: ev.OrderID, ClOrdID: ev.ClOrdID, OrigClOrdID: ev.OrigClOrdID,
			Instrument: ev.Instrument, Side: ev.Side, Price: ev.Price, StopPrice: ev.StopPrice, Leaves: ev.Leaves}
		return m.AppendFrame(dst)
	case core.KindTriggered:
		m := proto.Triggered{Seq: seq, Time: ev.Time, OrderID: ev.OrderID, ClOrdID: ev.ClOrdID, Instrument: ev.Instrument,
			Side: ev.Side, OrdType: ev.Type, TIF: ev.TIF, Price: ev.Price, StopPrice: ev.StopPrice, Leaves: ev.Leaves}
		return m.AppendFrame(dst)
	case core.KindSystem:
		m := proto.SystemEvent{Seq: seq, Time: ev.Time, Reason: ev.Reason, Instrument: ev.Instrument, Qty: ev.Qty}
		return m.AppendFrame(dst)
	case core.KindAdmin:
		m := proto.AccountAlert{Seq: seq, Time: ev.Time, Reason: ev.Reason, Instrument: ev.Instrument, Account: ev.Account,
			Value: ev.Qty, LimitID: ev.OrigClOrdID}
		return m.AppendFrame(dst)
	}
	return dst
}

// appendMD appends the market-data frame, numbered seq, of a public event.
func appendMD(dst []byte, ev *core.Event, seq uint64) []byte {
	switch ev.Kind {
	case core.KindBookAdd:
		m := proto.MDAdd{Seq: seq, Time: ev.Time, OrderID: ev.OrderID, Instrument: ev.Instrument, Side: ev.Side, Price: ev.Price, Qty: ev.Qty}
		return m.AppendFrame(dst)
	case core.KindBookExecute:
		m := proto.MDExecute{Seq: seq, Time: ev.Time, OrderID: ev.OrderID, Instrument: ev.Instrument, Side: ev.Side, Price: ev.Price,
			Qty: ev.Qty, Leaves: ev.Leaves, MatchID: ev.MatchID}
		return m.AppendFrame(dst)
	case core.KindBookCancel:
		m := proto.MDCancel{Seq: seq, Time: ev.Time, OrderID: ev.OrderID, Instrument: ev.Instrument, Side: ev.Side, Qty: ev.Qty, Leaves: ev.Leaves}
		return m.AppendFrame(dst)
	case core.KindBookDelete:
		m := proto.MDDelete{Seq: seq, Time: ev.Time, OrderID: ev.OrderID, Instrument: ev.Instrument, Side: ev.Side}
		return m.AppendFrame(dst)
	case core.KindBookReplace:
		m := proto.MDReplace{Seq: seq, Time: ev.Time, OrderID: ev.OrderID, Instrument: ev.Instrument, Side: ev.Side, Price: ev.Price, Qty: ev.Leaves}
		return m.AppendFrame(dst)
	case core.KindTrade:
		m := proto.MDTrade{Seq: seq, Time: ev.Time, MatchID: ev.MatchID, Instrument: ev.Instrument, Side: ev.Side, Price: ev.Price, Qty: ev.Qty}
		return m.AppendFrame(dst)
	case core.KindSystem:
		m := proto.MDSystem{Seq: seq, Time: ev.Time, Reason: ev.Reason, Instrument: ev.Instrument, Qty: ev.Qty}
		return m.AppendFrame(dst)
	}
	return dst
}

// command builds the engine command of an order-entry frame for account,
// stamped with tag. ok is false for a frame that is not an order message.
func command(t proto.Type, f []byte, account uint32, tag uint64, c *core.Command) (ok bool) {
	*c = core.Command{Account: account, Tag: tag}
	switch t {
	case proto.TNewOrder:
		var m proto.NewOrder
		if m.UnmarshalFrame(f) != nil {
			return false
		}
		c.Kind, c.ClOrdID, c.Instrument, c.Side, c.Type, c.TIF, c.Flags, c.STP, c.STPGroup = core.CmdNew, m.ClOrdID, m.Instrument, m.Side, m.OrdType, m.TIF, m.Flags, m.STP, m.STPGroup
		c.Price, c.StopPrice, c.Qty, c.DisplayQty, c.MinQty = m.Price, m.StopPrice, m.Qty, m.DisplayQty, m.MinQty
	case proto.TCancel:
		var m proto.Cancel
		if m.UnmarshalFrame(f) != nil {
			return false
		}
		c.Kind, c.OrderID, c.OrigClOrdID, c.Instrument = core.CmdCancel, m.OrderID, m.OrigClOrdID, m.Instrument
	case proto.TCancelToSize:
		var m proto.CancelToSize
		if m.UnmarshalFrame(f) != nil {
			return false
		}
		c.Kind, c.OrderID, c.OrigClOrdID, c.Instrument, c.Qty = core.CmdCancelSize, m.OrderID, m.OrigClOrdID, m.Instrument, m.Qty
	case proto.TReplace:
		var m proto.Replace
		if m.UnmarshalFrame(f) != nil {
			return false
		}
		c.Kind, c.OrderID, c.OrigClOrdID, c.ClOrdID, c.Instrument = core.CmdReplace, m.OrderID, m.OrigClOrdID, m.ClOrdID, m.Instrument
		c.Price, c.StopPrice, c.Qty = m.Price, m.StopPrice, m.Qty
	case proto.TMassCancel:
		var m proto.MassCancel
		if m.UnmarshalFrame(f) != nil {
			return false
		}
		c.Kind, c.Instrument = core.CmdMassCancel, m.Instrument
	case proto.TKillSwitch:
		// An admin command names who gave it and why: the account itself,
		// at the client's request (docs/protocol.md, KillSwitch).
		c.Kind, c.Operator, c.Cause = core.CmdKill, account, core.CauseClientRequest
	default:
		return false
	}
	return true
}
