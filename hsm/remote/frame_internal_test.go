package remote

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzReadFrame: any byte stream either yields a frame within the limit or
// an error; never a panic, never a buffer larger than the limit.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 1, 'h', 'i'}, 16)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, DefaultMaxRequest)
	f.Add([]byte{0, 0, 2, 0, 1}, 1024)
	f.Fuzz(func(t *testing.T, stream []byte, limit int) {
		if limit < 0 || limit > 1<<20 {
			return
		}
		buf, err := readFrame(bytes.NewReader(stream), nil, limit)
		if err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(stream))
		if len(buf) != n || n > limit || !bytes.Equal(buf, stream[4:4+n]) {
			t.Fatalf("frame of %d bytes (announced %d, limit %d)", len(buf), n, limit)
		}
	})
}
