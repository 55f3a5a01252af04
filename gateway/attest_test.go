package gateway_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/client"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/core/ring"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/gateway/gatewaytest"
	"github.com/tradecore/tradecore/internal/swtpmtest"
	"github.com/tradecore/tradecore/proto"
	"github.com/tradecore/tradecore/tpm"
	"github.com/tradecore/tradecore/tpm/device"
)

// tpmDevice is one simulated trading host: a swtpm process, an AK enrolled
// (and approved, pinning PCRs 0-7) with the server's attestor, and its AK
// file. It implements client.Device over one TPM connection it shares with
// the test, so the test can extend a PCR while a session is open.
type tpmDevice struct {
	sw      *swtpmtest.TPM
	mu      sync.Mutex
	tr      transport.TPM
	dev     *device.TPM
	key     device.Key
	keyFile string
}

func (d *tpmDevice) ID() string { return d.key.DeviceID }

func (d *tpmDevice) Quote(ch tpm.Challenge) (tpm.QuoteResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dev.Quote(d.key, ch)
}

// extend measures "unapproved software" into PCR 7, as a boot of other
// software would.
func (d *tpmDevice) extend(t *testing.T) {
	d.mu.Lock()
	defer d.mu.Unlock()
	sum := sha256.Sum256([]byte("unapproved bootloader"))
	swtpmtest.Extend(t, d.tr, 7, sum[:])
}

// wireID is the device id as the frames carry it.
func (d *tpmDevice) wireID() [proto.DeviceIDSize]byte {
	id, _ := proto.ParseDeviceID(d.key.DeviceID)
	return id
}

// forged claims one device's id and quotes with another TPM's AK.
type forged struct {
	id    string
	inner client.Device
}

func (f forged) ID() string { return f.id }
func (f forged) Quote(ch tpm.Challenge) (tpm.QuoteResponse, error) {
	return f.inner.Quote(ch)
}

// attestEnv is a server with a TPM attestor trusting a local EK CA.
type attestEnv struct {
	*harness
	ca    *swtpmtest.CA
	first *swtpmtest.TPM // manufactured with the CA, not yet enrolled
}

func newAttestEnv(t *testing.T, cfg gateway.Config, tc tpm.Config) *attestEnv {
	t.Helper()
	ca := swtpmtest.NewCA(t)
	sw := swtpmtest.Manufacture(t, ca) // the CA's certificates exist after the first TPM
	pool, err := tpm.ParseCAPool(ca.PoolPEM(t))
	require.NoError(t, err)
	tc.EKRoots = pool
	s := gatewaytest.Start(t, cfg, gatewaytest.WithAttestation(tc))
	h := &harness{Server: s, t: t, store: s.Store, clock: s.Clock, ctl: s.Control}
	h.sync()
	return &attestEnv{harness: h, ca: ca, first: sw}
}

// device manufactures a TPM (the first one is made with the CA) and
// enrols it; approve says whether the operator approves it.
func (e *attestEnv) device(approve bool) *tpmDevice {
	e.t.Helper()
	sw := e.first
	if sw == nil {
		sw = swtpmtest.Manufacture(e.t, e.ca)
	}
	e.first = nil
	return enrol(e.t, e.Attestor, sw, approve)
}

// enrol enrols the TPM sw with the attestor a (approving it, pinning PCRs
// 0-7, when approve) and writes its AK file.
func enrol(tb testing.TB, a *tpm.Attestor, sw *swtpmtest.TPM, approve bool) *tpmDevice {
	tb.Helper()
	ctx := context.Background()
	tr := sw.Open(tb)
	d := &tpmDevice{sw: sw, tr: tr, dev: device.New(tr)}
	k, err := d.dev.CreateAK()
	require.NoError(tb, err)
	req, err := d.dev.EnrollRequest(k)
	require.NoError(tb, err)
	ch, err := a.Enroll(ctx, req)
	require.NoError(tb, err)
	proof, err := d.dev.Activate(k, ch)
	require.NoError(tb, err)
	dev, err := a.Activate(ctx, proof)
	require.NoError(tb, err)
	k.DeviceID = dev.ID
	if approve {
		_, err = a.Approve(ctx, dev.ID, tpm.Approval{PinPCRs: []int{0, 1, 2, 3, 4, 5, 6, 7}})
		require.NoError(tb, err)
	}
	d.key = k
	d.keyFile = filepath.Join(tb.TempDir(), "ak.json")
	require.NoError(tb, k.Save(d.keyFile))
	return d
}

// dial logs in with the client library.
func (e *attestEnv) dial(k key, dev client.Device) (*client.Client, error) {
	return client.Dial(context.Background(), client.Config{Addr: e.oe, KeyID: k.ID, Secret: k.Secret, Plain: true, Device: dev})
}

// loginReason is the reason a client-library login was refused (0: admitted,
// and the session is closed again).
func (e *attestEnv) loginReason(k key, dev client.Device) core.Reason {
	e.t.Helper()
	c, err := e.dial(k, dev)
	if err == nil {
		require.NoError(e.t, c.Logout())
		for {
			if _, err := c.Recv(context.Background()); err != nil {
				break
			}
		}
		c.Close()
		return 0
	}
	var le *client.LoginError
	require.ErrorAs(e.t, err, &le, "login error %v", err)
	return le.Reason
}

// rejected waits for the gateway.login_rejected record of key with code.
func (e *attestEnv) rejected(keyID string, code core.Reason) map[string]any {
	e.t.Helper()
	for range 300 {
		for _, m := range e.Records("gateway.login_rejected") {
			if m["key_id"] == keyID && m["code"] == float64(code) {
				return m
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatalf("no gateway.login_rejected record of key %s with code %d", keyID, code)
	return nil
}

// rawAttestLogin sends a login announcing dev and its AttestHello, and
// returns the server's challenge.
func rawAttestLogin(t *testing.T, c *conn, k key, wire [proto.DeviceIDSize]byte) *proto.AttestChallenge {
	t.Helper()
	c.send(loginMsg(k, 0, func(l *proto.Login) { l.Flags |= proto.FlagDevice }))
	c.send(&proto.AttestHello{DeviceID: wire})
	m := c.next()
	ch, ok := m.(*proto.AttestChallenge)
	require.True(t, ok, "the login was answered %#v, not a challenge", m)
	return ch
}

// quoteFor has d's TPM answer ch (with nonce as qualifying data, the
// challenge's unless given).
func quoteFor(t *testing.T, d *tpmDevice, ch *proto.AttestChallenge, nonce ...[]byte) *proto.AttestQuote {
	t.Helper()
	pcrs, err := ch.PCRList()
	require.NoError(t, err)
	n := ch.Nonce[:]
	if len(nonce) > 0 {
		n = nonce[0]
	}
	resp, err := d.Quote(tpm.Challenge{Type: tpm.TypeChallenge, Version: tpm.Version, DeviceID: d.ID(), Nonce: n, Bank: tpm.Bank, PCRs: pcrs})
	require.NoError(t, err)
	q := &proto.AttestQuote{DeviceID: d.wireID(), Nonce: ch.Nonce}
	require.NoError(t, q.SetQuote(resp.Quote, resp.Signature))
	return q
}

// TestAttestLogin: a key that requires an attested device admits a session
// of that device, which trades; the same key from an unattested device is
// refused, each way with its own reason, an audit record of the refusal
// and (for a quote that fails) the attestation's own record.
func TestAttestLogin(t *testing.T) {
	e := newAttestEnv(t, gateway.Config{LoginTimeout: 2 * time.Second, MaxConnsPerAddr: 64, LoginsPerAddr: 1000}, tpm.Config{})
	a := e.device(true)        // the key's device
	b := e.device(true)        // another approved device
	pending := e.device(false) // enrolled, never approved
	devKey := e.AddKey(apikey.CreateRequest{User: "u-dev", Account: 1, Scopes: []apikey.Scope{apikey.ScopeTrade}, RequireDevice: a.ID()})
	anyKey := e.AddKey(apikey.CreateRequest{User: "u-any", Account: 2, Scopes: []apikey.Scope{apikey.ScopeTrade}, RequireDevice: apikey.AnyDevice})
	ctx := context.Background()

	t.Run("attested device is admitted and trades", func(t *testing.T) {
		// The client library's own TPM device, on the swtpm socket with
		// the AK file tcclient attest would have written.
		dev, closeDev, err := client.OpenDevice(a.sw.Socket, a.keyFile)
		require.NoError(t, err)
		defer closeDev()
		require.Equal(t, a.ID(), dev.ID())
		c, err := e.dial(devKey, dev)
		require.NoError(t, err)
		defer c.Close()
		o := &proto.NewOrder{ClOrdID: c.NewRef(), Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 500, Qty: 10}
		require.NoError(t, c.NewOrder(o))
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := c.Recv(rctx)
		require.NoError(t, err)
		acc, ok := m.(*proto.Accepted)
		require.True(t, ok, "got %#v", m)
		require.Equal(t, o.ClOrdID, acc.ClOrdID)
		att := c.Attestation()
		require.Equal(t, a.ID(), att.DeviceID)
		require.WithinDuration(t, time.Now().Add(tpm.DefaultAttestationTTL), att.Expires, time.Minute)
		require.NoError(t, att.Err)
		e.waitRecord("gateway.login", "device_id", a.ID())
		e.waitRecord(tpm.RecordAttestationPassed, "device_id", a.ID())
	})

	t.Run("any approved device", func(t *testing.T) {
		require.Zero(t, e.loginReason(anyKey, b))
		require.Zero(t, e.loginReason(anyKey, a))
	})

	t.Run("a plain key may attest too", func(t *testing.T) {
		plain := e.trader("plain", 3)
		require.Zero(t, e.loginReason(plain, nil))
		require.Zero(t, e.loginReason(plain, b))
		require.Equal(t, core.Reason(tpm.ReasonDeviceNotApproved), e.loginReason(plain, pending),
			"a login that announces a device is attested, and refused when that fails")
	})

	unknownDev := forged{id: "00112233445566778899aabbccddeeff", inner: b}
	refusals := []struct {
		name string
		k    key
		dev  client.Device
		want core.Reason
		tpm  bool // the attestor records tpm.attestation.failed
	}{
		{"no device", devKey, nil, proto.ReasonAttestRequired, false},
		{"no device, any", anyKey, nil, proto.ReasonAttestRequired, false},
		{"another approved TPM", devKey, b, proto.ReasonDeviceNotAllowed, false},
		{"another TPM claiming the device", devKey, forged{id: a.ID(), inner: b}, core.Reason(tpm.ReasonSignatureInvalid), true},
		{"unknown device", anyKey, unknownDev, core.Reason(tpm.ReasonDeviceUnknown), false},
		{"device not approved", anyKey, pending, core.Reason(tpm.ReasonDeviceNotApproved), false},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, e.loginReason(tt.k, tt.dev))
			rec := e.rejected(tt.k.ID, tt.want)
			if tt.dev != nil {
				require.Equal(t, tt.dev.ID(), rec["device_id"], "the refusal names the device that tried")
			}
			if tt.tpm {
				e.waitRecord(tpm.RecordAttestationFailed, "reason_code", float64(tt.want))
			}
		})
	}

	t.Run("replayed quote", func(t *testing.T) {
		c := dialRaw(t, e.oe, nil)
		ch := rawAttestLogin(t, c, devKey, a.wireID())
		old := quoteFor(t, a, ch)
		c.send(old)
		_, ok := c.next().(*proto.LoginAccepted)
		require.True(t, ok)
		_, ok = c.next().(*proto.AttestAccepted)
		require.True(t, ok, "AttestAccepted follows LoginAccepted")
		c.send(&proto.LogoutRequest{})
		c.closed()

		c = dialRaw(t, e.oe, nil)
		rawAttestLogin(t, c, devKey, a.wireID())
		c.send(old) // the first login's quote, byte for byte
		require.Equal(t, core.Reason(tpm.ReasonNonceUsed), isReason(c.next()))
		require.Nil(t, c.closed())
		e.waitRecord(tpm.RecordAttestationFailed, "reason_code", float64(tpm.ReasonNonceUsed))
		e.waitRecord("gateway.login_rejected", "code", float64(tpm.ReasonNonceUsed))
	})

	t.Run("quote of another nonce", func(t *testing.T) {
		c := dialRaw(t, e.oe, nil)
		ch := rawAttestLogin(t, c, devKey, a.wireID())
		c.send(quoteFor(t, a, ch, make([]byte, 32)))
		require.Equal(t, core.Reason(tpm.ReasonNonceMismatch), isReason(c.next()))
	})

	t.Run("expired nonce", func(t *testing.T) {
		c := dialRaw(t, e.oe, nil)
		ch := rawAttestLogin(t, c, devKey, a.wireID())
		q := quoteFor(t, a, ch)
		e.clock.Shift(tpm.DefaultNonceTTL + time.Second) // the answer arrives after the nonce expired
		defer e.clock.Shift(-tpm.DefaultNonceTTL - time.Second)
		c.send(q)
		require.Equal(t, core.Reason(tpm.ReasonNonceExpired), isReason(c.next()))
		e.waitRecord("gateway.login_rejected", "code", float64(tpm.ReasonNonceExpired))
	})

	t.Run("no answer to the challenge", func(t *testing.T) {
		c := dialRaw(t, e.oe, nil)
		rawAttestLogin(t, c, devKey, a.wireID())
		m, err := c.tryNext(5 * time.Second)
		require.NoError(t, err)
		require.Equal(t, proto.ReasonAttestTimeout, isReason(m))
	})

	t.Run("announced, then no hello", func(t *testing.T) {
		c := dialRaw(t, e.oe, nil)
		c.send(loginMsg(devKey, 0, func(l *proto.Login) { l.Flags |= proto.FlagDevice }))
		c.send(&proto.Heartbeat{})
		require.Equal(t, proto.ReasonMalformed, isReason(c.next()))
	})

	t.Run("quote names another device than the hello", func(t *testing.T) {
		c := dialRaw(t, e.oe, nil)
		ch := rawAttestLogin(t, c, devKey, a.wireID())
		q := quoteFor(t, a, ch)
		q.DeviceID = b.wireID()
		c.send(q)
		require.Equal(t, proto.ReasonDeviceNotAllowed, isReason(c.next()))
	})

	t.Run("PCR extended after enrolment", func(t *testing.T) {
		a.extend(t)
		require.Equal(t, core.Reason(tpm.ReasonPCRMismatch), e.loginReason(devKey, a))
		e.waitRecord(tpm.RecordAttestationFailed, "reason_code", float64(tpm.ReasonPCRMismatch))
		// A reboot into the approved state (swtpm resets its PCRs) is
		// admitted again.
		a.sw.Restart()
		a.mu.Lock()
		a.tr = a.sw.Open(t)
		a.dev = device.New(a.tr)
		a.mu.Unlock()
		require.Zero(t, e.loginReason(devKey, a))
	})

	t.Run("revoked device", func(t *testing.T) {
		_, err := e.Attestor.Revoke(ctx, b.ID(), "test: stolen host")
		require.NoError(t, err)
		require.Equal(t, core.Reason(tpm.ReasonDeviceRevoked), e.loginReason(anyKey, b))
		e.waitRecord("gateway.login_rejected", "code", float64(tpm.ReasonDeviceRevoked))
		require.Zero(t, e.loginReason(anyKey, a), "other devices are unaffected")
	})
}

// TestAttestAccountRequirement: an account may require a device on its
// own; a key and an account naming different devices admit none.
func TestAttestAccountRequirement(t *testing.T) {
	e := newAttestEnv(t, gateway.Config{}, tpm.Config{})
	a := e.device(true)
	// The attestor opened a state folder for the server; the account map
	// needs the device id, known only now: restart with it.
	e.Cfg.AccountDevices = map[uint32]string{2: a.ID(), 3: apikey.AnyDevice}
	e.restart()
	plain2 := e.trader("p2", 2)
	plain3 := e.trader("p3", 3)
	other := e.AddKey(apikey.CreateRequest{User: "u-o", Account: 2, Scopes: []apikey.Scope{apikey.ScopeData}, RequireDevice: "ffeeddccbbaa99887766554433221100"})

	require.Equal(t, proto.ReasonAttestRequired, e.loginReason(plain2, nil), "the account requires a device even though the key does not")
	require.Zero(t, e.loginReason(plain2, a))
	require.Zero(t, e.loginReason(plain3, a))
	// The market-data port attests the same way.
	reader := e.AddKey(apikey.CreateRequest{User: "u-md", Scopes: []apikey.Scope{apikey.ScopeData}, RequireDevice: a.ID()})
	_, err := client.Dial(context.Background(), client.Config{Addr: e.md, KeyID: reader.ID, Secret: reader.Secret, Plain: true})
	var le *client.LoginError
	require.ErrorAs(t, err, &le)
	require.Equal(t, proto.ReasonAttestRequired, le.Reason)
	md, err := client.Dial(context.Background(), client.Config{Addr: e.md, KeyID: reader.ID, Secret: reader.Secret, Plain: true, Snapshot: true, Device: a})
	require.NoError(t, err)
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		m, err := md.Recv(rctx)
		require.NoError(t, err)
		if _, ok := m.(*proto.SnapshotEnd); ok {
			break
		}
	}
	require.Equal(t, a.ID(), md.Attestation().DeviceID)
	md.Close()

	c := dialRaw(t, e.md, nil)
	c.send(loginMsg(other, 0, func(l *proto.Login) { l.Flags |= proto.FlagDevice }))
	c.send(&proto.AttestHello{DeviceID: a.wireID()})
	require.Equal(t, proto.ReasonDeviceNotAllowed, isReason(c.next()), "key and account name different devices: none is allowed")
}

// TestAttestRenewal: an attested session re-attests before each
// attestation expires and outlives several lifetimes; a session whose
// device stops attesting (a PCR extended, no answer, revoked) ends with the
// reason and audit records.
func TestAttestRenewal(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	e := newAttestEnv(t, gateway.Config{AttestCheck: 100 * time.Millisecond, HeartbeatTimeout: 30 * time.Second},
		tpm.Config{AttestationTTL: ttl, RenewBefore: time.Second})
	a := e.device(true)
	b := e.device(true)
	k := e.AddKey(apikey.CreateRequest{User: "u-r", Account: 1, Scopes: []apikey.Scope{apikey.ScopeTrade}, RequireDevice: apikey.AnyDevice})
	k2 := e.AddKey(apikey.CreateRequest{User: "u-s", Account: 2, Scopes: []apikey.Scope{apikey.ScopeTrade}, RequireDevice: apikey.AnyDevice})
	ctx := context.Background()

	// recvUntil reads c's messages until fn says stop or d passes.
	recvFor := func(c *client.Client, d time.Duration) error {
		rctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		for {
			if _, err := c.Recv(rctx); err != nil {
				if errors.Is(err, context.DeadlineExceeded) {
					return nil
				}
				return err
			}
		}
	}

	t.Run("renewed past several lifetimes", func(t *testing.T) {
		c, err := e.dial(k, a)
		require.NoError(t, err)
		defer c.Close()
		first := c.Attestation()
		require.NoError(t, recvFor(c, 3*ttl), "the session lives through three lifetimes")
		att := c.Attestation()
		require.GreaterOrEqual(t, att.Renewals, int64(3))
		require.True(t, att.Expires.After(first.Expires.Add(ttl)), "each renewal moved the expiry: %v then %v", first.Expires, att.Expires)
		require.NoError(t, att.Err)
		o := &proto.NewOrder{ClOrdID: c.NewRef(), Instrument: 1, Side: core.Sell, OrdType: core.Limit, TIF: core.DAY, Price: 900, Qty: 5}
		require.NoError(t, c.NewOrder(o))
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		for {
			m, err := c.Recv(rctx)
			require.NoError(t, err)
			if acc, ok := m.(*proto.Accepted); ok {
				require.Equal(t, o.ClOrdID, acc.ClOrdID)
				break
			}
		}
		passed := 0
		for _, r := range e.Records(tpm.RecordAttestationPassed) {
			if r["device_id"] == a.ID() {
				passed++
			}
		}
		require.GreaterOrEqual(t, passed, 4, "the login and each renewal are recorded")
	})

	t.Run("failed re-attestation ends the session", func(t *testing.T) {
		c, err := e.dial(k, a)
		require.NoError(t, err)
		defer c.Close()
		a.extend(t)
		err = recvFor(c, 10*time.Second)
		var lo *client.LogoutError
		require.ErrorAs(t, err, &lo)
		require.Equal(t, core.Reason(tpm.ReasonPCRMismatch), lo.Reason)
		rec := e.waitRecord("gateway.session_closed", "code", float64(tpm.ReasonPCRMismatch))
		require.Equal(t, a.ID(), rec["device_id"])
		e.waitRecord(tpm.RecordAttestationFailed, "reason_code", float64(tpm.ReasonPCRMismatch))
	})

	t.Run("no answer ends the session", func(t *testing.T) {
		c := dialRaw(t, e.oe, nil)
		ch := rawAttestLogin(t, c, k2, b.wireID())
		c.send(quoteFor(t, b, ch))
		_, ok := c.next().(*proto.LoginAccepted)
		require.True(t, ok)
		_, ok = c.next().(*proto.AttestAccepted)
		require.True(t, ok)
		_, ok = c.next().(*proto.AttestChallenge) // the renewal, left unanswered
		require.True(t, ok)
		require.Equal(t, proto.ReasonAttestTimeout, c.closed().Reason)
		e.waitRecord("gateway.session_closed", "code", float64(proto.ReasonAttestTimeout))
	})

	t.Run("a quote nobody asked for", func(t *testing.T) {
		c := dialRaw(t, e.oe, nil)
		ch := rawAttestLogin(t, c, k2, b.wireID())
		q := quoteFor(t, b, ch)
		c.send(q)
		_, ok := c.next().(*proto.LoginAccepted)
		require.True(t, ok)
		c.send(q)
		require.Equal(t, proto.ReasonMalformed, c.closed().Reason)
	})

	t.Run("revoked during the session", func(t *testing.T) {
		c, err := e.dial(k2, b)
		require.NoError(t, err)
		defer c.Close()
		_, err = e.Attestor.Revoke(ctx, b.ID(), "test: revoked mid-session")
		require.NoError(t, err)
		err = recvFor(c, 10*time.Second)
		var lo *client.LogoutError
		require.ErrorAs(t, err, &lo)
		require.Equal(t, core.Reason(tpm.ReasonDeviceRevoked), lo.Reason)
		e.waitRecord(tpm.RecordAttestationEnded, "reason_code", float64(tpm.ReasonDeviceRevoked))
	})
}

// TestAttestUnavailable: a server without an attestor refuses every
// device-bound login: never admitted unattested.
func TestAttestUnavailable(t *testing.T) {
	h := newHarness(t, gateway.Config{})
	k := h.AddKey(apikey.CreateRequest{User: "u-x", Account: 1, Scopes: []apikey.Scope{apikey.ScopeTrade}, RequireDevice: apikey.AnyDevice})
	c := dialRaw(t, h.oe, nil)
	require.Equal(t, proto.ReasonAttestRequired, isReason(c.login(k, 0)))
	c = dialRaw(t, h.oe, nil)
	c.send(loginMsg(k, 0, func(l *proto.Login) { l.Flags |= proto.FlagDevice }))
	c.send(&proto.AttestHello{DeviceID: [16]byte{1}})
	require.Equal(t, proto.ReasonAttestUnavailable, isReason(c.next()))
	h.waitRecord("gateway.login_rejected", "code", float64(proto.ReasonAttestUnavailable))

	// Accounts that require a device need an attestor: a configuration
	// error at start, not logins that all fail.
	spin := ring.WaitStrategy{Mode: ring.BusySpin}
	in, err := ring.NewMPSC[core.Command](16, spin)
	require.NoError(t, err)
	out, err := ring.NewRing[core.Event](16, spin)
	require.NoError(t, err)
	ev, err := out.NewConsumer()
	require.NoError(t, err)
	deps := gateway.Deps{Keys: h.Store, Recorder: h.Log, In: in, Events: ev, Loop: h.Loop, JournalDir: t.TempDir(), Marks: &audit.SeqMarks{}}
	_, err = gateway.New(gateway.Config{PlainTCP: true, MarketData: "-", AccountDevices: map[uint32]string{1: apikey.AnyDevice}}, deps)
	require.ErrorIs(t, err, gateway.ErrConfig)
	require.ErrorContains(t, err, "Attestor")
	_, err = gateway.New(gateway.Config{PlainTCP: true, MarketData: "-", AccountDevices: map[uint32]string{1: "ANY"}}, deps)
	require.ErrorIs(t, err, gateway.ErrConfig)
	require.ErrorContains(t, err, "AccountDevices[1]")
}

// BenchmarkLogin is admission over loopback, login sent to LoginAccepted
// received (client.Dial), without and with device attestation on swtpm
// (challenge with its fsynced nonce, the device's quote, verification with
// its fsynced state and audit record). admit-ns/op, p50-ns and p99-ns are
// that span alone; ns/op adds the logout between logins.
func BenchmarkLogin(b *testing.B) {
	ca := swtpmtest.NewCA(b)
	sw := swtpmtest.Manufacture(b, ca)
	pool, err := tpm.ParseCAPool(ca.PoolPEM(b))
	require.NoError(b, err)
	// Short-lived nonces keep the device under its 16 answered challenges
	// per nonce lifetime at benchmark rates.
	s := gatewaytest.Start(b, gateway.Config{LoginsPerAddr: 1 << 20, MaxConnsPerAddr: 1 << 10},
		gatewaytest.WithAttestation(tpm.Config{EKRoots: pool, NonceTTL: 250 * time.Millisecond, MaxNonces: 64}))
	d := enrol(b, s.Attestor, sw, true)
	plain := s.Trader("bench-plain", 1)
	bound := s.AddKey(apikey.CreateRequest{User: "u-bench-dev", Account: 2, Scopes: []apikey.Scope{apikey.ScopeTrade}, RequireDevice: d.ID()})
	for _, bc := range []struct {
		name string
		k    key
		dev  client.Device
	}{{"plain", plain, nil}, {"attested", bound, d}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var spans []time.Duration
			for b.Loop() {
				start := time.Now()
				c, err := client.Dial(context.Background(), client.Config{Addr: s.OE, KeyID: bc.k.ID, Secret: bc.k.Secret, Plain: true, Device: bc.dev})
				spans = append(spans, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				_ = c.Logout()
				for {
					if _, err := c.Recv(context.Background()); err != nil {
						break
					}
				}
				c.Close()
			}
			slices.Sort(spans)
			var sum time.Duration
			for _, d := range spans {
				sum += d
			}
			b.ReportMetric(float64(sum.Nanoseconds())/float64(len(spans)), "admit-ns/op")
			b.ReportMetric(float64(spans[len(spans)/2].Nanoseconds()), "p50-ns")
			b.ReportMetric(float64(spans[len(spans)*99/100].Nanoseconds()), "p99-ns")
		})
	}
}
