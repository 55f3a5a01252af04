package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/config"
	"github.com/tradecore/tradecore/surveil"
)

// TestAlertsAreAuditRecords: the event sink posts every surveillance alert
// it takes to the audit log as a surveil.alert record (decimal quantities and
// prices, evidence ids, no personal data), and the daily regulator report
// counts them (before, alerts only reached the daemon's log lines and the
// report always said 0).
func TestAlertsAreAuditRecords(t *testing.T) {
	dir := t.TempDir()
	l, closeLog, err := audit.Open(t.Context(), audit.Config{WriterConfig: audit.WriterConfig{Dir: dir}, NoCheckpoints: true,
		CommitInterval: time.Millisecond})
	require.NoError(t, err)
	file := config.Default()
	inst := file.Instruments[0]
	s := &eventSink{cur: newInterval(), post: alertRecorder(l, file, slog.New(slog.NewTextHandler(io.Discard, nil)))}
	a := surveil.Alert{Detector: surveil.DetectLayering, Action: surveil.ActionAlert, Report: true, Time: time.Now().UnixNano(), Seq: 42,
		Instrument: inst.ID, Accounts: [2]uint32{7, 9}, Owner: 3, Qty: 5, Traded: 2, Withdrawn: 5}
	a.Evidence.NOrders, a.Evidence.OrderIDs[0], a.Evidence.OrderIDs[1] = 2, 100, 101
	s.alerts.Alerts = append(s.alerts.Alerts, a, surveil.Alert{Detector: surveil.DetectWash, Action: surveil.ActionKill, Seq: 43, Instrument: inst.ID, Accounts: [2]uint32{7, 7}})
	s.takeAlerts()
	assert.Equal(t, uint64(2), s.cur.alerts)
	require.Eventually(t, func() bool { return l.Durable() >= 3 }, 10*time.Second, time.Millisecond, "the alerts did not reach the log")
	require.NoError(t, closeLog())

	r, err := audit.OpenReader(dir)
	require.NoError(t, err)
	var bodies []alertBody
	require.NoError(t, r.Read(0, 0, func(e *audit.Entry) error {
		if e.Type == recordAlert {
			h, err := audit.ParseLeaf(e.Leaf)
			require.NoError(t, err)
			require.NoError(t, audit.CheckBody(h.Body))
			var b alertBody
			require.NoError(t, json.Unmarshal(h.Body, &b))
			bodies = append(bodies, b)
		}
		return nil
	}))
	require.Len(t, bodies, 2)
	assert.Equal(t, "layering", bodies[0].Detector)
	assert.True(t, bodies[0].Report)
	assert.Equal(t, inst.LotsToQty(5).String(), bodies[0].Qty)
	assert.Equal(t, []uint64{100, 101}, bodies[0].OrderIDs)
	assert.Equal(t, uint32(7), bodies[0].Account)
	assert.Equal(t, "kill", bodies[1].Action)

	rep, err := audit.BuildReport(t.Context(), dir, time.Now(), "tradecore")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), rep.Alerts[recordAlert])
}
