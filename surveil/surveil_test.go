package surveil_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/surveil"
)

// TestScenarios runs every scenario through a real engine: the "fire" ones
// must raise exactly the listed alerts with the listed evidence, the benign
// look-alikes none. The full output is compared with testdata/*.golden.
func TestScenarios(t *testing.T) {
	type want struct {
		det      surveil.Detector
		accounts [2]uint32
		orders   []uint64
		matches  []uint64
		cancels  int
		action   surveil.Action
	}
	tests := []struct {
		script   string
		alerts   []want
		commands []core.CmdKind
	}{
		{script: "wash_fire", alerts: []want{{det: surveil.DetectWash, accounts: [2]uint32{2, 1}, orders: []uint64{2, 1}, matches: []uint64{1}, action: surveil.ActionAlert}}},
		{script: "wash_kill", alerts: []want{{det: surveil.DetectWash, accounts: [2]uint32{2, 1}, orders: []uint64{3, 1}, matches: []uint64{1}, action: surveil.ActionKill}},
			commands: []core.CmdKind{core.CmdKill, core.CmdKill}},
		{script: "wash_benign"},
		{script: "layering_fire", alerts: []want{{det: surveil.DetectLayering, accounts: [2]uint32{1}, orders: []uint64{3, 4, 5, 6}, matches: []uint64{2}, cancels: 4, action: surveil.ActionAlert}}},
		{script: "layering_benign"},
		{script: "rapid_fire", alerts: []want{{det: surveil.DetectRapid, accounts: [2]uint32{1}, action: surveil.ActionThrottle}},
			commands: []core.CmdKind{core.CmdSetLimit}},
		{script: "rapid_benign"},
		{script: "pump_fire", alerts: []want{{det: surveil.DetectPumpDump, accounts: [2]uint32{1, 2}, orders: []uint64{7, 8, 9, 10, 12}, matches: []uint64{2, 3, 4, 5, 6}, action: surveil.ActionAlert}}},
		{script: "pump_benign"},
		{script: "front_fire", alerts: []want{{det: surveil.DetectFrontRun, accounts: [2]uint32{1, 2}, orders: []uint64{2, 3}, matches: []uint64{1}, action: surveil.ActionSuspend}},
			commands: []core.CmdKind{core.CmdAccountStatus}},
		{script: "front_benign"},
	}
	for _, tt := range tests {
		t.Run(tt.script, func(t *testing.T) {
			res := runScript(t, tt.script)
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
		})
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
		{"cancel pct", surveil.Config{Layering: surveil.Layering{CancelPct: 101}}, "Layering.CancelPct"},
		{"rapid window", surveil.Config{Rapid: surveil.Rapid{Window: 3}}, "Rapid.Window"},
		{"throttle", surveil.Config{ThrottleOrdersPerSec: -1}, "ThrottleOrdersPerSec"},
		{"pump accounts", surveil.Config{PumpDump: surveil.PumpDump{MinAccounts: 9}}, "PumpDump.MinAccounts"},
		{"pump rise", surveil.Config{PumpDump: surveil.PumpDump{RiseBps: -5}}, "PumpDump.RiseBps"},
		{"front qty", surveil.Config{FrontRun: surveil.FrontRun{LargeQty: -1}}, "FrontRun.LargeQty"},
		{"front action", surveil.Config{FrontRun: surveil.FrontRun{Action: 7}}, "FrontRun.Action"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := surveil.New(tt.cfg)
			require.ErrorIs(t, err, surveil.ErrConfig)
			require.Contains(t, err.Error(), tt.field)
		})
	}
	_, err := surveil.New(surveil.Config{})
	require.NoError(t, err, "the zero Config works")
}

// TestActionOnce checks that a repeated detection does not repeat the
// command, and that an operator undoing it (status back to active) re-arms it.
func TestActionOnce(t *testing.T) {
	m, err := surveil.New(surveil.Config{
		Accounts: []surveil.Ref{{ID: 1, Owner: 9}, {ID: 2, Owner: 9}},
		Wash:     surveil.Wash{Action: surveil.ActionSuspend},
	})
	require.NoError(t, err)
	fill := core.Event{Kind: core.KindExecuted, Instrument: 1, Account: 1, ContraAccount: 2, OrderID: 2, ContraOrderID: 1, MatchID: 1, Side: core.Buy, Price: 10, Qty: 1, Leaves: 1, ContraLeaves: 1}
	var out surveil.Output
	m.Observe([]core.Event{fill, fill}, &out)
	require.Len(t, out.Alerts, 2)
	require.Len(t, out.Commands, 2, "one suspend per account, not per alert")
	out.Reset()
	m.Observe([]core.Event{{Kind: core.KindAdmin, Reason: core.AdminAccountStatus, Account: 1, Qty: int64(core.AccountActive)}, fill}, &out)
	require.Len(t, out.Commands, 1)
	assert.Equal(t, uint32(1), out.Commands[0].Account)
	assert.Equal(t, core.CmdAccountStatus, out.Commands[0].Kind)
}
