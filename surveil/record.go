package surveil

import "github.com/tradecore/tradecore/core"

// Alerts are recorded in the engine's event stream, so the journal keeps
// them: each alert is submitted as a core.CmdAlert, which the engine
// sequences and answers with a KindAlert event, and it is submitted again,
// as actions are (Retry), until that event appears. At most
// Config.MaxPendingAlerts wait at a time; when more arrive, the oldest is
// given up and counted in Stats.AlertsDropped (it is still in the Output the
// caller logs).

type alertRec struct {
	cmd   core.Command
	due   int64  // next attempt (engine time)
	fails uint16 // consecutive failed submissions
}

// recordAlerts submits the alerts Observe found (out.Alerts[from:]).
func (m *Monitor) recordAlerts(out *Output, from int, now int64) {
	for i := from; i < len(out.Alerts); i++ {
		al := &out.Alerts[i]
		if len(m.alerts) == cap(m.alerts) {
			copy(m.alerts, m.alerts[1:])
			m.alerts = m.alerts[:len(m.alerts)-1]
			m.stats.AlertsDropped++
		}
		m.alerts = append(m.alerts, alertRec{cmd: core.Command{Kind: core.CmdAlert, Instrument: al.Instrument,
			Account: al.Accounts[0], ClOrdID: uint64(al.Accounts[1]), OrderID: al.Seq, OrigClOrdID: uint64(al.Detector),
			Qty: al.Qty, Price: al.Price, Tag: m.cfg.Tag, Operator: m.cfg.Operator, Cause: core.CauseSurveillance}})
		r := &m.alerts[len(m.alerts)-1]
		m.sendAlert(r, now, out)
		m.retryAt = min(m.retryAt, r.due)
	}
}

// sendAlert submits alert record r once and schedules its next attempt.
func (m *Monitor) sendAlert(r *alertRec, now int64, out *Output) {
	m.cmd = r.cmd // in the Monitor, so handing it to Submit does not allocate
	rt := &m.cfg.Retry
	if m.cfg.Submit == nil {
		out.Commands = append(out.Commands, m.cmd)
	} else if !m.cfg.Submit(&m.cmd) {
		m.stats.AlertsFailed++
		r.fails++
		wait := rt.Max
		if n := r.fails - 1; n < 62 && rt.Min <= rt.Max>>n {
			wait = rt.Min << n
		}
		r.due = satAdd(now, wait)
		return
	}
	m.stats.AlertsSubmitted++
	r.fails = 0
	r.due = satAdd(now, rt.Confirm)
}

// alertSeen confirms the alert record a KindAlert event answers.
func (m *Monitor) alertSeen(ev *core.Event) {
	for i := range m.alerts {
		c := &m.alerts[i].cmd
		if c.OrigClOrdID == ev.OrigClOrdID && c.OrderID == ev.MatchID && c.Account == ev.Account && c.Instrument == ev.Instrument {
			m.alerts = append(m.alerts[:i], m.alerts[i+1:]...)
			m.stats.AlertsRecorded++
			return
		}
	}
}

// resubmitAlerts submits the alert records due at now and returns the next
// due time.
func (m *Monitor) resubmitAlerts(now int64, out *Output) int64 {
	next := int64(1<<63 - 1)
	for i := range m.alerts {
		r := &m.alerts[i]
		if r.due <= now {
			m.sendAlert(r, now, out)
		}
		next = min(next, r.due)
	}
	return next
}

// PendingAlerts reports how many alerts wait to be seen in the event stream.
func (m *Monitor) PendingAlerts() int { return len(m.alerts) }
