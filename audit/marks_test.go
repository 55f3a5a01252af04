package audit_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
)

func TestSeqMarks(t *testing.T) {
	m := &audit.SeqMarks{Every: 4}
	require.Zero(t, m.Floor(100), "no marks: the log's start")
	require.True(t, m.Want(8))
	require.False(t, m.Want(9))
	m.Add(4, 10)
	m.Add(8, 25)
	m.Add(8, 30) // repeated: ignored
	m.Add(6, 31) // older: ignored
	require.Equal(t, 2, m.Len())
	for seq, want := range map[uint64]uint64{1: 0, 3: 0, 4: 10, 7: 10, 8: 25, 1000: 25} {
		require.Equal(t, want, m.Floor(seq), "seq %d", seq)
	}
}
