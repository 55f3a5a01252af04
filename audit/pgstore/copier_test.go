package pgstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCatchUpCopiesEverythingOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testNow)
	src := &memSource{}
	// Three days of records, so batches span partitions.
	src.Append(5000, testNow.Add(-36*time.Hour), 30*time.Second)
	c := newCopier(t, e, src, testNow, func(c *Config) { c.BatchSize = 700 })

	n, err := c.CatchUp(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 5000, n)
	e.requireMirror(t, src, 5000)
	st := c.Status()
	assert.EqualValues(t, 5000, st.Next)
	assert.Zero(t, st.Lag())
	assert.EqualValues(t, 8, st.Batches)

	t.Run("re-run copies nothing", func(t *testing.T) {
		n, err := c.CatchUp(ctx)
		require.NoError(t, err)
		assert.Zero(t, n)
		n, err = newCopier(t, e, src, testNow, nil).CatchUp(ctx)
		require.NoError(t, err, "a new copier resumes from PostgreSQL, not from memory")
		assert.Zero(t, n)
		e.requireMirror(t, src, 5000)
	})
	t.Run("resumes at max+1", func(t *testing.T) {
		src.Append(123, testNow, time.Millisecond)
		n, err := newCopier(t, e, src, testNow, nil).CatchUp(ctx)
		require.NoError(t, err)
		assert.EqualValues(t, 123, n)
		e.requireMirror(t, src, 5123)
	})
}

// A source that delivers an entry twice, skips one, or returns garbage gets
// nothing copied from that batch.
func TestBadEntriesAreNotCopied(t *testing.T) {
	ctx := context.Background()
	good := func() *memSource { s := &memSource{}; s.Append(10, testNow, time.Millisecond); return s }
	for _, tc := range []struct {
		name string
		mod  func(s *memSource)
		want string
	}{
		{"duplicate delivery", func(s *memSource) { s.entries[5] = s.entries[4] }, "expected index 5, got 4"},
		{"gap", func(s *memSource) { s.entries[5].Index = 6 }, "expected index 5, got 6"},
		{"time before 1970", func(s *memSource) { s.entries[5].Time = -1 }, "before 1970"},
		{"empty type", func(s *memSource) { s.entries[5].Type = "" }, `type ""`},
		{"type not ASCII", func(s *memSource) { s.entries[5].Type = "order.\xff" }, "want 1 to 128"},
		{"type upper case", func(s *memSource) { s.entries[5].Type = "Order.Accepted" }, "want 1 to 128"},
		{"empty leaf", func(s *memSource) { s.entries[5].Leaf = nil }, "empty leaf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, testNow)
			src := good()
			tc.mod(src)
			_, err := newCopier(t, e, src, testNow, nil).CatchUp(ctx)
			require.ErrorIs(t, err, ErrBadEntry)
			assert.Contains(t, err.Error(), tc.want)
			assert.Empty(t, e.stored(t))
		})
	}
	t.Run("read fails", func(t *testing.T) {
		e := newEnv(t, testNow)
		src := good()
		src.failRead = errors.New("disk on fire")
		_, err := newCopier(t, e, src, testNow, nil).CatchUp(ctx)
		require.ErrorContains(t, err, "disk on fire")
		assert.Empty(t, e.stored(t))
	})
}

// Two copiers on one database (two processes started by mistake, or a
// restarted process whose old copy lingers) never store an index twice.
func TestConcurrentCopiersStoreEachIndexOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testNow)
	src := &memSource{}
	src.Append(20000, testNow, time.Microsecond)
	// Slow reads keep the copiers side by side, so their copies collide.
	slow := slowSource{src, 3 * time.Millisecond}
	var wg sync.WaitGroup
	cs := make([]*Copier, 3)
	for i := range cs {
		cs[i] = newCopier(t, e, slow, testNow, func(c *Config) { c.BatchSize = 500 })
		wg.Go(func() {
			// A copier that lost a race too often ends its session; run it again.
			for range 50 {
				if _, err := cs[i].CatchUp(ctx); err == nil {
					return
				}
			}
		})
	}
	wg.Wait()
	e.requireMirror(t, src, 20000)
	var copied, resyncs, failures uint64
	for _, c := range cs {
		copied += c.Status().Copied
		resyncs += c.Status().Resyncs
		failures += c.Status().Failures
	}
	assert.EqualValues(t, 20000, copied, "the copiers' commits add up to each entry once")
	assert.Positive(t, resyncs+failures, "the copiers did collide")
	t.Logf("lost races: %d resyncs, %d sessions ended", resyncs, failures)
}

type slowSource struct {
	*memSource
	delay time.Duration
}

func (s slowSource) Read(ctx context.Context, from, to uint64, dst []Entry) ([]Entry, error) {
	time.Sleep(s.delay)
	return s.memSource.Read(ctx, from, to, dst)
}

// cutConn breaks the connection at one chosen write to the server: to the
// database it looks as if the copier died, or the network went, right there.
type cutConn struct {
	net.Conn
	cut func(p []byte) cutAction
}

type cutAction int

const (
	pass          cutAction = iota
	failWrite               // the write never reaches the server
	sendThenClose           // the write reaches the server, its answer is lost
)

func (c cutConn) Write(p []byte) (int, error) {
	switch c.cut(p) {
	case failWrite:
		c.Conn.Close()
		return 0, errors.New("cut before write")
	case sendThenClose:
		n, err := c.Conn.Write(p)
		c.Conn.Close()
		if err == nil {
			err = errors.New("cut after write")
		}
		return n, err
	}
	return c.Conn.Write(p)
}

// isCommit reports whether p holds the simple-query message "commit".
func isCommit(p []byte) bool {
	return len(p) > 5 && p[0] == 'Q' && strings.Contains(strings.ToLower(string(p[5:])), "commit")
}

// A copier that dies at any point of a copy (while connecting, inside the
// COPY data, before its commit, or after its commit reached the server but
// the answer did not come back) leaves either the whole batch or none of
// it, and the next copier resumes with nothing lost or doubled.
func TestCrashAtAnyPointOfACopy(t *testing.T) {
	ctx := context.Background()
	const batch = 2000 // large enough for several CopyData writes
	counting := func(pred func([]byte) bool, at int, act cutAction) func([]byte) cutAction {
		n := 0
		return func(p []byte) cutAction {
			if pred(p) {
				n++
				if n == at {
					return act
				}
			}
			return pass
		}
	}
	isCopyData := func(p []byte) bool { return len(p) > 0 && p[0] == 'd' }
	any := func([]byte) bool { return true }
	e := newEnv(t, testNow)
	src := &memSource{}
	stored := 0
	for _, tc := range []struct {
		name      string
		cut       func([]byte) cutAction
		committed bool
	}{
		{"while connecting", counting(any, 1, failWrite), false},
		{"after the resume checks", counting(any, 6, failWrite), false},
		{"at the first COPY data", counting(isCopyData, 1, failWrite), false},
		{"inside the COPY data", counting(isCopyData, 2, failWrite), false},
		{"after the COPY data went", counting(isCopyData, 2, sendThenClose), false},
		{"before the commit", counting(isCommit, 1, failWrite), false},
		{"commit sent, answer lost", counting(isCommit, 1, sendThenClose), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src.Append(batch, testNow, time.Millisecond)
			cc, err := pgx.ParseConfig(e.app.DSN)
			require.NoError(t, err)
			cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return cutConn{conn, tc.cut}, nil
			}
			c := newCopier(t, e, src, testNow, func(c *Config) { c.DSN, c.ConnConfig, c.BatchSize = "", cc, batch })
			_, err = c.CatchUp(ctx)
			require.Error(t, err, "the cut must end the session")
			var have int
			require.NoError(t, e.db.Connect(t, e.owner.DSN).QueryRow(ctx, "SELECT count(*) FROM audit.leaves").Scan(&have))
			if tc.committed {
				assert.Equal(t, stored+batch, have, "the commit reached the server: the batch is there")
			} else {
				assert.Equal(t, stored, have, "no part of the batch is there")
			}
			n, err := newCopier(t, e, src, testNow, nil).CatchUp(ctx)
			require.NoError(t, err)
			assert.Equal(t, stored+batch-have, int(n), "the next copier copies exactly what is missing")
			stored += batch
			e.requireMirror(t, src, stored)
		})
	}
}

const (
	envChildDSN = "PGSTORE_CHILD_DSN"
	envChildN   = "PGSTORE_CHILD_N"
)

// copierChild runs a copier on a generated log until it is killed.
func copierChild() {
	n, _ := strconv.Atoi(os.Getenv(envChildN))
	src := &memSource{}
	src.Append(n, testNow, time.Microsecond)
	c, err := New(Config{DSN: os.Getenv(envChildDSN), Source: src, BatchSize: 2000, Now: fixedNow(testNow)})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("running")
	_ = c.Run(context.Background())
}

// The copier's process is SIGKILLed in the middle of its work; a new one
// finishes the job with nothing lost or doubled.
func TestKilledCopierProcessResumes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testNow)
	const n = 100000
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envCopierChild+"=1", envChildDSN+"="+e.app.DSN, envChildN+"="+strconv.Itoa(n))
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, _ := bufio.NewReader(out).ReadString('\n')
	require.Equal(t, "running\n", line)
	owner := e.db.Connect(t, e.owner.DSN)
	waitFor(t, time.Minute, "the child to commit a few batches", func() bool {
		var b int
		_ = owner.QueryRow(ctx, "SELECT count(*) FROM audit.batches").Scan(&b)
		return b >= 3
	})
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	var before int
	require.NoError(t, owner.QueryRow(ctx, "SELECT count(*) FROM audit.leaves").Scan(&before))
	t.Logf("child killed after %d of %d entries", before, n)

	src := &memSource{}
	src.Append(n, testNow, time.Microsecond)
	_, err = newCopier(t, e, src, testNow, nil).CatchUp(ctx)
	require.NoError(t, err)
	e.requireMirror(t, src, n)
}

// PostgreSQL goes down in the middle of a stream while the local log keeps
// growing; the copier waits it out and, once the server is back, catches up
// with nothing lost or doubled.
func TestOutageAndCatchUp(t *testing.T) {
	srv := pg.Server(t)
	e := newEnv(t, testNow)
	src := &memSource{}
	c := newCopier(t, e, src, testNow, func(c *Config) { c.BatchSize = 1000 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	// The engine appends at its own pace whatever PostgreSQL does.
	stopAppend := make(chan struct{})
	appended := make(chan struct{})
	go func() {
		defer close(appended)
		for {
			select {
			case <-stopAppend:
				return
			case <-time.After(2 * time.Millisecond):
				src.Append(200, testNow, time.Microsecond)
			}
		}
	}()
	waitFor(t, time.Minute, "some batches before the outage", func() bool { return c.Status().Batches >= 5 })

	for _, outage := range []struct {
		name string
		stop func(context.Context) error
	}{{"crash", srv.Crash}, {"operator stop", srv.Stop}} {
		require.NoError(t, outage.stop(context.Background()), outage.name)
		down := src.Len()
		failures := c.Status().Failures
		waitFor(t, time.Minute, "the copier to notice the outage", func() bool { return c.Status().Failures > failures })
		waitFor(t, time.Minute, "the log to grow while PostgreSQL is down", func() bool { return src.Len() > down+5000 })
		st := c.Status()
		assert.False(t, st.Connected)
		assert.NotEmpty(t, st.LastError)
		assert.Positive(t, st.Lag(), "behind while down")
		require.NoError(t, srv.Start(context.Background()))
		waitFor(t, time.Minute, "the copier to catch up after the "+outage.name, func() bool {
			st := c.Status()
			return st.Connected && st.Next > uint64(src.Len()-2000)
		})
	}
	close(stopAppend)
	<-appended
	final := src.Len()
	waitFor(t, time.Minute, "the last entries", func() bool { return c.Status().Next == uint64(final) })
	cancel()
	require.NoError(t, <-done)
	e.requireMirror(t, src, final)
	t.Logf("%d entries through two outages, %d sessions failed", final, c.Status().Failures)
}

// A local log that was replaced or truncated is not papered over.
func TestLocalLogReplacedOrTruncated(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testNow)
	src := &memSource{}
	src.Append(1000, testNow, time.Millisecond)
	_, err := newCopier(t, e, src, testNow, nil).CatchUp(ctx)
	require.NoError(t, err)

	t.Run("truncated", func(t *testing.T) {
		short := &memSource{entries: src.entries[:600]}
		_, err := newCopier(t, e, short, testNow, nil).CatchUp(ctx)
		require.ErrorIs(t, err, ErrAheadOfSource)
		assert.Contains(t, err.Error(), "1000")
	})
	t.Run("another history", func(t *testing.T) {
		other := &memSource{}
		other.Append(1000, testNow.Add(time.Hour), time.Millisecond)
		_, err := newCopier(t, e, other, testNow, nil).CatchUp(ctx)
		require.ErrorIs(t, err, ErrDiverged)
		assert.Contains(t, err.Error(), "index 999")
	})
	t.Run("Run keeps trying and shows it", func(t *testing.T) {
		short := &memSource{entries: src.entries[:600]}
		c := newCopier(t, e, short, testNow, nil)
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		waitFor(t, 30*time.Second, "a failure in Status", func() bool { return c.Status().Failures > 0 })
		cancel()
		require.NoError(t, <-done)
		assert.Contains(t, c.Status().LastError, "local log does not have")
	})
	e.requireMirror(t, src, 1000)
}

func TestNewChecksConfig(t *testing.T) {
	src := &memSource{}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no source", Config{DSN: "host=/tmp"}, "Config.Source"},
		{"no dsn", Config{Source: src}, "Config.DSN"},
		{"bad dsn hides its text", Config{Source: src, DSN: "host=/tmp password=hunter2 port=notanumber"}, "does not parse"},
		{"too many days", Config{Source: src, DSN: "host=/tmp", DaysAhead: 40}, "DaysAhead"},
		{"backoffs", Config{Source: src, DSN: "host=/tmp", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "MaxBackoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			require.ErrorContains(t, err, tc.want)
			assert.NotContains(t, err.Error(), "hunter2")
		})
	}
}

// Leaves are stored byte for byte, whatever bytes they hold, and times at
// the edges of the range get their partitions.
func TestValuesRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, testNow)
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	src := &memSource{entries: []Entry{
		{Index: 0, Time: 0, Type: "a", Leaf: all},
		{Index: 1, Time: 1, Type: "x-y_z.0", Leaf: []byte{0}},
		{Index: 2, Time: testNow.UnixNano(), Type: string(bytes.Repeat([]byte("t"), 128)), Leaf: bytes.Repeat([]byte{'\n', 0xff}, 70000)},
		{Index: 3, Time: testNow.AddDate(0, 0, 45).UnixNano(), Type: "future", Leaf: []byte("{}")},
	}}
	// 45 days ahead is past what the application role may make: the copier
	// stores what comes before and stops there, until the owner makes it.
	n, err := newCopier(t, e, src, testNow, nil).CatchUp(ctx)
	requireCode(t, err, CodeTooFarAhead)
	assert.Zero(t, n, "the batch holding the far entry waits whole")
	_, err = Migrate(ctx, e.db.Connect(t, e.owner.DSN), MigrateConfig{AppRole: e.app.Name, Now: fixedNow(testNow), Through: testNow.AddDate(0, 0, 45)})
	require.NoError(t, err)
	n, err = newCopier(t, e, src, testNow, nil).CatchUp(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 4, n)
	e.requireMirror(t, src, 4)
}

// As days pass, a running copier keeps DaysAhead days of partitions ready.
func TestPartitionsMadeAheadAsDaysPass(t *testing.T) {
	e := newEnv(t, testNow)
	var clock atomic.Int64
	clock.Store(testNow.UnixNano())
	src := &memSource{}
	src.Append(10, testNow, time.Millisecond)
	c := newCopier(t, e, src, testNow, func(c *Config) { c.Now = func() time.Time { return time.Unix(0, clock.Load()) } })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	owner := e.db.Connect(t, e.owner.DSN)
	exists := func(day time.Time) func() bool {
		return func() bool {
			var ok bool
			_ = owner.QueryRow(context.Background(), "SELECT to_regclass($1) IS NOT NULL", "audit."+partName(day)).Scan(&ok)
			return ok
		}
	}
	waitFor(t, 30*time.Second, "the first catch-up", func() bool { return c.Status().Next == 10 })
	require.False(t, exists(testNow.AddDate(0, 0, DefaultDaysAhead+3))())
	clock.Store(testNow.AddDate(0, 0, 3).UnixNano())
	waitFor(t, 30*time.Second, "partitions a week past the new day", exists(testNow.AddDate(0, 0, DefaultDaysAhead+3)))
	cancel()
	require.NoError(t, <-done)
}
