// Package config loads the operator's configuration file and converts
// between the decimal prices and quantities of the outside world and the
// int64 ticks and lots of the engine.
//
// The file format is JSON, specified field by field in docs/config.md
// (https://github.com/tradecore/tradecore/blob/main/docs/config.md). Load
// reads a file, Parse parses bytes, Default returns the embedded default
// (default.json, used by `make run`). Each returns a validated *File, plain
// data; File.Core gives the core.Config for core.New:
//
//	f, err := config.Load(path) // or config.Default()
//	if err != nil {
//		return err // names the field and the fix; errors.Is(err, config.ErrInvalid)
//	}
//	eng, err := core.New(f.Core(), sink)
//
// The "accounts" and "risk" sections and the per-instrument risk fields
// configure the engine's pre-trade risk layer; File.Core converts their
// money to minor units and their holdings to lots. The risk layer is on by
// default (the default file ships demo accounts): a file without accounts
// must say "risk": "off" (File.Risk.Off), which a daemon logs at start.
//
// At the edges (gateway, reports, client library) an Instrument converts with
// PriceToTicks and TicksToPrice, QtyToLots and LotsToQty; File.Instrument and
// File.BySymbol find it. Decimals are github.com/shopspring/decimal values;
// the engine never sees them.
//
// Nothing here needs closing, and a File is safe for concurrent reads.
package config
