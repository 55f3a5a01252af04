package config

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/shopspring/decimal"

	"github.com/tradecore/tradecore/core"
)

// Risk holds the file-wide settings of the pre-trade risk layer (the "risk"
// object, optional). Money in the file is decimal currency units; the engine
// counts it in minor units (MinorUnit each).
type Risk struct {
	// Off is "risk": "off": the engine runs without its pre-trade risk
	// layer. It is the only way to run without accounts, and a daemon logs
	// it as a warning at start. A file with accounts cannot set it.
	Off bool
	// MinorUnit is the currency's minor unit in currency units, such as
	// 0.01 (cents), the default. Every money value in the file must be a
	// whole number of it.
	MinorUnit decimal.Decimal
	// PDTMinEquity is the equity at or above which an account flagged PDT is
	// exempt from the day-trade limit; default 25000 (with cents,
	// 2,500,000 minor units).
	PDTMinEquity decimal.Decimal
	// ShortMarginPct is the short-sale requirement, in percent of a short
	// position's value with its proceeds, of accounts without a type that
	// sets one: 100..1000, default 150 (Reg T).
	ShortMarginPct int64
	// LocatePolicy is "consume" (core.LocateConsume, the default: a locate is
	// used up by the short sales it covers) or "cap" (core.LocateCap: it caps
	// the short position).
	LocatePolicy core.LocatePolicy
	// AccountTypes are named account types (such as "margin", "portfolio",
	// "market-maker") with their own short requirement; an account names
	// one in its "type".
	AccountTypes map[string]AccountType
}

// AccountType is one entry of "risk.account_types".
type AccountType struct {
	ShortMarginPct int64 // 100..1000
}

// DefaultShortMarginPct is Reg T's requirement for short sales: the
// proceeds and half the short's value again.
const DefaultShortMarginPct = 150

// Defaults Parse fills into Risk when the file leaves a field out.
var (
	DefaultMinorUnit    = decimal.New(1, -2)    // 0.01
	DefaultPDTMinEquity = decimal.New(25000, 0) // 25000
)

// Account is one trading account as the operator configured it, in
// decimals. Core converts it to a core.Account (docs/config.md, "accounts").
type Account struct {
	ID       uint32             // 1..core.MaxAccountID; unique
	Firm     uint32             // clearing firm id
	Owner    uint32             // beneficial owner id
	STPGroup uint32             // 0 = none; below 2^31
	Status   core.AccountStatus // "active" (default), "suspended", "closed"
	Type     string             // a name from Risk.AccountTypes, or "" (Risk.ShortMarginPct applies)
	// Cash and Equity are money, >= 0, whole numbers of Risk.MinorUnit.
	Cash, Equity decimal.Decimal
	Proprietary  bool // market-making account: short sales need no locate outside threshold securities
	AllowSTPOff  bool // the account's orders may opt out of self-trade prevention (an omnibus account)
	PDT          bool // flagged pattern day trader
	Limits       AccountLimits
	// Positions (shares, negative = short) and Locates (shares, >= 0) by
	// instrument, in instrument file order; each a whole number of lots.
	Positions, Locates []Holding
}

// AccountLimits are an account's limits; zero means no limit.
type AccountLimits struct {
	MaxOrderQty       int64           // lots
	MaxOrderNotional  decimal.Decimal // money
	MaxPosition       int64           // lots
	DailyCredit       decimal.Decimal // money
	OrdersPerSec      int64
	CancelsPerSec     int64
	DuplicateWindowMS int64 // milliseconds; 0 = no check
}

// Holding is a quantity of shares of one instrument.
type Holding struct {
	Symbol string
	Qty    decimal.Decimal
}

type riskJSON struct {
	MinorUnit      json.RawMessage `json:"minor_unit"`
	PDTMinEquity   json.RawMessage `json:"pdt_min_equity"`
	ShortMarginPct json.RawMessage `json:"short_margin_percent"`
	AccountTypes   json.RawMessage `json:"account_types"`
	LocatePolicy   json.RawMessage `json:"locate_policy"`
}

const riskFields = "minor_unit, pdt_min_equity, short_margin_percent, account_types, locate_policy"

type accountTypeJSON struct {
	ShortMarginPct json.RawMessage `json:"short_margin_percent"`
}

const accountTypeFields = "short_margin_percent"

type accountJSON struct {
	ID          json.RawMessage `json:"id"`
	Firm        json.RawMessage `json:"firm"`
	Owner       json.RawMessage `json:"owner"`
	STPGroup    json.RawMessage `json:"stp_group"`
	Status      json.RawMessage `json:"status"`
	Type        json.RawMessage `json:"type"`
	Cash        json.RawMessage `json:"cash"`
	Equity      json.RawMessage `json:"equity"`
	Proprietary json.RawMessage `json:"proprietary"`
	AllowSTPOff json.RawMessage `json:"allow_stp_off"`
	PDT         json.RawMessage `json:"pdt"`
	Limits      json.RawMessage `json:"limits"`
	Positions   json.RawMessage `json:"positions"`
	Locates     json.RawMessage `json:"locates"`
}

const accountFields = "id, firm, owner, stp_group, status, type, cash, equity, proprietary, allow_stp_off, pdt, limits, positions, locates"

type limitsJSON struct {
	MaxOrderQty       json.RawMessage `json:"max_order_qty"`
	MaxOrderNotional  json.RawMessage `json:"max_order_notional"`
	MaxPosition       json.RawMessage `json:"max_position"`
	DailyCredit       json.RawMessage `json:"daily_credit"`
	OrdersPerSec      json.RawMessage `json:"orders_per_sec"`
	CancelsPerSec     json.RawMessage `json:"cancels_per_sec"`
	DuplicateWindowMS json.RawMessage `json:"duplicate_window_ms"`
}

const limitsFields = "max_order_qty, max_order_notional, max_position, daily_credit, orders_per_sec, cancels_per_sec, duplicate_window_ms"

// maxDuplicateWindowMS bounds limits.duplicate_window_ms: a day.
const maxDuplicateWindowMS = 86_400_000

// maxMoneyUnits bounds every money value and lot count, as core does.
const maxMoneyUnits = 1 << 62

func parseRisk(raw json.RawMessage, r *Risk) error {
	*r = Risk{MinorUnit: DefaultMinorUnit, PDTMinEquity: DefaultPDTMinEquity, ShortMarginPct: DefaultShortMarginPct}
	if absent(raw) {
		return nil
	}
	if raw[0] == '"' {
		s, _, err := decodeString(raw, "risk")
		switch {
		case err != nil:
			return err
		case s != "off":
			return invalid("risk", "%q is not a setting; write \"off\" to run without pre-trade risk, or an object (see docs/config.md)", truncate(s))
		}
		r.Off = true
		return nil
	}
	var rj riskJSON
	if err := decodeObject(raw, "risk", riskFields, &rj); err != nil {
		return err
	}
	if !absent(rj.MinorUnit) {
		d, err := positiveDecimal(rj.MinorUnit, "risk.minor_unit", "currency's minor unit", "0.01")
		if err != nil {
			return err
		}
		r.MinorUnit = d
	}
	d, ok, err := decodeMoney(rj.PDTMinEquity, "risk.pdt_min_equity", r.MinorUnit, false)
	switch {
	case err != nil:
		return err
	case ok:
		r.PDTMinEquity = d
	}
	if r.ShortMarginPct, err = decodeMarginPct(rj.ShortMarginPct, "risk.short_margin_percent", DefaultShortMarginPct); err != nil {
		return err
	}
	switch s, _, err := decodeString(rj.LocatePolicy, "risk.locate_policy"); {
	case err != nil:
		return err
	case s == "" || s == "consume":
		r.LocatePolicy = core.LocateConsume
	case s == "cap":
		r.LocatePolicy = core.LocateCap
	default:
		return invalid("risk.locate_policy", "%q is not a policy; use \"consume\" (the default: short sales use their locates up) or \"cap\" (a locate caps the short position)", truncate(s))
	}
	if absent(rj.AccountTypes) {
		return nil
	}
	if rj.AccountTypes[0] != '{' {
		return invalid("risk.account_types", "got %s; want an object of type name to settings, such as {\"margin\": {\"short_margin_percent\": 150}}", kind(rj.AccountTypes))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(rj.AccountTypes, &m); err != nil {
		return invalid("risk.account_types", "%v", err)
	}
	r.AccountTypes = make(map[string]AccountType, len(m))
	for name, raw := range m {
		path := "risk.account_types." + truncate(name)
		if !validTypeName(name) {
			return invalid(path, "%q is not a type name; use 1 to 32 characters of a-z, 0-9 and '-'", truncate(name))
		}
		var tj accountTypeJSON
		if err := decodeObject(raw, path, accountTypeFields, &tj); err != nil {
			return err
		}
		pct, err := decodeMarginPct(tj.ShortMarginPct, path+".short_margin_percent", r.ShortMarginPct)
		if err != nil {
			return err
		}
		r.AccountTypes[name] = AccountType{ShortMarginPct: pct}
	}
	return nil
}

// decodeMarginPct decodes a short requirement in percent: an integer from
// 100 to 1000; def when absent or 0.
func decodeMarginPct(raw json.RawMessage, field string, def int64) (int64, error) {
	v, ok, err := decodeInt(raw, field)
	switch {
	case err != nil:
		return 0, err
	case !ok || v == 0:
		return def, nil
	case v < 100 || v > 1000:
		return 0, invalid(field, "%d is out of range; set 100 to 1000 percent of the short's value, proceeds included (Reg T: 150)", v)
	}
	return v, nil
}

func validTypeName(s string) bool {
	if len(s) < 1 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// decodeMoney decodes a money field: a decimal string, a whole number of
// the minor unit, 0..2^62 minor units (or -2^62.. when neg). ok is false when
// absent.
func decodeMoney(raw json.RawMessage, field string, unit decimal.Decimal, neg bool) (decimal.Decimal, bool, error) {
	d, text, ok, err := decodeDecimal(raw, field, "1000.00")
	if err != nil || !ok {
		return decimal.Decimal{}, false, err
	}
	if d.Sign() < 0 && !neg {
		return decimal.Decimal{}, false, invalid(field, "%s is negative; set 0 or more", text)
	}
	n, err := toUnits(d, unit)
	if err != nil {
		if ue := err.(*unitError); ue.notMultiple {
			return decimal.Decimal{}, false, invalid(field, "%s is not a whole number of the minor unit %s; use %s or %s",
				text, unit, fmtIn(ue.near[0], unit), fmtIn(ue.near[1], unit))
		}
		return decimal.Decimal{}, false, invalid(field, "%s is too large; keep it under 2^62 minor units", text)
	}
	if n > maxMoneyUnits || n < -maxMoneyUnits {
		return decimal.Decimal{}, false, invalid(field, "%s is too large; keep it under 2^62 minor units", text)
	}
	return d, true, nil
}

// parseInstrumentRisk parses an instrument's optional risk fields; the band
// and tick size are already parsed.
func parseInstrumentRisk(ij *instrumentJSON, path string, unit decimal.Decimal, in *Instrument) error {
	d, ok, err := decodeMoney(ij.TickValue, path+".tick_value", unit, false)
	switch {
	case err != nil:
		return err
	case ok && d.Sign() == 0:
		return invalid(path+".tick_value", "0 is not positive; set the value of one lot at a price of one tick, such as \"0.01\", or leave it out for tick_size x lot_size")
	}
	in.TickValue = d

	if in.ReferencePrice, err = bandPrice(ij.ReferencePrice, path+".reference_price", in); err != nil {
		return err
	}
	if in.PreviousClose, err = bandPrice(ij.PreviousClose, path+".previous_close", in); err != nil {
		return err
	}
	if in.ShortSaleTest, err = decodeBool(ij.ShortSaleTest, path+".short_sale_test"); err != nil {
		return err
	}
	var text string

	field := path + ".collar_percent"
	d, text, ok, err = decodeDecimal(ij.CollarPercent, field, "5")
	if err != nil {
		return err
	}
	if ok {
		bps := d.Shift(2)
		if d.Sign() < 0 || d.GreaterThan(decimal.New(100, 0)) || !bps.IsInteger() {
			return invalid(field, "%s is not a percentage from 0 to 100 in steps of 0.01; set one such as \"5\" or \"2.5\"", text)
		}
		in.CollarPercent = d
	}

	field = path + ".collar_absolute"
	d, text, ok, err = decodeDecimal(ij.CollarAbsolute, field, "0.50")
	if err != nil {
		return err
	}
	if ok {
		n, uerr := toUnits(d, in.TickSize)
		if d.Sign() < 0 || uerr != nil || n > MaxBandTicks {
			return invalid(field, "%s is not a price distance of 0 to %d ticks of %s; set one such as %q", text, MaxBandTicks, in.TickSize,
				fmtIn(in.TickSize.Mul(decimal.New(10, 0)), in.TickSize))
		}
		in.CollarAbsolute = d
	}
	if in.Restricted, err = decodeBool(ij.Restricted, path+".restricted"); err != nil {
		return err
	}
	in.Threshold, err = decodeBool(ij.Threshold, path+".threshold_security")
	return err
}

// bandPrice decodes an optional price that must be on the tick and inside
// the instrument's band (zero when absent).
func bandPrice(raw json.RawMessage, field string, in *Instrument) (decimal.Decimal, error) {
	d, text, ok, err := decodeDecimal(raw, field, "150.00")
	if err != nil || !ok {
		return decimal.Decimal{}, err
	}
	n, uerr := toUnits(d, in.TickSize)
	lo, _ := toUnits(in.BandLow, in.TickSize)
	hi, _ := toUnits(in.BandHigh, in.TickSize)
	switch {
	case uerr != nil:
		return decimal.Decimal{}, invalid(field, "%s is not a whole number of ticks of %s inside the band; use a price on the tick", text, in.TickSize)
	case n < lo || n > hi:
		return decimal.Decimal{}, invalid(field, "%s is outside the price band; set it between %s and %s, or leave it out", text,
			in.BandLow.StringFixed(-in.TickSize.Exponent()), in.BandHigh.StringFixed(-in.TickSize.Exponent()))
	}
	return d, nil
}

// tickValueUnits returns the instrument's tick value in minor units: the
// configured one, else tick_size x lot_size; ok is false when that is not a
// positive whole number of minor units.
func (in *Instrument) tickValueUnits(unit decimal.Decimal) (int64, bool) {
	tv := in.TickValue
	if tv.Sign() == 0 {
		tv = in.TickSize.Mul(in.LotSize)
	}
	n, err := toUnits(tv, unit)
	return n, err == nil && n > 0 && n <= maxMoneyUnits
}

func parseAccounts(raw json.RawMessage, f *File) error {
	if absent(raw) {
		return nil
	}
	if raw[0] != '[' {
		return invalid("accounts", "got %s; want an array of accounts", kind(raw))
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return invalid("accounts", "%v", err)
	}
	if len(list) > core.MaxAccountID {
		return invalid("accounts", "%d accounts; configure at most %d", len(list), core.MaxAccountID)
	}
	if len(list) > 0 {
		for i := range f.Instruments {
			in := &f.Instruments[i]
			if _, ok := in.tickValueUnits(f.Risk.MinorUnit); !ok {
				return invalid(fmt.Sprintf("instruments[%d].tick_value", i), "missing, and tick_size x lot_size = %s is not a whole number of the minor unit %s; set the value of one lot at one tick as a decimal string",
					in.TickSize.Mul(in.LotSize), f.Risk.MinorUnit)
			}
		}
	}
	f.Accounts = make([]Account, len(list))
	seen := make(map[uint32]int, len(list))
	var cash int64 // minor units, of the accounts so far
	for i, r := range list {
		path := fmt.Sprintf("accounts[%d]", i)
		a := &f.Accounts[i]
		if err := parseAccount(r, path, f, a); err != nil {
			return err
		}
		if c := units(a.Cash, f.Risk.MinorUnit); c > maxMoneyUnits-cash {
			return invalid(path+".cash", "brings the accounts' cash together above 2^62 minor units; fills move cash between accounts, so no balance may exceed it: lower it")
		} else {
			cash += c
		}
		if j, dup := seen[a.ID]; dup {
			return invalid(path+".id", "%d is also the id of accounts[%d]; give each account its own id", a.ID, j)
		}
		seen[a.ID] = i
	}
	return nil
}

func parseAccount(raw json.RawMessage, path string, f *File, a *Account) error {
	var aj accountJSON
	if err := decodeObject(raw, path, accountFields, &aj); err != nil {
		return err
	}
	field := path + ".id"
	id, ok, err := decodeInt(aj.ID, field)
	switch {
	case err != nil:
		return err
	case !ok:
		return invalid(field, "missing; set a number from 1 to %d, unique among the accounts", core.MaxAccountID)
	case id < 1 || id > core.MaxAccountID:
		return invalid(field, "%d is out of range; use 1 to %d", id, core.MaxAccountID)
	}
	a.ID = uint32(id)
	for _, u := range []struct {
		raw  json.RawMessage
		name string
		dst  *uint32
		max  int64
	}{{aj.Firm, "firm", &a.Firm, 1<<32 - 1}, {aj.Owner, "owner", &a.Owner, 1<<31 - 1}, {aj.STPGroup, "stp_group", &a.STPGroup, 1<<31 - 1}} {
		v, _, err := decodeInt(u.raw, path+"."+u.name)
		switch {
		case err != nil:
			return err
		case v < 0 || v > u.max:
			return invalid(path+"."+u.name, "%d is out of range; use 0 to %d", v, u.max)
		}
		*u.dst = uint32(v)
	}
	field = path + ".status"
	s, _, err := decodeString(aj.Status, field)
	switch {
	case err != nil:
		return err
	case s == "" || s == "active":
		a.Status = core.AccountActive
	case s == "suspended":
		a.Status = core.AccountSuspended
	case s == "closed":
		a.Status = core.AccountClosed
	default:
		return invalid(field, "%q is not a status; use \"active\" (the default), \"suspended\" or \"closed\"", truncate(s))
	}
	field = path + ".type"
	if a.Type, _, err = decodeString(aj.Type, field); err != nil {
		return err
	}
	if _, ok := f.Risk.AccountTypes[a.Type]; a.Type != "" && !ok {
		return invalid(field, "%q is not a type of risk.account_types; name one of them, or leave it out", truncate(a.Type))
	}
	unit := f.Risk.MinorUnit
	if a.Cash, _, err = decodeMoney(aj.Cash, path+".cash", unit, false); err != nil {
		return err
	}
	if a.Equity, _, err = decodeMoney(aj.Equity, path+".equity", unit, false); err != nil {
		return err
	}
	if a.Proprietary, err = decodeBool(aj.Proprietary, path+".proprietary"); err != nil {
		return err
	}
	if a.AllowSTPOff, err = decodeBool(aj.AllowSTPOff, path+".allow_stp_off"); err != nil {
		return err
	}
	if a.PDT, err = decodeBool(aj.PDT, path+".pdt"); err != nil {
		return err
	}
	if err := parseLimits(aj.Limits, path+".limits", unit, &a.Limits); err != nil {
		return err
	}
	if a.Positions, err = parseHoldings(aj.Positions, path+".positions", f, true); err != nil {
		return err
	}
	a.Locates, err = parseHoldings(aj.Locates, path+".locates", f, false)
	return err
}

func parseLimits(raw json.RawMessage, path string, unit decimal.Decimal, l *AccountLimits) error {
	if absent(raw) {
		return nil
	}
	var lj limitsJSON
	if err := decodeObject(raw, path, limitsFields, &lj); err != nil {
		return err
	}
	for _, n := range []struct {
		raw  json.RawMessage
		name string
		dst  *int64
	}{{lj.MaxOrderQty, "max_order_qty", &l.MaxOrderQty}, {lj.MaxPosition, "max_position", &l.MaxPosition},
		{lj.OrdersPerSec, "orders_per_sec", &l.OrdersPerSec}, {lj.CancelsPerSec, "cancels_per_sec", &l.CancelsPerSec},
		{lj.DuplicateWindowMS, "duplicate_window_ms", &l.DuplicateWindowMS}} {
		v, _, err := decodeInt(n.raw, path+"."+n.name)
		switch {
		case err != nil:
			return err
		case v < 0 || v > maxMoneyUnits:
			return invalid(path+"."+n.name, "%d is out of range; use 0 (no limit) to 2^62", v)
		case n.name == "duplicate_window_ms" && v > maxDuplicateWindowMS:
			return invalid(path+"."+n.name, "%d is out of range; use 0 (no check) to %d milliseconds (a day)", v, maxDuplicateWindowMS)
		}
		*n.dst = v
	}
	var err error
	if l.MaxOrderNotional, _, err = decodeMoney(lj.MaxOrderNotional, path+".max_order_notional", unit, false); err != nil {
		return err
	}
	l.DailyCredit, _, err = decodeMoney(lj.DailyCredit, path+".daily_credit", unit, false)
	return err
}

// parseHoldings parses an object of symbol -> share quantity into holdings
// in instrument file order.
func parseHoldings(raw json.RawMessage, path string, f *File, neg bool) ([]Holding, error) {
	if absent(raw) {
		return nil, nil
	}
	if raw[0] != '{' {
		return nil, invalid(path, "got %s; want an object of symbol to quantity, such as {\"AAPL\": \"100\"}", kind(raw))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalid(path, "%v", err)
	}
	syms := make([]string, 0, len(m))
	for s := range m {
		syms = append(syms, s)
	}
	slices.Sort(syms)
	for _, s := range syms {
		if _, ok := f.BySymbol(s); !ok {
			return nil, invalid(path, "%q is not a configured instrument; use a symbol from instruments", truncate(s))
		}
	}
	var out []Holding
	for i := range f.Instruments {
		in := &f.Instruments[i]
		r, ok := m[in.Symbol]
		if !ok {
			continue
		}
		field := path + "." + in.Symbol
		d, text, ok, err := decodeDecimal(r, field, "100")
		switch {
		case err != nil:
			return nil, err
		case !ok:
			continue
		case d.Sign() < 0 && !neg:
			return nil, invalid(field, "%s is negative; set 0 or more shares", text)
		}
		n, err := toUnits(d, in.LotSize)
		if err != nil || n > maxMoneyUnits || n < -maxMoneyUnits {
			return nil, invalid(field, "%s is not a whole number of lots of %s (at most 2^62 lots); use a multiple of the lot size", text, in.LotSize)
		}
		if cp := f.positionCap(in); n > cp || n < -cp {
			return nil, invalid(field, "%s is %d lots, above the %d lots whose value at the top of the band stays within 2^62 minor units; lower it", text, n, cp)
		}
		out = append(out, Holding{Symbol: in.Symbol, Qty: d})
	}
	return out, nil
}

// units converts money to minor units, or -1 (which core.New rejects) when
// it is not a whole number of them.
func units(d, unit decimal.Decimal) int64 {
	n, err := toUnits(d, unit)
	if err != nil {
		return -1
	}
	return n
}

// coreRisk fills the risk fields of the engine's instrument from in.
func (f *File) coreRisk(in *Instrument, c *core.Instrument) {
	if len(f.Accounts) > 0 { // risk layer off: core's default tick value
		n, ok := in.tickValueUnits(f.minorUnit())
		if !ok {
			n = -1 // core.New rejects it
		}
		c.TickValue = n
	}
	if in.ReferencePrice.Sign() != 0 {
		c.RefPrice, _ = toUnits(in.ReferencePrice, in.TickSize)
	}
	if in.PreviousClose.Sign() != 0 {
		c.PrevClose, _ = toUnits(in.PreviousClose, in.TickSize)
	}
	c.ShortSaleTest = in.ShortSaleTest
	c.CollarBps = in.CollarPercent.Shift(2).IntPart()
	if in.CollarAbsolute.Sign() != 0 {
		c.CollarTicks, _ = toUnits(in.CollarAbsolute, in.TickSize)
	}
	c.Restricted, c.Threshold = in.Restricted, in.Threshold
}

// positionCap returns the most lots of in an account may hold, as core
// bounds them: those whose value at the top of the band, at the tick value,
// stays within 2^62 minor units (1 when the band is not on the tick).
func (f *File) positionCap(in *Instrument) int64 {
	hi, err := in.PriceToTicks(in.BandHigh)
	tv, ok := in.tickValueUnits(f.minorUnit())
	if err != nil || !ok || hi <= 0 {
		return 1
	}
	return maxMoneyUnits / hi / tv
}

func (f *File) minorUnit() decimal.Decimal {
	if f.Risk.MinorUnit.Sign() <= 0 {
		return DefaultMinorUnit
	}
	return f.Risk.MinorUnit
}

// coreAccounts converts the accounts; a holding of an unknown symbol or off
// the lot gets instrument 0, which core.New rejects.
func (f *File) coreAccounts() []core.Account {
	if len(f.Accounts) == 0 {
		return nil
	}
	unit := f.minorUnit()
	out := make([]core.Account, len(f.Accounts))
	for i := range f.Accounts {
		a := &f.Accounts[i]
		l := a.Limits
		out[i] = core.Account{
			ID: a.ID, Status: a.Status, Cash: units(a.Cash, unit), Firm: a.Firm, STPGroup: a.STPGroup, Owner: a.Owner,
			Proprietary: a.Proprietary, AllowSTPOff: a.AllowSTPOff, PDT: a.PDT, Equity: units(a.Equity, unit),
			ShortMarginPct: f.Risk.AccountTypes[a.Type].ShortMarginPct,
			Limits: core.Limits{
				MaxOrderQty: l.MaxOrderQty, MaxOrderNotional: units(l.MaxOrderNotional, unit), MaxPosition: l.MaxPosition,
				DailyCredit: units(l.DailyCredit, unit), OrdersPerSec: l.OrdersPerSec, CancelsPerSec: l.CancelsPerSec,
				DuplicateWindow: l.DuplicateWindowMS * 1e6,
			},
		}
		for _, h := range a.Positions {
			inst, lots := f.lots(h)
			out[i].Positions = append(out[i].Positions, core.Position{Instrument: inst, Lots: lots})
		}
		for _, h := range a.Locates {
			inst, lots := f.lots(h)
			out[i].Locates = append(out[i].Locates, core.Locate{Instrument: inst, Qty: lots})
		}
	}
	return out
}

func (f *File) lots(h Holding) (uint32, int64) {
	in, ok := f.BySymbol(h.Symbol)
	if !ok {
		return 0, 0
	}
	n, err := in.QtyToLots(h.Qty)
	if err != nil {
		return 0, 0
	}
	return in.ID, n
}

// checkRiskOn enforces the fail-closed default: the pre-trade risk layer is
// on, which needs accounts, unless the file says "risk": "off".
func checkRiskOn(f *File) error {
	switch {
	case f.Risk.Off && len(f.Accounts) > 0:
		return invalid("risk", "is \"off\" but the file has accounts; remove \"risk\": \"off\" to check their orders, or remove the accounts")
	case !f.Risk.Off && len(f.Accounts) == 0:
		return invalid("accounts", "missing; the pre-trade risk layer is on and needs the trading accounts (see docs/config.md), or set \"risk\": \"off\" to run without pre-trade risk")
	}
	return nil
}
