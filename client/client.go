// Package client is the Go client library of tradecore's order-entry and
// market-data ports (docs/protocol.md).
//
// Dial connects and logs in (TLS by default, optionally pinning the server's
// key; plain TCP only when Config.Plain says so); the order methods
// (NewOrder, Cancel, CancelToSize, Replace, MassCancel, KillSwitch,
// QueryReference) send one frame each without allocating; Recv returns the
// next message as a typed proto value (Accepted, Executed, …) that stays
// valid until the next Recv, also without allocating. With
// Config.Reconnect, a lost connection is dialled again and the login asks
// for the messages after the last one Recv returned: the caller sees one
// gapless stream (nothing lost, nothing twice) across reconnects and server
// restarts. Sends made while disconnected fail with ErrDisconnected; send
// them again (with the same reference: the engine never saw them, or it
// answers duplicate-clordid). A send that races the connection's end may
// be lost without an error: after a reconnect (Logins grows), QueryReference
// says the highest reference the server has seen, and an order above it
// was never received.
//
// With Config.Device (OpenDevice: a TPM and the AK file of `tcclient attest`)
// the login is attested: the client announces the device, answers the
// server's challenge with a TPM quote before the login is accepted, and
// answers the server's renewal challenges during the session from its own
// goroutine (keep calling Recv: challenges arrive on the session like any
// message). Attestation reports the server's last confirmation.
//
// A Client is safe for concurrent senders and one receiver. Close logs out.
package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/proto"
)

// Errors.
var (
	// ErrRejected: the server refused the login; LoginError says why.
	ErrRejected = errors.New("client: login refused")
	// ErrDisconnected: the connection is down (reconnecting, or closed);
	// send again once Recv has returned the next message, or give up.
	ErrDisconnected = errors.New("client: disconnected")
	// ErrLoggedOut: the server ended the session (Logout); LogoutError says
	// why. With Config.Reconnect the client reconnects unless the reason is
	// final (logout-requested).
	ErrLoggedOut = errors.New("client: logged out")
	// ErrPin: the server's key does not match Config.PinSHA256; check the
	// pin or the address.
	ErrPin = errors.New("client: server key does not match the pin")
	// ErrGap: the server sent a sequence number that is not the next one;
	// it should never happen: report it.
	ErrGap = errors.New("client: sequence gap")
)

// LoginError is a refused login.
type LoginError struct{ Reason core.Reason }

func (e *LoginError) Error() string {
	return fmt.Sprintf("client: login refused: %s (%d)", proto.ReasonName(e.Reason), e.Reason)
}
func (e *LoginError) Unwrap() error { return ErrRejected }

// LogoutError is the server's end of a session.
type LogoutError struct {
	Reason  core.Reason
	NextSeq uint64
}

func (e *LogoutError) Error() string {
	return fmt.Sprintf("client: logged out by the server: %s (%d); next seq %d", proto.ReasonName(e.Reason), e.Reason, e.NextSeq)
}
func (e *LogoutError) Unwrap() error { return ErrLoggedOut }

// Config configures a client.
type Config struct {
	// Addr is the server's "host:port".
	Addr string
	// KeyID and Secret are the API key.
	KeyID  string
	Secret []byte
	// TLS configures TLS (nil: the system roots, or only the pin when
	// PinSHA256 is set). Plain turns TLS off, for a server configured for
	// plain TCP.
	TLS   *tls.Config
	Plain bool
	// PinSHA256 pins the server's key: the hex SHA-256 of its certificate's
	// SubjectPublicKeyInfo (`tradecore serve` prints it). With a pin and no
	// TLS.RootCAs the pin alone authenticates the server.
	PinSHA256 string
	// NextSeq is the first sequence number wanted at the first login: 0
	// continues live, n replays from n.
	NextSeq uint64
	// Snapshot asks the market-data port for a snapshot at every login.
	Snapshot bool
	// Reconnect dials again after a lost connection, with replay.
	Reconnect bool
	// DialTimeout bounds a dial and login (default 5 s).
	DialTimeout time.Duration
	// Device attests the sessions with a TPM (OpenDevice). nil: no
	// attestation, and a key or account that requires a device is refused
	// (attestation-required).
	Device Device
}

// Client is one session with the server.
type Client struct {
	cfg Config

	wmu  sync.Mutex // senders
	conn net.Conn
	wbuf []byte
	qbuf []byte       // Queue's
	sent atomic.Int64 // nanos of the last send, for heartbeats

	// Receiver-owned.
	fr      *proto.FrameReader
	rconn   net.Conn  // the connection fr reads
	rdl     bool      // a read deadline is set on rconn
	rdlAt   time.Time // the deadline set
	lastSeq uint64
	expect  uint64 // the Seq the next sequenced message must carry
	msgs    [256]proto.Message
	login   proto.LoginAccepted
	nextRef atomic.Uint64

	hb     atomic.Int64 // heartbeat interval, ns
	logins atomic.Int64

	amu        sync.Mutex
	att        Attestation
	challenges chan proto.AttestChallenge // in-session challenges, to the attester

	closed atomic.Bool
	down   atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// Dial connects and logs in.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if len(cfg.Secret) != proto.SecretSize || !proto.ValidKeyID([]byte(cfg.KeyID)) {
		return nil, fmt.Errorf("client: an API key is a 16-character id and a 32-byte secret")
	}
	if cfg.Device != nil {
		if _, ok := proto.ParseDeviceID(cfg.Device.ID()); !ok {
			return nil, fmt.Errorf("client: Config.Device's id %q is not 32 lowercase hex digits", cfg.Device.ID())
		}
	}
	c := &Client{cfg: cfg, wbuf: make([]byte, 0, 512), stop: make(chan struct{}), challenges: make(chan proto.AttestChallenge, 1)}
	for _, t := range proto.Types() {
		c.msgs[t] = proto.New(t)
	}
	if err := c.connect(ctx, cfg.NextSeq); err != nil {
		return nil, err
	}
	c.wg.Add(1)
	go c.heartbeats()
	if cfg.Device != nil {
		c.wg.Add(1)
		go c.attester()
	}
	return c, nil
}

func (c *Client) tlsConfig() *tls.Config {
	t := c.cfg.TLS
	if t == nil {
		t = &tls.Config{MinVersion: tls.VersionTLS13}
	} else {
		t = t.Clone()
	}
	if pin := c.cfg.PinSHA256; pin != "" {
		if t.RootCAs == nil {
			t.InsecureSkipVerify = true // the pin is the trust anchor
		}
		t.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrPin
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if hex.EncodeToString(sum[:]) != pin {
				return ErrPin
			}
			return nil
		}
	}
	return t
}

// connect dials, logs in asking for messages from next (0: live) and reads
// the answer.
func (c *Client) connect(ctx context.Context, next uint64) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.DialTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return fmt.Errorf("client: dial %s: %w", c.cfg.Addr, err)
	}
	if !c.cfg.Plain {
		tc := tls.Client(conn, c.tlsConfig())
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			if errors.Is(err, ErrPin) {
				return ErrPin
			}
			return fmt.Errorf("client: TLS with %s: %w", c.cfg.Addr, err)
		}
		conn = tc
	}
	l := proto.Login{Timestamp: time.Now().UnixNano(), NextSeq: next}
	copy(l.KeyID[:], c.cfg.KeyID)
	_, _ = rand.Read(l.Nonce[:])
	if c.cfg.Snapshot {
		l.Flags = proto.FlagSnapshot
	}
	if c.cfg.Device != nil {
		l.Flags |= proto.FlagDevice
	}
	proto.SignLogin(&l, c.cfg.Secret)
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	out := l.AppendFrame(nil)
	if c.cfg.Device != nil {
		hello := proto.AttestHello{}
		hello.DeviceID, _ = proto.ParseDeviceID(c.cfg.Device.ID())
		out = hello.AppendFrame(out) // with the login, without waiting
	}
	if _, err := conn.Write(out); err != nil {
		conn.Close()
		return fmt.Errorf("client: login: %w", err)
	}
	fr := proto.NewFrameReader(conn, 0)
	f, err := fr.Next()
	if err == nil && c.cfg.Device != nil && proto.Type(f[2]) == proto.TAttestChallenge {
		var ch proto.AttestChallenge
		var q *proto.AttestQuote
		if err = ch.UnmarshalFrame(f); err == nil {
			q, err = c.answer(&ch)
		}
		if err != nil {
			c.noteAttestErr(err)
			conn.Close()
			return fmt.Errorf("client: login: %w", err)
		}
		if _, err := conn.Write(q.AppendFrame(nil)); err != nil {
			conn.Close()
			return fmt.Errorf("client: login: %w", err)
		}
		f, err = fr.Next()
	}
	if err != nil {
		conn.Close()
		return fmt.Errorf("client: login answer: %w", err)
	}
	switch proto.Type(f[2]) {
	case proto.TLoginAccepted:
		var la proto.LoginAccepted
		if err := la.UnmarshalFrame(f); err != nil {
			conn.Close()
			return err
		}
		_ = conn.SetDeadline(time.Time{})
		c.login = la
		c.expect = la.ReplayFrom
		c.logins.Add(1)
		c.hb.Store(int64(la.HeartbeatMs) * int64(time.Millisecond))
		for {
			cur := c.nextRef.Load()
			if la.NextClOrdID <= cur || c.nextRef.CompareAndSwap(cur, la.NextClOrdID) {
				break
			}
		}
		c.fr, c.rconn, c.rdl, c.rdlAt = fr, conn, false, time.Time{}
		c.wmu.Lock()
		c.conn = conn
		c.wmu.Unlock()
		c.down.Store(false)
		return nil
	case proto.TLoginRejected:
		var lr proto.LoginRejected
		_ = lr.UnmarshalFrame(f)
		conn.Close()
		return &LoginError{Reason: lr.Reason}
	}
	conn.Close()
	return fmt.Errorf("client: login answered with a %s frame", proto.Type(f[2]))
}

// Logins returns how many times the client has logged in (1 + the
// reconnects).
func (c *Client) Logins() int64 { return c.logins.Load() }

// Login returns the last LoginAccepted.
func (c *Client) Login() proto.LoginAccepted { return c.login }

// LastSeq returns the sequence number of the last sequenced message Recv
// returned: log in with LastSeq()+1 to continue after it.
func (c *Client) LastSeq() uint64 { return c.lastSeq }

// NewRef returns a fresh client reference: above every reference the
// server reported at login and every one returned before.
func (c *Client) NewRef() uint64 { return c.nextRef.Add(1) - 1 }

// UseRef tells the client a reference was used outside NewRef.
func (c *Client) UseRef(ref uint64) {
	for {
		cur := c.nextRef.Load()
		if ref < cur || c.nextRef.CompareAndSwap(cur, ref+1) {
			return
		}
	}
}

// Send sends one message. It does not allocate.
func (c *Client) Send(m proto.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.down.Load() || c.conn == nil {
		return ErrDisconnected
	}
	c.wbuf = m.AppendFrame(c.wbuf[:0])
	if _, err := c.conn.Write(c.wbuf); err != nil {
		c.down.Store(true)
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	c.sent.Store(time.Now().UnixNano())
	return nil
}

// Queue appends m to the send buffer without writing it; Flush writes
// what is queued in one write. For senders of bursts (load generators).
// It does not allocate once the buffer has grown.
func (c *Client) Queue(m proto.Message) {
	c.wmu.Lock()
	c.qbuf = m.AppendFrame(c.qbuf)
	if o, ok := m.(*proto.NewOrder); ok {
		c.UseRef(o.ClOrdID)
	}
	c.wmu.Unlock()
}

// Flush writes what Queue queued.
func (c *Client) Flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(c.qbuf) == 0 {
		return nil
	}
	b := c.qbuf
	c.qbuf = c.qbuf[:0]
	if c.down.Load() || c.conn == nil {
		return ErrDisconnected
	}
	if _, err := c.conn.Write(b); err != nil {
		c.down.Store(true)
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	c.sent.Store(time.Now().UnixNano())
	return nil
}

// NewOrder sends a new order.
func (c *Client) NewOrder(o *proto.NewOrder) error {
	c.UseRef(o.ClOrdID)
	return c.Send(o)
}

// Cancel cancels order id (current reference orig).
func (c *Client) Cancel(id, orig uint64, inst uint32) error {
	m := proto.Cancel{OrderID: id, OrigClOrdID: orig, Instrument: inst}
	return c.Send(&m)
}

// CancelToSize reduces order id to qty open lots.
func (c *Client) CancelToSize(id, orig uint64, inst uint32, qty int64) error {
	m := proto.CancelToSize{OrderID: id, OrigClOrdID: orig, Instrument: inst, Qty: qty}
	return c.Send(&m)
}

// Replace replaces order id.
func (c *Client) Replace(r *proto.Replace) error {
	c.UseRef(r.ClOrdID)
	return c.Send(r)
}

// MassCancel cancels every open order of the account in inst (0: all).
func (c *Client) MassCancel(inst uint32) error {
	m := proto.MassCancel{Instrument: inst}
	return c.Send(&m)
}

// KillSwitch sets the account's kill switch.
func (c *Client) KillSwitch() error { return c.Send(&proto.KillSwitch{}) }

// QueryReference asks for the next reference; the answer comes from Recv
// as a *proto.NextReference.
func (c *Client) QueryReference() error { return c.Send(&proto.ReferenceQuery{}) }

// Recv returns the next message: a sequenced one (Accepted, Executed, …, or
// market data) or an unsequenced SessionReject or NextReference. Heartbeats
// are skipped. The message is the client's own and valid until the next
// Recv. It returns a *LogoutError when the server ended the session (after
// reconnecting, with Config.Reconnect, it goes on), and ErrGap if the
// server ever breaks the sequence.
func (c *Client) Recv(ctx context.Context) (proto.Message, error) {
	for {
		m, err := c.recvCtx(ctx)
		if err == nil {
			return m, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if c.closed.Load() || !c.cfg.Reconnect || errors.Is(err, ErrGap) {
			return nil, err
		}
		var lo *LogoutError
		if errors.As(err, &lo) && lo.Reason == proto.ReasonLogoutByUser {
			return nil, err
		}
		if err := c.reconnect(ctx); err != nil {
			return nil, err
		}
	}
}

// recvCtx is recv bounded by ctx: its deadline becomes the read deadline,
// its cancellation ends the read. A read that ctx ended leaves the
// connection as it was.
func (c *Client) recvCtx(ctx context.Context) (proto.Message, error) {
	if c.rconn != nil {
		d, hasDL := ctx.Deadline()
		switch {
		case hasDL:
			if !c.rdl || !d.Equal(c.rdlAt) { // a timer change per call otherwise
				_ = c.rconn.SetReadDeadline(d)
				c.rdl, c.rdlAt = true, d
			}
		case c.rdl:
			_ = c.rconn.SetReadDeadline(time.Time{})
			c.rdl, c.rdlAt = false, time.Time{}
		}
		if !hasDL && ctx.Done() != nil {
			// Cancellation without a deadline ends the read by moving the
			// deadline; wait for that to finish before returning, so it
			// never touches a later read.
			rc := c.rconn
			moved := make(chan struct{})
			stop := context.AfterFunc(ctx, func() {
				_ = rc.SetReadDeadline(time.Unix(1, 0))
				close(moved)
			})
			defer func() {
				if !stop() {
					<-moved
					c.rdl, c.rdlAt = true, time.Unix(1, 0)
				}
			}()
		}
	}
	return c.recv(ctx)
}

func (c *Client) recv(ctx context.Context) (proto.Message, error) {
	if c.fr == nil {
		return nil, ErrDisconnected
	}
	for {
		f, err := c.fr.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if c.rdl && errors.Is(err, os.ErrDeadlineExceeded) {
				// The read deadline came from ctx, whose own timer may not
				// have fired yet: the connection is fine.
				return nil, context.DeadlineExceeded
			}
			c.markDown()
			return nil, fmt.Errorf("%w: %w", ErrDisconnected, err)
		}
		t := proto.Type(f[2])
		switch t {
		case proto.THeartbeat:
			continue
		case proto.TLogout:
			var lo proto.Logout
			_ = lo.UnmarshalFrame(f)
			c.markDown()
			return nil, &LogoutError{Reason: lo.Reason, NextSeq: lo.NextSeq}
		case proto.TAttestChallenge, proto.TAttestAccepted:
			if c.cfg.Device == nil {
				break // never sent to a session without a device: returned as it is
			}
			if t == proto.TAttestAccepted {
				var aa proto.AttestAccepted
				if err := aa.UnmarshalFrame(f); err != nil {
					c.markDown()
					return nil, err
				}
				c.noteAccepted(&aa)
				continue
			}
			var ch proto.AttestChallenge
			if err := ch.UnmarshalFrame(f); err != nil {
				c.markDown()
				return nil, err
			}
			select {
			case c.challenges <- ch: // the attester answers it
			default: // one is being answered: the server sends no second before
			}
			continue
		}
		m := c.msgs[t]
		if err := m.UnmarshalFrame(f); err != nil {
			c.markDown()
			return nil, err
		}
		if seq, ok := proto.Sequenced(f); ok && seq != 0 {
			if seq != c.expect {
				c.markDown()
				return nil, fmt.Errorf("%w: %d where %d was due", ErrGap, seq, c.expect)
			}
			c.lastSeq, c.expect = seq, seq+1
		}
		if se, ok := m.(*proto.SnapshotEnd); ok {
			c.lastSeq, c.expect = se.Seq, se.Seq+1
		}
		return m, nil
	}
}

func (c *Client) markDown() {
	c.wmu.Lock()
	c.down.Store(true)
	if c.conn != nil {
		c.conn.Close()
	}
	c.wmu.Unlock()
}

// reconnect dials again (backing off from 50 ms to 2 s) and logs in for
// the messages after the last one returned.
func (c *Client) reconnect(ctx context.Context) error {
	wait := 50 * time.Millisecond
	for {
		next := c.expect
		if c.cfg.Snapshot {
			next = 0
		}
		err := c.connect(ctx, next)
		if err == nil {
			return nil
		}
		var le *LoginError
		if errors.As(err, &le) && le.Reason != proto.ReasonSessionActive && le.Reason != proto.ReasonTooManyConnections && le.Reason != proto.ReasonLoginRate {
			return err // refused for good
		}
		if errors.Is(err, ErrPin) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.stop:
			return ErrDisconnected
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// heartbeats sends a Heartbeat whenever the client sent nothing for the
// interval.
func (c *Client) heartbeats() {
	defer c.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if hb := c.hb.Load(); hb > 0 && time.Now().UnixNano()-c.sent.Load() >= hb {
			_ = c.Send(&proto.Heartbeat{})
		}
	}
}

// Logout asks the server to end the session: Recv then returns what the
// server still had queued and a *LogoutError (logout-requested).
func (c *Client) Logout() error { return c.Send(&proto.LogoutRequest{}) }

// Close logs out and closes the connection at once; messages still on
// their way are dropped (use Logout and Recv to read them).
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	close(c.stop)
	c.wg.Wait()
	_ = c.Send(&proto.LogoutRequest{})
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.down.Store(true)
	if c.conn != nil {
		if err := c.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
	}
	return nil
}

// KeyFile is a client's key file (`tradecore apikeys create --out`, the
// demo key `tradecore serve` writes): the key, and optionally where the
// server is and its pin.
type KeyFile struct {
	KeyID      string `json:"key_id"`
	Secret     string `json:"secret"` // hex
	Account    uint32 `json:"account"`
	OrderEntry string `json:"order_entry,omitempty"`
	MarketData string `json:"market_data,omitempty"`
	PinSHA256  string `json:"pin_sha256,omitempty"`
	Plain      bool   `json:"plain,omitempty"`
}

// LoadKeyFile reads a key file.
func LoadKeyFile(path string) (KeyFile, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return KeyFile{}, nil, fmt.Errorf("client: key file: %w", err)
	}
	var kf KeyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return KeyFile{}, nil, fmt.Errorf("client: key file %s: %w", path, err)
	}
	secret, err := hex.DecodeString(kf.Secret)
	if err != nil || len(secret) != proto.SecretSize || !proto.ValidKeyID([]byte(kf.KeyID)) {
		return KeyFile{}, nil, fmt.Errorf("client: key file %s: needs key_id (16 characters) and secret (64 hex digits)", path)
	}
	return kf, secret, nil
}

// RootsFromPEM returns a pool holding the certificates in pem.
func RootsFromPEM(pem []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		return nil, errors.New("client: no PEM certificate")
	}
	return p, nil
}
