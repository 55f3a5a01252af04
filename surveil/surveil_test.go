package surveil_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/surveil"
)

// TestScenarios runs every scenario under testdata/fire through a real
// engine: each must raise exactly the listed alerts with the listed evidence
// and lead to the listed commands. The full output is compared with
// testdata/fire/*.golden. Each detector's benign look-alikes are in
// testdata/benign (TestBenignCorpus).
func TestScenarios(t *testing.T) {
	type want struct {
		det      surveil.Detector
		accounts [2]uint32
		orders   []uint64
		matches  []uint64
		cancels  int
		action   surveil.Action
	}
	killed := func(ids ...uint32) func(*testing.T, result) {
		return func(t *testing.T, res result) {
			for _, id := range ids {
				st, ok := res.eng.Account(id)
				require.True(t, ok)
				assert.True(t, st.Killed, "account %d must be killed", id)
			}
		}
	}
	tests := []struct {
		script   string
		alerts   []want
		commands []core.CmdKind
		check    func(*testing.T, result)
	}{
		{script: "wash_fire", alerts: []want{{det: surveil.DetectWash, accounts: [2]uint32{2, 1}, orders: []uint64{2, 1}, matches: []uint64{1}, action: surveil.ActionAlert}}},
		{script: "wash_kill", alerts: []want{{det: surveil.DetectWash, accounts: [2]uint32{2, 1}, orders: []uint64{3, 1}, matches: []uint64{1}, action: surveil.ActionKill}},
			commands: []core.CmdKind{core.CmdKill, core.CmdKill}, check: killed(1, 2)},
		{script: "layering_fire", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1}, orders: []uint64{3, 4, 5, 6}, matches: []uint64{2}, cancels: 4, action: surveil.ActionAlert}}},
		{script: "rapid_fire", alerts: []want{{det: surveil.DetectRapid, accounts: [2]uint32{1}, action: surveil.ActionThrottle}},
			commands: []core.CmdKind{core.CmdSetLimit}},
		{script: "pump_fire", alerts: []want{
			{det: surveil.DetectPumpDump, accounts: [2]uint32{1, 2}, orders: []uint64{7, 8, 9, 10, 12}, matches: []uint64{2, 3, 4, 5, 6}, action: surveil.ActionAlert},
			// the same trades are also the owner's momentum ignition
			{det: surveil.DetectRamp, accounts: [2]uint32{1, 2}, orders: []uint64{7, 8, 9, 10, 12}, matches: []uint64{2, 3, 4, 5, 6}, action: surveil.ActionAlert},
		}},
		{script: "front_fire", alerts: []want{{det: surveil.DetectFrontRun, accounts: [2]uint32{1, 2}, orders: []uint64{2, 3}, matches: []uint64{1}, action: surveil.ActionSuspend}},
			commands: []core.CmdKind{core.CmdAccountStatus}},

		// Item 13: actions retried until they take effect.
		{script: "kill_retry", alerts: []want{
			{det: surveil.DetectWash, accounts: [2]uint32{2, 1}, orders: []uint64{2, 1}, matches: []uint64{1}, action: surveil.ActionKill},
			{det: surveil.DetectWash, accounts: [2]uint32{2, 1}, orders: []uint64{3, 1}, matches: []uint64{2}, action: surveil.ActionKill},
			{det: surveil.DetectWash, accounts: [2]uint32{2, 1}, orders: []uint64{4, 1}, matches: []uint64{3}, action: surveil.ActionKill},
		}, commands: []core.CmdKind{core.CmdKill, core.CmdKill}, check: func(t *testing.T, res result) {
			killed(1, 2)(t, res)
			assert.Equal(t, 4, res.dropped)
			assert.Equal(t, surveil.Stats{Decided: 2, Submitted: 2, Failed: 4, Confirmed: 2, AlertsSubmitted: 3, AlertsRecorded: 3}, res.mon.Stats())
			assert.Zero(t, res.mon.Pending())
		}},
		{script: "kill_retry_idle", alerts: []want{
			{det: surveil.DetectWash, accounts: [2]uint32{2, 1}, orders: []uint64{2, 1}, matches: []uint64{1}, action: surveil.ActionKill},
		}, commands: []core.CmdKind{core.CmdKill, core.CmdKill}, check: func(t *testing.T, res result) {
			killed(1, 2)(t, res)
			assert.Equal(t, surveil.Stats{Decided: 2, Submitted: 2, Failed: 5, Confirmed: 2, AlertsSubmitted: 1, AlertsRecorded: 1}, res.mon.Stats())
		}},

		// Item 14: each evasion the risk officer found.
		{script: "evade_shrink", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1}, orders: []uint64{3, 4, 5, 6}, matches: []uint64{2}, cancels: 4, action: surveil.ActionAlert}}},
		{script: "evade_replace", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1}, orders: []uint64{3, 4, 5, 6}, matches: []uint64{2}, cancels: 4, action: surveil.ActionAlert}}},
		{script: "evade_other_instrument", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1}, orders: []uint64{6, 7, 8, 9}, matches: []uint64{2}, cancels: 4, action: surveil.ActionAlert}}},
		{script: "evade_linked", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1, 2}, orders: []uint64{3, 4, 5, 6}, matches: []uint64{2}, cancels: 4, action: surveil.ActionAlert}}},
		{script: "evade_single", alerts: []want{{det: surveil.DetectSpoofing, accounts: [2]uint32{1}, orders: []uint64{3}, matches: []uint64{2}, cancels: 1, action: surveil.ActionAlert}}},
		{script: "evade_late_cancel", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1}, orders: []uint64{3, 4, 5, 6}, matches: []uint64{2}, cancels: 4, action: surveil.ActionAlert}}},
		{script: "evade_children", alerts: []want{{det: surveil.DetectFrontRun, accounts: [2]uint32{1, 2}, orders: []uint64{2, 3, 4}, matches: []uint64{1}, action: surveil.ActionAlert}}},
		{script: "evade_wash_one_account", alerts: []want{{det: surveil.DetectWash, accounts: [2]uint32{1}, orders: []uint64{2, 1}, matches: []uint64{1}, action: surveil.ActionAlert}}},
		// Attacks on the fixes themselves.
		{script: "evade_flood", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1}, orders: []uint64{3, 4, 5, 6}, matches: []uint64{2}, cancels: 4, action: surveil.ActionAlert}}},
		{script: "evade_requote_trick", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1}, orders: []uint64{3, 4, 5, 6}, matches: []uint64{2}, cancels: 8, action: surveil.ActionAlert}}},
		{script: "evade_two_sided", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1}, orders: []uint64{3, 4, 5, 6}, matches: []uint64{2}, cancels: 4, action: surveil.ActionAlert}}},
		{script: "rapid_two_sided", alerts: []want{{det: surveil.DetectRapid, accounts: [2]uint32{1}, action: surveil.ActionThrottle}},
			commands: []core.CmdKind{core.CmdSetLimit}},
		{script: "skewed_pull", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1}, orders: []uint64{4, 5, 6}, matches: []uint64{2}, cancels: 3, action: surveil.ActionAlert}}},

		// Item 15: new detectors.
		{script: "ramp_fire", alerts: []want{{det: surveil.DetectRamp, accounts: [2]uint32{1}, orders: []uint64{7, 8}, matches: []uint64{2, 3, 4, 5, 6}, action: surveil.ActionAlert}}},
		{script: "markclose_fire", alerts: []want{{det: surveil.DetectMarkClose, accounts: [2]uint32{1}, orders: []uint64{8}, matches: []uint64{3, 4, 5}, action: surveil.ActionAlert}}},
		{script: "markclose_linked", alerts: []want{{det: surveil.DetectMarkClose, accounts: [2]uint32{1, 2}, orders: []uint64{7, 8}, matches: []uint64{3, 4}, action: surveil.ActionAlert}}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.script] = true
		t.Run(tt.script, func(t *testing.T) {
			res := runScript(t, "fire/"+tt.script)
			require.Len(t, res.alerts, len(tt.alerts), "alerts:\n%s", res.golden)
			for i, w := range tt.alerts {
				a := res.alerts[i]
				assert.Equal(t, w.det, a.Detector)
				assert.Equal(t, w.accounts, a.Accounts)
				assert.Equal(t, w.orders, nilIfEmpty(a.OrderIDs()))
				assert.Equal(t, w.matches, nilIfEmpty(a.MatchIDs()))
				assert.Len(t, a.CancelSeqs(), w.cancels)
				assert.Equal(t, w.action, a.Action)
			}
			var kinds []core.CmdKind
			for _, c := range res.commands {
				kinds = append(kinds, c.Kind)
			}
			assert.Equal(t, tt.commands, kinds)
			// Item 12: every alert is recorded in the engine's event stream.
			assert.Equal(t, len(tt.alerts), res.recorded, "alerts recorded as engine events")
			assert.Equal(t, uint64(len(tt.alerts)), res.mon.Stats().AlertsRecorded)
			assert.Zero(t, res.mon.PendingAlerts())
			if tt.check != nil {
				tt.check(t, res)
			}
		})
	}
	files, err := filepath.Glob("testdata/fire/*.txt")
	require.NoError(t, err)
	for _, f := range files {
		assert.True(t, seen[strings.TrimSuffix(filepath.Base(f), ".txt")], "%s has no expectations in TestScenarios", f)
	}
}

// TestBenignCorpus runs every look-alike under testdata/benign — market
// making, skewed quoting, requotes after fills, hedging across instruments,
// closing flow, and each detector's near misses — on the default thresholds:
// none may alert.
func TestBenignCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/benign/*.txt")
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 10)
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			res := runScript(t, "benign/"+name)
			assert.Empty(t, res.alerts, "alerts:\n%s", res.golden)
			assert.Empty(t, res.commands)
		})
	}
	for _, want := range []string{"market_making", "maker_repricing", "skewed_requote", "requote_after_fill", "hedge_across", "closing_flow"} {
		_, err := os.Stat(filepath.Join("testdata", "benign", want+".txt"))
		assert.NoError(t, err, "the corpus must keep %s", want)
	}
}

func nilIfEmpty(s []uint64) []uint64 {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name  string
		cfg   surveil.Config
		field string
	}{
		{"zero account id", surveil.Config{Accounts: []surveil.Ref{{ID: 0}}}, "Accounts[0].ID"},
		{"duplicate account", surveil.Config{Accounts: []surveil.Ref{{ID: 5}, {ID: 5}}}, "Accounts[1].ID"},
		{"bad action", surveil.Config{Wash: surveil.Wash{Action: 99}}, "Wash.Action"},
		{"layer min too big", surveil.Config{Layering: surveil.Layering{MinOrders: 1000}}, "Layering.MinOrders"},
		{"layer ratio", surveil.Config{Layering: surveil.Layering{MinRatio: -1}}, "Layering.MinRatio"},
		{"cancel pct", surveil.Config{Layering: surveil.Layering{CancelPct: 101}}, "Layering.CancelPct"},
		{"grace", surveil.Config{Layering: surveil.Layering{Grace: -1}}, "Layering windows"},
		{"spoof action", surveil.Config{Spoofing: surveil.Spoofing{Action: 9}}, "Spoofing.Action"},
		{"rapid window", surveil.Config{Rapid: surveil.Rapid{Window: 3}}, "Rapid.Window"},
		{"rapid one-sided", surveil.Config{Rapid: surveil.Rapid{OneSidedPct: 30}}, "Rapid.OneSidedPct"},
		{"throttle", surveil.Config{ThrottleOrdersPerSec: -1}, "ThrottleOrdersPerSec"},
		{"pump accounts", surveil.Config{PumpDump: surveil.PumpDump{MinAccounts: 9}}, "PumpDump.MinAccounts"},
		{"pump rise", surveil.Config{PumpDump: surveil.PumpDump{RiseBps: -5}}, "PumpDump.RiseBps"},
		{"front qty", surveil.Config{FrontRun: surveil.FrontRun{LargeQty: -1}}, "FrontRun.LargeQty"},
		{"front action", surveil.Config{FrontRun: surveil.FrontRun{Action: 7}}, "FrontRun.Action"},
		{"ramp retain", surveil.Config{Ramp: surveil.Ramp{RetainPct: 150}}, "Ramp.RetainPct"},
		{"ramp bps", surveil.Config{Ramp: surveil.Ramp{MoveBps: 1 << 40}}, "Ramp.MoveBps"},
		{"close time", surveil.Config{MarkClose: surveil.MarkClose{Close: 25 * int64(time.Hour)}}, "MarkClose.Close"},
		{"close share", surveil.Config{MarkClose: surveil.MarkClose{MinSharePct: 101}}, "MarkClose.MinSharePct"},
		{"retry", surveil.Config{Retry: surveil.Retry{Min: 5e6, Max: 1e6}}, "Retry.Min"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := surveil.New(tt.cfg)
			require.ErrorIs(t, err, surveil.ErrConfig)
			require.Contains(t, err.Error(), tt.field)
		})
	}
	m, err := surveil.New(surveil.Config{})
	require.NoError(t, err, "the zero Config works")
	assert.Empty(t, m.Disabled(), "every detector is on by default")
	m, err = surveil.New(surveil.Config{Ramp: surveil.Ramp{Disabled: true}, Wash: surveil.Wash{Disabled: true}})
	require.NoError(t, err)
	assert.Equal(t, []surveil.Detector{surveil.DetectWash, surveil.DetectRamp}, m.Disabled())
}

// TestAlertFixedSize: an Alert is a fixed-size value without pointers, so it
// can be copied whole into a fixed-size record (an engine event, a journal
// entry).
func TestAlertFixedSize(t *testing.T) {
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		switch ty.Kind() {
		case reflect.Struct:
			for i := range ty.NumField() {
				walk(ty.Field(i).Type)
			}
		case reflect.Array:
			walk(ty.Elem())
		case reflect.Bool, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			t.Errorf("Alert holds a %s (%s): not fixed-size", ty.Kind(), ty)
		}
	}
	walk(reflect.TypeOf(surveil.Alert{}))
	t.Logf("sizeof(Alert) = %d bytes", reflect.TypeOf(surveil.Alert{}).Size())
}

// washFill is a fill between accounts 1 and 2 (one owner in the tests below).
func washFill(at int64) core.Event {
	return core.Event{Kind: core.KindExecuted, Time: at, Instrument: 1, Account: 1, ContraAccount: 2, OrderID: 2,
		ContraOrderID: 1, MatchID: 1, Side: core.Buy, Price: 10, Qty: 1, Leaves: 1, ContraLeaves: 1}
}

func adminEvent(at int64, acct uint32, r core.Reason, qty int64) core.Event {
	return core.Event{Kind: core.KindAdmin, Time: at, Account: acct, Reason: r, Qty: qty}
}

// TestRetryBackoff: a kill the lane refuses is retried with a doubling
// backoff bounded by Retry.Max; one the lane takes but whose effect never
// shows is re-sent after Retry.Confirm; a confirmed kill is never re-sent,
// however many alerts and ticks follow, until an operator releases it.
func TestRetryBackoff(t *testing.T) {
	const ms = int64(time.Millisecond)
	var (
		attempts []int64 // engine time of each attempt for account 1
		now      int64
		refuse   = 8
	)
	m, err := surveil.New(surveil.Config{
		Accounts: []surveil.Ref{{ID: 1, Owner: 9}, {ID: 2, Owner: 9}},
		Wash:     surveil.Wash{Action: surveil.ActionKill},
		Submit: func(c *core.Command) bool {
			if c.Kind == core.CmdAlert {
				return true // alert records: TestAlertsRecorded
			}
			require.Equal(t, core.CmdKill, c.Kind)
			if c.Account != 1 {
				return true
			}
			attempts = append(attempts, now)
			if refuse > 0 {
				refuse--
				return false
			}
			return true
		},
	})
	require.NoError(t, err)
	var out surveil.Output
	m.Observe([]core.Event{washFill(0), adminEvent(0, 2, core.AdminKill, 0)}, &out)
	for now = 1 * ms; now <= 1000*ms; now += ms {
		m.Tick(now, &out)
	}
	// Eight refusals: waits 1, 2, 4, ..., 64 ms, then capped at 100 ms; the
	// ninth attempt is taken, and re-sent 500 ms later with no effect seen.
	assert.Equal(t, []int64{0, 1 * ms, 3 * ms, 7 * ms, 15 * ms, 31 * ms, 63 * ms, 127 * ms, 227 * ms, 727 * ms}, attempts)
	assert.Equal(t, surveil.Stats{Decided: 2, Submitted: 3, Failed: 8, Resent: 1, Confirmed: 1, AlertsSubmitted: 3}, m.Stats()) // the alert record too, re-sent every 500 ms: its event never came

	n := len(attempts)
	m.Observe([]core.Event{adminEvent(now, 1, core.AdminKill, 0)}, &out) // the kill took effect
	for range 10 {
		now += 200 * ms
		m.Observe([]core.Event{washFill(now)}, &out)
		m.Tick(now, &out)
	}
	assert.Len(t, attempts, n, "a confirmed kill is never re-sent")
	assert.Zero(t, m.Pending())

	m.Observe([]core.Event{adminEvent(now, 1, core.AdminKillRelease, 0), washFill(now + 1)}, &out)
	assert.Len(t, attempts, n+1, "after a release the next detection acts again")
	require.Len(t, out.Alerts, 12)
}

// TestRetryWithoutSubmit: with Config.Submit nil, commands go to
// Output.Commands, and one whose effect has not shown within Retry.Confirm is
// emitted again.
func TestRetryWithoutSubmit(t *testing.T) {
	m, err := surveil.New(surveil.Config{
		Accounts: []surveil.Ref{{ID: 1, Owner: 9}, {ID: 2, Owner: 9}},
		Wash:     surveil.Wash{Action: surveil.ActionSuspend},
		Retry:    surveil.Retry{Confirm: 100},
	})
	require.NoError(t, err)
	var out surveil.Output
	m.Observe([]core.Event{washFill(0)}, &out)
	require.Len(t, actionCmds(out.Commands), 2)
	out.Reset()
	// The caller pushed only account 2's; account 1's was lost.
	m.Observe([]core.Event{adminEvent(50, 2, core.AdminAccountStatus, int64(core.AccountSuspended))}, &out)
	assert.Empty(t, out.Commands, "not due yet")
	m.Observe([]core.Event{washFill(100)}, &out)
	cs := actionCmds(out.Commands)
	require.Len(t, cs, 1, "account 1's suspend again, account 2's confirmed")
	assert.Equal(t, uint32(1), cs[0].Account)
	assert.Equal(t, core.CmdAccountStatus, cs[0].Kind)
}

// TestActionOnce checks that a repeated detection does not repeat the
// command, and that an operator undoing it (status back to active) re-arms it.
func TestActionOnce(t *testing.T) {
	m, err := surveil.New(surveil.Config{
		Accounts: []surveil.Ref{{ID: 1, Owner: 9}, {ID: 2, Owner: 9}},
		Wash:     surveil.Wash{Action: surveil.ActionSuspend},
	})
	require.NoError(t, err)
	fill := washFill(0)
	var out surveil.Output
	m.Observe([]core.Event{fill, fill}, &out)
	require.Len(t, out.Alerts, 2)
	require.Len(t, actionCmds(out.Commands), 2, "one suspend per account, not per alert")
	out.Reset()
	m.Observe([]core.Event{
		adminEvent(0, 1, core.AdminAccountStatus, int64(core.AccountSuspended)),
		adminEvent(0, 2, core.AdminAccountStatus, int64(core.AccountSuspended)),
		adminEvent(0, 1, core.AdminAccountStatus, int64(core.AccountActive)), fill,
	}, &out)
	cs := actionCmds(out.Commands)
	require.Len(t, cs, 1)
	assert.Equal(t, uint32(1), cs[0].Account)
	assert.Equal(t, core.CmdAccountStatus, cs[0].Kind)
}

// actionCmds returns the action commands among cs, without the alert records.
func actionCmds(cs []core.Command) []core.Command {
	var out []core.Command
	for _, c := range cs {
		if c.Kind != core.CmdAlert {
			out = append(out, c)
		}
	}
	return out
}

// TestAlertsRecorded (item 12): every alert becomes a core.CmdAlert the
// engine answers with a KindAlert event on its outbound stream, so the
// journal keeps it; a record the lane refused, or whose event does not
// appear, is submitted again until it does; beyond MaxPendingAlerts the
// oldest is given up and counted.
func TestAlertsRecorded(t *testing.T) {
	const ms = int64(time.Millisecond)
	var sent []core.Command
	refuse := 2
	m, err := surveil.New(surveil.Config{
		Accounts:         []surveil.Ref{{ID: 1, Owner: 9}, {ID: 2, Owner: 9}},
		MaxPendingAlerts: 2,
		Submit: func(c *core.Command) bool {
			require.Equal(t, core.CmdAlert, c.Kind)
			if refuse > 0 {
				refuse--
				return false
			}
			sent = append(sent, *c)
			return true
		},
	})
	require.NoError(t, err)
	var out surveil.Output
	m.Observe([]core.Event{washFill(0)}, &out)
	require.Len(t, out.Alerts, 1)
	assert.Empty(t, sent, "refused")
	for now := ms; now <= 3*ms; now += ms {
		m.Tick(now, &out)
	}
	require.Len(t, sent, 1, "retried until taken")
	c := sent[0]
	assert.Equal(t, uint64(surveil.DetectWash), c.OrigClOrdID)
	assert.Equal(t, out.Alerts[0].Seq, c.OrderID)
	assert.Equal(t, surveil.DefaultOperator, c.Operator)
	assert.Equal(t, core.CauseSurveillance, c.Cause)
	// The engine records it.
	var evs []core.Event
	eng, err := core.New(core.Config{Instruments: []core.Instrument{{ID: 1, BandLow: 1, BandHigh: 1000}}}, func(b []core.Event) { evs = append(evs, b...) })
	require.NoError(t, err)
	c.Seq, c.Time = 1, 3*ms
	eng.Apply(&c)
	eng.Flush()
	require.Len(t, evs, 1)
	assert.Equal(t, core.KindAlert, evs[0].Kind)
	assert.Equal(t, core.AdminAlert, evs[0].Reason)
	assert.Equal(t, 1, m.PendingAlerts())
	// Not seen within Retry.Confirm: sent again; seen: done.
	m.Tick(3*ms+500*ms, &out)
	require.Len(t, sent, 2)
	m.Observe(evs, &out)
	assert.Zero(t, m.PendingAlerts())
	assert.Equal(t, uint64(1), m.Stats().AlertsRecorded)
	// Bounded: three more alerts with room for two.
	refuse = 3
	m.Observe([]core.Event{washFill(600 * ms), washFill(600 * ms), washFill(600 * ms)}, &out)
	assert.Equal(t, 2, m.PendingAlerts())
	assert.Equal(t, uint64(1), m.Stats().AlertsDropped)
}

// TestMarkCloseDefaultSchedule: with the zero Config the close is 16:00 in
// New York, summer time included (20:00 UTC on 1 July 2026), and the window
// the 10 minutes before it.
func TestMarkCloseDefaultSchedule(t *testing.T) {
	m, err := surveil.New(surveil.Config{Accounts: []surveil.Ref{{ID: 1}, {ID: 2}}})
	require.NoError(t, err)
	at := func(hh, mm, ss int) int64 { return time.Date(2026, 7, 1, hh, mm, ss, 0, time.UTC).UnixNano() }
	fill := func(ts int64, px int64, seq uint64) core.Event {
		return core.Event{Kind: core.KindExecuted, Seq: seq, Time: ts, Instrument: 7, Account: 1, ContraAccount: 2,
			OrderID: seq, ContraOrderID: 100 + seq, MatchID: seq, Side: core.Buy, Price: px, Qty: 1}
	}
	var out surveil.Output
	m.Observe([]core.Event{
		fill(at(19, 40, 0), 1000, 1), // before the window: the reference
		fill(at(19, 55, 0), 1010, 2), // in the window: +1%
		fill(at(19, 59, 59), 1020, 3),
	}, &out)
	assert.Empty(t, out.Alerts, "nothing before the close")
	m.Observe([]core.Event{{Kind: core.KindAdmin, Time: at(20, 0, 0)}}, &out)
	require.Len(t, out.Alerts, 1)
	a := out.Alerts[0]
	assert.Equal(t, surveil.DetectMarkClose, a.Detector)
	assert.Equal(t, uint64(3), a.Seq)
	assert.Equal(t, int64(1000), a.Ref)
	assert.Equal(t, int64(1020), a.Price)
	assert.Equal(t, int64(20), a.Push)
}
