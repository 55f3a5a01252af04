package tpm_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/internal/swtpmtest"
	"github.com/tradecore/tradecore/tpm"
	"github.com/tradecore/tradecore/tpm/device"
)

// record is one captured audit record.
type record struct {
	Type string
	Body map[string]any
}

// fakeRecorder captures audit records; fail makes Record return an error.
type fakeRecorder struct {
	mu   sync.Mutex
	recs []record
	fail error
}

func (f *fakeRecorder) Record(_ context.Context, typ string, body any) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return 0, f.fail
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return 0, err
	}
	for k, v := range m {
		if n, ok := v.(json.Number); ok {
			if _, err := n.Int64(); err != nil {
				return 0, errors.New("audit body field " + k + " is not an integer")
			}
		}
	}
	f.recs = append(f.recs, record{typ, m})
	return uint64(len(f.recs)), nil
}

func (f *fakeRecorder) last() record {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.recs) == 0 {
		return record{}
	}
	return f.recs[len(f.recs)-1]
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is one simulated device and one server state folder.
type fixture struct {
	t    testing.TB
	ca   *swtpmtest.CA
	sw   *swtpmtest.TPM
	dev  *device.TPM
	key  device.Key
	pool *tpm.CAPool
	dir  string
	rec  *fakeRecorder
	clk  *clock
	a    *tpm.Attestor
	id   string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	ca := swtpmtest.NewCA(t)
	sw := swtpmtest.Manufacture(t, ca)
	pool, err := tpm.ParseCAPool(ca.PoolPEM(t))
	require.NoError(t, err)
	f := &fixture{t: t, ca: ca, sw: sw, pool: pool, dir: t.TempDir(), rec: &fakeRecorder{},
		clk: &clock{t: time.Now().UTC()}}
	f.connect()
	f.a = f.attestor()
	return f
}

// connect (re)opens the device's TPM connection.
func (f *fixture) connect() {
	f.dev = device.New(f.sw.Open(f.t))
}

// attestor opens another Attestor on the fixture's state folder (another
// process's view: its own lock descriptor).
func (f *fixture) attestor() *tpm.Attestor {
	f.t.Helper()
	a, closeA, err := tpm.Open(context.Background(), tpm.Config{
		Dir: f.dir, EKRoots: f.pool, Recorder: f.rec, Now: f.clk.Now, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(f.t, err)
	f.t.Cleanup(func() { closeA() })
	return a
}

// enroll runs the whole enrolment with a new AK and returns the device id.
func (f *fixture) enroll() string {
	f.t.Helper()
	ctx := context.Background()
	k, err := f.dev.CreateAK()
	require.NoError(f.t, err)
	f.key = k
	req, err := f.dev.EnrollRequest(k)
	require.NoError(f.t, err)
	ch, err := f.a.Enroll(ctx, req)
	require.NoError(f.t, err)
	proof, err := f.dev.Activate(k, ch)
	require.NoError(f.t, err)
	d, err := f.a.Activate(ctx, proof)
	require.NoError(f.t, err)
	require.Equal(f.t, tpm.StateEnrolled, d.State)
	f.id = d.ID
	return d.ID
}

// enrollApproved enrols and approves the device pinning PCRs 0-7.
func (f *fixture) enrollApproved() string {
	f.t.Helper()
	id := f.enroll()
	_, err := f.a.Approve(context.Background(), id, tpm.Approval{PinPCRs: []int{0, 1, 2, 3, 4, 5, 6, 7}})
	require.NoError(f.t, err)
	return id
}

// quote answers a fresh challenge.
func (f *fixture) quote() (tpm.Challenge, tpm.QuoteResponse) {
	f.t.Helper()
	ch, err := f.a.Challenge(context.Background(), f.id)
	require.NoError(f.t, err)
	q, err := f.dev.Quote(f.key, ch)
	require.NoError(f.t, err)
	return ch, q
}

func (f *fixture) attest() (tpm.Attestation, error) {
	f.t.Helper()
	_, q := f.quote()
	return f.a.Verify(context.Background(), q)
}

func requireReason(t *testing.T, err error, want tpm.Reason) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, tpm.ErrRejected)
	require.Equal(t, want, tpm.ReasonOf(err), "error: %v", err)
}

// testPoolPEM is a self-signed CA made in process, for tests that need a
// pool but no swtpm.
var testPoolPEM, testPoolDER = func() ([]byte, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test EK root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), der
}()

func testPool(t testing.TB) *tpm.CAPool {
	p, err := tpm.ParseCAPool(testPoolPEM)
	require.NoError(t, err)
	return p
}

func testPoolCert(testing.TB) []byte { return testPoolDER }
