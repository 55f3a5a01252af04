// Package surveil detects market manipulation in real time, as a consumer of
// the engine's event stream (the same []core.Event batches the journaler and
// the publisher read from the outbound ring). Detectors run outside the
// engine thread and never touch the engine: alerts are returned as data, and
// actions are commands handed to a submit function the caller provides.
//
// Use it like this:
//
//	m, err := surveil.New(surveil.Config{
//		Accounts: surveil.RefsOf(engineCfg.Accounts),
//		Submit:   func(c *core.Command) bool { return control.TryPush(c) }, // never blocks; copies *c
//	})
//	var out surveil.Output
//	for batch := range outboundBatches { // every batch, in order, no gaps
//		m.Observe(batch, &out)
//		report(out.Alerts) // the alert log / operator console / regulator feed
//		out.Reset()
//	}
//	// when no batch comes for a while: m.Tick(engineClockNow, &out)
//
// Each Alert is a fixed-size value without pointers: its detector, the
// account(s), owner or firm, the instrument, the Time and Seq of the event
// that completed the pattern (never the wall clock, so a replay of the
// journal yields the same alerts), quantities and prices, the action taken,
// and its Evidence: order ids, match ids and the Seq of withdrawal events.
//
// Actions (per detector, Config): ActionAlert records only; ActionThrottle,
// ActionSuspend and ActionKill also submit a core.CmdSetLimit
// (LimitOrdersPerSec), core.CmdAccountStatus (suspended) or core.CmdKill for
// each account. An action stays pending until the engine's KindAdmin event
// showing its effect appears in the stream: a submission the lane refused is
// retried with a doubling backoff (Retry.Min up to Retry.Max), one it took
// is re-sent after Retry.Confirm without effect. A confirmed action is never
// re-sent until an admin event undoes it (status back to active, kill
// released, another orders/s limit). With Config.Submit nil the commands go
// to Output.Commands instead, re-emitted there until confirmed.
//
// Detectors, all on by default: wash trades (DetectWash), layering
// (DetectLayering) and single-order spoofing (DetectSpoofing), rapid order
// placement (DetectRapid), pump and dump (DetectPumpDump), front-running
// (DetectFrontRun), momentum ignition (DetectRamp) and marking the close
// (DetectMarkClose). docs/surveillance.md lists each alert's trigger,
// thresholds and defaults, evidence and actions, and the Alert fields.
//
// Ownership: a Monitor is owned by one goroutine (it is not safe for
// concurrent use); it holds no resources and needs no closing. Output is
// owned by the caller and reused across calls. State is bounded and
// allocated by New: per trader (a beneficial owner's accounts together, or
// one owner-less account) a table of 16 open orders and a few patterns; per
// account, per owner and per firm fixed windows and rings; one last-trade
// price per instrument id. Windows expire by event Time. Observe does not
// allocate once Output has grown to its working size.
package surveil
