package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Superuser is the name of the superuser role of a server this package starts.
// It logs in over the server's own unix socket without a password (trust);
// only the server's OS user and root can reach that socket.
const Superuser = "pgtest"

// Errors. Each says what the caller should do.
var (
	// ErrNoBinaries means the PostgreSQL server programs were not found:
	// install the postgresql package (scripts/deps.sh) or set ServerConfig.BinDir
	// (env TRADECORE_PG_BINDIR).
	ErrNoBinaries = errors.New("pgtest: PostgreSQL server binaries (initdb, postgres) not found")
	// ErrNotOwned means the operation needs a server this process started, but
	// the harness uses an existing one (Config.AdminDSN).
	ErrNotOwned = errors.New("pgtest: the server was not started by this harness")
	// ErrNoServerUser means the tests run as root but there is no postgres OS
	// user to run the server as: install the postgresql package, which makes it.
	ErrNoServerUser = errors.New("pgtest: running as root needs the postgres OS user to run the server (install the postgresql package)")
)

// ServerConfig configures a throwaway server. The zero value works.
type ServerConfig struct {
	// BinDir holds initdb and postgres. Default: $TRADECORE_PG_BINDIR, else the
	// newest /usr/lib/postgresql/*/bin, else the folder of initdb on PATH.
	BinDir string
	// Dir is the folder for the cluster, its socket and its log. Default: a
	// new temporary folder, removed by Close. A given Dir is kept by Close.
	Dir string
	// Fsync keeps fsync and full_page_writes on. Off by
	// default: a test server needs to survive a crash of its processes, which
	// the operating system's page cache covers, not a crash of the machine.
	// Benchmarks that want production-like commits turn it on.
	Fsync bool
	// Settings are extra server settings (name → value), passed as -c flags.
	Settings map[string]string
	// StartTimeout bounds initdb and each start. Default 2 minutes.
	StartTimeout time.Duration
}

// Server is a PostgreSQL server this process started: its own cluster, owned
// by an unprivileged OS user, listening only on a unix socket in its folder.
// Stop, Crash and Start simulate outages; Close stops it and removes what it
// created. If the process that started it dies, the server gets SIGQUIT
// (immediate shutdown) from the kernel, so a killed test run leaks no server.
// A Server is safe for concurrent use.
type Server struct {
	cfg     ServerConfig
	bin     string
	base    string // folder holding data/, sock/ and server.log
	ownBase bool
	cred    *syscall.Credential // nil: run as the current user

	mu   sync.Mutex
	proc *postmaster
}

// postmaster is one run of the server process.
type postmaster struct {
	pid  int
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, valid after done
}

// FindBinDir returns the folder holding initdb and postgres, or ErrNoBinaries.
func FindBinDir() (string, error) {
	if d := os.Getenv("TRADECORE_PG_BINDIR"); d != "" {
		if hasServerBinaries(d) {
			return d, nil
		}
		return "", fmt.Errorf("%w in TRADECORE_PG_BINDIR=%s: point it at the folder holding initdb and postgres", ErrNoBinaries, d)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if hasServerBinaries(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil && hasServerBinaries(filepath.Dir(real)) {
			return filepath.Dir(real), nil
		}
	}
	return "", fmt.Errorf("%w: install the postgresql package (scripts/deps.sh does) or set TRADECORE_PG_BINDIR", ErrNoBinaries)
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// serverCredential is who runs initdb and postgres: they refuse root, so root
// runs them as the postgres OS user (created by Debian's postgresql package).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoServerUser, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("pgtest: postgres OS user has a non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

// StartServer creates a new cluster (initdb) and starts it. The caller must
// Close it.
func StartServer(ctx context.Context, cfg ServerConfig) (_ *Server, err error) {
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 2 * time.Minute
	}
	bin := cfg.BinDir
	if bin == "" {
		if bin, err = FindBinDir(); err != nil {
			return nil, err
		}
	} else if !hasServerBinaries(bin) {
		return nil, fmt.Errorf("%w in ServerConfig.BinDir=%s", ErrNoBinaries, bin)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, bin: bin, cred: cred}
	if cfg.Dir == "" {
		if s.base, err = os.MkdirTemp("", "tradecore-pgtest-"); err != nil {
			return nil, fmt.Errorf("pgtest: make the server folder: %w", err)
		}
		s.ownBase = true
	} else {
		s.base = cfg.Dir
		if err := os.MkdirAll(s.base, 0o700); err != nil {
			return nil, fmt.Errorf("pgtest: make ServerConfig.Dir: %w", err)
		}
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if len(s.socketPath()) > 100 {
		return nil, fmt.Errorf("pgtest: socket path %s is too long for a unix socket: set TMPDIR or ServerConfig.Dir to a shorter folder", s.socketPath())
	}
	for _, d := range []string{s.base, s.sockDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("pgtest: %w", err)
		}
		if err := s.chown(d); err != nil {
			return nil, err
		}
	}
	ictx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	initdb := s.command(ictx, "initdb",
		"--pgdata="+s.dataDir(), "--username="+Superuser, "--auth=trust",
		"--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	// Only the superuser logs in without a password, and only over the
	// socket; every other role needs its password (SCRAM).
	hba := "local all " + Superuser + " trust\nlocal all all scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(s.dataDir(), "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return nil, fmt.Errorf("pgtest: write pg_hba.conf: %w", err)
	}
	if err := s.chown(filepath.Join(s.dataDir(), "pg_hba.conf")); err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Server) dataDir() string    { return filepath.Join(s.base, "data") }
func (s *Server) sockDir() string    { return filepath.Join(s.base, "sock") }
func (s *Server) socketPath() string { return filepath.Join(s.sockDir(), ".s.PGSQL.5432") }

// LogPath is the server's log file (its stderr); read it when a test fails.
func (s *Server) LogPath() string { return filepath.Join(s.base, "server.log") }

// SocketDir is the folder of the server's unix socket: the host in a DSN.
func (s *Server) SocketDir() string { return s.sockDir() }

// DSN returns a keyword/value connection string for role on database over
// the server's socket. password may be empty (the superuser needs none).
func (s *Server) DSN(database, role, password string) string {
	parts := []string{
		"host=" + quoteDSN(s.sockDir()), "port=5432", "dbname=" + quoteDSN(database),
		"user=" + quoteDSN(role), "sslmode=disable",
	}
	if password != "" {
		parts = append(parts, "password="+quoteDSN(password))
	}
	return strings.Join(parts, " ")
}

// AdminDSN is the superuser's connection string for database.
func (s *Server) AdminDSN(database string) string { return s.DSN(database, Superuser, "") }

// quoteDSN quotes a keyword/value connection-string value.
func quoteDSN(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func (s *Server) chown(path string) error {
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: give %s to the postgres OS user: %w", path, err)
	}
	return nil
}

// command runs one of the server's programs as the server's OS user, with a
// clean environment (no PG* variables leaking in from the caller).
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, name), args...)
	cmd.Dir = s.base
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "LANG=C", "TZ=UTC", "HOME=" + s.base}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

func (s *Server) settings() []string {
	set := map[string]string{
		"listen_addresses":        "",
		"unix_socket_directories": s.sockDir(),
		"unix_socket_permissions": "0700",
		"port":                    "5432",
		"max_connections":         "60",
		"shared_buffers":          "64MB",
		"logging_collector":       "off",
		"log_min_messages":        "warning",
		"timezone":                "UTC",
	}
	if !s.cfg.Fsync {
		set["fsync"] = "off"
		set["full_page_writes"] = "off"
	}
	for k, v := range s.cfg.Settings {
		set[k] = v
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := []string{"-D", s.dataDir()}
	for _, k := range keys {
		args = append(args, "-c", k+"="+set[k])
	}
	return args
}

// Start starts the server (after Stop or Crash) and waits until it accepts
// connections. Starting a running server does nothing.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		select {
		case <-s.proc.done:
		default:
			return nil
		}
	}
	logf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("pgtest: open server log: %w", err)
	}
	cmd := s.command(context.Background(), "postgres", s.settings()...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The kernel sends SIGQUIT (immediate shutdown) to the server when the
	// thread that forked it exits, so the forking goroutine keeps its thread
	// locked for the server's whole life (see prctl(2) PR_SET_PDEATHSIG).
	cmd.SysProcAttr.Pdeathsig = syscall.SIGQUIT
	p := &postmaster{done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		defer logf.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		p.pid = cmd.Process.Pid
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.proc = p
	return s.waitReady(ctx, p)
}

func (s *Server) waitReady(ctx context.Context, p *postmaster) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	dsn := s.AdminDSN("postgres")
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.Connect(cctx, dsn)
		ccancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("pgtest: postgres exited while starting (%v); its log is %s:\n%s", p.err, s.LogPath(), s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres did not accept connections in %s: %w; its log is %s:\n%s", s.cfg.StartTimeout, err, s.LogPath(), s.logTail())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.LogPath())
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// PID is the server's (postmaster's) process id while it runs, else 0.
// Benchmarks read the server's CPU time from /proc with it.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	select {
	case <-s.proc.done:
		return 0
	default:
		return s.proc.pid
	}
}

// Running reports whether the server process is up.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return false
	}
	select {
	case <-s.proc.done:
		return false
	default:
		return true
	}
}

// Stop shuts the server down the way an operator does (fast shutdown:
// sessions are ended, open transactions rolled back, a checkpoint written).
func (s *Server) Stop(ctx context.Context) error { return s.signal(ctx, syscall.SIGINT) }

// Crash stops the server the way a crash does (immediate shutdown: every
// process quits at once; the next Start runs crash recovery from the WAL).
func (s *Server) Crash(ctx context.Context) error { return s.signal(ctx, syscall.SIGQUIT) }

func (s *Server) signal(ctx context.Context, sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := syscall.Kill(p.pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("pgtest: signal postgres: %w", err)
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
	case <-time.After(time.Minute):
	}
	// It did not stop in time: end it so nothing leaks.
	_ = syscall.Kill(p.pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("pgtest: postgres did not stop on %v; killed it", sig)
}

// Close stops the server and removes the folder it created.
func (s *Server) Close() error {
	err := s.Stop(context.Background())
	if s.ownBase {
		if rerr := os.RemoveAll(s.base); rerr != nil && err == nil {
			err = fmt.Errorf("pgtest: remove server folder: %w", rerr)
		}
	}
	return err
}
