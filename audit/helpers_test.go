package audit

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/bench"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/internal/audittest"
)

var testInstruments = []InstrumentScale{{ID: 1, Symbol: "BENCH", Tick: "0.01", Lot: "100"}}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testClock is a controllable clock.
type testClock struct{ t time.Time }

func (c *testClock) Now() time.Time { return c.t }

// engineLog writes n random limit orders through the real engine into a log
// in dir with its commands and events, committing every batch commands, and
// returns the keys and the commands (with Seq and Time set).
type engineLog struct {
	dir  string
	keys *audittest.Keys
	cmds []core.Command
	evs  int
	log  *Log
	cls  func() error
}

func openTestLog(t *testing.T, dir string, keys *audittest.Keys, mut ...func(*Config)) (*Log, func() error) {
	t.Helper()
	cfg := Config{
		WriterConfig:       WriterConfig{Dir: dir, Instruments: testInstruments, Logger: quiet()},
		Signer:             keys.Signer(),
		ExternalCommit:     true,
		CheckpointInterval: time.Hour, // tests sign explicitly
	}
	for _, m := range mut {
		m(&cfg)
	}
	l, cls, err := Open(context.Background(), cfg)
	require.NoError(t, err)
	return l, cls
}

func writeEngineLog(t *testing.T, dir string, n, batch int, mut ...func(*Config)) *engineLog {
	t.Helper()
	keys := audittest.New("tradecore", time.Now().Add(-time.Hour))
	l, cls := openTestLog(t, dir, keys, mut...)
	el := &engineLog{dir: dir, keys: keys, log: l, cls: cls}
	w := l.Writer()
	var out []core.Event
	eng, err := core.New(bench.EngineConfig(1<<16), func(evs []core.Event) { out = append(out, evs...) })
	require.NoError(t, err)
	cmds := bench.RandomLimits(7, n, 30)
	t0 := time.Now().Add(-time.Minute).UnixNano()
	for i := range cmds {
		c := &cmds[i]
		c.Seq, c.Time = uint64(i+1), t0+int64(i)*1000
		_, err := w.AppendCommand(c)
		require.NoError(t, err)
		out = out[:0]
		eng.Apply(c)
		eng.Flush()
		for j := range out {
			_, err := w.AppendEvent(&out[j])
			require.NoError(t, err)
			el.evs++
		}
		if (i+1)%batch == 0 {
			require.NoError(t, w.Commit())
			if (i+1)%(batch*4) == 0 {
				_, err := l.Checkpoint(context.Background())
				require.NoError(t, err)
			}
		}
	}
	require.NoError(t, w.Commit())
	el.cmds = cmds
	return el
}

func (el *engineLog) close(t *testing.T) {
	t.Helper()
	require.NoError(t, el.cls())
}

func (el *engineLog) opts() VerifyOptions {
	return VerifyOptions{Manifest: el.keys.JSON(), PinnedFirstKey: el.keys.FirstID()}
}
