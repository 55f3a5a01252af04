package surveil

import (
	"math"

	"github.com/tradecore/tradecore/core"
)

// An action (throttle, suspend, kill of one account) is none, pending
// (decided, not yet seen to take effect) or confirmed (its KindAdmin event
// was seen). A pending action is submitted again while it stays pending:
// after a failed submission by a backoff from Retry.Min doubling up to
// Retry.Max, after a successful one when Retry.Confirm has passed. A
// confirmed action is never submitted again until an admin event undoes it.
const (
	actNone uint8 = iota
	actPending
	actConfirmed
)

type actState struct {
	state  uint8
	queued bool   // in Monitor.retry
	fails  uint16 // consecutive failed submissions
	due    int64  // next attempt (engine time)
}

type retryRef struct {
	acct   int32
	action Action
}

// Stats counts the Monitor's action submissions and alert records, for
// metrics.
type Stats struct {
	Decided   uint64 // actions decided (once per account and action until undone)
	Submitted uint64 // submissions taken by Config.Submit (or emitted in Output.Commands)
	Failed    uint64 // submissions Config.Submit refused (lane full)
	Resent    uint64 // submissions repeated because no effect was seen within Retry.Confirm
	Confirmed uint64 // pending actions whose effect appeared in the event stream
	// The same for the alerts' core.CmdAlert records: submissions taken and
	// refused, records seen in the event stream (the journal has them), and
	// alerts given up unrecorded because Config.MaxPendingAlerts were
	// already waiting.
	AlertsSubmitted, AlertsFailed, AlertsRecorded, AlertsDropped uint64
}

// Stats returns the submission counters.
func (m *Monitor) Stats() Stats { return m.stats }

// Pending reports how many actions are decided but not yet seen to take
// effect.
func (m *Monitor) Pending() int {
	n := 0
	for _, r := range m.retry {
		if m.accts[r.acct].act[r.action].state == actPending {
			n++
		}
	}
	return n
}

// Tick re-submits the actions whose retry is due at now, a time on the
// engine's clock (the Time the sequencer would stamp now). Observe does this
// by the Time of each batch's last event; call Tick as well when the event
// stream may go quiet, for example from the consumer's idle loop.
func (m *Monitor) Tick(now int64, out *Output) {
	if now >= m.retryAt {
		m.resubmit(now, out)
	}
}

// act decides action for account a at engine time now.
func (m *Monitor) act(a *acct, action Action, now int64, out *Output) {
	if action <= ActionAlert || action >= actions {
		return
	}
	st := &a.act[action]
	if st.state != actNone {
		return
	}
	st.state, st.fails = actPending, 0
	m.stats.Decided++
	m.submit(a, action, now, out)
	if !st.queued {
		st.queued = true
		m.retry = append(m.retry, retryRef{acct: int32(a.idx(m)), action: action})
	}
	m.retryAt = min(m.retryAt, st.due)
}

func (a *acct) idx(m *Monitor) int { return int(m.slot[a.ref.ID]) - 1 }

// submit sends action's command once and schedules the next attempt.
func (m *Monitor) submit(a *acct, action Action, now int64, out *Output) {
	m.cmd = core.Command{Account: a.ref.ID, Tag: m.cfg.Tag, Operator: m.cfg.Operator, Cause: core.CauseSurveillance}
	c := &m.cmd // in the Monitor, so handing it to Submit does not allocate
	switch action {
	case ActionThrottle:
		c.Kind, c.OrigClOrdID, c.Qty = core.CmdSetLimit, uint64(core.LimitOrdersPerSec), m.cfg.ThrottleOrdersPerSec
	case ActionSuspend:
		c.Kind, c.Qty = core.CmdAccountStatus, int64(core.AccountSuspended)
	case ActionKill:
		c.Kind = core.CmdKill
	}
	st := &a.act[action]
	r := &m.cfg.Retry
	if m.cfg.Submit == nil {
		out.Commands = append(out.Commands, *c)
	} else if !m.cfg.Submit(c) {
		m.stats.Failed++
		st.fails++
		wait := r.Max
		if n := st.fails - 1; n < 62 && r.Min <= r.Max>>n {
			wait = r.Min << n
		}
		st.due = satAdd(now, wait)
		return
	}
	m.stats.Submitted++
	st.fails = 0
	st.due = satAdd(now, r.Confirm)
}

// resubmit submits every pending action whose attempt is due at now and
// forgets the ones no longer pending.
func (m *Monitor) resubmit(now int64, out *Output) {
	next := int64(math.MaxInt64)
	for i := 0; i < len(m.retry); {
		r := m.retry[i]
		a := &m.accts[r.acct]
		st := &a.act[r.action]
		if st.state != actPending {
			st.queued = false
			m.retry[i] = m.retry[len(m.retry)-1]
			m.retry = m.retry[:len(m.retry)-1]
			continue
		}
		if st.due <= now {
			if st.fails == 0 {
				m.stats.Resent++
			}
			m.submit(a, r.action, now, out)
		}
		next = min(next, st.due)
		i++
	}
	m.retryAt = min(next, m.resubmitAlerts(now, out))
}

// admin follows the effect of admin commands on the watched accounts: an
// action's KindAdmin event confirms it (whoever sent the command), and an
// event that undoes a confirmed action re-arms it, so the next detection acts
// again. An undo seen while the action is still pending does not cancel it:
// the detection stands and the command is retried.
func (m *Monitor) admin(ev *core.Event) {
	a := m.acct(ev.Account)
	if a == nil {
		return
	}
	switch ev.Reason {
	case core.AdminKill:
		m.confirm(a, ActionKill)
	case core.AdminKillRelease:
		m.undo(a, ActionKill)
	case core.AdminAccountStatus:
		if ev.Qty != int64(core.AccountActive) {
			m.confirm(a, ActionSuspend)
		} else {
			m.undo(a, ActionSuspend)
		}
	case core.AdminSetLimit:
		if core.LimitID(ev.OrigClOrdID) == core.LimitOrdersPerSec {
			if ev.Qty >= 1 && ev.Qty <= m.cfg.ThrottleOrdersPerSec {
				m.confirm(a, ActionThrottle)
			} else {
				m.undo(a, ActionThrottle)
			}
		}
	}
}

func (m *Monitor) confirm(a *acct, action Action) {
	st := &a.act[action]
	if st.state == actPending {
		m.stats.Confirmed++
	}
	st.state = actConfirmed
}

func (m *Monitor) undo(a *acct, action Action) {
	if st := &a.act[action]; st.state == actConfirmed {
		st.state = actNone
	}
}
