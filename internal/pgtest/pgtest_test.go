package pgtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var pg = New(Config{})

func TestMain(m *testing.M) {
	if os.Getenv(envLeakChild) != "" {
		leakChild()
		return
	}
	os.Exit(pg.Run(m))
}

func exists(t *testing.T, conn *pgx.Conn, sql string, args ...any) bool {
	t.Helper()
	var ok bool
	require.NoError(t, conn.QueryRow(context.Background(), sql, args...).Scan(&ok))
	return ok
}

func TestDatabaseAndRolesLiveForOneTest(t *testing.T) {
	var db *DB
	var role Role
	t.Run("inner", func(t *testing.T) {
		db = pg.NewDB(t)
		role = db.NewRole(t, "app")
		conn := db.Connect(t, role.DSN)
		var user, dbname string
		require.NoError(t, conn.QueryRow(context.Background(), "SELECT current_user, current_database()").Scan(&user, &dbname))
		assert.Equal(t, role.Name, user)
		assert.Equal(t, db.Name, dbname)
		assert.Contains(t, role.DSN, "password=", "a role's DSN carries its password")
	})
	admin := pg.NewDB(t).Admin(t)
	assert.False(t, exists(t, admin, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", db.Name), "database dropped at cleanup")
	assert.False(t, exists(t, admin, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", role.Name), "role dropped at cleanup")
}

func TestCleanupEndsOpenSessions(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		db := pg.NewDB(t)
		name = db.Name
		r := db.NewRole(t, "app")
		// Left open on purpose: the drop must end it.
		conn, err := pgx.Connect(context.Background(), r.DSN)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close(context.Background()) })
	})
	admin := pg.NewDB(t).Admin(t)
	assert.False(t, exists(t, admin, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name))
}

func TestPasswordsAreChecked(t *testing.T) {
	db := pg.NewDB(t)
	r := db.NewRole(t, "app")
	cc, err := pgx.ParseConfig(r.DSN)
	require.NoError(t, err)
	cc.Password = "wrong"
	_, err = pgx.ConnectConfig(context.Background(), cc)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "password authentication failed")
	assert.NotContains(t, err.Error(), r.Password)
}

func TestRolesCannotReachOtherTestsDatabases(t *testing.T) {
	a, b := pg.NewDB(t), pg.NewDB(t)
	ra := a.NewRole(t, "app")
	cc, err := pgx.ParseConfig(ra.DSN)
	require.NoError(t, err)
	cc.Database = b.Name
	_, err = pgx.ConnectConfig(context.Background(), cc)
	require.Error(t, err, "CONNECT is revoked from PUBLIC on every test database")
	assert.Contains(t, err.Error(), "permission denied")
}

func TestRoleNameValidated(t *testing.T) {
	ft := &fakeTB{TB: t}
	db := pg.NewDB(t)
	func() {
		defer func() { recover() }()
		db.NewRole(ft, `x"; DROP ROLE pgtest; --`)
	}()
	assert.True(t, ft.failed)
	assert.Contains(t, ft.msg, "role name")
}

func TestStopCrashAndStartKeepData(t *testing.T) {
	srv := pg.Server(t)
	db := pg.NewDB(t)
	ctx := context.Background()
	db.Exec(t, "CREATE TABLE kept (n int)")
	db.Exec(t, "INSERT INTO kept VALUES (1)")

	conn := db.Admin(t)
	require.NoError(t, srv.Stop(ctx))
	assert.False(t, srv.Running())
	_, err := conn.Exec(ctx, "SELECT 1")
	require.Error(t, err, "a session does not survive a stop")
	_, err = pgx.Connect(ctx, db.AdminDSN())
	require.Error(t, err, "no new sessions while stopped")
	require.NoError(t, srv.Start(ctx))
	assert.True(t, srv.Running())
	db.Exec(t, "INSERT INTO kept VALUES (2)")

	require.NoError(t, srv.Crash(ctx))
	require.NoError(t, srv.Start(ctx))
	var n int
	require.NoError(t, db.Admin(t).QueryRow(ctx, "SELECT sum(n) FROM kept").Scan(&n))
	assert.Equal(t, 3, n, "committed rows survive a stop and a crash")
	require.NoError(t, srv.Start(ctx), "start on a running server does nothing")
}

func TestExistingServer(t *testing.T) {
	srv := pg.Server(t)
	h := New(Config{AdminDSN: srv.AdminDSN("postgres")})
	h.running = true // as inside Run
	db := h.NewDB(t)
	r := db.NewRole(t, "app")
	conn := db.Connect(t, r.DSN)
	require.NoError(t, conn.Ping(context.Background()))

	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		h.Server(ft)
	}()
	assert.True(t, ft.failed, "no outage controls on a server the harness did not start")
	assert.Contains(t, ft.msg, ErrNotOwned.Error())
}

func TestNotRunningFailsClearly(t *testing.T) {
	h := New(Config{})
	ft := &fakeTB{TB: t}
	func() {
		defer func() { recover() }()
		h.NewDB(ft)
	}()
	assert.True(t, ft.failed)
	assert.Contains(t, ft.msg, "TestMain")
}

func TestFindBinDir(t *testing.T) {
	t.Setenv("TRADECORE_PG_BINDIR", t.TempDir())
	_, err := FindBinDir()
	require.ErrorIs(t, err, ErrNoBinaries)
	assert.Contains(t, err.Error(), "TRADECORE_PG_BINDIR")

	_, err = StartServer(context.Background(), ServerConfig{BinDir: t.TempDir()})
	require.ErrorIs(t, err, ErrNoBinaries)
}

func TestDSNQuoting(t *testing.T) {
	s := &Server{base: "/tmp/it's here"}
	cc, err := pgx.ParseConfig(s.DSN("d b", "r'x", `p\w'd`))
	require.NoError(t, err)
	assert.Equal(t, "/tmp/it's here/sock", cc.Host)
	assert.Equal(t, "d b", cc.Database)
	assert.Equal(t, "r'x", cc.User)
	assert.Equal(t, `p\w'd`, cc.Password)
}

// A test binary killed in the middle of a run must not leave its server
// behind: the child below starts one and blocks; the test kills the child
// with SIGKILL and waits for the server to go.
const envLeakChild = "PGTEST_LEAK_CHILD"

func leakChild() {
	srv, err := StartServer(context.Background(), ServerConfig{})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	srv.mu.Lock()
	fmt.Println("pid", srv.proc.pid, srv.base)
	srv.mu.Unlock()
	select {}
}

func TestKilledTestBinaryLeaksNoServer(t *testing.T) {
	pg.Server(t) // the same prerequisites as every other test here
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envLeakChild+"=1")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err)
	f := strings.Fields(line)
	require.Len(t, f, 3, "child said %q", line)
	require.Equal(t, "pid", f[0], "child said %q", line)
	pid, err := strconv.Atoi(f[1])
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(f[2]) })
	require.True(t, alive(pid), "server running under the child")

	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatal("the server outlived the killed test binary")
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err == nil {
		// A zombie is gone for our purpose; it is reaped by init.
		b, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return rerr != nil || !strings.Contains(string(b), ") Z ")
	}
	return !errors.Is(err, syscall.ESRCH)
}

// fakeTB records a Fatal instead of ending the real test.
type fakeTB struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatal(args ...any) {
	f.failed, f.msg = true, fmt.Sprint(args...)
	panic(f)
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed, f.msg = true, fmt.Sprintf(format, args...)
	panic(f)
}
