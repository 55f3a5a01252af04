// Package surveil detects market manipulation in real time, as a consumer of
// the engine's event stream (the same []core.Event batches the journaler and
// the publisher read from the outbound ring). Detectors run outside the
// engine thread and never touch the engine: what they decide is returned as
// data.
//
// Use it like this:
//
//	m, err := surveil.New(surveil.Config{Accounts: surveil.RefsOf(engineCfg.Accounts)})
//	var out surveil.Output
//	for batch := range outboundBatches { // every batch, in order, no gaps
//		m.Observe(batch, &out)
//		report(out.Alerts)              // the alert log / operator console / regulator feed
//		for _, c := range out.Commands {
//			inbound.Push(c)             // sequenced by the engine's loop like any command
//		}
//		out.Reset()
//	}
//
// Each Alert carries its detector, the account(s), the instrument, the event
// Time and Seq of the event that completed the pattern (never the wall clock,
// so a replay of the journal yields the same alerts), the action taken and
// its evidence: order ids, match ids and the Seq of cancel events.
//
// Actions (per detector, Config): ActionAlert records only; ActionThrottle,
// ActionSuspend and ActionKill also append a core.CmdSetLimit
// (LimitOrdersPerSec), core.CmdAccountStatus (suspended) or core.CmdKill for
// each account to Output.Commands. The caller pushes them into the engine's
// inbound ring, so they are sequenced, journaled and deterministic, and the
// engine answers them with KindAdmin events. A command is emitted once per
// account and action until an admin event undoes it (status back to active,
// kill released, a different orders/s limit). Report marks an alert as a
// regulator-report record for the caller to file.
//
// Detectors: wash trades (DetectWash), layering / spoofing (DetectLayering),
// rapid order placement (DetectRapid), pump and dump (DetectPumpDump) and
// front-running (DetectFrontRun). docs/surveillance.md lists each
// alert's trigger, thresholds and defaults, evidence and actions.
//
// Ownership: a Monitor is owned by one goroutine (it is not safe for
// concurrent use); it holds no resources and needs no closing. Output is
// owned by the caller and reused across calls. State is bounded: fixed
// per-account arrays allocated by New for the configured accounts (accounts
// not configured are not watched), per beneficial owner and per firm, and one
// last-trade price per instrument id; windows expire by event Time. Observe does not allocate once Output has
// grown to its working size.
package surveil
