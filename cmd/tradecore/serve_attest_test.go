package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/client"
	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/internal/swtpmtest"
	"github.com/tradecore/tradecore/proto"
	"github.com/tradecore/tradecore/tpm"
	"github.com/tradecore/tradecore/tpm/device"
)

// TestServeAttestedLogin: the daemon attests device-bound keys. While serve
// runs, a host enrols through the attest verbs, the operator approves it
// and creates a key bound to it; the host's session (TLS, pinned) is
// admitted after its quote and trades, the same key without the device is
// refused, and the audit log holds the attestation and the device's login.
func TestServeAttestedLogin(t *testing.T) {
	needSoftHSM(t)
	ca := swtpmtest.NewCA(t)
	sw := swtpmtest.Manufacture(t, ca)
	dir := filepath.Join(t.TempDir(), "var")
	d := "--data-dir=" + dir
	demo := filepath.Join(dir, "demo-key.json")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data-dir", dir, "--demo-key", demo, "--order-entry", "127.0.0.1:0",
			"--market-data", "-", "--metrics", "-"}, &out, &errb)
	}()
	var kf client.KeyFile
	require.Eventually(t, func() bool {
		var err error
		kf, _, err = client.LoadKeyFile(demo)
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "serve writes the demo key: %s", errb.String())

	// Enrolment: the host's TPM side in process, the operator's verbs as
	// commands (their records go through the audit log's inbox).
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tpm", "ek-ca.pem"), ca.PoolPEM(t), 0o600))
	work := t.TempDir()
	write := func(name string, m any) string {
		b, err := tpm.Marshal(m)
		require.NoError(t, err)
		p := filepath.Join(work, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	tr, closeTPM, err := device.Open(sw.Socket)
	require.NoError(t, err)
	ak, err := tr.CreateAK()
	require.NoError(t, err)
	req, err := tr.EnrollRequest(ak)
	require.NoError(t, err)
	r := runCLI(t, "attest", "enroll", write("req.json", req), d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	ch, err := tpm.ParseActivationChallenge([]byte(r.stdout))
	require.NoError(t, err)
	proof, err := tr.Activate(ak, ch)
	require.NoError(t, err)
	r = runCLI(t, "attest", "activate", write("proof.json", proof), d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	r = runCLI(t, "attest", "approve", ch.DeviceID, "--pin", "0,7", d)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	ak.DeviceID = ch.DeviceID
	akFile := filepath.Join(work, "ak.json")
	require.NoError(t, ak.Save(akFile))
	require.NoError(t, closeTPM())

	r = runCLI(t, "apikeys", "create", d, "--user", "u-host", "--account", "7", "--scope", "trade", "--require-device", ch.DeviceID,
		"--format", "json", "--out", filepath.Join(work, "key.json"))
	require.Equal(t, 0, r.code, "err: %v", r.err)
	_, secret, err := client.LoadKeyFile(filepath.Join(work, "key.json"))
	require.NoError(t, err)
	var view apikeyView
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &view))

	cfg := client.Config{Addr: kf.OrderEntry, KeyID: view.ID, Secret: secret, PinSHA256: kf.PinSHA256}
	_, err = client.Dial(ctx, cfg)
	var le *client.LoginError
	require.ErrorAs(t, err, &le, "without the device")
	require.Equal(t, proto.ReasonAttestRequired, le.Reason)

	dev, closeDev, err := client.OpenDevice(sw.Socket, akFile)
	require.NoError(t, err)
	defer closeDev()
	cfg.Device = dev
	c, err := client.Dial(ctx, cfg)
	require.NoError(t, err, "with the device: %s", errb.String())
	require.NoError(t, c.NewOrder(&proto.NewOrder{ClOrdID: c.NewRef(), Instrument: 1, Side: core.Buy, OrdType: core.Limit, TIF: core.DAY, Price: 24000, Qty: 5}))
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	m, err := c.Recv(rctx)
	require.NoError(t, err)
	require.IsType(t, &proto.Accepted{}, m, "%#v", m)
	require.Equal(t, ch.DeviceID, c.Attestation().DeviceID)

	cancel()
	require.NoError(t, <-done, errb.String())
	rd, err := audit.OpenReader(filepath.Join(dir, "audit"))
	require.NoError(t, err)
	types := map[string]int{}
	var deviceLogin bool
	require.NoError(t, rd.Read(0, 0, func(e *audit.Entry) error {
		types[e.Type]++
		if e.Type == "gateway.login" {
			h, err := audit.ParseLeaf(e.Leaf)
			require.NoError(t, err)
			var b map[string]any
			require.NoError(t, json.Unmarshal(h.Body, &b))
			deviceLogin = deviceLogin || b["device_id"] == ch.DeviceID
		}
		return nil
	}))
	require.Equal(t, 1, types[tpm.RecordAttestationPassed], "the daemon recorded the attestation")
	require.GreaterOrEqual(t, types[tpm.RecordDeviceApproved], 1, "the approval, queued by the verb, is in the log")
	require.True(t, deviceLogin, "the login names the device")
	require.GreaterOrEqual(t, types["gateway.login_rejected"], 1)
}
