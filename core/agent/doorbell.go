package agent

import "sync/atomic"

// Doorbell wakes a parked runner. The runner arms it (sleeping = 1), checks
// for work once more, and waits in the kernel on word; whoever hands it work
// calls Ring after publishing, which costs one atomic load while the runner
// is awake, and one swap, one add and one futex wake when it sleeps.
//
// No wake-up is lost: the runner stores sleeping before its last check, a
// ringer publishes its work before it loads sleeping; both are sequentially
// consistent, so either the check sees the work or the ringer sees the
// runner asleep and moves word, and a futex wait on a moved word returns at
// once.
type Doorbell struct {
	_        [64]byte
	sleeping atomic.Uint32
	word     uint32 // atomic; a plain uint32 so the futex calls can take its address
	_        [56]byte
}

// NewDoorbell returns a doorbell for one runner.
func NewDoorbell() *Doorbell { return new(Doorbell) }

// Ring wakes the runner if it is parked (or about to park).
func (d *Doorbell) Ring() {
	if d.sleeping.Load() != 0 && d.sleeping.Swap(0) != 0 {
		atomic.AddUint32(&d.word, 1)
		futexWake(&d.word)
	}
}

// arm marks the runner as about to sleep and returns the word to wait on.
func (d *Doorbell) arm() uint32 {
	gen := atomic.LoadUint32(&d.word)
	d.sleeping.Store(1)
	return gen
}

func (d *Doorbell) disarm() { d.sleeping.Store(0) }

// wait parks until the doorbell rings or ns nanoseconds pass.
func (d *Doorbell) wait(gen uint32, ns int64) {
	futexWait(&d.word, gen, ns)
	d.sleeping.Store(0)
}

// Arm, Disarm and Wait let a goroutine that is not a runner wait for work
// handed to it through the doorbell (a gateway session's writer), the way a
// runner parks: gen := d.Arm(); check for work once more; if there is some,
// d.Disarm(), else d.Wait(gen, ns). The goroutine waits in the kernel on a
// futex, holding its thread, so the ringer's wake-up does not go through the
// Go scheduler's run queues.
func (d *Doorbell) Arm() uint32 { return d.arm() }

// Disarm cancels an Arm whose recheck found work.
func (d *Doorbell) Disarm() { d.disarm() }

// Wait parks the calling thread until the doorbell rings or ns nanoseconds
// pass (and returns at once if it rang since Arm returned gen).
func (d *Doorbell) Wait(gen uint32, ns int64) { d.wait(gen, ns) }
