package core_test

import "github.com/tradecore/tradecore/core"

// refBook does for tests what an order-entry gateway does for its clients:
// it learns from the engine's events which OrderID carries each account's
// client reference, so commands can name orders by reference.
type refBook map[refKey]uint64

type refKey struct {
	acct uint32
	cl   uint64
}

// learn records the references of accepted and replaced orders.
func (b refBook) learn(evs []core.Event) {
	for i := range evs {
		e := &evs[i]
		switch e.Kind {
		case core.KindAccepted, core.KindReplaced:
			b[refKey{e.Account, e.ClOrdID}] = e.OrderID
		}
	}
}

// name fills in the OrderID of a cancel, cancel-to-size or replace from its
// account and OrigClOrdID, unless the command already names one. An unknown
// reference leaves OrderID 0, which the engine rejects as unknown-order.
func (b refBook) name(c *core.Command) {
	switch c.Kind {
	case core.CmdCancel, core.CmdCancelSize, core.CmdReplace:
		if c.OrderID == 0 {
			c.OrderID = b[refKey{c.Account, c.OrigClOrdID}]
		}
	}
}
