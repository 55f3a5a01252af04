// Package remote serves an hsm.Signer over a unix socket and offers a client
// with the same Go API, so the PKCS#11 session can live in a separate process
// (`tradecore signer --socket PATH`) apart from the trading process.
//
// Use [Listen] and [Serve] on the signer side, [Dial] on the caller side; the
// *Client implements hsm.Signer. Serve checks each connection's peer
// credentials (SO_PEERCRED) against an allow-list of uids before reading a
// frame. Dial's close function closes the client's connections; Serve returns
// when its context is cancelled, after closing the listener.
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
	"log/slog"
	"net"
	"os"
	"slices"
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

// Listen creates a unix socket at path (removing a stale socket file) with
// mode 0660.
func Listen(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("remote: listen: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("remote: chmod socket: %w", err)
	}
	return ln, nil
}

// ServerConfig configures Serve. Its zero value allows only the server's own
// uid.
type ServerConfig struct {
	// AllowUIDs lists the peer uids allowed to sign; default: os.Getuid().
	AllowUIDs []int
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Serve answers requests on ln with svc until ctx is done, then closes ln and
// every connection and returns nil (or the accept error that stopped it).
func Serve(ctx context.Context, ln *net.UnixListener, svc hsm.Signer, cfg ServerConfig) error {
	if len(cfg.AllowUIDs) == 0 {
		cfg.AllowUIDs = []int{os.Getuid()}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
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
			return fmt.Errorf("remote: accept: %w", err)
		}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			serveConn(ctx, c, svc, cfg)
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

func serveConn(ctx context.Context, c *net.UnixConn, svc hsm.Signer, cfg ServerConfig) {
	uid, err := PeerUID(c)
	var scratch []byte
	if err != nil || !slices.Contains(cfg.AllowUIDs, uid) {
		cfg.Logger.Warn("remote: connection refused", "uid", uid, "err", err)
		_, _ = writeFrame(c, nil, append([]byte{StatusDenied}, "peer uid not allowed"...))
		return
	}
	var buf, resp []byte
	for {
		buf, err = readFrame(c, buf)
		if err != nil {
			if errors.Is(err, ErrBadFrame) {
				_, _ = writeFrame(c, nil, append([]byte{StatusBadRequest}, err.Error()...))
			}
			return
		}
		req, err := ParseRequest(buf)
		if err != nil {
			_, _ = writeFrame(c, nil, append([]byte{StatusBadRequest}, err.Error()...))
			return
		}
		resp = handle(ctx, svc, req, resp[:0])
		if scratch, err = writeFrame(c, scratch, resp); err != nil {
			return
		}
	}
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
	var cc *clientConn
	select {
	case cc = <-cl.conns:
	case <-ctx.Done():
		return ctx.Err()
	}
	var err error
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
		if cc.buf, rerr = readFrame(cc.c, cc.buf); rerr != nil {
			return fmt.Errorf("remote: send: %w", err)
		}
	} else if cc.buf, err = readFrame(cc.c, cc.buf); err != nil {
		return fmt.Errorf("remote: receive: %w", err)
	}
	if len(cc.buf) == 0 {
		return fmt.Errorf("%w: empty response", ErrProtocol)
	}
	status, body := cc.buf[0], cc.buf[1:]
	if status != StatusOK {
		// The server closes the connection after these two.
		ok = status != StatusDenied && status != StatusBadRequest
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
