package core

import (
	"fmt"
	"slices"
	"time"
)

// The exchange calendar (docs/engine.md, "Trading days"): weekends and the
// configured holidays are not business days. Dates are int64 YYYYMMDD
// numbers, as CmdEndOfDay carries them in Qty.

// Calendar is the exchange calendar the engine counts business days by.
type Calendar struct {
	// Holidays are the weekdays the exchange is closed, YYYYMMDD (such as
	// 20261225); weekends are never business days.
	Holidays []int64
	// TradingDate is the business day the engine starts in, YYYYMMDD; 0
	// means unknown until the first end of day, whose date is taken as it.
	TradingDate int64
}

// civil returns the date of d (YYYYMMDD) and whether d is a calendar date.
func civil(d int64) (time.Time, bool) {
	if d < 1_0101 || d > 9999_1231 {
		return time.Time{}, false
	}
	y, m, day := int(d/10000), time.Month(d/100%100), int(d%100)
	t := time.Date(y, m, day, 0, 0, 0, 0, time.UTC)
	return t, t.Year() == y && t.Month() == m && t.Day() == day
}

func yyyymmdd(t time.Time) int64 {
	return int64(t.Year())*10000 + int64(t.Month())*100 + int64(t.Day())
}

// businessDay reports whether d is a date, a weekday and not a holiday.
func (c *Calendar) businessDay(d int64) bool {
	t, ok := civil(d)
	if !ok || t.Weekday() == time.Saturday || t.Weekday() == time.Sunday {
		return false
	}
	_, hol := slices.BinarySearch(c.Holidays, d)
	return !hol
}

// nextBusinessDay returns the first business day after d (a date).
func (c *Calendar) nextBusinessDay(d int64) int64 {
	t, _ := civil(d)
	for {
		t = t.AddDate(0, 0, 1)
		if n := yyyymmdd(t); c.businessDay(n) {
			return n
		}
	}
}

// businessIndex numbers business days: it grows by one from each business
// day to the next (weekdays since 1970-01-05, a Monday, less the holidays
// before d).
func (c *Calendar) businessIndex(d int64) int64 {
	t, _ := civil(d)
	days := int64(t.Sub(time.Date(1970, 1, 5, 0, 0, 0, 0, time.UTC)).Hours()) / 24
	weeks, rest := days/7, days%7
	if rest < 0 {
		weeks, rest = weeks-1, rest+7
	}
	n := weeks*5 + min(rest, 5)
	h, _ := slices.BinarySearch(c.Holidays, d)
	return n - int64(h)
}

// fill validates the calendar and sorts a copy of its holidays.
func (c *Calendar) fill() error {
	c.Holidays = slices.Clone(c.Holidays)
	slices.Sort(c.Holidays)
	for i, h := range c.Holidays {
		t, ok := civil(h)
		switch {
		case !ok:
			return fmt.Errorf("%w: Calendar.Holidays has %d, not a date; write YYYYMMDD, such as 20261225", ErrConfig, h)
		case t.Weekday() == time.Saturday || t.Weekday() == time.Sunday:
			return fmt.Errorf("%w: Calendar.Holidays has %d, a weekend; list weekday holidays only", ErrConfig, h)
		case i > 0 && c.Holidays[i-1] == h:
			return fmt.Errorf("%w: Calendar.Holidays has %d twice; list it once", ErrConfig, h)
		}
	}
	if c.TradingDate != 0 && !c.businessDay(c.TradingDate) {
		return fmt.Errorf("%w: Calendar.TradingDate %d is not a business day (a weekday, not a holiday); set one, or 0", ErrConfig, c.TradingDate)
	}
	return nil
}
