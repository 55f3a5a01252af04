package core

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Binary encodings of Command and Event: fixed length, little-endian, fields
// in declaration order, padding omitted, the version byte first. The encoding
// is canonical (one value, one encoding), so a journal can hash it. Layouts
// are specified in docs/encoding.md.
const (
	CommandSize = 113 // bytes of an encoded Command
	EventSize   = 137 // bytes of an encoded Event
)

// ErrEncoding is wrapped by decode errors: the bytes are not an encoded
// command or event of a version this build reads. Check the producer's version.
var ErrEncoding = errors.New("core: bad encoding")

var le = binary.LittleEndian

// AppendBinary appends the command's encoding to b.
func (c *Command) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, CommandVersion)
	b = le.AppendUint64(b, c.Seq)
	b = le.AppendUint64(b, uint64(c.Time))
	b = append(b, byte(c.Kind), byte(c.Side), byte(c.Type), byte(c.TIF), byte(c.Flags), byte(c.STP), byte(c.Mark), byte(c.Cause))
	b = le.AppendUint32(b, c.Instrument)
	b = le.AppendUint32(b, c.Account)
	b = le.AppendUint32(b, c.STPGroup)
	b = le.AppendUint32(b, c.Operator)
	b = le.AppendUint64(b, c.ClOrdID)
	b = le.AppendUint64(b, c.OrderID)
	b = le.AppendUint64(b, c.OrigClOrdID)
	for _, v := range [...]int64{c.Price, c.StopPrice, c.Qty, c.DisplayQty, c.MinQty} {
		b = le.AppendUint64(b, uint64(v))
	}
	b = le.AppendUint64(b, c.Tag)
	return b, nil
}

// MarshalBinary returns the command's encoding.
func (c *Command) MarshalBinary() ([]byte, error) {
	return c.AppendBinary(make([]byte, 0, CommandSize))
}

// UnmarshalBinary decodes exactly one encoded command. Field values are not
// validated here: the engine rejects invalid ones with a reason code.
func (c *Command) UnmarshalBinary(b []byte) error {
	if len(b) != CommandSize {
		return fmt.Errorf("%w: command is %d bytes, want %d", ErrEncoding, len(b), CommandSize)
	}
	if b[0] != CommandVersion {
		return fmt.Errorf("%w: command version %d, this build reads %d", ErrEncoding, b[0], CommandVersion)
	}
	d := decoder{b: b[1:]}
	*c = Command{Seq: d.u64(), Time: int64(d.u64())}
	c.Kind, c.Side, c.Type, c.TIF, c.Flags, c.STP = CmdKind(d.u8()), Side(d.u8()), OrderType(d.u8()), TIF(d.u8()), Flags(d.u8()), STPMode(d.u8())
	c.Mark, c.Cause = SaleMark(d.u8()), Cause(d.u8())
	c.Instrument, c.Account, c.STPGroup, c.Operator = d.u32(), d.u32(), d.u32(), d.u32()
	c.ClOrdID, c.OrderID, c.OrigClOrdID = d.u64(), d.u64(), d.u64()
	c.Price, c.StopPrice, c.Qty, c.DisplayQty, c.MinQty = d.i64(), d.i64(), d.i64(), d.i64(), d.i64()
	c.Tag = d.u64()
	return nil
}

// AppendBinary appends the event's encoding to b.
func (ev *Event) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, EventVersion)
	b = le.AppendUint64(b, ev.Seq)
	b = le.AppendUint64(b, uint64(ev.Time))
	b = append(b, byte(ev.Kind), byte(ev.Side), byte(ev.Type), byte(ev.TIF))
	b = le.AppendUint16(b, uint16(ev.Reason))
	b = append(b, byte(ev.Mark), byte(ev.Cause))
	b = le.AppendUint32(b, ev.Instrument)
	b = le.AppendUint32(b, ev.Account)
	b = le.AppendUint64(b, ev.OrderID)
	b = le.AppendUint64(b, ev.ClOrdID)
	b = le.AppendUint64(b, ev.OrigClOrdID)
	for _, v := range [...]int64{ev.Price, ev.StopPrice, ev.Qty, ev.Leaves} {
		b = le.AppendUint64(b, uint64(v))
	}
	b = le.AppendUint64(b, ev.MatchID)
	b = le.AppendUint32(b, ev.ContraAccount)
	b = le.AppendUint32(b, ev.Operator)
	b = le.AppendUint64(b, ev.ContraOrderID)
	b = le.AppendUint64(b, ev.ContraClOrdID)
	b = le.AppendUint64(b, uint64(ev.ContraLeaves))
	b = le.AppendUint64(b, ev.Tag)
	return b, nil
}

// MarshalBinary returns the event's encoding.
func (ev *Event) MarshalBinary() ([]byte, error) { return ev.AppendBinary(make([]byte, 0, EventSize)) }

// UnmarshalBinary decodes exactly one encoded event.
func (ev *Event) UnmarshalBinary(b []byte) error {
	if len(b) != EventSize {
		return fmt.Errorf("%w: event is %d bytes, want %d", ErrEncoding, len(b), EventSize)
	}
	if b[0] != EventVersion {
		return fmt.Errorf("%w: event version %d, this build reads %d", ErrEncoding, b[0], EventVersion)
	}
	d := decoder{b: b[1:]}
	*ev = Event{Seq: d.u64(), Time: int64(d.u64())}
	ev.Kind, ev.Side, ev.Type, ev.TIF = EventKind(d.u8()), Side(d.u8()), OrderType(d.u8()), TIF(d.u8())
	ev.Reason = Reason(d.u16())
	ev.Mark, ev.Cause = SaleMark(d.u8()), Cause(d.u8())
	ev.Instrument, ev.Account = d.u32(), d.u32()
	ev.OrderID, ev.ClOrdID, ev.OrigClOrdID = d.u64(), d.u64(), d.u64()
	ev.Price, ev.StopPrice, ev.Qty, ev.Leaves = d.i64(), d.i64(), d.i64(), d.i64()
	ev.MatchID = d.u64()
	ev.ContraAccount, ev.Operator = d.u32(), d.u32()
	ev.ContraOrderID, ev.ContraClOrdID, ev.ContraLeaves = d.u64(), d.u64(), d.i64()
	ev.Tag = d.u64()
	return nil
}

// decoder reads fixed-width fields; callers check the total length first.
type decoder struct{ b []byte }

func (d *decoder) u8() uint8 { v := d.b[0]; d.b = d.b[1:]; return v }
func (d *decoder) u16() uint16 {
	v := le.Uint16(d.b)
	d.b = d.b[2:]
	return v
}
func (d *decoder) u32() uint32 {
	v := le.Uint32(d.b)
	d.b = d.b[4:]
	return v
}
func (d *decoder) u64() uint64 {
	v := le.Uint64(d.b)
	d.b = d.b[8:]
	return v
}
func (d *decoder) i64() int64 { return int64(d.u64()) }
