package remote_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/binary"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/hsm/remote"
	"github.com/tradecore/tradecore/internal/hsmtest"
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
	return startWith(t, remote.ServerConfig{AllowUIDs: allow})
}

func startWith(t testing.TB, scfg remote.ServerConfig) *fixture {
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
	ln, closeLn, err := remote.Listen(sock, remote.ListenConfig{})
	require.NoError(t, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- remote.Serve(sctx, ln, svc, scfg) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		require.NoError(t, closeLn())
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

// rawConn dials the socket without the client, as an attacker would.
func rawConn(t *testing.T, sock string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// readStatus reads one response frame and returns its status, or fails.
func readStatus(t *testing.T, c net.Conn) byte {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	var hdr [4]byte
	_, err := io.ReadFull(c, hdr[:])
	require.NoError(t, err)
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err = io.ReadFull(c, body)
	require.NoError(t, err)
	return body[0]
}

// TestConnectionCap: connections past MaxConns are answered busy and
// closed; once one closes, clients get in again.
func TestConnectionCap(t *testing.T) {
	f := startWith(t, remote.ServerConfig{MaxConns: 3})
	ctx := context.Background()
	// The fixture's client holds one connection; two raw ones fill the cap.
	var held []net.Conn
	for range 2 {
		c := rawConn(t, f.sock)
		held = append(held, c)
	}
	// Make sure the server accepted the held ones before the extra one.
	_, err := f.client.Sign(ctx, []byte("x"))
	require.NoError(t, err)
	extra := rawConn(t, f.sock)
	assert.Equal(t, remote.StatusBusy, readStatus(t, extra))
	held[0].Close()
	require.Eventually(t, func() bool {
		cl, closeCl, err := remote.Dial(ctx, f.sock, remote.ClientConfig{Conns: 1})
		if err != nil {
			return false
		}
		defer closeCl()
		_, err = cl.Sign(ctx, []byte("after a slot freed"))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
}

// TestSlowAndSilentPeersAreDropped: a peer that sends part of a frame and
// stops, or nothing at all, is disconnected by the read and idle timeouts.
func TestSlowAndSilentPeersAreDropped(t *testing.T) {
	f := startWith(t, remote.ServerConfig{IdleTimeout: 300 * time.Millisecond, ReadTimeout: 200 * time.Millisecond})
	partial := rawConn(t, f.sock)
	_, err := partial.Write([]byte{0, 0, 0, 100, remote.OpSign}) // announces 100 bytes, sends 1
	require.NoError(t, err)
	silent := rawConn(t, f.sock)
	oneByte := rawConn(t, f.sock)
	_, err = oneByte.Write([]byte{0})
	require.NoError(t, err)
	for name, c := range map[string]net.Conn{"partial frame": partial, "silent": silent, "one header byte": oneByte} {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, err := c.Read(make([]byte, 1))
		require.ErrorIs(t, err, io.EOF, "%s: the server closed the connection", name)
	}
	_, err = f.client.Sign(context.Background(), []byte("still serving"))
	require.NoError(t, err)
}

// TestLargeAnnouncedFramesCostNothing is the flood: peers announce
// large frames and stop. A length above MaxRequest is refused from the
// header alone; a length below it allocates only what arrives.
func TestLargeAnnouncedFramesCostNothing(t *testing.T) {
	const conns = 40
	f := startWith(t, remote.ServerConfig{MaxConns: conns + 1})
	c := rawConn(t, f.sock)
	_, err := c.Write([]byte{0, 0x10, 0, 0}) // 1 MiB: over DefaultMaxRequest
	require.NoError(t, err)
	assert.Equal(t, remote.StatusBadRequest, readStatus(t, c))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	hdr := binary.BigEndian.AppendUint32(nil, remote.DefaultMaxRequest)
	for range conns {
		c := rawConn(t, f.sock)
		_, err := c.Write(append(hdr, remote.OpSign))
		require.NoError(t, err)
	}
	// Every one of them is being served (the client's request queues behind none).
	_, err = f.client.Sign(context.Background(), []byte("x"))
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // let the server goroutines block in Read
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("heap grew %d bytes for %d connections announcing %d bytes each", grew, conns, remote.DefaultMaxRequest)
	assert.Less(t, grew, int64(conns*remote.DefaultMaxRequest/4), "announced frames must not be allocated up front")
}

// TestSecondSignerCannotTakeTheSocket: a second Listen on a served path is
// refused, does not remove the socket, and the first keeps serving; the
// first's close removes its own socket.
func TestSecondSignerCannotTakeTheSocket(t *testing.T) {
	f := start(t, nil)
	_, _, err := remote.Listen(f.sock, remote.ListenConfig{})
	require.ErrorIs(t, err, remote.ErrSocketInUse)
	assert.Contains(t, err.Error(), "pid")
	_, err = os.Stat(f.sock)
	require.NoError(t, err, "the refused signer left the socket alone")
	_, err = f.client.Sign(context.Background(), []byte("first still serves"))
	require.NoError(t, err)

	// A stale socket file of a dead signer (no lock held) is replaced.
	dir := t.TempDir()
	stale := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", stale)
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	ln, closeLn, err := remote.Listen(stale, remote.ListenConfig{Group: "0"})
	require.NoError(t, err)
	fi, err := os.Stat(stale)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o660), fi.Mode().Perm())
	require.NoError(t, closeLn())
	_ = ln
	_, err = os.Stat(stale)
	assert.True(t, os.IsNotExist(err), "the owner removes its socket on close")
	_, _, err = remote.Listen(filepath.Join(dir, "g.sock"), remote.ListenConfig{Group: "no-such-group-xyz"})
	require.ErrorContains(t, err, "socket group")
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestDeniedConnectionsAreRateLimitedInTheLog: a flood of refused peers
// writes one log line, not one per connection.
func TestDeniedConnectionsAreRateLimitedInTheLog(t *testing.T) {
	var logs syncBuffer
	f := startWith(t, remote.ServerConfig{AllowUIDs: []int{os.Getuid() + 4242}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 30 {
		c := rawConn(t, f.sock)
		assert.Equal(t, remote.StatusDenied, readStatus(t, c))
		c.Close()
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "connection refused"), logs.String())
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
