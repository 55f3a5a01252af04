// Package pgtest gives tests a real PostgreSQL server, and each test its own
// database and roles, dropped when the test ends.
//
// A test package declares one Harness and runs it from TestMain:
//
//	var pg = pgtest.New(pgtest.Config{})
//
//	func TestMain(m *testing.M) { os.Exit(pg.Run(m)) }
//
//	func TestSomething(t *testing.T) {
//		db := pg.NewDB(t)                     // fresh database, dropped at cleanup
//		app := db.NewRole(t, "app")           // login role with a random password, dropped at cleanup
//		db.Exec(t, "GRANT CONNECT ON DATABASE "+db.Ident()+" TO "+app.Ident())
//		conn := db.Connect(t, app.DSN)        // closed at cleanup
//		...
//	}
//
// The server starts on the first NewDB (or Server) call, so a package whose
// PostgreSQL tests are filtered out pays nothing, and Run stops it after the
// last test (RunAll for several harnesses in one binary). By default it is a throwaway cluster of the harness's own
// (initdb in a temporary folder, run as the postgres OS user when the tests
// run as root, since initdb and postgres refuse root), listening only on a
// unix socket in that folder: no port is shared with other test binaries or
// with a system cluster. Config.AdminDSN (env TRADECORE_PGTEST_ADMIN_DSN)
// points the harness at an existing server instead.
//
// When PostgreSQL is missing, tests skip with the reason, or fail under
// `make test` and CI (internal/testenv). A server that is installed but does
// not start always fails the test.
//
// Every role other than the superuser authenticates with a password (SCRAM),
// so code under test sees real credentials in its connection strings.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tradecore/tradecore/internal/testenv"
)

// EnvAdminDSN names the environment variable that, when set, holds a
// superuser connection string of an existing server to use instead of a
// throwaway one.
const EnvAdminDSN = "TRADECORE_PGTEST_ADMIN_DSN"

// Config configures a Harness. The zero value starts a throwaway server.
type Config struct {
	// AdminDSN is a superuser connection string of an existing server (any
	// database on it). Default: $TRADECORE_PGTEST_ADMIN_DSN; when both are
	// empty the harness starts its own server. With an existing server the
	// outage controls (Server) are not available.
	AdminDSN string
	// Server configures the throwaway server.
	Server ServerConfig
}

// Harness is one test binary's PostgreSQL: it starts the server once, on
// first use, and stops it when Run returns. Safe for concurrent use by
// parallel tests.
type Harness struct {
	cfg Config

	mu       sync.Mutex
	running  bool // inside Run
	tried    bool
	srv      *Server // nil with an existing server
	adminDSN pgx.ConnConfig
	err      error // why the server is unusable
	missing  bool  // err means PostgreSQL is not installed
}

// New returns a harness; nothing starts until a test asks for a database.
func New(cfg Config) *Harness {
	if cfg.AdminDSN == "" {
		cfg.AdminDSN = os.Getenv(EnvAdminDSN)
	}
	return &Harness{cfg: cfg}
}

// Run runs the tests and then stops the server (if one was started). Call
// it from TestMain: os.Exit(h.Run(m)).
func (h *Harness) Run(m *testing.M) int { return RunAll(m, h) }

// RunAll is Run for a test binary with several harnesses (for example one
// with fsync on for benchmarks): it runs the tests once and stops every
// server that was started.
func RunAll(m *testing.M, hs ...*Harness) int {
	for _, h := range hs {
		h.mu.Lock()
		h.running = true
		h.mu.Unlock()
	}
	code := m.Run()
	for _, h := range hs {
		if err := h.close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}

func (h *Harness) close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running = false
	if h.srv == nil {
		return nil
	}
	err := h.srv.Close()
	h.srv = nil
	return err
}

// ready starts the server on first use and returns the superuser config.
func (h *Harness) ready(t testing.TB) *pgx.ConnConfig {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		t.Fatal("pgtest: the harness is not running: call os.Exit(h.Run(m)) from TestMain")
	}
	if !h.tried {
		h.tried = true
		h.start()
	}
	if h.missing {
		testenv.Need(t, false, h.err.Error())
	}
	if h.err != nil {
		t.Fatal(h.err)
	}
	return h.adminDSN.Copy()
}

func (h *Harness) start() {
	ctx := context.Background()
	dsn := h.cfg.AdminDSN
	if dsn == "" {
		srv, err := StartServer(ctx, h.cfg.Server)
		if err != nil {
			h.err, h.missing = err, errors.Is(err, ErrNoBinaries) || errors.Is(err, ErrNoServerUser)
			return
		}
		h.srv = srv
		dsn = srv.AdminDSN("postgres")
	}
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		h.err = fmt.Errorf("pgtest: parse %s: %w", EnvAdminDSN, err)
		return
	}
	h.adminDSN = *cc
	conn, err := h.connect(ctx, cc)
	if err != nil {
		h.err = fmt.Errorf("pgtest: connect as superuser: %w", err)
		return
	}
	defer conn.Close(ctx)
	var super bool
	if err := conn.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		h.err = fmt.Errorf("pgtest: the admin connection must be a superuser (is it %s?): %v", EnvAdminDSN, err)
	}
}

func (h *Harness) connect(ctx context.Context, cc *pgx.ConnConfig) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cc)
}

// Server returns the throwaway server, for outage tests (Stop, Crash,
// Start). It fails the test when the harness uses an existing server.
func (h *Harness) Server(t testing.TB) *Server {
	t.Helper()
	h.ready(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.srv == nil {
		t.Fatal(ErrNotOwned)
	}
	return h.srv
}

// DB is one test's database on the harness's server.
type DB struct {
	h     *Harness
	Name  string
	admin *pgx.ConnConfig // superuser, on this database
}

// NewDB creates a database with a random name, owned by the superuser, and
// drops it (ending its sessions) and every role made by NewRole when the
// test ends. It needs a running server: a test that stopped it must start
// it again before it ends.
func (h *Harness) NewDB(t testing.TB) *DB {
	t.Helper()
	cc := h.ready(t)
	name := "t_" + randomHex(6)
	ctx := context.Background()
	conn, err := h.connect(ctx, cc)
	if err != nil {
		t.Fatalf("pgtest: connect as superuser: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(name)+" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	// Nobody but the roles a test grants may connect.
	if _, err := conn.Exec(ctx, "REVOKE ALL ON DATABASE "+ident(name)+" FROM PUBLIC"); err != nil {
		t.Fatalf("pgtest: revoke public access: %v", err)
	}
	d := &DB{h: h, Name: name, admin: cc.Copy()}
	d.admin.Database = name
	t.Cleanup(func() { d.drop(t) })
	return d
}

func (d *DB) drop(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	conn, err := d.h.connect(ctx, d.h.adminDSN.Copy())
	if err != nil {
		t.Errorf("pgtest: drop database %s: connect: %v (is the server still stopped?)", d.Name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(d.Name)+" WITH (FORCE)"); err != nil {
		t.Errorf("pgtest: drop database %s: %v", d.Name, err)
		return
	}
	// The roles this test made all carry the database's name as prefix.
	rows, err := conn.Query(ctx, "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", d.Name+"_")
	if err != nil {
		t.Errorf("pgtest: list roles of %s: %v", d.Name, err)
		return
	}
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Errorf("pgtest: list roles of %s: %v", d.Name, err)
		return
	}
	for _, r := range roles {
		if _, err := conn.Exec(ctx, "DROP ROLE IF EXISTS "+ident(r)); err != nil {
			t.Errorf("pgtest: drop role %s: %v", r, err)
		}
	}
}

// Ident is the database's name quoted as an SQL identifier.
func (d *DB) Ident() string { return ident(d.Name) }

// AdminDSN is the superuser's connection string for this database. Tests use
// it to set up what the code under test may not do itself.
func (d *DB) AdminDSN() string { return dsnOf(d.admin) }

// AdminConfig is the superuser's connection config for this database.
func (d *DB) AdminConfig() *pgx.ConnConfig { return d.admin.Copy() }

// Exec runs sql as the superuser on this database, failing the test on error.
func (d *DB) Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := d.h.connect(ctx, d.admin.Copy())
	if err != nil {
		t.Fatalf("pgtest: connect as superuser: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// Admin connects as the superuser to this database; the connection closes at
// cleanup.
func (d *DB) Admin(t testing.TB) *pgx.Conn {
	t.Helper()
	return d.connectConfig(t, d.admin.Copy())
}

// Connect opens a connection with dsn; it closes at cleanup.
func (d *DB) Connect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatalf("pgtest: parse connection string: %v", err)
	}
	return d.connectConfig(t, cc)
}

func (d *DB) connectConfig(t testing.TB, cc *pgx.ConnConfig) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := d.h.connect(ctx, cc)
	if err != nil {
		t.Fatalf("pgtest: connect as %s: %v", cc.User, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Role is a login role made for one test.
type Role struct {
	// Name is the role's full name: the database's name, "_", the name asked for.
	Name string
	// Password is random (never log it).
	Password string
	// DSN connects as the role to the test's database.
	DSN string
}

// Ident is the role's name quoted as an SQL identifier.
func (r Role) Ident() string { return ident(r.Name) }

var roleName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,29}$`)

// NewRole creates a login role with a random password and CONNECT on the
// test's database, and nothing else: grants are the test's business. attrs
// are extra role attributes (for example "CREATEROLE"). The role is dropped
// with the database.
func (d *DB) NewRole(t testing.TB, name string, attrs ...string) Role {
	t.Helper()
	if !roleName.MatchString(name) {
		t.Fatalf("pgtest: role name %q: use 1-30 lower-case letters, digits and _", name)
	}
	r := Role{Name: d.Name + "_" + name, Password: randomPassword()}
	opts := "LOGIN"
	for _, a := range attrs {
		opts += " " + a
	}
	// The password is a literal in the statement: PostgreSQL does not take
	// parameters in CREATE ROLE. It is random and never logged.
	d.Exec(t, fmt.Sprintf("CREATE ROLE %s %s PASSWORD '%s'", r.Ident(), opts, r.Password))
	d.Exec(t, "GRANT CONNECT ON DATABASE "+d.Ident()+" TO "+r.Ident())
	cc := d.admin.Copy()
	cc.User, cc.Password = r.Name, r.Password
	r.DSN = dsnOf(cc)
	return r
}

// dsnOf renders the parts of cc a connection needs as a keyword/value string.
func dsnOf(cc *pgx.ConnConfig) string {
	parts := fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=disable",
		quoteDSN(cc.Host), cc.Port, quoteDSN(cc.Database), quoteDSN(cc.User))
	if cc.Password != "" {
		parts += " password=" + quoteDSN(cc.Password)
	}
	return parts
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
