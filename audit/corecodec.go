package audit

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/tradecore/tradecore/core"
)

// This file is the whole canonical JSON encoding of core.Command and
// core.Event leaves, driven by one field table per struct and per-kind
// overrides. docs/audit-format.md specifies it; TestCoreFieldCoverage fails
// when either struct gains a field these tables do not cover.
//
// Rules: a body's fields appear in the table's order; a field appears when
// its kind requires it or its value is not zero (so every field of every
// command survives the round trip, whatever the kind); prices and
// quantities are decimal strings in the instrument's scale; enums are their
// names, or the integer when the value has no name.

// codec says how a field's value is written.
type codec uint8

const (
	cUint    codec = iota // JSON integer, unsigned
	cInt                  // JSON integer, signed
	cPrice                // decimal string: ticks × the instrument's tick size
	cQty                  // decimal string: lots × the instrument's lot size
	cSide                 // "buy" | "sell"
	cOrdType              // "limit" | "market" | "stop" | "stop-limit"
	cTIF                  // "day" | "gtc" | "ioc" | "fok"
	cSTP                  // "cancel-newest" | "cancel-oldest" | "cancel-both" | "decrement" | "off"
	cStatus               // "active" | "suspended" | "closed"
	cLimit                // "order-qty" | "order-notional" | "position" | "daily-credit" | "orders-per-sec" | "cancels-per-sec" | "duplicate-window"
	cMark                 // "long" | "short" | "short-exempt"
	cCause                // "operator" | "risk-limit" | "surveillance" | ... (core.Cause's names)
)

var enumNames = map[codec][]string{
	cSide:    {"", "buy", "sell"},
	cOrdType: {"", "limit", "market", "stop", "stop-limit"},
	cTIF:     {"", "day", "gtc", "ioc", "fok"},
	cSTP:     {"cancel-newest", "cancel-oldest", "cancel-both", "decrement", "off"},
	cStatus:  {"active", "suspended", "closed"},
	cLimit:   {"", "order-qty", "order-notional", "position", "daily-credit", "orders-per-sec", "cancels-per-sec", "duplicate-window"},
	cMark:    {"", "long", "short", "short-exempt"},
	cCause:   causeNames(),
}

// slot is one field of a body: its JSON name, the struct field it carries
// (for the coverage test), how it is written, and accessors that move the
// value as raw 64 bits.
type slot[T any] struct {
	name     string
	field    string
	codec    codec
	required bool
	get      func(*T) uint64
	set      func(*T, uint64)
}

// kindSpec is one kind's record type, its required fields and the fields it
// writes under another name or codec.
type kindSpec[T any] struct {
	typ       string
	required  []string // JSON names (after overrides)
	overrides []slot[T]
}

// The command table, in body order. Seq is the body's first field; Time is
// the leaf's "t"; Kind is the record type.
var cmdSlots = []slot[core.Command]{
	{name: "seq", field: "Seq", codec: cUint, get: func(c *core.Command) uint64 { return c.Seq }, set: func(c *core.Command, v uint64) { c.Seq = v }},
	{name: "inst", field: "Instrument", codec: cUint, get: func(c *core.Command) uint64 { return uint64(c.Instrument) }, set: func(c *core.Command, v uint64) { c.Instrument = uint32(v) }},
	{name: "acct", field: "Account", codec: cUint, get: func(c *core.Command) uint64 { return uint64(c.Account) }, set: func(c *core.Command, v uint64) { c.Account = uint32(v) }},
	{name: "clordid", field: "ClOrdID", codec: cUint, get: func(c *core.Command) uint64 { return c.ClOrdID }, set: func(c *core.Command, v uint64) { c.ClOrdID = v }},
	{name: "order_id", field: "OrderID", codec: cUint, get: func(c *core.Command) uint64 { return c.OrderID }, set: func(c *core.Command, v uint64) { c.OrderID = v }},
	{name: "orig_clordid", field: "OrigClOrdID", codec: cUint, get: func(c *core.Command) uint64 { return c.OrigClOrdID }, set: func(c *core.Command, v uint64) { c.OrigClOrdID = v }},
	{name: "side", field: "Side", codec: cSide, get: func(c *core.Command) uint64 { return uint64(c.Side) }, set: func(c *core.Command, v uint64) { c.Side = core.Side(v) }},
	{name: "ord_type", field: "Type", codec: cOrdType, get: func(c *core.Command) uint64 { return uint64(c.Type) }, set: func(c *core.Command, v uint64) { c.Type = core.OrderType(v) }},
	{name: "tif", field: "TIF", codec: cTIF, get: func(c *core.Command) uint64 { return uint64(c.TIF) }, set: func(c *core.Command, v uint64) { c.TIF = core.TIF(v) }},
	{name: "flags", field: "Flags", codec: cUint, get: func(c *core.Command) uint64 { return uint64(c.Flags) }, set: func(c *core.Command, v uint64) { c.Flags = core.Flags(v) }},
	{name: "stp", field: "STP", codec: cSTP, get: func(c *core.Command) uint64 { return uint64(c.STP) }, set: func(c *core.Command, v uint64) { c.STP = core.STPMode(v) }},
	{name: "mark", field: "Mark", codec: cMark, get: func(c *core.Command) uint64 { return uint64(c.Mark) }, set: func(c *core.Command, v uint64) { c.Mark = core.SaleMark(v) }},
	{name: "stp_group", field: "STPGroup", codec: cUint, get: func(c *core.Command) uint64 { return uint64(c.STPGroup) }, set: func(c *core.Command, v uint64) { c.STPGroup = uint32(v) }},
	{name: "operator", field: "Operator", codec: cUint, get: func(c *core.Command) uint64 { return uint64(c.Operator) }, set: func(c *core.Command, v uint64) { c.Operator = uint32(v) }},
	{name: "cause", field: "Cause", codec: cCause, get: func(c *core.Command) uint64 { return uint64(c.Cause) }, set: func(c *core.Command, v uint64) { c.Cause = core.Cause(v) }},
	{name: "price", field: "Price", codec: cPrice, get: func(c *core.Command) uint64 { return uint64(c.Price) }, set: func(c *core.Command, v uint64) { c.Price = int64(v) }},
	{name: "stop_price", field: "StopPrice", codec: cPrice, get: func(c *core.Command) uint64 { return uint64(c.StopPrice) }, set: func(c *core.Command, v uint64) { c.StopPrice = int64(v) }},
	{name: "qty", field: "Qty", codec: cQty, get: func(c *core.Command) uint64 { return uint64(c.Qty) }, set: func(c *core.Command, v uint64) { c.Qty = int64(v) }},
	{name: "display_qty", field: "DisplayQty", codec: cQty, get: func(c *core.Command) uint64 { return uint64(c.DisplayQty) }, set: func(c *core.Command, v uint64) { c.DisplayQty = int64(v) }},
	{name: "min_qty", field: "MinQty", codec: cQty, get: func(c *core.Command) uint64 { return uint64(c.MinQty) }, set: func(c *core.Command, v uint64) { c.MinQty = int64(v) }},
	{name: "tag", field: "Tag", codec: cUint, get: func(c *core.Command) uint64 { return c.Tag }, set: func(c *core.Command, v uint64) { c.Tag = v }},
}

// cmdHeaderFields are the Command fields carried outside the body.
var cmdHeaderFields = []string{"Time", "Kind"}

var cmdKinds = map[core.CmdKind]kindSpec[core.Command]{
	core.CmdAlert: {typ: "cmd.alert", required: []string{"seq", "detector", "alert_seq", "operator", "cause"}, overrides: []slot[core.Command]{
		{name: "contra_acct", field: "ClOrdID", codec: cUint, get: func(c *core.Command) uint64 { return c.ClOrdID }, set: func(c *core.Command, v uint64) { c.ClOrdID = v }},
		{name: "alert_seq", field: "OrderID", codec: cUint, get: func(c *core.Command) uint64 { return c.OrderID }, set: func(c *core.Command, v uint64) { c.OrderID = v }},
		{name: "detector", field: "OrigClOrdID", codec: cUint, get: func(c *core.Command) uint64 { return c.OrigClOrdID }, set: func(c *core.Command, v uint64) { c.OrigClOrdID = v }},
	}},
	core.CmdNew:        {typ: "cmd.new", required: []string{"seq", "inst", "acct", "clordid", "side", "ord_type", "tif", "stp", "qty"}},
	core.CmdCancel:     {typ: "cmd.cancel", required: []string{"seq", "inst", "acct", "order_id", "orig_clordid"}},
	core.CmdCancelSize: {typ: "cmd.cancel-size", required: []string{"seq", "inst", "acct", "order_id", "orig_clordid", "qty"}},
	core.CmdReplace:    {typ: "cmd.replace", required: []string{"seq", "inst", "acct", "clordid", "order_id", "orig_clordid", "qty"}},
	core.CmdMassCancel: {typ: "cmd.mass-cancel", required: []string{"seq", "inst", "acct"}},
	core.CmdEndOfDay: {typ: "cmd.end-of-day", required: []string{"seq", "date"}, overrides: []slot[core.Command]{
		{name: "date", field: "Qty", codec: cInt, get: func(c *core.Command) uint64 { return uint64(c.Qty) }, set: func(c *core.Command, v uint64) { c.Qty = int64(v) }},
	}},
	core.CmdHalt:         {typ: "cmd.halt", required: []string{"seq", "inst", "operator", "cause"}},
	core.CmdResume:       {typ: "cmd.resume", required: []string{"seq", "inst", "operator", "cause"}},
	core.CmdMarketHalt:   {typ: "cmd.market-halt", required: []string{"seq", "operator", "cause"}},
	core.CmdMarketResume: {typ: "cmd.market-resume", required: []string{"seq", "operator", "cause"}},
	core.CmdKill:         {typ: "cmd.kill", required: []string{"seq", "acct", "operator", "cause"}},
	core.CmdKillRelease:  {typ: "cmd.kill-release", required: []string{"seq", "acct", "operator", "cause"}},
	core.CmdAccountStatus: {typ: "cmd.account-status", required: []string{"seq", "acct", "status", "operator", "cause"}, overrides: []slot[core.Command]{
		{name: "status", field: "Qty", codec: cStatus, get: func(c *core.Command) uint64 { return uint64(c.Qty) }, set: func(c *core.Command, v uint64) { c.Qty = int64(v) }},
	}},
	core.CmdSetLimit: {typ: "cmd.set-limit", required: []string{"seq", "acct", "limit", "value", "operator", "cause"}, overrides: []slot[core.Command]{
		{name: "limit", field: "OrigClOrdID", codec: cLimit, get: func(c *core.Command) uint64 { return c.OrigClOrdID }, set: func(c *core.Command, v uint64) { c.OrigClOrdID = v }},
		{name: "value", field: "Qty", codec: cInt, get: func(c *core.Command) uint64 { return uint64(c.Qty) }, set: func(c *core.Command, v uint64) { c.Qty = int64(v) }},
	}},
	core.CmdLocate: {typ: "cmd.locate", required: []string{"seq", "inst", "acct", "qty", "operator", "cause"}},
	core.CmdRestrict: {typ: "cmd.restrict", required: []string{"seq", "inst", "restricted", "operator", "cause"}, overrides: []slot[core.Command]{
		{name: "restricted", field: "Qty", codec: cInt, get: func(c *core.Command) uint64 { return uint64(c.Qty) }, set: func(c *core.Command, v uint64) { c.Qty = int64(v) }},
	}},
}

// The event table, in body order.
var evSlots = []slot[core.Event]{
	{name: "seq", field: "Seq", codec: cUint, get: func(e *core.Event) uint64 { return e.Seq }, set: func(e *core.Event, v uint64) { e.Seq = v }},
	{name: "inst", field: "Instrument", codec: cUint, get: func(e *core.Event) uint64 { return uint64(e.Instrument) }, set: func(e *core.Event, v uint64) { e.Instrument = uint32(v) }},
	{name: "acct", field: "Account", codec: cUint, get: func(e *core.Event) uint64 { return uint64(e.Account) }, set: func(e *core.Event, v uint64) { e.Account = uint32(v) }},
	{name: "order_id", field: "OrderID", codec: cUint, get: func(e *core.Event) uint64 { return e.OrderID }, set: func(e *core.Event, v uint64) { e.OrderID = v }},
	{name: "clordid", field: "ClOrdID", codec: cUint, get: func(e *core.Event) uint64 { return e.ClOrdID }, set: func(e *core.Event, v uint64) { e.ClOrdID = v }},
	{name: "orig_clordid", field: "OrigClOrdID", codec: cUint, get: func(e *core.Event) uint64 { return e.OrigClOrdID }, set: func(e *core.Event, v uint64) { e.OrigClOrdID = v }},
	{name: "side", field: "Side", codec: cSide, get: func(e *core.Event) uint64 { return uint64(e.Side) }, set: func(e *core.Event, v uint64) { e.Side = core.Side(v) }},
	{name: "ord_type", field: "Type", codec: cOrdType, get: func(e *core.Event) uint64 { return uint64(e.Type) }, set: func(e *core.Event, v uint64) { e.Type = core.OrderType(v) }},
	{name: "tif", field: "TIF", codec: cTIF, get: func(e *core.Event) uint64 { return uint64(e.TIF) }, set: func(e *core.Event, v uint64) { e.TIF = core.TIF(v) }},
	{name: "mark", field: "Mark", codec: cMark, get: func(e *core.Event) uint64 { return uint64(e.Mark) }, set: func(e *core.Event, v uint64) { e.Mark = core.SaleMark(v) }},
	{name: "reason", field: "Reason", codec: cUint, get: func(e *core.Event) uint64 { return uint64(e.Reason) }, set: func(e *core.Event, v uint64) { e.Reason = core.Reason(v) }},
	{name: "operator", field: "Operator", codec: cUint, get: func(e *core.Event) uint64 { return uint64(e.Operator) }, set: func(e *core.Event, v uint64) { e.Operator = uint32(v) }},
	{name: "cause", field: "Cause", codec: cCause, get: func(e *core.Event) uint64 { return uint64(e.Cause) }, set: func(e *core.Event, v uint64) { e.Cause = core.Cause(v) }},
	{name: "price", field: "Price", codec: cPrice, get: func(e *core.Event) uint64 { return uint64(e.Price) }, set: func(e *core.Event, v uint64) { e.Price = int64(v) }},
	{name: "stop_price", field: "StopPrice", codec: cPrice, get: func(e *core.Event) uint64 { return uint64(e.StopPrice) }, set: func(e *core.Event, v uint64) { e.StopPrice = int64(v) }},
	{name: "qty", field: "Qty", codec: cQty, get: func(e *core.Event) uint64 { return uint64(e.Qty) }, set: func(e *core.Event, v uint64) { e.Qty = int64(v) }},
	{name: "leaves", field: "Leaves", codec: cQty, get: func(e *core.Event) uint64 { return uint64(e.Leaves) }, set: func(e *core.Event, v uint64) { e.Leaves = int64(v) }},
	{name: "match_id", field: "MatchID", codec: cUint, get: func(e *core.Event) uint64 { return e.MatchID }, set: func(e *core.Event, v uint64) { e.MatchID = v }},
	{name: "contra_acct", field: "ContraAccount", codec: cUint, get: func(e *core.Event) uint64 { return uint64(e.ContraAccount) }, set: func(e *core.Event, v uint64) { e.ContraAccount = uint32(v) }},
	{name: "contra_order_id", field: "ContraOrderID", codec: cUint, get: func(e *core.Event) uint64 { return e.ContraOrderID }, set: func(e *core.Event, v uint64) { e.ContraOrderID = v }},
	{name: "contra_clordid", field: "ContraClOrdID", codec: cUint, get: func(e *core.Event) uint64 { return e.ContraClOrdID }, set: func(e *core.Event, v uint64) { e.ContraClOrdID = v }},
	{name: "contra_leaves", field: "ContraLeaves", codec: cQty, get: func(e *core.Event) uint64 { return uint64(e.ContraLeaves) }, set: func(e *core.Event, v uint64) { e.ContraLeaves = int64(v) }},
	{name: "tag", field: "Tag", codec: cUint, get: func(e *core.Event) uint64 { return e.Tag }, set: func(e *core.Event, v uint64) { e.Tag = v }},
}

var evHeaderFields = []string{"Time", "Kind"}

var evValue = []slot[core.Event]{
	{name: "value", field: "Qty", codec: cInt, get: func(e *core.Event) uint64 { return uint64(e.Qty) }, set: func(e *core.Event, v uint64) { e.Qty = int64(v) }},
	{name: "limit", field: "OrigClOrdID", codec: cLimit, get: func(e *core.Event) uint64 { return e.OrigClOrdID }, set: func(e *core.Event, v uint64) { e.OrigClOrdID = v }},
}

var evKinds = map[core.EventKind]kindSpec[core.Event]{
	core.KindAlert: {typ: "event.alert", required: []string{"seq", "reason", "detector", "alert_seq"}, overrides: []slot[core.Event]{
		{name: "detector", field: "OrigClOrdID", codec: cUint, get: func(e *core.Event) uint64 { return e.OrigClOrdID }, set: func(e *core.Event, v uint64) { e.OrigClOrdID = v }},
		{name: "alert_seq", field: "MatchID", codec: cUint, get: func(e *core.Event) uint64 { return e.MatchID }, set: func(e *core.Event, v uint64) { e.MatchID = v }},
	}},
	core.KindAccepted:    {typ: "event.accepted", required: []string{"seq", "inst", "acct", "order_id", "leaves"}},
	core.KindRejected:    {typ: "event.rejected", required: []string{"seq", "reason"}},
	core.KindExecuted:    {typ: "event.executed", required: []string{"seq", "inst", "acct", "order_id", "price", "qty", "leaves", "match_id", "contra_acct", "contra_order_id", "contra_leaves"}},
	core.KindCancelled:   {typ: "event.cancelled", required: []string{"seq", "inst", "acct", "order_id", "qty", "leaves", "reason"}},
	core.KindReduced:     {typ: "event.reduced", required: []string{"seq", "inst", "acct", "order_id", "qty", "leaves"}},
	core.KindReplaced:    {typ: "event.replaced", required: []string{"seq", "inst", "acct", "order_id", "leaves"}},
	core.KindTriggered:   {typ: "event.triggered", required: []string{"seq", "inst", "acct", "order_id", "leaves"}},
	core.KindExpired:     {typ: "event.expired", required: []string{"seq", "inst", "acct", "order_id", "qty", "leaves", "reason"}},
	core.KindBookAdd:     {typ: "event.book-add", required: []string{"seq", "inst", "order_id", "price", "qty"}},
	core.KindBookExecute: {typ: "event.book-execute", required: []string{"seq", "inst", "order_id", "qty", "leaves"}},
	core.KindBookCancel:  {typ: "event.book-cancel", required: []string{"seq", "inst", "order_id", "qty", "leaves"}},
	core.KindBookDelete:  {typ: "event.book-delete", required: []string{"seq", "inst", "order_id"}},
	core.KindBookReplace: {typ: "event.book-replace", required: []string{"seq", "inst", "order_id", "price", "leaves"}},
	core.KindTrade:       {typ: "event.trade", required: []string{"seq", "inst", "price", "qty", "match_id"}},
	core.KindAdmin:       {typ: "event.admin", required: []string{"seq", "reason"}, overrides: evValue},
	core.KindSystem:      {typ: "event.system", required: []string{"seq", "inst", "reason"}},
	core.KindRegulatory: {typ: "event.regulatory", required: []string{"seq", "reason", "orders_cancelled"}, overrides: []slot[core.Event]{
		{name: "orders_cancelled", field: "Qty", codec: cInt, get: func(e *core.Event) uint64 { return uint64(e.Qty) }, set: func(e *core.Event, v uint64) { e.Qty = int64(v) }},
	}},
}

// causeNames returns core.Cause's names by value ("" for none).
func causeNames() []string {
	var out []string
	for c := core.Cause(0); ; c++ {
		n := c.String()
		if c > 0 && n == strconv.Itoa(int(c)) {
			return out
		}
		if c == 0 {
			n = ""
		}
		out = append(out, n)
	}
}

// resolved is one kind's final slot list.
type resolved[T any] struct {
	typ   string
	slots []slot[T]
}

// resolve merges a kind's overrides and required names into the table.
func resolve[T any](table []slot[T], spec kindSpec[T]) resolved[T] {
	out := resolved[T]{typ: spec.typ}
	for _, s := range table {
		for _, o := range spec.overrides {
			if o.field == s.field {
				s = o
				break
			}
		}
		for _, r := range spec.required {
			if r == s.name {
				s.required = true
			}
		}
		out.slots = append(out.slots, s)
	}
	return out
}

var (
	cmdResolved [256]*resolved[core.Command]
	evResolved  [256]*resolved[core.Event]
	typeToCmd   = map[string]core.CmdKind{}
	typeToEv    = map[string]core.EventKind{}
)

func init() {
	for k := 0; k < 256; k++ {
		spec, ok := cmdKinds[core.CmdKind(k)]
		if !ok {
			spec = kindSpec[core.Command]{typ: "cmd." + strconv.Itoa(k), required: []string{"seq"}}
		}
		r := resolve(cmdSlots, spec)
		cmdResolved[k] = &r
		typeToCmd[r.typ] = core.CmdKind(k)
		espec, ok := evKinds[core.EventKind(k)]
		if !ok {
			espec = kindSpec[core.Event]{typ: "event." + strconv.Itoa(k), required: []string{"seq"}}
		}
		er := resolve(evSlots, espec)
		evResolved[k] = &er
		typeToEv[er.typ] = core.EventKind(k)
	}
}

// CommandType returns the record type of a command kind ("cmd.new", …).
func CommandType(k core.CmdKind) string { return cmdResolved[k].typ }

// EventType returns the record type of an event kind ("event.executed", …).
func EventType(k core.EventKind) string { return evResolved[k].typ }

// IsCoreType reports whether typ is a command or event record type, whose
// body this package encodes and checks field by field.
func IsCoreType(typ string) bool {
	_, c := typeToCmd[typ]
	_, e := typeToEv[typ]
	return c || e
}

// Scales maps instrument ids to their scales; an instrument missing from it
// uses the unit scale. The log's "audit.instruments" records carry it.
type Scales map[uint32]Scale

func (s Scales) of(inst uint32) Scale { return s[inst] }

// AppendCommand appends the leaf of command c at leaf index idx: its time is
// c.Time and its type the kind's.
func AppendCommand(dst []byte, idx uint64, c *core.Command, sc Scales) []byte {
	r := cmdResolved[c.Kind]
	dst = AppendLeafHeader(dst, idx, c.Time, r.typ)
	dst = appendBody(dst, c, r.slots, sc.of(c.Instrument))
	return append(dst, '}')
}

// AppendEvent appends the leaf of event ev at leaf index idx.
func AppendEvent(dst []byte, idx uint64, ev *core.Event, sc Scales) []byte {
	r := evResolved[ev.Kind]
	dst = AppendLeafHeader(dst, idx, ev.Time, r.typ)
	dst = appendBody(dst, ev, r.slots, sc.of(ev.Instrument))
	return append(dst, '}')
}

func appendBody[T any](dst []byte, v *T, slots []slot[T], s Scale) []byte {
	dst = append(dst, '{')
	first := true
	for i := range slots {
		sl := &slots[i]
		x := sl.get(v)
		if x == 0 && !sl.required {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, '"')
		dst = append(dst, sl.name...)
		dst = append(dst, '"', ':')
		dst = appendValue(dst, sl.codec, x, s)
	}
	return append(dst, '}')
}

func appendValue(dst []byte, c codec, x uint64, s Scale) []byte {
	switch c {
	case cUint:
		return strconv.AppendUint(dst, x, 10)
	case cInt:
		return strconv.AppendInt(dst, int64(x), 10)
	case cPrice:
		dst = append(dst, '"')
		dst = s.AppendPrice(dst, int64(x))
		return append(dst, '"')
	case cQty:
		dst = append(dst, '"')
		dst = s.AppendQty(dst, int64(x))
		return append(dst, '"')
	}
	names := enumNames[c]
	if x < uint64(len(names)) && names[x] != "" {
		dst = append(dst, '"')
		dst = append(dst, names[x]...)
		return append(dst, '"')
	}
	return strconv.AppendInt(dst, int64(x), 10)
}

// ErrLeaf is wrapped by every failure to parse a leaf: the bytes are not a
// leaf of this format (docs/audit-format.md), or not in its canonical form.
var ErrLeaf = errors.New("audit: bad leaf")

// DecodeCommand parses a command leaf into c (every field is set). It
// accepts only the canonical encoding, so a leaf it accepts is exactly what
// AppendCommand writes for c.
func DecodeCommand(leaf []byte, c *core.Command, sc Scales) (LeafHeader, error) {
	h, err := ParseLeaf(leaf)
	if err != nil {
		return h, err
	}
	return h, decodeCommand(&h, c, sc)
}

// decodeCommand is DecodeCommand on a leaf whose header is parsed.
func decodeCommand(h *LeafHeader, c *core.Command, sc Scales) error {
	k, ok := typeToCmd[string(h.Type)]
	if !ok {
		return fmt.Errorf("%w: type %q is not a command", ErrLeaf, h.Type)
	}
	*c = core.Command{Kind: k, Time: h.Time}
	if err := decodeBody(h.Body, c, cmdResolved[k].slots, sc, func(c *core.Command) uint32 { return c.Instrument }); err != nil {
		return fmt.Errorf("%w: index %d %s: %w", ErrLeaf, h.Index, h.Type, err)
	}
	return nil
}

// DecodeEvent parses an event leaf into ev, accepting only the canonical
// encoding.
func DecodeEvent(leaf []byte, ev *core.Event, sc Scales) (LeafHeader, error) {
	h, err := ParseLeaf(leaf)
	if err != nil {
		return h, err
	}
	return h, decodeEvent(&h, ev, sc)
}

// decodeEvent is DecodeEvent on a leaf whose header is parsed.
func decodeEvent(h *LeafHeader, ev *core.Event, sc Scales) error {
	k, ok := typeToEv[string(h.Type)]
	if !ok {
		return fmt.Errorf("%w: type %q is not an event", ErrLeaf, h.Type)
	}
	*ev = core.Event{Kind: k, Time: h.Time}
	if err := decodeBody(h.Body, ev, evResolved[k].slots, sc, func(e *core.Event) uint32 { return e.Instrument }); err != nil {
		return fmt.Errorf("%w: index %d %s: %w", ErrLeaf, h.Index, h.Type, err)
	}
	return nil
}

func decodeBody[T any](b []byte, v *T, slots []slot[T], sc Scales, inst func(*T) uint32) error {
	p := parser{b: b}
	if !p.byte('{') {
		return errors.New("body is not an object")
	}
	j := 0
	first := true
	// The scale of the record's instrument, looked up when the instrument
	// field is known (it precedes the prices and quantities).
	lastInst, scale := ^uint32(0), Scale{}
	for !p.peek('}') {
		if !first && !p.byte(',') {
			return fmt.Errorf("want ',' at body offset %d", p.i)
		}
		first = false
		key, ok := p.plainString()
		if !ok || !p.byte(':') {
			return fmt.Errorf("want a field name at body offset %d", p.i)
		}
		for j < len(slots) && slots[j].name != string(key) {
			if slots[j].required {
				return fmt.Errorf("field %q is missing", slots[j].name)
			}
			j++
		}
		if j == len(slots) {
			return fmt.Errorf("field %q is unknown here or out of order", key)
		}
		sl := &slots[j]
		j++
		if sl.codec == cPrice || sl.codec == cQty {
			if id := inst(v); id != lastInst {
				lastInst, scale = id, sc.of(id)
			}
		}
		x, err := p.value(sl.codec, scale)
		if err != nil {
			return fmt.Errorf("field %q: %w", sl.name, err)
		}
		if x == 0 && !sl.required {
			return fmt.Errorf("field %q: a zero value is left out, not written", sl.name)
		}
		sl.set(v, x)
		if sl.get(v) != x {
			return fmt.Errorf("field %q: value %d out of range", sl.name, int64(x))
		}
	}
	for ; j < len(slots); j++ {
		if slots[j].required {
			return fmt.Errorf("field %q is missing", slots[j].name)
		}
	}
	p.i++
	if p.i != len(b) {
		return errors.New("trailing bytes after the body")
	}
	return nil
}

// parser reads the strict subset of JSON that core bodies use.
type parser struct {
	b []byte
	i int
}

func (p *parser) peek(c byte) bool { return p.i < len(p.b) && p.b[p.i] == c }

func (p *parser) byte(c byte) bool {
	if p.peek(c) {
		p.i++
		return true
	}
	return false
}

// plainString reads a string without escapes.
func (p *parser) plainString() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			return s, true
		}
		if c == '\\' || c < 0x20 {
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// integer reads a canonical JSON integer (no leading zeros, no "-0").
func (p *parser) integer(signed bool) (uint64, error) {
	start := p.i
	neg := p.byte('-')
	if neg && !signed {
		return 0, errors.New("negative value for an unsigned field")
	}
	ds := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	digits := p.b[ds:p.i]
	switch {
	case len(digits) == 0:
		return 0, errors.New("want an integer")
	case len(digits) > 1 && digits[0] == '0':
		return 0, errors.New("integer with leading zeros")
	case neg && len(digits) == 1 && digits[0] == '0':
		return 0, errors.New("negative zero")
	}
	if p.i < len(p.b) && (p.b[p.i] == '.' || p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		return 0, errors.New("not an integer (floats are not allowed)")
	}
	var v uint64
	if len(digits) <= 19 { // below 10^19 < 2^64: cannot overflow
		for _, c := range digits {
			v = v*10 + uint64(c-'0')
		}
	} else {
		for _, c := range digits {
			d := uint64(c - '0')
			if v > (1<<64-1-d)/10 {
				return 0, errors.New("integer out of range")
			}
			v = v*10 + d
		}
	}
	if signed {
		if (!neg && v > 1<<63-1) || (neg && v > 1<<63) {
			return 0, errors.New("integer out of range")
		}
		if neg {
			return uint64(-int64(v-1) - 1), nil
		}
	}
	_ = start
	return v, nil
}

func (p *parser) value(c codec, s Scale) (uint64, error) {
	switch c {
	case cUint:
		return p.integer(false)
	case cInt:
		return p.integer(true)
	case cPrice, cQty:
		str, ok := p.plainString()
		if !ok {
			return 0, errors.New("want a decimal string")
		}
		var v int64
		var err error
		if c == cPrice {
			v, err = s.ParsePrice(str)
		} else {
			v, err = s.ParseQty(str)
		}
		return uint64(v), err
	}
	names := enumNames[c]
	if p.peek('"') {
		str, ok := p.plainString()
		if !ok {
			return 0, errors.New("bad string")
		}
		for i, n := range names {
			if n != "" && n == string(str) {
				return uint64(i), nil
			}
		}
		return 0, fmt.Errorf("unknown name %q", str)
	}
	x, err := p.integer(true)
	if err != nil {
		return 0, err
	}
	if x < uint64(len(names)) && names[x] != "" {
		return 0, fmt.Errorf("value %d has the name %q; write the name", x, names[x])
	}
	return x, nil
}
