package ring

import "errors"

var (
	// ErrSize is returned by NewMPSC and NewRing when size is not a power of
	// two between 2 and MaxSize. Round the configured size up to the next
	// power of two.
	ErrSize = errors.New("ring: invalid size")

	// ErrWaitStrategy is returned by the constructors and by
	// ParseWaitStrategy for an unknown mode or a negative spin count. Use
	// "park", "spin-yield" or "busy-spin" and Spins >= 0.
	ErrWaitStrategy = errors.New("ring: invalid wait strategy")

	// ErrStarted is returned by Ring.NewConsumer once the producer has
	// claimed or published for the first time. Create every consumer before
	// starting the producer.
	ErrStarted = errors.New("ring: producer already started")

	// ErrConsumer is returned by Ring.NewConsumer when a consumer passed as
	// after is nil or belongs to another ring. Gate only on consumers of the
	// same ring.
	ErrConsumer = errors.New("ring: invalid consumer")
)
