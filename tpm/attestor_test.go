package tpm_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/tpm"
)

func TestEnrolApproveAttest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.enroll()
	assert.Len(t, id, 32)
	assert.Equal(t, tpm.RecordDeviceEnrolled, f.rec.last().Type)

	// Not approved yet: no challenge.
	_, err := f.a.Challenge(ctx, id)
	requireReason(t, err, tpm.ReasonDeviceNotApproved)

	d, err := f.a.Approve(ctx, id, tpm.Approval{PinPCRs: []int{0, 7, 3}})
	require.NoError(t, err)
	assert.Equal(t, tpm.StateApproved, d.State)
	assert.Equal(t, tpm.DevicePolicyPrefix+id, d.Policy)
	assert.Equal(t, tpm.RecordDeviceApproved, f.rec.last().Type)

	ch, q := f.quote()
	assert.Equal(t, []int{0, 3, 7}, ch.PCRs)
	assert.Equal(t, f.clk.Now().Add(tpm.DefaultNonceTTL), ch.Expires)
	att, err := f.a.Verify(ctx, q)
	require.NoError(t, err)
	assert.Equal(t, id, att.DeviceID)
	assert.Equal(t, f.clk.Now().Add(15*time.Minute), att.Expires, "default attestation lifetime is 15 minutes")
	assert.Equal(t, att.Expires.Add(-tpm.DefaultRenewBefore), att.RenewAt)
	assert.False(t, att.Rebooted)
	rec := f.rec.last()
	assert.Equal(t, tpm.RecordAttestationPassed, rec.Type)
	assert.Equal(t, id, rec.Body["device_id"])
	assert.NotZero(t, att.AuditIndex)

	// The re-attestation API: still valid, then renewed before expiry.
	require.NoError(t, f.a.Revalidate(ctx, att))
	f.clk.Add(11 * time.Minute)
	require.True(t, f.clk.Now().After(att.RenewAt))
	att2, err := f.attest()
	require.NoError(t, err)
	assert.True(t, att2.Expires.After(att.Expires))
	f.clk.Add(5 * time.Minute)
	requireReason(t, f.a.Revalidate(ctx, att), tpm.ReasonAttestationExpired)
	assert.Equal(t, tpm.RecordAttestationEnded, f.rec.last().Type)
	require.NoError(t, f.a.Revalidate(ctx, att2))

	// A reboot (TPM reset) is noticed and still passes: PCRs are rebuilt
	// from the same measurements (none, on this simulator).
	f.sw.Restart()
	f.connect()
	att3, err := f.attest()
	require.NoError(t, err)
	assert.True(t, att3.Rebooted)
	assert.Greater(t, att3.ResetCount, att2.ResetCount)
	assert.Equal(t, true, f.rec.last().Body["rebooted"])

	list, err := f.a.Devices(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, att3.ResetCount, list[0].ResetCount)
	assert.Len(t, list[0].Snapshot, len(tpm.DefaultEnrolPCRs))
}

// BenchmarkAdmission is the full admission with attestation: challenge (a
// locked, fsynced state write), the device's quote on swtpm over its unix
// socket, and verification (another fsynced write and the audit record).
// Sub-benchmarks split it.
func BenchmarkAdmission(b *testing.B) {
	f := newFixture(b)
	f.enrollApproved()
	ctx := context.Background()
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			f.clk.Add(tpm.DefaultNonceTTL) // answered nonces expire; no per-device limit
			if _, err := f.attest(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("challenge", func(b *testing.B) {
		for b.Loop() {
			f.clk.Add(tpm.DefaultNonceTTL)
			if _, err := f.a.Challenge(ctx, f.id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("device-quote", func(b *testing.B) {
		ch, err := f.a.Challenge(ctx, f.id)
		require.NoError(b, err)
		for b.Loop() {
			if _, err := f.dev.Quote(f.key, ch); err != nil {
				b.Fatal(err)
			}
		}
	})
}
