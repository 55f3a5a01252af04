package remote_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/binary"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/internal/hsmtest"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/hsm/remote"
	"github.com/tradecore/tradecore/softhsm"
)

func TestMain(m *testing.M) { hsmtest.Main(m) }

type fixture struct {
	st     *softhsm.Token
	tok    *hsm.Token
	svc    *hsm.Service
	sock   string
	client *remote.Client
}

func start(t testing.TB, allow []int) *fixture {
	t.Helper()
	tok, st := hsmtest.Open(t)
	ctx := context.Background()
	cfg := hsm.ServiceConfig{Dir: t.TempDir(), CheckInterval: -1}
	_, err := hsm.Init(ctx, tok, cfg)
	require.NoError(t, err)
	svc, closeSvc, err := hsm.NewService(ctx, tok, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { closeSvc() })
	sock := filepath.Join(t.TempDir(), "signer.sock")
	ln, err := remote.Listen(sock)
	require.NoError(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- remote.Serve(sctx, ln, svc, remote.ServerConfig{AllowUIDs: allow}) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	cl, closeCl, err := remote.Dial(ctx, sock, remote.ClientConfig{})
	require.NoError(t, err)
	t.Cleanup(func() { closeCl() })
	return &fixture{st: st, tok: tok, svc: svc, sock: sock, client: cl}
}

func TestClientSameAPIAsService(t *testing.T) {
	f := start(t, nil)
	ctx := context.Background()
	var signers = map[string]hsm.Signer{"in-process": f.svc, "socket": f.client}
	for name, s := range signers {
		t.Run(name, func(t *testing.T) {
			msg := []byte("checkpoint")
			sig, err := s.Sign(ctx, msg)
			require.NoError(t, err)
			active := f.svc.Active()
			assert.Equal(t, active.ID, sig.KeyID)
			assert.Equal(t, hsm.Ed25519, sig.Algorithm)
			assert.True(t, manifest.VerifyMessage(active.Public, msg, sig.Sig))

			raw, err := s.SignWith(ctx, active.ID, msg)
			require.NoError(t, err)
			assert.True(t, manifest.VerifyMessage(active.Public, msg, raw))

			m, err := s.Manifest(ctx)
			require.NoError(t, err)
			_, err = manifest.Verify(m, f.svc.FirstKeyID())
			require.NoError(t, err)
		})
	}
	old := f.svc.Active().ID
	_, err := f.svc.Rotate(ctx)
	require.NoError(t, err)
	_, err = f.client.SignWith(ctx, old, []byte("x"))
	require.ErrorIs(t, err, hsm.ErrKeyRetired, "retired over the socket too")
	_, err = f.client.SignWith(ctx, "ffffffffffffffffffffffffffffffff", []byte("x"))
	require.ErrorIs(t, err, hsm.ErrKeyNotFound)
	// The connection survives error answers.
	_, err = f.client.Sign(ctx, []byte("after errors"))
	require.NoError(t, err)
}

func TestPeerNotAllowed(t *testing.T) {
	f := start(t, []int{os.Getuid() + 4242})
	_, err := f.client.Sign(context.Background(), []byte("x"))
	require.ErrorIs(t, err, remote.ErrDenied)
}

func TestServerSurvivesBadFrames(t *testing.T) {
	f := start(t, nil)
	for _, payload := range [][]byte{{}, {9}, {remote.OpSignWith}, {remote.OpSignWith, 40, 'a'}, {remote.OpManifest, 1}} {
		c, err := net.Dial("unix", f.sock)
		require.NoError(t, err)
		var frame []byte
		frame = binary.BigEndian.AppendUint32(frame, uint32(len(payload)))
		frame = append(frame, payload...)
		_, err = c.Write(frame)
		require.NoError(t, err)
		var hdr [4]byte
		require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
		_, err = c.Read(hdr[:])
		require.NoError(t, err)
		resp := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		_, err = c.Read(resp)
		require.NoError(t, err)
		assert.Equal(t, remote.StatusBadRequest, resp[0])
		c.Close()
	}
	// An oversized length is refused without allocating it.
	c, err := net.Dial("unix", f.sock)
	require.NoError(t, err)
	_, err = c.Write([]byte{0xff, 0xff, 0xff, 0xff})
	require.NoError(t, err)
	c.Close()
	_, err = f.client.Sign(context.Background(), []byte("still serving"))
	require.NoError(t, err)
}

func FuzzParseRequest(f *testing.F) {
	f.Add([]byte{remote.OpSign, 'h', 'i'})
	f.Add(remote.AppendRequest(nil, remote.Request{Op: remote.OpSignWith, KeyID: "abc", Msg: []byte("m")}))
	f.Add([]byte{remote.OpManifest})
	f.Add([]byte{remote.OpSignWith, 255})
	f.Fuzz(func(t *testing.T, p []byte) {
		r, err := remote.ParseRequest(p)
		if err != nil {
			return
		}
		// Round trip: what parses re-encodes to the same bytes.
		require.True(t, bytes.Equal(p, remote.AppendRequest(nil, r)))
	})
}

// BenchmarkSign compares signatures/s through the signing service, in-process
// and over the socket, with direct PKCS#11 calls (C_SignInit + C_Sign on one
// session) on the same Ed25519 key. Compare ns/op: ratio = direct/service.
func BenchmarkSign(b *testing.B) {
	f := start(b, nil)
	ctx := context.Background()
	msg := make([]byte, 64)
	active := f.svc.Active()

	b.Run("direct-pkcs11", func(b *testing.B) {
		p := pkcs11.New(f.st.Module)
		require.NotNil(b, p)
		defer p.Destroy()
		if err := p.Initialize(); err != nil {
			require.ErrorIs(b, err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED))
		}
		slots, err := p.GetSlotList(true)
		require.NoError(b, err)
		var sh pkcs11.SessionHandle
		for _, s := range slots {
			if ti, err := p.GetTokenInfo(s); err == nil && ti.Label == f.st.Label {
				sh, err = p.OpenSession(s, pkcs11.CKF_SERIAL_SESSION)
				require.NoError(b, err)
			}
		}
		defer p.CloseSession(sh)
		id, _ := hex.DecodeString(active.ID)
		require.NoError(b, p.FindObjectsInit(sh, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_ID, id),
			pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, false),
		}))
		hs, _, err := p.FindObjects(sh, 1)
		require.NoError(b, err)
		require.NoError(b, p.FindObjectsFinal(sh))
		require.Len(b, hs, 1)
		mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(0x1057, nil)} // CKM_EDDSA
		b.ReportAllocs()
		for b.Loop() {
			if err := p.SignInit(sh, mech, hs[0]); err != nil {
				b.Fatal(err)
			}
			if _, err := p.Sign(sh, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("service-in-process", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.svc.Sign(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("service-socket", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.client.Sign(ctx, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("key-crypto-signer", func(b *testing.B) {
		k, err := f.tok.FindKey(ctx, active.ID)
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := k.Sign(nil, msg, crypto.Hash(0)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
