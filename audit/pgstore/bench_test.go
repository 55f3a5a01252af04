package pgstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/internal/pgtest"
)

// BenchmarkCatchUp measures how fast a copier catches up a backlog of
// realistic leaves (~330–360 bytes of canonical-JSON-shaped records) into a
// database that already holds earlier batches. Each op appends perOp
// entries to the local log and catches them up; the events/s metric times
// the catch-up alone. Run it with a fixed count, for example
//
//	go test ./audit/pgstore -run '^$' -bench CatchUp -benchtime 10x
//
// fsync=on runs a server of its own with fsync and full_page_writes on, as
// in production; fsync=off is the test harness's server.
func BenchmarkCatchUp(b *testing.B) {
	for _, fsync := range []bool{true, false} {
		for _, batch := range []int{4096, 16384, 65536} {
			b.Run(fmt.Sprintf("fsync=%s/batch=%d", onOff(fsync), batch), func(b *testing.B) {
				benchCatchUp(b, fsync, batch)
			})
		}
	}
}

func onOff(v bool) string {
	if v {
		return "on"
	}
	return "off"
}

var fsyncHarness = pgtest.New(pgtest.Config{Server: pgtest.ServerConfig{Fsync: true}})

func benchCatchUp(b *testing.B, fsync bool, batch int) {
	const perOp = 200_000
	ctx := context.Background()
	h := pg
	if fsync {
		h = fsyncHarness
	}
	db := h.NewDB(b)
	e := &env{db: db, owner: db.NewRole(b, "owner"), app: db.NewRole(b, "app")}
	db.Exec(b, "GRANT CREATE ON DATABASE "+db.Ident()+" TO "+e.owner.Ident())
	_, err := Migrate(ctx, db.Connect(b, e.owner.DSN), MigrateConfig{AppRole: e.app.Name, Now: fixedNow(testNow)})
	require.NoError(b, err)
	src := &memSource{}
	c, err := New(Config{DSN: e.app.DSN, Source: src, BatchSize: batch, Now: fixedNow(testNow), Logger: quiet(b)})
	require.NoError(b, err)

	srvPID := h.Server(b).PID()
	var copied uint64
	var spent, srvCPU, cliCPU time.Duration
	for b.Loop() {
		// Records spread over two daily partitions.
		src.Append(perOp, testNow.Add(-12*time.Hour), 200*time.Microsecond)
		runtime.GC()
		s0, c0 := serverCPU(b, srvPID), selfCPU()
		start := time.Now()
		n, err := c.CatchUp(ctx)
		spent += time.Since(start)
		cliCPU += selfCPU() - c0
		// Let the session's backend exit and be reaped, so its CPU time is
		// in the postmaster's cutime before it is read (not timed).
		time.Sleep(300 * time.Millisecond)
		srvCPU += serverCPU(b, srvPID) - s0
		require.NoError(b, err)
		require.EqualValues(b, perOp, n)
		copied += n
	}
	leafBytes := 0
	for _, en := range src.entries[:1000] {
		leafBytes += len(en.Leaf)
	}
	b.ReportMetric(float64(copied)/spent.Seconds(), "events/s")
	b.ReportMetric(float64(srvCPU.Nanoseconds())/float64(copied), "server-cpu-ns/event")
	b.ReportMetric(float64(cliCPU.Nanoseconds())/float64(copied), "copier-cpu-ns/event")
	b.ReportMetric(float64(leafBytes)/1000, "leaf-bytes")
	b.ReportMetric(0, "ns/op")
}

// serverCPU is the CPU time the PostgreSQL server has used: the
// postmaster's own and that of its exited children (cutime, cstime), plus
// that of its live children.
func serverCPU(b *testing.B, pid int) time.Duration {
	ticks := func(stat string) (self, children int64) {
		// Fields after the parenthesised command: state is field 3.
		f := strings.Fields(stat[strings.LastIndexByte(stat, ')')+2:])
		v := func(i int) int64 { n, _ := strconv.ParseInt(f[i-3], 10, 64); return n }
		return v(14) + v(15), v(16) + v(17)
	}
	read := func(p string) string { s, _ := os.ReadFile(p); return string(s) }
	self, children := ticks(read(fmt.Sprintf("/proc/%d/stat", pid)))
	total := self + children
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	require.NoError(b, err)
	for _, p := range procs {
		st := read(p)
		if st == "" {
			continue
		}
		f := strings.Fields(st[strings.LastIndexByte(st, ')')+2:])
		if f[1] == strconv.Itoa(pid) { // ppid is field 4
			s, _ := ticks(st)
			total += s
		}
	}
	return time.Duration(total) * time.Second / 100 // USER_HZ
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
