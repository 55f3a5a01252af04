package pgstore

import "context"

// Entry is one leaf of the local log.
type Entry struct {
	// Index is the leaf index, from 0, with no gaps.
	Index uint64
	// Time is the record's time in nanoseconds since the Unix epoch (UTC); it
	// decides the entry's daily partition.
	Time int64
	// Type is the dotted record type ("order.accepted").
	Type string
	// Leaf is the record's canonical JSON bytes, stored as they are.
	Leaf []byte
}

// Source is the local log as the copier reads it. The copier calls it from
// its own goroutine, never from the engine's path; an implementation must
// not block the log's writer.
type Source interface {
	// Size returns the number of entries that are durable in the local log:
	// entries [0, Size) can be read.
	Size(ctx context.Context) (uint64, error)
	// Read appends the entries [from, to) to dst, in index order, and returns
	// it. It may return fewer (at least one when from < to <= Size). The
	// copier is done with the returned entries' Leaf bytes before its next
	// call to Read, so they may alias the source's buffers.
	Read(ctx context.Context, from, to uint64, dst []Entry) ([]Entry, error)
}
