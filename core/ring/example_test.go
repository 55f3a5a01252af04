package ring_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/tradecore/tradecore/core/ring"
)

// The engine's outbound path: the publisher may only send events the
// journaler has made durable, so it is created after the journaler, and the
// journaler releases a batch only once it is synced.
func ExampleRing() {
	type Event struct{ Seq uint64 }
	ctx := context.Background()

	events, err := ring.NewRing[Event](1024, ring.WaitStrategy{}) // Park
	if err != nil {
		panic(err)
	}
	journaler, _ := events.NewConsumer()
	publisher, _ := events.NewConsumer(journaler) // sees only what the journaler released

	var wg sync.WaitGroup
	wg.Go(func() { // journaler
		for journaler.Released() < 3 {
			if journaler.Wait(ctx) != nil {
				return
			}
			batch := journaler.Poll()
			// ... append batch to the log, fsync ...
			journaler.Release(len(batch))
		}
	})
	wg.Go(func() { // publisher
		for publisher.Released() < 3 {
			if publisher.Wait(ctx) != nil {
				return
			}
			batch := publisher.Poll()
			for _, e := range batch {
				fmt.Println("send", e.Seq)
			}
			publisher.Release(len(batch))
		}
	})

	// The engine: claim a window, write events into it, commit.
	for seq := uint64(1); seq <= 3; seq++ {
		w, err := events.Claim(ctx, 1)
		if err != nil {
			panic(err)
		}
		w[0] = Event{Seq: seq}
		events.Commit(1)
	}
	wg.Wait()
	// Output:
	// send 1
	// send 2
	// send 3
}

// The engine's inbound path: gateway goroutines push commands; the engine
// drains them in batches.
func ExampleMPSC() {
	type Command struct{ Session, N uint64 }
	ctx := context.Background()

	commands, err := ring.NewMPSC[Command](1024, ring.WaitStrategy{})
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	for s := range uint64(2) {
		wg.Go(func() { // a gateway session
			for n := range uint64(3) {
				if err := commands.Push(ctx, &Command{Session: s, N: n}); err != nil {
					return
				}
			}
		})
	}

	batch := make([]Command, 64)
	perSession := map[uint64]uint64{}
	for total := 0; total < 6; {
		if commands.Wait(ctx) != nil {
			break
		}
		n := commands.Drain(batch)
		for _, c := range batch[:n] {
			perSession[c.Session]++ // each session's commands arrive in its order
		}
		total += n
	}
	wg.Wait()
	fmt.Println(perSession[0], perSession[1])
	// Output: 3 3
}
