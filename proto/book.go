package proto

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/tradecore/tradecore/core"
)

// Errors of Book.Apply.
var (
	// ErrGap: a market-data message's Seq is not the one after the last
	// applied. Reconnect with NextSeq = Book.Seq+1, or with a snapshot.
	ErrGap = errors.New("proto: market-data sequence gap")
	// ErrBookState: a message does not fit the book (an unknown order, an
	// add of an order already shown, a snapshot message outside a
	// snapshot). Rebuild from a snapshot.
	ErrBookState = errors.New("proto: market-data message does not fit the book")
)

// BookOrder is one shown order of a Book.
type BookOrder struct {
	OrderID    uint64
	Instrument uint32
	Side       core.Side
	Price, Qty int64
	arrival    uint64
}

// Level is one price level of a Book: its shown lots and orders.
type Level struct {
	Price, Qty int64
	Orders     int
}

// Book is an order-by-order book built from the market-data feed: a client's
// view of every shown order. The zero value is an empty book expecting Seq 1
// or a snapshot. It allocates per order; it is for clients and tests.
type Book struct {
	// Seq is the last feed sequence number applied.
	Seq uint64
	// Orders are the shown orders by OrderID.
	Orders map[uint64]*BookOrder
	// Halted holds the halted instruments (0: a market-wide halt).
	Halted map[uint32]bool
	// Trades counts MDTrade messages applied.
	Trades int

	snap    bool
	arrival uint64
}

func (b *Book) init() {
	if b.Orders == nil {
		b.Orders, b.Halted = map[uint64]*BookOrder{}, map[uint32]bool{}
	}
}

// Apply decodes one market-data frame and applies it. A sequenced message
// must carry Seq+1 (ErrGap otherwise, and nothing is applied); inside a
// snapshot (SnapshotBegin … SnapshotEnd) the MDAdd and MDSystem messages
// carry Seq 0 and SnapshotEnd sets Seq. Session frames (heartbeats, login
// answers, logout) are ignored.
func (b *Book) Apply(frame []byte) error {
	b.init()
	h, err := ParseHeader(frame)
	if err != nil {
		return err
	}
	if len(frame) != h.Length {
		return fmt.Errorf("%w: %d bytes for a %d-byte frame", ErrMalformed, len(frame), h.Length)
	}
	switch h.Type {
	case TSnapshotBegin:
		var m SnapshotBegin
		_ = m.UnmarshalFrame(frame)
		clear(b.Orders)
		clear(b.Halted)
		b.snap = true
		return nil
	case TSnapshotEnd:
		var m SnapshotEnd
		_ = m.UnmarshalFrame(frame)
		if !b.snap {
			return fmt.Errorf("%w: SnapshotEnd without SnapshotBegin", ErrBookState)
		}
		b.snap, b.Seq = false, m.Seq
		return nil
	}
	seq, ok := Sequenced(frame)
	if !ok {
		return nil
	}
	if b.snap {
		if seq != 0 || (h.Type != TMDAdd && h.Type != TMDSystem) {
			return fmt.Errorf("%w: a %s message with Seq %d inside a snapshot", ErrBookState, h.Type, seq)
		}
	} else if seq != b.Seq+1 {
		return fmt.Errorf("%w: Seq %d after %d", ErrGap, seq, b.Seq)
	}
	if err := b.apply(h.Type, frame); err != nil {
		return err
	}
	if !b.snap {
		b.Seq = seq
	}
	return nil
}

func (b *Book) apply(t Type, frame []byte) error {
	find := func(id uint64) (*BookOrder, error) {
		o := b.Orders[id]
		if o == nil {
			return nil, fmt.Errorf("%w: order %d is not in the book", ErrBookState, id)
		}
		return o, nil
	}
	switch t {
	case TMDAdd:
		var m MDAdd
		_ = m.UnmarshalFrame(frame)
		if b.Orders[m.OrderID] != nil {
			return fmt.Errorf("%w: order %d added twice", ErrBookState, m.OrderID)
		}
		b.arrival++
		b.Orders[m.OrderID] = &BookOrder{OrderID: m.OrderID, Instrument: m.Instrument, Side: m.Side, Price: m.Price, Qty: m.Qty, arrival: b.arrival}
	case TMDExecute:
		var m MDExecute
		_ = m.UnmarshalFrame(frame)
		o, err := find(m.OrderID)
		if err != nil {
			return err
		}
		if o.Qty = m.Leaves; o.Qty <= 0 {
			delete(b.Orders, m.OrderID)
		}
	case TMDCancel:
		var m MDCancel
		_ = m.UnmarshalFrame(frame)
		o, err := find(m.OrderID)
		if err != nil {
			return err
		}
		if o.Qty = m.Leaves; o.Qty <= 0 {
			delete(b.Orders, m.OrderID)
		}
	case TMDDelete:
		var m MDDelete
		_ = m.UnmarshalFrame(frame)
		if _, err := find(m.OrderID); err != nil {
			return err
		}
		delete(b.Orders, m.OrderID)
	case TMDReplace:
		var m MDReplace
		_ = m.UnmarshalFrame(frame)
		o, err := find(m.OrderID)
		if err != nil {
			return err
		}
		b.arrival++
		o.Price, o.Qty, o.arrival = m.Price, m.Qty, b.arrival
	case TMDTrade:
		b.Trades++
	case TMDSystem:
		var m MDSystem
		_ = m.UnmarshalFrame(frame)
		switch m.Reason {
		case core.AdminInstrumentHalt:
			b.Halted[m.Instrument] = true
		case core.AdminMarketHalt:
			b.Halted[0] = true
		case core.AdminInstrumentResume:
			delete(b.Halted, m.Instrument)
		case core.AdminMarketResume:
			delete(b.Halted, 0)
		}
	}
	return nil
}

// Levels returns the price levels of one side of an instrument, best first.
func (b *Book) Levels(inst uint32, side core.Side) []Level {
	var os []*BookOrder
	for _, o := range b.Orders {
		if o.Instrument == inst && o.Side == side {
			os = append(os, o)
		}
	}
	slices.SortFunc(os, func(x, y *BookOrder) int {
		if side == core.Buy {
			return cmp.Compare(y.Price, x.Price)
		}
		return cmp.Compare(x.Price, y.Price)
	})
	var out []Level
	for _, o := range os {
		if n := len(out); n > 0 && out[n-1].Price == o.Price {
			out[n-1].Qty += o.Qty
			out[n-1].Orders++
			continue
		}
		out = append(out, Level{Price: o.Price, Qty: o.Qty, Orders: 1})
	}
	return out
}

// Queue returns the shown orders of one side of an instrument in priority
// order: best price first, oldest first within a price.
func (b *Book) Queue(inst uint32, side core.Side) []BookOrder {
	var out []BookOrder
	for _, o := range b.Orders {
		if o.Instrument == inst && o.Side == side {
			out = append(out, *o)
		}
	}
	slices.SortFunc(out, func(x, y BookOrder) int {
		c := cmp.Compare(x.Price, y.Price)
		if side == core.Buy {
			c = -c
		}
		if c != 0 {
			return c
		}
		return cmp.Compare(x.arrival, y.arrival)
	})
	return out
}
