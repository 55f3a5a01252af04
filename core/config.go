package core

import (
	"errors"
	"fmt"
)

// ErrConfig is wrapped by every configuration error; the message names the
// field and the fix.
var ErrConfig = errors.New("core: invalid config")

// Instrument is the engine's view of a tradable instrument: a numeric id and a
// price band in ticks. The decimal tick and lot sizes live at the edges (see
// package config); inside the engine a price is a count of ticks and a
// quantity a count of lots.
type Instrument struct {
	ID     uint32 // 1..MaxInstrumentID, unique
	Symbol string // for reports only; the engine keys on ID
	// BandLow and BandHigh bound every price and stop price, in ticks
	// (1 <= BandLow <= BandHigh). The engine preallocates one price level per
	// tick of the band on each side, so the band's width is a memory budget:
	// about 4 x 24 bytes per tick.
	BandLow, BandHigh int64
}

// MaxInstrumentID is the largest instrument id the engine accepts.
const MaxInstrumentID = 1<<16 - 1

// Config sizes and shapes an Engine. The zero value of every field but
// Instruments works: defaults are filled by New.
type Config struct {
	Instruments []Instrument

	// MaxOrders is the number of open orders (resting and waiting stops) the
	// engine can hold at once, preallocated. A new order beyond it is rejected
	// with RejectOrderCapacity. Default 1<<20.
	MaxOrders int

	// MaxOrderQty bounds Qty of any order, in lots. Default 1e9.
	MaxOrderQty int64

	// EventBatch is the number of events buffered before the sink is called.
	// Default 4096.
	EventBatch int
}

const (
	defaultMaxOrders   = 1 << 20
	defaultMaxOrderQty = 1_000_000_000
	defaultEventBatch  = 4096
	maxBandTicks       = 1 << 24
)

func (c *Config) fill() error {
	if c.MaxOrders == 0 {
		c.MaxOrders = defaultMaxOrders
	}
	if c.MaxOrderQty == 0 {
		c.MaxOrderQty = defaultMaxOrderQty
	}
	if c.EventBatch == 0 {
		c.EventBatch = defaultEventBatch
	}
	switch {
	case c.MaxOrders < 1 || c.MaxOrders > 1<<30:
		return fmt.Errorf("%w: MaxOrders is %d; set it between 1 and 2^30", ErrConfig, c.MaxOrders)
	case c.MaxOrderQty < 1 || c.MaxOrderQty > 1<<53:
		return fmt.Errorf("%w: MaxOrderQty is %d; set it between 1 and 2^53", ErrConfig, c.MaxOrderQty)
	case c.EventBatch < 16:
		return fmt.Errorf("%w: EventBatch is %d; set it to at least 16", ErrConfig, c.EventBatch)
	case len(c.Instruments) == 0:
		return fmt.Errorf("%w: Instruments is empty; configure at least one instrument", ErrConfig)
	}
	seen := make(map[uint32]bool, len(c.Instruments))
	for i, in := range c.Instruments {
		switch {
		case in.ID == 0 || in.ID > MaxInstrumentID:
			return fmt.Errorf("%w: Instruments[%d].ID is %d; use 1..%d", ErrConfig, i, in.ID, MaxInstrumentID)
		case seen[in.ID]:
			return fmt.Errorf("%w: Instruments[%d].ID %d is used twice; give each instrument its own id", ErrConfig, i, in.ID)
		case in.BandLow < 1 || in.BandHigh < in.BandLow:
			return fmt.Errorf("%w: Instruments[%d] (id %d) band is [%d, %d] ticks; need 1 <= BandLow <= BandHigh", ErrConfig, i, in.ID, in.BandLow, in.BandHigh)
		case in.BandHigh-in.BandLow >= maxBandTicks:
			return fmt.Errorf("%w: Instruments[%d] (id %d) band spans %d ticks; narrow it to under %d", ErrConfig, i, in.ID, in.BandHigh-in.BandLow+1, maxBandTicks)
		}
		seen[in.ID] = true
	}
	return nil
}
