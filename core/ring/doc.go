// Package ring moves fixed-size values between goroutines through
// preallocated, cache-line padded ring buffers, without locks and without
// allocating per value. It carries the engine's commands in and its events
// out (see /DESIGN.md, "Data flow").
//
// # What to use
//
//   - MPSC: many producers, one consumer. The gateways' sessions TryPush (or
//     Push, PushBatch) commands; the engine goroutine Waits and Drains them
//     in batches. Values are copied in and out.
//   - Ring: one producer, several consumers, each seeing every value in
//     place (disruptor style). The engine Claims a window, writes its events
//     into it and Commits; or it Publishes a batch by copy. The journaler is
//     a Consumer that Polls, writes and fsyncs, and only then Releases; the
//     publisher is a Consumer created with NewConsumer(journaler), so it
//     sees only events the journaler has made durable. The producer never
//     overwrites a slot before every consumer released it.
//   - WaitStrategy: how waiters wait — Park (the zero value: spin briefly,
//     then block until signalled), SpinYield (spin, then runtime.Gosched) or
//     BusySpin (never yield; one core per spinning goroutine). Configuration
//     names parse with ParseWaitStrategy. A consumer with nothing to read
//     and a producer facing a full ring both wait with the ring's strategy;
//     every blocking call takes a context and returns ctx.Err() when it is
//     done.
//
// Sizes are powers of two from 2 to MaxSize; values are any type, but a
// pointer-free struct keeps the garbage collector out of the buffers.
//
// # Who closes what
//
// Nothing: a ring owns no goroutine and no OS resource, so it has no Close.
// Stop its users by cancelling the context their Wait, Push, Claim or
// Publish calls take, and let the garbage collector take the ring. To drain
// on shutdown, stop the producer, then let each Ring consumer run until its
// Released equals the Ring's Published (for an MPSC, until Len is 0).
// Every Ring consumer must keep releasing: a consumer that stops reading
// stops the producer once the ring is full.
//
// # Memory layout
//
// Every counter written by one goroutine and read by others sits alone on
// its own 64-byte cache line (CacheLine), with a line of padding before the
// first, so no two goroutines write the same line in steady state:
//
//	MPSC:     | pad | tail (producers' CAS) | head, prodSleepers (consumer stores head once per Drain) |
//	          | consumer's sleeping flag | read-only: mask, slots, wake channel, strategy | consumer's pos |
//	          slots: []{seq uint64; val T}, one sequence per slot
//	Ring:     | pad | cursor (producer, once per Commit/Publish) | producer-private: next, claim, gate cache |
//	          | producer's sleeping flag | read-only: mask, buf, strategy, leaves | setup mutex |
//	Consumer: | pad | released (one store per Release) | private: pos, cached limit, gates | sleeping flag |
//	          buf: []T, contiguous, so a poll or claim window is a plain slice
//
// Positions are uint64 counts that never wrap in practice (2^64 values);
// the slot of position p is p & (size-1).
//
// # Memory ordering
//
// Go's sync/atomic operations are sequentially consistent (the Go memory
// model, https://go.dev/ref/mem): a load that observes a store
// synchronises with it, and all atomics fall into one total order.
//
// MPSC is a bounded queue after Dmitry Vyukov's: a producer claims position
// p with a CAS on tail, but only while p - head < size (head is what the
// consumer has finished copying out); it writes the value, then stores the
// slot's sequence as p+1. The consumer reads slot p only after loading
// sequence p+1 there, so it sees the whole value; it stops at the first slot
// not yet published, so a producer preempted between claim and publish
// delays the consumer but is never read torn. Each slot's publication is a
// separate atomic load (a plain load on amd64), because producers finish
// out of order; what is batched is everything else: the consumer stores
// head once per Drain, and producers load it once per push.
//
// Ring is a disruptor: the producer writes slots, then stores cursor once
// per batch; a consumer loads the minimum of its gates (cursor, or the
// released counts of the consumers it comes after) once, and every slot
// below it is readable; it stores its released count once per Release. The
// producer writes slot p only after loading, from every leaf consumer, a
// released count above p - size; gated consumers are never ahead of their
// gates, so the leaves bound everybody.
//
// Parking: a waiter sets its sleeping flag (and, on a Ring, a count on
// every sequence it waits on) and then re-checks; a publisher stores its
// sequence and then loads the flag or count. By sequential consistency one
// of the two sees the other, so no wakeup is lost; the token goes into a
// 1-buffered channel, so it is never lost either, and a stale token costs
// one spurious re-check. When nobody sleeps, a publisher pays one atomic
// load. Producers parked on a full MPSC share one token, passed on by each
// producer that finds room.
//
// Building with -tags invariants (make test does) adds self-checks that
// every claim stays behind every consumer and every poll behind its gates.
package ring
