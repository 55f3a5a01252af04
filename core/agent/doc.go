// Package agent runs duty-cycle agents on locked OS threads, so that nothing
// on the trading path waits for the Go scheduler. It implements the threading
// model of docs/threading.md, after Aeron's agents, agent runners and idle
// strategies (Agrona) and the LMAX Disruptor's wait strategies.
//
// # What to use
//
//   - Agent: one worker with a duty cycle. DoWork polls for work, does it
//     without blocking, and says how much it did. The engine loop
//     (core.Loop), a load generator, the journaler, the publisher and
//     network sessions are agents.
//   - Run: runs one or more agents on the calling goroutine, locked to its OS
//     thread and optionally pinned to a CPU. Several agents on one runner
//     share its thread round-robin (Aeron's shared mode); one agent per
//     runner is the dedicated mode. Modes are chosen by configuration
//     (Mode, Plan), not by code.
//   - IdleStrategy: what a runner does when a duty cycle found no work:
//     busy-spin, yield the CPU to other threads, sleep, or back off (spin,
//     then yield, then park).
//   - Doorbell: how a parked runner is woken. A runner parks in the kernel
//     on a futex word (Linux); whoever hands it work rings the doorbell,
//     which costs one atomic load when the runner is awake and one futex
//     wake when it sleeps. No goroutine is made runnable and no channel is
//     involved, so the wake-up never queues behind the Go scheduler.
//     Rings take a doorbell (ring.MPSC.SetDoorbell, ring.Consumer.SetDoorbell)
//     and ring it after every publication.
//
// # Who closes what
//
// Run returns when its context ends and every agent that implements Drainer
// reports it is drained (or the drain timeout passes), after calling each
// agent's OnClose (Closer) on the runner's thread. Agents own their
// resources; the runner owns only its thread's locking and pinning, which it
// undoes before returning.
//
// # The Go scheduler
//
// A runner holds a P (a Go scheduler slot) for as long as it runs, and it
// runs all the time when it busy-spins. Start the process with GOMAXPROCS
// above the number of spinning runners (EnsureProcs), or the rest of the
// program — timers, the network poller, signal handling, the garbage
// collector — waits for sysmon's preemption, about 10 ms.
package agent
