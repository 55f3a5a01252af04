package tpm_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/internal/swtpmtest"
	"github.com/tradecore/tradecore/tpm"
	"github.com/tradecore/tradecore/tpm/device"
)

func randomNonce(t *testing.T) []byte {
	b := make([]byte, tpm.NonceSize)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// TestAttestationRejects runs the attestation attacks against one
// enrolled, approved device, each refused with its own reason and an audit
// record.
func TestAttestationRejects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.enrollApproved()
	good, err := f.attest()
	require.NoError(t, err)

	failed := func(t *testing.T, want tpm.Reason) {
		t.Helper()
		r := f.rec.last()
		require.Equal(t, tpm.RecordAttestationFailed, r.Type)
		assert.Equal(t, f.id, r.Body["device_id"])
		assert.EqualValues(t, want.String(), r.Body["reason"])
	}

	t.Run("wrong nonce", func(t *testing.T) {
		ch, err := f.a.Challenge(ctx, f.id)
		require.NoError(t, err)
		issued := ch.Nonce
		ch.Nonce = randomNonce(t) // the device signs a nonce of its choosing
		q, err := f.dev.Quote(f.key, ch)
		require.NoError(t, err)
		q.Nonce = issued
		_, err = f.a.Verify(ctx, q)
		requireReason(t, err, tpm.ReasonNonceMismatch)
		failed(t, tpm.ReasonNonceMismatch)
	})
	t.Run("replayed quote", func(t *testing.T) {
		_, q := f.quote()
		_, err := f.a.Verify(ctx, q)
		require.NoError(t, err)
		_, err = f.a.Verify(ctx, q)
		requireReason(t, err, tpm.ReasonNonceUsed)
		failed(t, tpm.ReasonNonceUsed)
		// The same quote offered for a fresh challenge signs the old nonce.
		ch2, err := f.a.Challenge(ctx, f.id)
		require.NoError(t, err)
		q.Nonce = ch2.Nonce
		_, err = f.a.Verify(ctx, q)
		requireReason(t, err, tpm.ReasonNonceMismatch)
		// And a restarted server (a new Attestor on the same folder) still
		// knows the first nonce was answered.
		_, err = f.attestor().Verify(ctx, func() tpm.QuoteResponse { _, q := f.quote(); return q }())
		require.NoError(t, err)
	})
	t.Run("replay after restart", func(t *testing.T) {
		_, q := f.quote()
		_, err := f.a.Verify(ctx, q)
		require.NoError(t, err)
		_, err = f.attestor().Verify(ctx, q)
		requireReason(t, err, tpm.ReasonNonceUsed)
	})
	t.Run("expired nonce", func(t *testing.T) {
		_, q := f.quote()
		f.clk.Add(tpm.DefaultNonceTTL)
		_, err := f.a.Verify(ctx, q)
		requireReason(t, err, tpm.ReasonNonceExpired)
		failed(t, tpm.ReasonNonceExpired)
	})
	t.Run("unknown nonce", func(t *testing.T) {
		ch, err := f.a.Challenge(ctx, f.id)
		require.NoError(t, err)
		ch.Nonce = randomNonce(t)
		q, err := f.dev.Quote(f.key, ch)
		require.NoError(t, err)
		_, err = f.a.Verify(ctx, q)
		requireReason(t, err, tpm.ReasonNonceUnknown)
	})
	t.Run("different PCR selection", func(t *testing.T) {
		ch, err := f.a.Challenge(ctx, f.id)
		require.NoError(t, err)
		ch.PCRs = []int{0, 1, 2, 3, 4, 5, 6} // leaves out PCR 7
		q, err := f.dev.Quote(f.key, ch)
		require.NoError(t, err)
		_, err = f.a.Verify(ctx, q)
		requireReason(t, err, tpm.ReasonPCRSelection)
		failed(t, tpm.ReasonPCRSelection)
		ch, err = f.a.Challenge(ctx, f.id)
		require.NoError(t, err)
		ch.PCRs = []int{0, 1, 2, 3, 4, 5, 6, 7, 8} // adds PCR 8
		q, err = f.dev.Quote(f.key, ch)
		require.NoError(t, err)
		_, err = f.a.Verify(ctx, q)
		requireReason(t, err, tpm.ReasonPCRSelection)
	})
	t.Run("quote from another device's id", func(t *testing.T) {
		ch, q := f.quote()
		q.DeviceID = "00000000000000000000000000000000"
		_, err := f.a.Verify(ctx, q)
		requireReason(t, err, tpm.ReasonDeviceUnknown)
		_ = ch
	})
	t.Run("PCR extended after enrolment", func(t *testing.T) {
		sum := sha256.Sum256([]byte("unapproved bootloader"))
		swtpmtest.Extend(t, f.sw.Open(t), 7, sum[:])
		_, err := f.attest()
		requireReason(t, err, tpm.ReasonPCRMismatch)
		failed(t, tpm.ReasonPCRMismatch)
		// The device's own read of PCR 7 is never consulted: nothing it
		// sends can make the quote match.
	})
	t.Run("revoked device", func(t *testing.T) {
		_, pending := f.quote() // challenge issued before the revocation
		_, err := f.a.Revoke(ctx, f.id, "stolen laptop")
		require.NoError(t, err)
		assert.Equal(t, tpm.RecordDeviceRevoked, f.rec.last().Type)
		_, err = f.a.Verify(ctx, pending)
		requireReason(t, err, tpm.ReasonDeviceRevoked)
		failed(t, tpm.ReasonDeviceRevoked)
		_, err = f.a.Challenge(ctx, f.id)
		requireReason(t, err, tpm.ReasonDeviceRevoked)
		// A live attestation ends.
		requireReason(t, f.a.Revalidate(ctx, good), tpm.ReasonDeviceRevoked)
		assert.Equal(t, tpm.RecordAttestationEnded, f.rec.last().Type)
		// The TPM cannot come back through a fresh enrolment.
		k, err := f.dev.CreateAK()
		require.NoError(t, err)
		req, err := f.dev.EnrollRequest(k)
		require.NoError(t, err)
		_, err = f.a.Enroll(ctx, req)
		requireReason(t, err, tpm.ReasonDeviceRevoked)
		assert.Equal(t, tpm.RecordEnrolmentRejected, f.rec.last().Type)
		// Nor can an approval bring it back.
		_, err = f.a.Approve(ctx, f.id, tpm.Approval{PinPCRs: []int{0}})
		requireReason(t, err, tpm.ReasonDeviceRevoked)
	})
}

// TestEnrolmentRejects tries to enrol with the wrong hardware.
func TestEnrolmentRejects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	other := swtpmtest.Manufacture(t, f.ca) // another TPM from the same trusted vendor
	devB := device.New(other.Open(t))

	t.Run("EK certificate from an untrusted CA", func(t *testing.T) {
		rogueCA := swtpmtest.NewCA(t)
		rogue := device.New(swtpmtest.Manufacture(t, rogueCA).Open(t))
		f.clk.Add(time.Minute) // the rogue CA was born after the fixture's clock started
		k, err := rogue.CreateAK()
		require.NoError(t, err)
		req, err := rogue.EnrollRequest(k)
		require.NoError(t, err)
		_, err = f.a.Enroll(ctx, req)
		requireReason(t, err, tpm.ReasonEKUntrusted)
		assert.Equal(t, tpm.RecordEnrolmentRejected, f.rec.last().Type)
		// Supplying the rogue CA's own intermediate does not help: the root
		// is what must be trusted.
		_, inter := rogueCA.Certs(t)
		req.EKChain = [][]byte{inter.Raw}
		_, err = f.a.Enroll(ctx, req)
		requireReason(t, err, tpm.ReasonEKUntrusted)
	})

	t.Run("AK from another TPM", func(t *testing.T) {
		// The attacker presents TPM A's EK certificate and EK with an AK
		// that lives in TPM B.
		kA, err := f.dev.CreateAK()
		require.NoError(t, err)
		kB, err := devB.CreateAK()
		require.NoError(t, err)
		req, err := f.dev.EnrollRequest(kA)
		require.NoError(t, err)
		req.AKPublic = kB.Public
		ch, err := f.a.Enroll(ctx, req)
		require.NoError(t, err, "the server cannot tell yet: activation decides")

		// TPM B holds the AK but not the EK: it cannot open the credential.
		_, err = devB.Activate(kB, ch)
		require.Error(t, err)
		// TPM A holds the EK but cannot load B's AK, and activation with
		// its own AK fails the credential's name binding.
		_, err = f.dev.Activate(kB, ch)
		require.Error(t, err)
		_, err = f.dev.Activate(kA, ch)
		require.Error(t, err)

		// So the best the attacker can send is a guess, with a real quote
		// from B's AK.
		qch := tpm.Challenge{Type: tpm.TypeChallenge, Version: tpm.Version, DeviceID: ch.DeviceID, Nonce: ch.Nonce, Bank: ch.Bank, PCRs: ch.PCRs}
		q, err := devB.Quote(kB, qch)
		require.NoError(t, err)
		vals, err := devB.ReadPCRs(ch.PCRs)
		require.NoError(t, err)
		_, err = f.a.Activate(ctx, tpm.ActivationProof{
			Type: tpm.TypeActivationProof, Version: tpm.Version, DeviceID: ch.DeviceID,
			Secret: randomNonce(t), Nonce: ch.Nonce, Quote: q.Quote, Signature: q.Signature, PCRs: vals,
		})
		requireReason(t, err, tpm.ReasonActivationFailed)
		assert.Equal(t, tpm.RecordEnrolmentRejected, f.rec.last().Type)
		// One attempt per credential: the right secret no longer helps.
		_, err = f.a.Device(ctx, ch.DeviceID)
		requireReason(t, err, tpm.ReasonDeviceUnknown)
	})

	t.Run("EK of another TPM with A's certificate", func(t *testing.T) {
		k, err := f.dev.CreateAK()
		require.NoError(t, err)
		req, err := f.dev.EnrollRequest(k)
		require.NoError(t, err)
		reqB, err := devB.EnrollRequest(k)
		require.NoError(t, err)
		req.EKPublic = reqB.EKPublic
		_, err = f.a.Enroll(ctx, req)
		requireReason(t, err, tpm.ReasonEKMismatch)
	})

	t.Run("unrestricted AK", func(t *testing.T) {
		k, err := f.dev.CreateAK()
		require.NoError(t, err)
		req, err := f.dev.EnrollRequest(k)
		require.NoError(t, err)
		req.AKPublic = softwareAKPublic(t, false)
		_, err = f.a.Enroll(ctx, req)
		requireReason(t, err, tpm.ReasonAKInvalid)
	})

	t.Run("activation too late", func(t *testing.T) {
		k, err := f.dev.CreateAK()
		require.NoError(t, err)
		req, err := f.dev.EnrollRequest(k)
		require.NoError(t, err)
		ch, err := f.a.Enroll(ctx, req)
		require.NoError(t, err)
		proof, err := f.dev.Activate(k, ch)
		require.NoError(t, err)
		f.clk.Add(tpm.DefaultActivationTTL)
		_, err = f.a.Activate(ctx, proof)
		requireReason(t, err, tpm.ReasonNoActivation)
		_, err = f.a.Activate(ctx, proof)
		requireReason(t, err, tpm.ReasonDeviceUnknown)
	})

	t.Run("snapshot values that do not match the quote", func(t *testing.T) {
		k, err := f.dev.CreateAK()
		require.NoError(t, err)
		req, err := f.dev.EnrollRequest(k)
		require.NoError(t, err)
		ch, err := f.a.Enroll(ctx, req)
		require.NoError(t, err)
		proof, err := f.dev.Activate(k, ch)
		require.NoError(t, err)
		proof.PCRs[7].Value = make([]byte, 32) // claim a pristine PCR 7
		proof.PCRs[7].Value[0] = 1
		_, err = f.a.Activate(ctx, proof)
		requireReason(t, err, tpm.ReasonPCRMismatch)
	})

	t.Run("no CA pool configured", func(t *testing.T) {
		a, closeA, err := tpm.Open(ctx, tpm.Config{Dir: t.TempDir(), Recorder: f.rec})
		require.NoError(t, err)
		defer closeA()
		_, err = a.Enroll(ctx, tpm.EnrollRequest{})
		require.ErrorIs(t, err, tpm.ErrNoCAPool)
	})

	// After all that, the legitimate enrolment of TPM A still works.
	f.enroll()
}

// TestCounterRollback restores an old TPM state (a backup of the device's
// simulated TPM): its counters go back and the quote is refused.
func TestCounterRollback(t *testing.T) {
	f := newFixture(t)
	f.enrollApproved()
	_, err := f.attest()
	require.NoError(t, err)
	f.sw.Stop()
	backup := f.sw.CopyState(t)
	f.sw.Start()
	f.sw.Restart()
	f.connect()
	att, err := f.attest()
	require.NoError(t, err)
	assert.True(t, att.Rebooted)

	f.sw.Stop()
	f.sw.RestoreState(t, backup)
	f.sw.Start()
	f.connect()
	_, err = f.attest()
	t.Logf("after restore: %v (before: %d/%d)", err, att.ResetCount, att.RestartCount)
	requireReason(t, err, tpm.ReasonCounterRollback)
}

// TestSecondProcess revokes the device from another OS process (as the
// CLI does while the daemon runs): the daemon's Attestor refuses at once.
func TestSecondProcess(t *testing.T) {
	if os.Getenv("TPM_HELPER_REVOKE") != "" {
		a, closeA, err := tpm.Open(context.Background(), tpm.Config{Dir: os.Getenv("TPM_HELPER_DIR"), Recorder: &fakeRecorder{}})
		if err != nil {
			os.Exit(3)
		}
		defer closeA()
		if _, err := a.Revoke(context.Background(), os.Getenv("TPM_HELPER_REVOKE"), "revoked by another process"); err != nil {
			os.Exit(4)
		}
		return
	}
	f := newFixture(t)
	ctx := context.Background()
	f.enrollApproved()
	att, err := f.attest()
	require.NoError(t, err)
	_, q := f.quote()

	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondProcess$")
	cmd.Env = append(os.Environ(), "TPM_HELPER_REVOKE="+f.id, "TPM_HELPER_DIR="+f.dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	_, err = f.a.Verify(ctx, q)
	requireReason(t, err, tpm.ReasonDeviceRevoked)
	requireReason(t, f.a.Revalidate(ctx, att), tpm.ReasonDeviceRevoked)
	d, err := f.a.Device(ctx, f.id)
	require.NoError(t, err)
	assert.Equal(t, "revoked by another process", d.RevokeReason)
}

// TestAuditFailsClosed: when the audit log refuses a record, the action it
// records does not happen.
func TestAuditFailsClosed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.enroll()
	f.rec.fail = errors.New("audit log unavailable")
	_, err := f.a.Approve(ctx, id, tpm.Approval{PinPCRs: []int{0}})
	requireReason(t, err, tpm.ReasonAuditFailed)
	d, err := f.a.Device(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, tpm.StateEnrolled, d.State, "approval refused")

	f.rec.fail = nil
	_, err = f.a.Approve(ctx, id, tpm.Approval{PinPCRs: []int{0}})
	require.NoError(t, err)
	_, q := f.quote()
	f.rec.fail = errors.New("audit log unavailable")
	_, err = f.a.Verify(ctx, q)
	requireReason(t, err, tpm.ReasonAuditFailed)
	_, err = f.a.Revoke(ctx, id, "x")
	requireReason(t, err, tpm.ReasonAuditFailed)
	f.rec.fail = nil
	// The refused pass consumed its nonce.
	_, err = f.a.Verify(ctx, q)
	requireReason(t, err, tpm.ReasonNonceUsed)
	_, err = f.attest()
	require.NoError(t, err)
}

// TestChallengeFlood: a flood of challenges for one device stays bounded,
// keeps the newest nonce usable, and never forgets an answered one.
func TestChallengeFlood(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.enrollApproved()
	first, q := f.quote()
	_ = first
	for range 200 {
		_, err := f.a.Challenge(ctx, f.id)
		require.NoError(t, err)
	}
	_, err := f.a.Verify(ctx, q)
	requireReason(t, err, tpm.ReasonNonceUnknown) // the oldest unanswered nonces were dropped
	_, err = f.attest()
	require.NoError(t, err)

	// Fill the device's slots with answered nonces: further challenges are
	// refused until they expire, rather than forgetting a used nonce.
	var last tpm.QuoteResponse
	for i := 0; ; i++ {
		require.Less(t, i, 2*tpm.DefaultMaxNonces)
		ch, err := f.a.Challenge(ctx, f.id)
		if tpm.ReasonOf(err) == tpm.ReasonChallengeLimit {
			break
		}
		require.NoError(t, err)
		last, err = f.dev.Quote(f.key, ch)
		require.NoError(t, err)
		_, err = f.a.Verify(ctx, last)
		require.NoError(t, err)
	}
	_, err = f.a.Verify(ctx, last)
	requireReason(t, err, tpm.ReasonNonceUsed)
	f.clk.Add(tpm.DefaultNonceTTL + time.Second)
	_, err = f.attest()
	require.NoError(t, err)
}

// TestClassPolicy approves a device under an operator's class policy and
// changes the policy under a live attestation.
func TestClassPolicy(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.enroll()
	snap, err := f.dev.ReadPCRs([]int{0, 7})
	require.NoError(t, err)
	pol := tpm.Policy{Name: "trading-host-v1", PCRs: snap}
	require.NoError(t, f.a.SetPolicy(ctx, pol))
	assert.Equal(t, tpm.RecordPolicySet, f.rec.last().Type)
	_, err = f.a.Approve(ctx, id, tpm.Approval{Policy: "missing"})
	require.ErrorIs(t, err, tpm.ErrBadArgument)
	_, err = f.a.Approve(ctx, id, tpm.Approval{Policy: "trading-host-v1"})
	require.NoError(t, err)
	att, err := f.attest()
	require.NoError(t, err)
	assert.Equal(t, "trading-host-v1", att.Policy)

	pol.PCRs = []tpm.PCRValue{snap[0]}
	require.NoError(t, f.a.SetPolicy(ctx, pol))
	requireReason(t, f.a.Revalidate(ctx, att), tpm.ReasonPolicyChanged)
	att, err = f.attest()
	require.NoError(t, err)
	require.NoError(t, f.a.Revalidate(ctx, att))

	err = f.a.SetPolicy(ctx, tpm.Policy{Name: tpm.DevicePolicyPrefix + id, PCRs: snap})
	require.ErrorIs(t, err, tpm.ErrPolicyInvalid, "pinned names are reserved")
}
