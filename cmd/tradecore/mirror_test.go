package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/audit/pgstore"
	"github.com/tradecore/tradecore/internal/pgtest"
)

// mirrorSetup makes a database with the audit schema (an owner and an
// append-only application role) and a small serve configuration that
// mirrors to it; it returns the roles, the data dir and the config path.
func mirrorSetup(t *testing.T) (owner, app pgtest.Role, data, cfgPath string) {
	t.Helper()
	db := pg.NewDB(t)
	owner, app = db.NewRole(t, "owner"), db.NewRole(t, "app")
	db.Exec(t, "GRANT CREATE ON DATABASE "+db.Ident()+" TO "+owner.Ident())
	r := runCLI(t, "audit", "pg", "migrate", "--dsn-file", writeDSN(t, owner.DSN, 0o600), "--app-role", app.Name)
	require.Equal(t, 0, r.code, "%v", r.err)
	dir := t.TempDir()
	data = filepath.Join(dir, "var")
	cfg := `{"engine": {"max_orders": 65536, "pin": false, "engine_idle": "backoff", "others_idle": "backoff"},
  "risk": "off",
  "instruments": [{"symbol": "AAPL", "id": 1, "tick_size": "0.01", "lot_size": "1", "price_band": {"low": "100.00", "high": "400.00"}}],
  "audit": {"postgres_dsn_file": "` + writeDSN(t, app.DSN, 0o600) + `"},
  "netseg": {"required": false},
  "gateway": {"order_entry": "127.0.0.1:0", "market_data": "127.0.0.1:0", "metrics": "-"}}`
	cfgPath = filepath.Join(dir, "config.json")
	require.NoError(t, os.WriteFile(cfgPath, []byte(cfg), 0o600))
	return owner, app, data, cfgPath
}

// TestServeMirrorsToPostgres: serve with audit.postgres_dsn_file copies its
// journal to PostgreSQL while it trades; what the mirror holds is exactly the
// local log's first leaves, and a catch-up afterwards brings it to the whole
// log with nothing duplicated.
func TestServeMirrorsToPostgres(t *testing.T) {
	needSoftHSM(t)
	ctx := context.Background()
	owner, app, data, cfgPath := mirrorSetup(t)
	var out, errb bytes.Buffer
	err := run(ctx, []string{"serve", "--data-dir", data, "--config", cfgPath, "--rate", "5000", "--duration", "1500ms", "--report", "500ms", "--order-entry", "127.0.0.1:0", "--market-data", "127.0.0.1:0", "--metrics", "-"}, &out, &errb)
	require.NoError(t, err, errb.String())
	require.Contains(t, errb.String(), "PostgreSQL mirror running")

	adir := filepath.Join(data, "audit")
	lr, err := audit.OpenReader(adir)
	require.NoError(t, err)
	size, err := lr.Size()
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, owner.DSN) // the application role may only insert
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM audit.leaves").Scan(&n))
	require.NotZero(t, n, "the mirror copied nothing while serve ran")
	require.LessOrEqual(t, n, size)

	// Catch up the rest, as a restarted serve would, and compare every leaf.
	src := &logSource{r: lr}
	c, err := pgstore.New(pgstore.Config{DSN: app.DSN, Source: sizedSource{src, size}})
	require.NoError(t, err)
	_, err = c.CatchUp(ctx)
	require.NoError(t, err)
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM audit.leaves").Scan(&n))
	require.Equal(t, size, n)
	rows, err := conn.Query(ctx, "SELECT idx, leaf FROM audit.leaves ORDER BY idx")
	require.NoError(t, err)
	defer rows.Close()
	want := map[uint64][]byte{}
	require.NoError(t, lr.Read(0, size, func(e *audit.Entry) error { want[e.Index] = bytes.Clone(e.Leaf); return nil }))
	for rows.Next() {
		var idx int64
		var leaf []byte
		require.NoError(t, rows.Scan(&idx, &leaf))
		require.Equal(t, string(want[uint64(idx)]), string(leaf), "leaf %d differs in the mirror", idx)
	}
	require.NoError(t, rows.Err())
}

// sizedSource is a logSource with a fixed size (no log open).
type sizedSource struct {
	*logSource
	size uint64
}

func (s sizedSource) Size(context.Context) (uint64, error) { return s.size, nil }

// TestServeTradesThroughPostgresOutage: PostgreSQL crashes while serve
// trades with the mirror on. Trading goes on (commands are acknowledged
// through the outage), and once the server is back the running copier
// catches up: at the end the mirror holds every leaf of the local log,
// each exactly once.
func TestServeTradesThroughPostgresOutage(t *testing.T) {
	needSoftHSM(t)
	ctx := context.Background()
	srv := pg.Server(t)
	owner, app, data, cfgPath := mirrorSetup(t)
	out, errb := &syncBuf{}, &syncBuf{}
	done := make(chan error, 1)
	// serve runs until the copier has resumed (a fixed --duration could end
	// before PostgreSQL is back on a loaded machine).
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	go func() {
		done <- run(serveCtx, []string{"serve", "--data-dir", data, "--config", cfgPath, "--rate", "5000", "--report", "100ms", "--order-entry", "127.0.0.1:0", "--market-data", "127.0.0.1:0", "--metrics", "-"}, out, errb)
	}()
	acked := regexp.MustCompile(`acked to seq (\d+)`)
	lastAck := func() uint64 {
		m := acked.FindAllStringSubmatch(out.String(), -1)
		if len(m) == 0 {
			return 0
		}
		n, _ := strconv.ParseUint(m[len(m)-1][1], 10, 64)
		return n
	}
	conn := func() *pgx.Conn {
		c, err := pgx.Connect(ctx, owner.DSN)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	count := func(c *pgx.Conn) uint64 {
		var n uint64
		require.NoError(t, c.QueryRow(ctx, "SELECT count(*) FROM audit.leaves").Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return lastAck() > 0 }, 10*time.Second, 20*time.Millisecond, "serve acknowledged nothing")
	c1 := conn()
	require.Eventually(t, func() bool { return count(c1) > 0 }, 10*time.Second, 50*time.Millisecond, "the mirror copied nothing")

	require.NoError(t, srv.Crash(ctx))
	before := lastAck()
	time.Sleep(1500 * time.Millisecond)
	during := lastAck()
	require.Greater(t, during, before+1000, "trading stalled while PostgreSQL was down (acked %d → %d)", before, during)
	require.NoError(t, srv.Start(ctx))
	c2 := conn()
	atRestart := count(c2)
	require.Eventually(t, func() bool { return count(c2) > atRestart }, 60*time.Second, 100*time.Millisecond, "the copier did not resume after the outage")
	stopServe()
	require.NoError(t, <-done, errb.String())
	require.Contains(t, errb.String(), "PostgreSQL mirror running")

	// Whatever the copier had not reached when serve stopped, a catch-up
	// (a restarted serve's copier) brings; every leaf exactly once.
	lr, err := audit.OpenReader(filepath.Join(data, "audit"))
	require.NoError(t, err)
	size, err := lr.Size()
	require.NoError(t, err)
	cu, err := pgstore.New(pgstore.Config{DSN: app.DSN, Source: sizedSource{&logSource{r: lr}, size}})
	require.NoError(t, err)
	_, err = cu.CatchUp(ctx)
	require.NoError(t, err)
	var n, distinct uint64
	require.NoError(t, c2.QueryRow(ctx, "SELECT count(*), count(DISTINCT idx) FROM audit.leaves").Scan(&n, &distinct))
	require.Equal(t, size, n)
	require.Equal(t, size, distinct)
}
