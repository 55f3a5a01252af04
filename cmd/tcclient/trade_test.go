package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/client"
	"github.com/tradecore/tradecore/gateway"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/gateway/gatewaytest"
	"github.com/tradecore/tradecore/internal/swtpmtest"
	"github.com/tradecore/tradecore/tpm"
	"github.com/tradecore/tradecore/tpm/device"
)

func TestMain(m *testing.M) { gatewaytest.Main(m) }

// tradeEnv starts a server and writes a key file and a configuration that
// matches its instruments.
func tradeEnv(t *testing.T) (*gatewaytest.Server, []string) {
	s := gatewaytest.Start(t, gateway.Config{})
	dir := t.TempDir()
	k := s.Trader("a", 1)
	kf, err := json.Marshal(client.KeyFile{KeyID: k.ID, Secret: hex.EncodeToString(k.Secret), Account: 1, OrderEntry: s.OE, Plain: true})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.json"), kf, 0o600))
	cfg := `{"risk": "off", "instruments": [
	  {"symbol": "AAA", "id": 1, "tick_size": "0.01", "lot_size": "1", "price_band": {"low": "1.00", "high": "20.00"}},
	  {"symbol": "BBB", "id": 2, "tick_size": "0.01", "lot_size": "1", "price_band": {"low": "1.00", "high": "20.00"}}]}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cfg.json"), []byte(cfg), 0o600))
	return s, []string{"--key-file", filepath.Join(dir, "key.json"), "--config", filepath.Join(dir, "cfg.json"), "--wait", "300ms"}
}

func jsonLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var ms []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		ms = append(ms, m)
	}
	return ms
}

func TestTradingCommands(t *testing.T) {
	_, common := tradeEnv(t)
	args := func(a ...string) []string { return append(append([]string{}, a...), common...) }

	r := runCLI(t, args("place", "--symbol", "AAA", "--side", "buy", "--qty", "10", "--price", "5.25", "--format", "json")...)
	require.Equal(t, 0, r.code, "stderr %s err %v", r.stderr, r.err)
	ms := jsonLines(t, r.stdout)
	require.Equal(t, "accepted", ms[0]["type"])
	require.Equal(t, "5.25", ms[0]["price"])
	require.Equal(t, "10", ms[0]["qty"])
	require.Equal(t, "AAA", ms[0]["symbol"])
	oid := uint64(ms[0]["order_id"].(float64))
	ref := uint64(ms[0]["clordid"].(float64))

	r = runCLI(t, args("replace", "--order", u(oid), "--ref", u(ref), "--symbol", "AAA", "--price", "5.30", "--qty", "8", "--format", "json")...)
	require.Equal(t, 0, r.code, "stderr %s err %v", r.stderr, r.err)
	ms = jsonLines(t, r.stdout)
	require.Equal(t, "replaced", ms[0]["type"])
	nref := uint64(ms[0]["clordid"].(float64))
	require.Greater(t, nref, ref)

	r = runCLI(t, args("reduce", "--order", u(oid), "--ref", u(nref), "--symbol", "AAA", "--qty", "3")...)
	require.Equal(t, 0, r.code, "stderr %s err %v", r.stderr, r.err)
	assert.Contains(t, r.stdout, "reduced")

	r = runCLI(t, args("next-ref", "--format", "json")...)
	require.Equal(t, 0, r.code, "stderr %s err %v", r.stderr, r.err)
	assert.Equal(t, float64(nref+1), jsonLines(t, r.stdout)[0]["next_clordid"])

	r = runCLI(t, args("place", "--symbol", "AAA", "--side", "buy", "--qty", "1", "--price", "99.00")...)
	require.Equal(t, 0, r.code, "stderr %s err %v", r.stderr, r.err)
	assert.Contains(t, r.stdout, "rejected", "a price outside the band: the engine's reject with its code")
	assert.Contains(t, r.stdout, "price-out-of-band")

	r = runCLI(t, args("cancel", "--order", u(oid), "--ref", u(nref))...)
	require.Equal(t, 0, r.code, "stderr %s err %v", r.stderr, r.err)
	assert.Contains(t, r.stdout, "cancel-requested")

	r = runCLI(t, args("events", "--from", "1", "--format", "json")...)
	require.Equal(t, 0, r.code, "stderr %s err %v", r.stderr, r.err)
	var types []string
	for _, m := range jsonLines(t, r.stdout) {
		types = append(types, m["type"].(string))
	}
	require.Equal(t, []string{"accepted", "replaced", "reduced", "rejected", "cancelled"}, types, "the replay from the journal")

	r = runCLI(t, args("place", "--symbol", "ZZZ", "--side", "buy", "--qty", "1")...)
	assert.Equal(t, 2, r.code)
	r = runCLI(t, args("place", "--side", "buy")...)
	assert.Equal(t, 2, r.code)
	r = runCLI(t, "place", "--key-file", "/nonexistent", "--symbol", "AAA", "--side", "buy", "--qty", "1")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err.Error(), "make run")
}

func TestShell(t *testing.T) {
	_, common := tradeEnv(t)
	in := strings.NewReader("place --symbol AAA --side sell --qty 2 --price 7\nbogus\nnext-ref\nquit\n")
	ctx := context.WithValue(context.Background(), stdinKey{}, in)
	var out, errb strings.Builder
	err := run(ctx, append([]string{"shell"}, common...), &out, &errb)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "accepted")
	assert.Contains(t, out.String(), "next-reference")
	assert.Contains(t, errb.String(), "unknown command")
}

func u(v uint64) string { return strconvU(v) }

func strconvU(v uint64) string {
	b := []byte{}
	if v == 0 {
		return "0"
	}
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}

// TestAttestTrading: the whole device path through the binary's code: the
// host enrols with `tcclient attest enroll/activate` on its (sw)TPM, the
// operator approves it and binds a key to it, and `tcclient place
// --device-key --tpm` trades over an attested session; the same key
// without the device is refused (attestation-required).
func TestAttestTrading(t *testing.T) {
	ca := swtpmtest.NewCA(t)
	sw := swtpmtest.Manufacture(t, ca)
	pool, err := tpm.ParseCAPool(ca.PoolPEM(t))
	require.NoError(t, err)
	s := gatewaytest.Start(t, gateway.Config{}, gatewaytest.WithAttestation(tpm.Config{EKRoots: pool}))
	ctx := context.Background()
	work := t.TempDir()
	ak := filepath.Join(work, "ak.json")
	dev := []string{"--tpm", sw.Socket, "--key", ak}

	r := runCLI(t, append([]string{"attest", "enroll"}, dev...)...)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	req, err := tpm.ParseEnrollRequest([]byte(r.stdout))
	require.NoError(t, err)
	ch, err := s.Attestor.Enroll(ctx, req)
	require.NoError(t, err)
	b, err := tpm.Marshal(ch)
	require.NoError(t, err)
	chFile := filepath.Join(work, "ch.json")
	require.NoError(t, os.WriteFile(chFile, b, 0o600))
	r = runCLI(t, append([]string{"attest", "activate", chFile}, dev...)...)
	require.Equal(t, 0, r.code, "err: %v", r.err)
	proof, err := tpm.ParseActivationProof([]byte(r.stdout))
	require.NoError(t, err)
	d, err := s.Attestor.Activate(ctx, proof)
	require.NoError(t, err)
	_, err = s.Attestor.Approve(ctx, d.ID, tpm.Approval{PinPCRs: []int{0, 7}})
	require.NoError(t, err)
	k, err := device.LoadKey(ak)
	require.NoError(t, err)
	require.Equal(t, d.ID, k.DeviceID, "activate keeps the device id with the AK")

	key := s.AddKey(apikey.CreateRequest{User: "u-dev", Account: 1, Scopes: []apikey.Scope{apikey.ScopeTrade}, RequireDevice: d.ID})
	kf, err := json.Marshal(client.KeyFile{KeyID: key.ID, Secret: hex.EncodeToString(key.Secret), Account: 1, OrderEntry: s.OE, Plain: true})
	require.NoError(t, err)
	keyFile := filepath.Join(work, "key.json")
	require.NoError(t, os.WriteFile(keyFile, kf, 0o600))
	place := []string{"place", "--symbol", "1", "--side", "buy", "--qty", "3", "--price", "5", "--key-file", keyFile,
		"--wait", "300ms", "--format", "json", "--config", writeTradeConfig(t, work)}

	r = runCLI(t, append(place, "--device-key", ak, "--tpm", sw.Socket)...)
	require.Equal(t, 0, r.code, "stderr %s err %v", r.stderr, r.err)
	ms := jsonLines(t, r.stdout)
	require.Equal(t, "accepted", ms[0]["type"])
	s.WaitRecord("gateway.login", "device_id", d.ID)

	r = runCLI(t, place...)
	require.Equal(t, 1, r.code)
	require.ErrorContains(t, r.err, "attestation-required")
	r = runCLI(t, append(place, "--device-key", filepath.Join(work, "missing.json"), "--tpm", sw.Socket)...)
	require.Equal(t, 1, r.code)
	require.ErrorIs(t, r.err, device.ErrNoKey)
}

// writeTradeConfig writes a configuration matching gatewaytest's
// instruments and returns its path.
func writeTradeConfig(t *testing.T, dir string) string {
	cfg := `{"risk": "off", "instruments": [
	  {"symbol": "AAA", "id": 1, "tick_size": "0.01", "lot_size": "1", "price_band": {"low": "1.00", "high": "20.00"}},
	  {"symbol": "BBB", "id": 2, "tick_size": "0.01", "lot_size": "1", "price_band": {"low": "1.00", "high": "20.00"}}]}`
	p := filepath.Join(dir, "cfg.json")
	require.NoError(t, os.WriteFile(p, []byte(cfg), 0o600))
	return p
}
