package main

import (
	"log/slog"
	"sync/atomic"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/surveil"
)

// recordAlert is the audit record type of a surveillance alert; the daily
// regulator report counts surveil.* records (audit.BuildReport).
const recordAlert = "surveil.alert"

// alertBody is the body of a surveil.alert record (docs/surveillance.md,
// "Audit records"): ids only, no personal data; quantities and prices as
// decimal strings; fields that do not apply to the detector are left out.
type alertBody struct {
	Detector      string   `json:"detector"`
	Action        string   `json:"action"`
	Report        bool     `json:"report,omitempty"`
	Seq           uint64   `json:"seq"`
	Time          int64    `json:"time"`
	Inst          uint32   `json:"inst,omitempty"`
	Account       uint32   `json:"account,omitempty"`
	ContraAccount uint32   `json:"contra_account,omitempty"`
	Owner         uint32   `json:"owner,omitempty"`
	Firm          uint32   `json:"firm,omitempty"`
	Qty           string   `json:"qty,omitempty"`
	Traded        string   `json:"traded,omitempty"`
	Withdrawn     string   `json:"withdrawn,omitempty"`
	Ref           string   `json:"ref,omitempty"`
	Price         string   `json:"price,omitempty"`
	PushTicks     int64    `json:"push_ticks,omitempty"`
	Levels        int64    `json:"levels,omitempty"`
	Orders        int64    `json:"orders,omitempty"`
	Fills         int64    `json:"fills,omitempty"`
	Cancels       int64    `json:"cancels,omitempty"`
	OrderIDs      []uint64 `json:"order_ids,omitempty"`
	MatchIDs      []uint64 `json:"match_ids,omitempty"`
	CancelSeqs    []uint64 `json:"cancel_seqs,omitempty"`
}

// alertRecorder returns the function the event sink calls for each alert:
// it posts a surveil.alert record to the audit log without waiting for it
// (the sink runs on an agent's thread). A record the log refuses is logged
// and counted, never retried: the alerts follow from the journaled events.
func alertRecorder(l *audit.Log, file *config.File, log *slog.Logger) func(*surveil.Alert) {
	var failed atomic.Uint64
	return func(a *surveil.Alert) {
		b := alertBody{Detector: a.Detector.String(), Action: a.Action.String(), Report: a.Report, Seq: a.Seq, Time: a.Time,
			Inst: a.Instrument, Account: a.Accounts[0], ContraAccount: a.Accounts[1], Owner: a.Owner, Firm: a.Firm,
			PushTicks: a.Push, Levels: a.Levels, Orders: a.Orders, Fills: a.Fills, Cancels: a.Cancels,
			OrderIDs: a.OrderIDs(), MatchIDs: a.MatchIDs(), CancelSeqs: a.CancelSeqs()}
		if in, ok := file.Instrument(a.Instrument); ok {
			qty := func(lots int64) string {
				if lots == 0 {
					return ""
				}
				return in.LotsToQty(lots).String()
			}
			price := func(ticks int64) string {
				if ticks == 0 {
					return ""
				}
				return in.TicksToPrice(ticks).String()
			}
			b.Qty, b.Traded, b.Withdrawn, b.Ref, b.Price = qty(a.Qty), qty(a.Traded), qty(a.Withdrawn), price(a.Ref), price(a.Price)
		}
		if err := l.Post(recordAlert, b); err != nil {
			if failed.Add(1) == 1 {
				log.Error("audit: surveillance alert not recorded (further failures are counted, not logged)", "err", err.Error())
			}
		}
	}
}
