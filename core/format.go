package core

import (
	"strconv"
	"strings"
)

var (
	sideNames = [...]string{"none", "buy", "sell"}
	typeNames = [...]string{"none", "limit", "market", "stop", "stop-limit"}
	tifNames  = [...]string{"none", "day", "gtc", "ioc", "fok"}
	stpNames  = [...]string{"cancel-newest", "cancel-oldest", "cancel-both", "decrement", "off"}
	markNames = [...]string{"none", "long", "short", "short-exempt"}
	// causeNames are the causes' stable names (docs/engine.md, "Admin commands").
	causeNames = [...]string{"none", "operator", "risk-limit", "surveillance", "news-pending", "news-released",
		"volatility", "circuit-breaker", "regulatory", "technical", "client-request", "compliance",
		"corporate-action", "credit"}
	kindNames = [...]string{"none", "accepted", "rejected", "executed", "cancelled", "reduced", "replaced",
		"triggered", "expired", "book-add", "book-execute", "book-cancel", "book-delete", "book-replace", "trade",
		"admin", "system", "regulatory", "alert"}
	cmdNames = [...]string{"none", "new", "cancel", "cancel-size", "replace", "mass-cancel", "end-of-day",
		"halt", "resume", "market-halt", "market-resume", "kill", "kill-release", "account-status", "set-limit",
		"locate", "restrict", "alert"}
)

func name(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return strconv.Itoa(i)
}

func (s Side) String() string      { return name(sideNames[:], int(s)) }
func (t OrderType) String() string { return name(typeNames[:], int(t)) }
func (t TIF) String() string       { return name(tifNames[:], int(t)) }
func (m STPMode) String() string   { return name(stpNames[:], int(m)) }
func (m SaleMark) String() string  { return name(markNames[:], int(m)) }
func (c Cause) String() string     { return name(causeNames[:], int(c)) }
func (k EventKind) String() string { return name(kindNames[:], int(k)) }
func (k CmdKind) String() string   { return name(cmdNames[:], int(k)) }

// String renders the event on one line, the kind first and then every
// non-zero field as key=value. The form is stable: golden test files and
// logs use it.
func (ev Event) String() string {
	var b strings.Builder
	b.WriteString(ev.Kind.String())
	u := func(k string, v uint64) {
		if v != 0 {
			b.WriteString(" " + k + "=" + strconv.FormatUint(v, 10))
		}
	}
	i := func(k string, v int64) {
		if v != 0 {
			b.WriteString(" " + k + "=" + strconv.FormatInt(v, 10))
		}
	}
	s := func(k, v string, zero bool) {
		if !zero {
			b.WriteString(" " + k + "=" + v)
		}
	}
	u("seq", ev.Seq)
	i("time", ev.Time)
	u("inst", uint64(ev.Instrument))
	u("acct", uint64(ev.Account))
	u("oid", ev.OrderID)
	u("cl", ev.ClOrdID)
	u("orig", ev.OrigClOrdID)
	s("side", ev.Side.String(), ev.Side == 0)
	s("type", ev.Type.String(), ev.Type == 0)
	s("tif", ev.TIF.String(), ev.TIF == 0)
	s("mark", ev.Mark.String(), ev.Mark == 0)
	i("px", ev.Price)
	i("stop", ev.StopPrice)
	i("qty", ev.Qty)
	if ev.Kind != KindRejected && ev.Kind != KindTrade {
		b.WriteString(" leaves=" + strconv.FormatInt(ev.Leaves, 10))
	}
	u("match", ev.MatchID)
	u("contra-acct", uint64(ev.ContraAccount))
	u("contra-oid", ev.ContraOrderID)
	u("contra-cl", ev.ContraClOrdID)
	if ev.Kind == KindExecuted {
		b.WriteString(" contra-leaves=" + strconv.FormatInt(ev.ContraLeaves, 10))
	}
	s("reason", ev.Reason.String(), ev.Reason == 0)
	u("op", uint64(ev.Operator))
	s("cause", ev.Cause.String(), ev.Cause == 0)
	u("tag", ev.Tag)
	return b.String()
}
