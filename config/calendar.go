package config

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tradecore/tradecore/core"
)

// Calendar is the exchange calendar (the "calendar" object, optional): the
// weekday holidays and the trading date the engine starts in. Weekends are
// never business days. The engine's end of day names the date it ends and
// moves to the next business day; the pattern-day-trader window counts
// business days (docs/engine.md, "Trading days").
type Calendar struct {
	TradingDate time.Time   // zero: not set (the first end of day's date is taken)
	Holidays    []time.Time // weekdays, in file order
}

type calendarJSON struct {
	TradingDate json.RawMessage `json:"trading_date"`
	Holidays    json.RawMessage `json:"holidays"`
}

const calendarFields = "trading_date, holidays"

func parseCalendar(raw json.RawMessage, c *Calendar) error {
	*c = Calendar{}
	if absent(raw) {
		return nil
	}
	var cj calendarJSON
	if err := decodeObject(raw, "calendar", calendarFields, &cj); err != nil {
		return err
	}
	var err error
	if c.TradingDate, err = parseDate(cj.TradingDate, "calendar.trading_date"); err != nil {
		return err
	}
	if !c.TradingDate.IsZero() && !weekday(c.TradingDate) {
		return invalid("calendar.trading_date", "%s is a %s; set a business day", c.TradingDate.Format(time.DateOnly), c.TradingDate.Weekday())
	}
	if absent(cj.Holidays) {
		return nil
	}
	var list []json.RawMessage
	if cj.Holidays[0] != '[' || json.Unmarshal(cj.Holidays, &list) != nil {
		return invalid("calendar.holidays", "got %s; want an array of dates, such as [\"2026-12-25\"]", kind(cj.Holidays))
	}
	seen := map[time.Time]int{}
	for i, r := range list {
		field := fmt.Sprintf("calendar.holidays[%d]", i)
		d, err := parseDate(r, field)
		switch {
		case err != nil:
			return err
		case d.IsZero():
			return invalid(field, "missing; write a date such as \"2026-12-25\"")
		case !weekday(d):
			return invalid(field, "%s is a %s; list weekday holidays only (weekends are never business days)", d.Format(time.DateOnly), d.Weekday())
		}
		if j, dup := seen[d]; dup {
			return invalid(field, "%s is also holidays[%d]; list it once", d.Format(time.DateOnly), j)
		}
		seen[d] = i
		c.Holidays = append(c.Holidays, d)
	}
	if !c.TradingDate.IsZero() {
		if _, hol := seen[c.TradingDate]; hol {
			return invalid("calendar.trading_date", "%s is a holiday; set a business day", c.TradingDate.Format(time.DateOnly))
		}
	}
	return nil
}

// parseDate decodes an optional "YYYY-MM-DD" string (zero time when absent).
func parseDate(raw json.RawMessage, field string) (time.Time, error) {
	s, ok, err := decodeString(raw, field)
	if err != nil || !ok || s == "" {
		return time.Time{}, err
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil || d.Year() < 1 || d.Year() > 9999 {
		return time.Time{}, invalid(field, "%q is not a date; write YYYY-MM-DD, such as \"2026-12-21\"", truncate(s))
	}
	return d, nil
}

func weekday(d time.Time) bool { return d.Weekday() != time.Saturday && d.Weekday() != time.Sunday }

// yyyymmdd is the engine's form of a date.
func yyyymmdd(d time.Time) int64 {
	if d.IsZero() {
		return 0
	}
	return int64(d.Year())*10000 + int64(d.Month())*100 + int64(d.Day())
}

// coreCalendar converts the calendar for core.Config.
func (c *Calendar) coreCalendar() core.Calendar {
	out := core.Calendar{TradingDate: yyyymmdd(c.TradingDate)}
	for _, h := range c.Holidays {
		out.Holidays = append(out.Holidays, yyyymmdd(h))
	}
	return out
}
