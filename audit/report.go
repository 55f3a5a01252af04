package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/hsm/manifest"
)

// ReportFormat is the format field of a daily regulator report.
const ReportFormat = "tradecore-audit-report/v1"

// DailyReport is the daily regulator report of one UTC day: what happened
// in the leaves [From, To) timed that day. It is signed as a C2SP note whose
// text is the report's JSON and a newline.
type DailyReport struct {
	Format     string            `json:"format"`
	Origin     string            `json:"origin"`
	Day        string            `json:"day"` // YYYY-MM-DD, UTC
	From       uint64            `json:"from"`
	To         uint64            `json:"to"`
	Generated  int64             `json:"generated"` // Unix ns, when it was signed
	Orders     uint64            `json:"orders"`    // cmd.new
	Cancels    uint64            `json:"cancels"`   // cmd.cancel, cmd.cancel-size, cmd.mass-cancel
	Replaces   uint64            `json:"replaces"`  // cmd.replace
	Admin      uint64            `json:"admin"`     // other commands
	Trades     uint64            `json:"trades"`    // event.trade
	Volume     map[string]string `json:"volume"`    // instrument id → traded quantity (decimal)
	Rejects    map[string]uint64 `json:"rejects"`   // reason code → rejected commands
	RiskEvents uint64            `json:"risk_events"`
	Halts      uint64            `json:"halts"`  // event.system and event.regulatory
	Alerts     map[string]uint64 `json:"alerts"` // "surveil.*" record type → count
	Records    map[string]uint64 `json:"records"`
	// Checkpoint is the first signed checkpoint whose tree covers To ("" if
	// none yet): keep it, and pass it to auditverify --checkpoint later.
	Checkpoint string `json:"checkpoint"`
}

// BuildReport computes the report of day (any time within it, UTC) from the
// log in dir, using its index to find the day's leaves.
func BuildReport(ctx context.Context, dir string, day time.Time, origin string) (*DailyReport, error) {
	d := day.UTC().Truncate(24 * time.Hour)
	ix, err := OpenIndex(dir)
	if err != nil {
		return nil, err
	}
	lo, hi, err := ix.TimeRange(ctx, d.UnixNano(), d.Add(24*time.Hour).UnixNano())
	if err != nil {
		return nil, err
	}
	rep := &DailyReport{Format: ReportFormat, Origin: origin, Day: d.Format(time.DateOnly), From: lo, To: hi,
		Volume: map[string]string{}, Rejects: map[string]uint64{}, Alerts: map[string]uint64{}, Records: map[string]uint64{}}
	scales := Scales{}
	vol := map[uint32]int64{}
	var ev core.Event
	err = ix.r.Read(0, hi, func(e *Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.Type == TypeInstruments {
			h, _ := ParseLeaf(e.Leaf)
			if sc, err := parseInstruments(h.Body); err == nil {
				scales = sc
			}
		}
		if e.Index < lo {
			return nil
		}
		switch t := e.Type; {
		case t == "cmd.new":
			rep.Orders++
		case t == "cmd.cancel" || t == "cmd.cancel-size" || t == "cmd.mass-cancel":
			rep.Cancels++
		case t == "cmd.replace":
			rep.Replaces++
		case strings.HasPrefix(t, "cmd."):
			rep.Admin++
		case strings.HasPrefix(t, "event."):
			if _, err := DecodeEvent(e.Leaf, &ev, scales); err != nil {
				return err
			}
			switch ev.Kind {
			case core.KindTrade:
				rep.Trades++
				vol[ev.Instrument] += ev.Qty
			case core.KindRejected:
				rep.Rejects[strconv.Itoa(int(ev.Reason))]++
			case core.KindSystem, core.KindRegulatory:
				rep.Halts++
			}
			if ev.Reason >= 400 && ev.Reason < 500 && (ev.Kind == core.KindRejected || ev.Kind == core.KindCancelled) {
				rep.RiskEvents++
			}
		case strings.HasPrefix(t, "surveil."):
			rep.Alerts[t]++
		default:
			rep.Records[t]++
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for id, q := range vol {
		rep.Volume[strconv.FormatUint(uint64(id), 10)] = string(scales.of(id).AppendQty(nil, q))
	}
	notes, err := ReadCheckpoints(dir)
	if err != nil {
		return nil, err
	}
	for _, n := range notes {
		pn, err := ParseNote(n)
		if err != nil {
			return nil, err
		}
		c, err := ParseCheckpointText(pn.Text)
		if err != nil {
			return nil, err
		}
		if c.Size >= hi && hi > 0 {
			rep.Checkpoint = string(n)
			break
		}
	}
	return rep, nil
}

// SignReport signs the report (setting Generated from now) as a note.
func SignReport(ctx context.Context, s Signer, rep *DailyReport, now time.Time) ([]byte, error) {
	rep.Generated = now.UnixNano()
	body, err := json.Marshal(rep)
	if err != nil {
		return nil, err
	}
	text := append(body, '\n')
	var cache signerKeys
	sig, _, err := signNote(ctx, s, &cache, text)
	if err != nil {
		return nil, err
	}
	n := Note{Text: text, Sigs: []NoteSig{sig}}
	return n.Marshal(), nil
}

// ErrReport is wrapped when a signed report is malformed.
var ErrReport = errors.New("audit: bad report")

// VerifyReport checks a signed report against a verified manifest (a key
// valid at its Generated time) and returns it.
func VerifyReport(note []byte, keys *manifest.Verified) (*DailyReport, []SignedBy, error) {
	n, err := ParseNote(note)
	if err != nil {
		return nil, nil, err
	}
	var rep DailyReport
	if err := strictJSON(n.Text[:len(n.Text)-1], &rep); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrReport, err)
	}
	if rep.Format != ReportFormat {
		return nil, nil, fmt.Errorf("%w: format %q, want %q", ErrReport, rep.Format, ReportFormat)
	}
	nk, err := newNoteKeys(keys)
	if err != nil {
		return nil, nil, err
	}
	by, err := nk.verifyNote(&n, time.Unix(0, rep.Generated))
	return &rep, by, err
}
