// Package remote serves an hsm.Signer over a unix socket and offers a client
// with the same Go API, so the PKCS#11 session can live in a separate process
// (`tradecore signer --socket PATH`) apart from the trading process.
//
// Use [Listen] and [Serve] on the signer side, [Dial] on the caller side; the
// *Client implements hsm.Signer. Serve checks each connection's peer
// credentials (SO_PEERCRED) against an allow-list of uids before reading a
// frame, caps connections, bounds request size before allocating and times
// out idle and slow peers. Listen locks the socket path so a second signer
// cannot take it over. Dial's close function closes the client's
// connections; Serve returns when its context is cancelled, after closing
// the listener; Listen's close function removes the socket it made.
//
// Protocol: each message is a frame, a 4-byte big-endian payload length
// (at most MaxFrame) followed by the payload. A request payload is an
// operation byte and its fields (see ParseRequest); a response payload is a
// status byte followed by the result, or by an error text for non-OK status.
// Sign responses are len(key id) u8 ‖ key id ‖ len(algorithm) u8 ‖ algorithm ‖
// signature. The full format is in docs/keys.md.
package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tradecore/tradecore/hsm"
	"golang.org/x/sys/unix"
)

// ErrDenied means the signer refused the caller's uid. Add the uid to the
// signer's --allow-uid list.
var ErrDenied = errors.New("remote: peer not allowed")

// ErrProtocol means the peer sent something the protocol does not allow.
// Check both sides run the same version.
var ErrProtocol = errors.New("remote: protocol error")

// ErrBusy means the signer had ServerConfig.MaxConns connections open.
// Retry later, close idle clients, or raise the signer's --max-conns.
var ErrBusy = errors.New("remote: signer busy")

// ErrSocketInUse means another signer holds the socket path. Stop it first,
// or give this one another --socket.
var ErrSocketInUse = errors.New("remote: socket in use by another signer")

// ListenConfig configures Listen. Its zero value makes a socket of mode 0660
// in the process's own group.
type ListenConfig struct {
	// Group, when set, is the socket's group (a name or a numeric gid), so
	// that a trading process running under its own uid in that group can
	// connect; peer uids are still checked (ServerConfig.AllowUIDs).
	Group string
}

// Listen locks path (an flock on path+".lock", which a second signer cannot
// take), replaces a stale socket file, listens on path and sets its mode to
// 0660 and its group. The close function closes the listener, removes the
// socket file if it is still the one this call made, and releases the lock:
// a signer never removes a socket it does not own.
func Listen(path string, cfg ListenConfig) (*net.UnixListener, func() error, error) {
	gid := -1
	if cfg.Group != "" {
		if n, err := strconv.Atoi(cfg.Group); err == nil && n >= 0 {
			gid = n
		} else if g, err := user.LookupGroup(cfg.Group); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		} else {
			return nil, nil, fmt.Errorf("remote: socket group %q: %w (give an existing group name or gid)", cfg.Group, err)
		}
	}
	lockPath := path + ".lock"
	lf, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("remote: socket lock: %w", err)
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		owner, _ := os.ReadFile(lockPath)
		lf.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, nil, fmt.Errorf("%w: %s (held by pid %s); stop that signer or choose another --socket", ErrSocketInUse, path, strings.TrimSpace(string(owner)))
		}
		return nil, nil, fmt.Errorf("remote: socket lock: %w", err)
	}
	unlock := func() { _ = unix.Flock(int(lf.Fd()), unix.LOCK_UN); lf.Close() }
	_ = lf.Truncate(0)
	_, _ = lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	// We hold the lock, so a socket file here is a dead signer's.
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		unlock()
		return nil, nil, fmt.Errorf("remote: listen: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*net.UnixListener, func() error, error) {
		ln.Close()
		os.Remove(path)
		unlock()
		return nil, nil, err
	}
	if err := os.Chmod(path, 0o660); err != nil {
		return fail(fmt.Errorf("remote: chmod socket: %w", err))
	}
	if gid >= 0 {
		if err := os.Lchown(path, -1, gid); err != nil {
			return fail(fmt.Errorf("remote: chgrp socket to %s: %w", cfg.Group, err))
		}
	}
	made, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("remote: stat socket: %w", err))
	}
	var once sync.Once
	closeFn := func() error {
		once.Do(func() {
			ln.Close()
			if fi, err := os.Lstat(path); err == nil && os.SameFile(fi, made) {
				os.Remove(path)
			}
			unlock()
		})
		return nil
	}
	return ln, closeFn, nil
}

// Server limits applied when ServerConfig leaves them zero.
const (
	DefaultMaxConns     = 64
	DefaultIdleTimeout  = 60 * time.Second
	DefaultReadTimeout  = 5 * time.Second
	DefaultWriteTimeout = 5 * time.Second
	// DeniedLogInterval is the least time between two log lines about
	// refused peers; the lines in between are counted, not written.
	DeniedLogInterval = 10 * time.Second
)

// ServerConfig configures Serve. Its zero value allows only the server's own
// uid and applies the default limits.
type ServerConfig struct {
	// AllowUIDs lists the peer uids allowed to sign; default: os.Getuid().
	AllowUIDs []int
	// MaxConns caps open connections; one more is answered StatusBusy and
	// closed. Default DefaultMaxConns.
	MaxConns int
	// MaxRequest bounds a request frame's payload, checked before any
	// allocation. Default DefaultMaxRequest.
	MaxRequest int
	// IdleTimeout bounds the wait for the next request on a connection;
	// default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// ReadTimeout bounds reading the rest of a frame once its first byte
	// arrived; default DefaultReadTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response; default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c ServerConfig) withDefaults() ServerConfig {
	if len(c.AllowUIDs) == 0 {
		c.AllowUIDs = []int{os.Getuid()}
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxRequest <= 0 {
		c.MaxRequest = DefaultMaxRequest
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// EffectiveAllowUIDs is the uid list Serve uses for cfg.
func (c ServerConfig) EffectiveAllowUIDs() []int { return c.withDefaults().AllowUIDs }

// deniedLog writes at most one line per DeniedLogInterval about refused
// peers and counts the rest.
type deniedLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (d *deniedLog) denied(log *slog.Logger, uid int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	if !d.last.IsZero() && now.Sub(d.last) < DeniedLogInterval {
		d.suppressed++
		return
	}
	log.Warn("remote: connection refused: peer uid not allowed", "uid", uid, "err", err, "refused_since_last_line", d.suppressed)
	d.last, d.suppressed = now, 0
}

// Serve answers requests on ln with svc until ctx is done, then closes ln and
// every connection and returns nil (or the accept error that stopped it).
func Serve(ctx context.Context, ln *net.UnixListener, svc hsm.Signer, cfg ServerConfig) error {
	cfg = cfg.withDefaults()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var denied deniedLog
	conns := map[*net.UnixConn]struct{}{}
	stop := context.AfterFunc(ctx, func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	defer stop()
	defer wg.Wait()
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
				time.Sleep(50 * time.Millisecond)
				continue
			}
			return fmt.Errorf("remote: accept: %w", err)
		}
		mu.Lock()
		full := len(conns) >= cfg.MaxConns
		if !full {
			conns[c] = struct{}{}
		}
		mu.Unlock()
		if full {
			_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			_, _ = writeFrame(c, nil, append([]byte{StatusBusy}, "connection cap reached"...))
			c.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			serveConn(ctx, c, svc, cfg, &denied)
		}()
	}
}

// PeerUID returns the uid of the process at the other end of c (SO_PEERCRED).
func PeerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return -1, err
	}
	if serr != nil {
		return -1, serr
	}
	return int(cred.Uid), nil
}

func serveConn(ctx context.Context, c *net.UnixConn, svc hsm.Signer, cfg ServerConfig, denied *deniedLog) {
	uid, err := PeerUID(c)
	var scratch []byte
	if err != nil || !slices.Contains(cfg.AllowUIDs, uid) {
		denied.denied(cfg.Logger, uid, err)
		_ = c.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
		_, _ = writeFrame(c, nil, append([]byte{StatusDenied}, "peer uid not allowed"...))
		return
	}
	r := &deadlineReader{c: c, idle: cfg.IdleTimeout, read: cfg.ReadTimeout}
	var buf, resp []byte
	for {
		r.first = true
		buf, err = readFrame(r, buf, cfg.MaxRequest)
		if err != nil {
			if errors.Is(err, ErrBadFrame) {
				_ = c.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
				_, _ = writeFrame(c, nil, append([]byte{StatusBadRequest}, err.Error()...))
			}
			return
		}
		req, err := ParseRequest(buf)
		if err != nil {
			_ = c.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
			_, _ = writeFrame(c, nil, append([]byte{StatusBadRequest}, err.Error()...))
			return
		}
		resp = handle(ctx, svc, req, resp[:0])
		_ = c.SetWriteDeadline(time.Now().Add(cfg.WriteTimeout))
		if scratch, err = writeFrame(c, scratch, resp); err != nil {
			return
		}
		if cap(buf) > 4<<10 {
			buf = nil // do not keep a large request's buffer for an idle connection
		}
	}
}

// deadlineReader gives the wait for a frame's first byte the idle timeout
// and the rest of the frame the read timeout.
type deadlineReader struct {
	c          *net.UnixConn
	idle, read time.Duration
	first      bool
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.first {
		_ = d.c.SetReadDeadline(time.Now().Add(d.idle))
		n, err := d.c.Read(p[:min(len(p), 1)])
		if n > 0 {
			d.first = false
			_ = d.c.SetReadDeadline(time.Now().Add(d.read))
		}
		return n, err
	}
	return d.c.Read(p)
}

func handle(ctx context.Context, svc hsm.Signer, req Request, resp []byte) []byte {
	switch req.Op {
	case OpSign:
		s, err := svc.Sign(ctx, req.Msg)
		if err != nil {
			return errResp(resp, err)
		}
		resp = append(resp, StatusOK, byte(len(s.KeyID)))
		resp = append(resp, s.KeyID...)
		resp = append(resp, byte(len(s.Algorithm)))
		resp = append(resp, s.Algorithm...)
		return append(resp, s.Sig...)
	case OpSignWith:
		sig, err := svc.SignWith(ctx, req.KeyID, req.Msg)
		if err != nil {
			return errResp(resp, err)
		}
		return append(append(resp, StatusOK), sig...)
	case OpManifest:
		m, err := svc.Manifest(ctx)
		if err != nil {
			return errResp(resp, err)
		}
		return append(append(resp, StatusOK), m...)
	}
	return append(append(resp, StatusBadRequest), "unknown op"...)
}

func errResp(resp []byte, err error) []byte {
	code := StatusInternal
	switch {
	case errors.Is(err, hsm.ErrKeyRetired):
		code = StatusRetired
	case errors.Is(err, hsm.ErrKeyNotFound):
		code = StatusNotFound
	case errors.Is(err, hsm.ErrPoolExhausted):
		code = StatusExhausted
	}
	return append(append(resp, code), err.Error()...)
}

// ClientConfig configures Dial. Its zero value works.
type ClientConfig struct {
	// Conns is the number of connections kept open (concurrent requests);
	// default 4.
	Conns int
	// Timeout bounds one request when ctx has no deadline; default 5s.
	Timeout time.Duration
}

// Client is an hsm.Signer over a unix socket. Safe for concurrent use.
type Client struct {
	path  string
	cfg   ClientConfig
	conns chan *clientConn
}

var _ hsm.Signer = (*Client)(nil)

type clientConn struct {
	c       *net.UnixConn
	buf     []byte
	out     []byte
	scratch []byte
}

// Dial connects to the signer at path and returns the client and its close
// function.
func Dial(ctx context.Context, path string, cfg ClientConfig) (*Client, func() error, error) {
	if cfg.Conns <= 0 {
		cfg.Conns = 4
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	cl := &Client{path: path, cfg: cfg, conns: make(chan *clientConn, cfg.Conns)}
	// Probe one connection now so a wrong path fails at Dial.
	cc, err := cl.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	cl.conns <- cc
	for range cfg.Conns - 1 {
		cl.conns <- nil // dialled lazily
	}
	return cl, cl.close, nil
}

func (cl *Client) dial(ctx context.Context) (*clientConn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", cl.path)
	if err != nil {
		return nil, fmt.Errorf("remote: dial signer: %w", err)
	}
	return &clientConn{c: c.(*net.UnixConn)}, nil
}

func (cl *Client) close() error {
	for range cl.cfg.Conns {
		if cc := <-cl.conns; cc != nil {
			cc.c.Close()
		}
	}
	return nil
}

// roundTrip sends one request and returns the OK response body (aliasing an
// internal buffer: copy before returning to callers).
func (cl *Client) roundTrip(ctx context.Context, req Request, f func(body []byte) error) error {
	err := cl.roundTripOnce(ctx, req, f)
	var stale *staleConnError
	if errors.As(err, &stale) {
		// A pooled connection the server had closed (idle timeout, restart):
		// nothing was answered, so send once more on a fresh connection.
		err = cl.roundTripOnce(ctx, req, f)
		if errors.As(err, &stale) {
			err = stale.err
		}
	}
	return err
}

// staleConnError is a failure on a reused connection before any byte of a
// response arrived.
type staleConnError struct{ err error }

func (e *staleConnError) Error() string { return e.err.Error() }
func (e *staleConnError) Unwrap() error { return e.err }

func (cl *Client) roundTripOnce(ctx context.Context, req Request, f func(body []byte) error) error {
	var cc *clientConn
	select {
	case cc = <-cl.conns:
	case <-ctx.Done():
		return ctx.Err()
	}
	var err error
	reused := cc != nil
	if cc == nil {
		if cc, err = cl.dial(ctx); err != nil {
			cl.conns <- nil
			return err
		}
	}
	ok := false
	defer func() {
		if !ok {
			cc.c.Close()
			cc = nil
		}
		cl.conns <- cc
	}()
	deadline, has := ctx.Deadline()
	if !has {
		deadline = time.Now().Add(cl.cfg.Timeout)
	}
	if err := cc.c.SetDeadline(deadline); err != nil {
		return err
	}
	cc.out = AppendRequest(cc.out[:0], req)
	cc.scratch, err = writeFrame(cc.c, cc.scratch, cc.out)
	if err != nil {
		// The server may have answered (e.g. denied) and closed before our
		// write: read what it sent, if anything.
		var rerr error
		if cc.buf, rerr = readFrame(cc.c, cc.buf, MaxFrame); rerr != nil {
			if reused {
				return &staleConnError{fmt.Errorf("remote: send: %w", err)}
			}
			return fmt.Errorf("remote: send: %w", err)
		}
	} else if cc.buf, err = readFrame(cc.c, cc.buf, MaxFrame); err != nil {
		if reused && (errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET)) {
			return &staleConnError{fmt.Errorf("remote: receive: %w", err)}
		}
		return fmt.Errorf("remote: receive: %w", err)
	}
	if len(cc.buf) == 0 {
		return fmt.Errorf("%w: empty response", ErrProtocol)
	}
	status, body := cc.buf[0], cc.buf[1:]
	if status != StatusOK {
		// The server closes the connection after these two.
		ok = status != StatusDenied && status != StatusBadRequest && status != StatusBusy
		return statusErr(status, string(body))
	}
	if err := f(body); err != nil {
		return err
	}
	ok = true
	return nil
}

func statusErr(status byte, msg string) error {
	var base error
	switch status {
	case StatusDenied:
		base = ErrDenied
	case StatusRetired:
		base = hsm.ErrKeyRetired
	case StatusNotFound:
		base = hsm.ErrKeyNotFound
	case StatusExhausted:
		base = hsm.ErrPoolExhausted
	case StatusBadRequest:
		base = ErrProtocol
	case StatusBusy:
		base = ErrBusy
	default:
		return fmt.Errorf("remote: signer: %s", msg)
	}
	return fmt.Errorf("%w (signer: %s)", base, msg)
}

// Sign implements hsm.Signer.
func (cl *Client) Sign(ctx context.Context, msg []byte) (hsm.Signature, error) {
	var s hsm.Signature
	err := cl.roundTrip(ctx, Request{Op: OpSign, Msg: msg}, func(b []byte) error {
		if len(b) < 1 || len(b) < 1+int(b[0])+1 {
			return fmt.Errorf("%w: short sign response", ErrProtocol)
		}
		n := int(b[0])
		s.KeyID = string(b[1 : 1+n])
		b = b[1+n:]
		m := int(b[0])
		if len(b) < 1+m {
			return fmt.Errorf("%w: short sign response", ErrProtocol)
		}
		s.Algorithm = hsm.Algorithm(b[1 : 1+m])
		s.Sig = append([]byte(nil), b[1+m:]...)
		return nil
	})
	return s, err
}

// SignWith implements hsm.Signer.
func (cl *Client) SignWith(ctx context.Context, keyID string, msg []byte) ([]byte, error) {
	if len(keyID) == 0 || len(keyID) > 255 {
		return nil, fmt.Errorf("%w: key id %q", hsm.ErrKeyNotFound, keyID)
	}
	var sig []byte
	err := cl.roundTrip(ctx, Request{Op: OpSignWith, KeyID: keyID, Msg: msg}, func(b []byte) error {
		sig = append([]byte(nil), b...)
		return nil
	})
	return sig, err
}

// Manifest implements hsm.Signer.
func (cl *Client) Manifest(ctx context.Context) ([]byte, error) {
	var m []byte
	err := cl.roundTrip(ctx, Request{Op: OpManifest}, func(b []byte) error {
		m = append([]byte(nil), b...)
		return nil
	})
	return m, err
}
