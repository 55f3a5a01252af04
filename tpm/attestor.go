package tpm

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// Recorder appends audit records (the audit log's Record method; contract in
// docs/attestation.md). Every enrolment, approval, revocation, policy change
// and attestation outcome is recorded before it takes effect; if the record
// cannot be written the action is refused.
type Recorder interface {
	Record(ctx context.Context, typ string, body any) (uint64, error)
}

// Defaults filled in by Open.
const (
	DefaultNonceTTL       = time.Minute
	DefaultActivationTTL  = 5 * time.Minute
	DefaultAttestationTTL = 15 * time.Minute
	DefaultRenewBefore    = 5 * time.Minute
	DefaultMaxNonces      = 16
)

// DefaultEnrolPCRs are the PCRs quoted at enrolment (the snapshot an
// operator may pin): the PC Client firmware, boot and Secure Boot PCRs.
var DefaultEnrolPCRs = []int{0, 1, 2, 3, 4, 5, 6, 7}

// Config configures an Attestor. Dir and Recorder are required; the rest
// default as documented.
type Config struct {
	// Dir is the state folder shared by every process of the venue that
	// enrols or attests devices (tradecore: <data-dir>/tpm).
	Dir string
	// EKRoots is the EK manufacturer CA pool. Without it Enroll refuses
	// (ErrNoCAPool); attestation of enrolled devices does not need it.
	EKRoots *CAPool
	// Recorder receives the audit records. Required.
	Recorder Recorder
	// NonceTTL is how long a challenge nonce may be answered (default 1 min).
	NonceTTL time.Duration
	// ActivationTTL is how long an enrolment's credential may be activated
	// (default 5 min).
	ActivationTTL time.Duration
	// AttestationTTL is how long a passed attestation admits the device
	// (default 15 min).
	AttestationTTL time.Duration
	// RenewBefore is how long before expiry a session should re-attest
	// (Attestation.RenewAt; default 5 min). Must be below AttestationTTL.
	RenewBefore time.Duration
	// EnrolPCRs are the PCRs quoted at enrolment (default DefaultEnrolPCRs).
	EnrolPCRs []int
	// MaxNonces bounds the nonces kept per device (default 16). When full,
	// the oldest unanswered one is dropped; answered ones stay until they
	// expire so a replay is always recognised.
	MaxNonces int
	// Now and Rand are the sources of time and randomness (default
	// time.Now and crypto/rand).
	Now  func() time.Time
	Rand io.Reader
	// Logger receives operational messages (default slog.Default()).
	Logger *slog.Logger
}

// Attestor is the server side of device attestation: enrolment, operator
// decisions, challenges and quote verification. Its state lives in
// Config.Dir and is re-read under a file lock by every call, so any number
// of Attestors (a daemon and CLI invocations) on the same folder agree.
// It is safe for concurrent use.
type Attestor struct {
	cfg Config
	st  *store
}

// Open validates cfg, fills its defaults and opens the state folder. The
// returned function closes it.
func Open(_ context.Context, cfg Config) (*Attestor, func() error, error) {
	if cfg.Dir == "" {
		return nil, nil, fmt.Errorf("%w: Dir is empty: set it to the state folder (tradecore: <data-dir>/tpm)", ErrConfig)
	}
	if cfg.Recorder == nil {
		return nil, nil, fmt.Errorf("%w: Recorder is nil: pass the audit log (enrolment and attestation records are mandatory)", ErrConfig)
	}
	def := func(d *time.Duration, v time.Duration, name string) error {
		if *d == 0 {
			*d = v
		}
		if *d < 0 {
			return fmt.Errorf("%w: %s is negative: use a positive duration or 0 for the default", ErrConfig, name)
		}
		return nil
	}
	for _, e := range []error{
		def(&cfg.NonceTTL, DefaultNonceTTL, "NonceTTL"),
		def(&cfg.ActivationTTL, DefaultActivationTTL, "ActivationTTL"),
		def(&cfg.AttestationTTL, DefaultAttestationTTL, "AttestationTTL"),
		def(&cfg.RenewBefore, DefaultRenewBefore, "RenewBefore"),
	} {
		if e != nil {
			return nil, nil, e
		}
	}
	if cfg.RenewBefore >= cfg.AttestationTTL {
		return nil, nil, fmt.Errorf("%w: RenewBefore (%v) must be below AttestationTTL (%v)", ErrConfig, cfg.RenewBefore, cfg.AttestationTTL)
	}
	if cfg.EnrolPCRs == nil {
		cfg.EnrolPCRs = DefaultEnrolPCRs
	}
	if _, err := checkSelection(Bank, cfg.EnrolPCRs); err != nil {
		return nil, nil, fmt.Errorf("%w: EnrolPCRs: %v", ErrConfig, err)
	}
	if cfg.MaxNonces == 0 {
		cfg.MaxNonces = DefaultMaxNonces
	}
	if cfg.MaxNonces < 1 {
		return nil, nil, fmt.Errorf("%w: MaxNonces must be at least 1", ErrConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	st, err := openStore(cfg.Dir)
	if err != nil {
		return nil, nil, err
	}
	return &Attestor{cfg: cfg, st: st}, st.close, nil
}

func (a *Attestor) now() time.Time { return a.cfg.Now().UTC() }

func (a *Attestor) random(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(a.cfg.Rand, b); err != nil {
		return nil, fmt.Errorf("tpm: random: %w", err)
	}
	return b, nil
}

// record writes an audit record; a failure becomes ReasonAuditFailed.
func (a *Attestor) record(ctx context.Context, typ string, body any) (uint64, error) {
	idx, err := a.cfg.Recorder.Record(ctx, typ, body)
	if err != nil {
		a.cfg.Logger.Error("tpm: audit record not written; action refused", "record", typ, "err", err)
		return 0, &RejectError{Reason: ReasonAuditFailed, Detail: "audit record " + typ + " not written, action refused (check the audit log)", Err: err}
	}
	a.cfg.Logger.Info("tpm: "+typ, "audit_index", idx)
	return idx, nil
}

// recordReject records a refused enrolment or attestation and returns rej,
// joined with the audit error if the record failed too.
func (a *Attestor) recordReject(ctx context.Context, typ, deviceID string, rej *RejectError) error {
	if rej.DeviceID == "" {
		rej.DeviceID = deviceID
	}
	a.cfg.Logger.Warn("tpm: "+typ, "device_id", deviceID, "reason_code", uint16(rej.Reason), "reason", rej.Reason.String())
	_, err := a.cfg.Recorder.Record(ctx, typ, rejectRecord{DeviceID: deviceID, ReasonCode: uint16(rej.Reason), Reason: rej.Reason.String()})
	if err != nil {
		return errors.Join(rej, fmt.Errorf("tpm: audit record %s not written: %w", typ, err))
	}
	return rej
}

// Audit record bodies (docs/attestation.md, "Audit records").
type (
	rejectRecord struct {
		DeviceID   string `json:"device_id"`
		ReasonCode uint16 `json:"reason_code"`
		Reason     string `json:"reason"`
	}
	enrolledRecord struct {
		DeviceID       string `json:"device_id"`
		EKCertSHA256   string `json:"ek_cert_sha256"`
		EKIssuer       string `json:"ek_issuer"`
		AKName         string `json:"ak_name"`
		SnapshotDigest string `json:"snapshot_digest"`
		SnapshotPCRs   []int  `json:"snapshot_pcrs"`
		Reenrolled     bool   `json:"reenrolled"`
	}
	approvedRecord struct {
		DeviceID     string `json:"device_id"`
		Policy       string `json:"policy"`
		PCRs         []int  `json:"pcrs"`
		PolicyDigest string `json:"policy_digest"`
	}
	revokedRecord struct {
		DeviceID string `json:"device_id"`
		Reason   string `json:"reason"`
	}
	policyRecord struct {
		Policy string `json:"policy"`
		PCRs   []int  `json:"pcrs"`
		Digest string `json:"digest"`
	}
	passedRecord struct {
		DeviceID     string    `json:"device_id"`
		Policy       string    `json:"policy"`
		PCRDigest    string    `json:"pcr_digest"`
		ResetCount   uint32    `json:"reset_count"`
		RestartCount uint32    `json:"restart_count"`
		Rebooted     bool      `json:"rebooted"`
		Expires      time.Time `json:"expires"`
	}
)

// Record types written by the Attestor.
const (
	RecordEnrolmentRejected = "tpm.enrolment.rejected"
	RecordDeviceEnrolled    = "tpm.device.enrolled"
	RecordDeviceApproved    = "tpm.device.approved"
	RecordDeviceRevoked     = "tpm.device.revoked"
	RecordPolicySet         = "tpm.policy.set"
	RecordAttestationPassed = "tpm.attestation.passed"
	RecordAttestationFailed = "tpm.attestation.failed"
	RecordAttestationEnded  = "tpm.attestation.ended"
)

// Enroll verifies a device's EK certificate, EK and new AK and returns the
// credential-activation challenge. The device is not enrolled until
// Activate accepts its proof. A revoked device cannot enrol again.
func (a *Attestor) Enroll(ctx context.Context, req EnrollRequest) (ActivationChallenge, error) {
	if a.cfg.EKRoots == nil {
		return ActivationChallenge{}, ErrNoCAPool
	}
	var out ActivationChallenge
	rej := func(id string, r *RejectError) error { return a.recordReject(ctx, RecordEnrolmentRejected, id, r) }
	if err := checkHeader(req.Type, TypeEnrollRequest, req.Version); err != nil {
		return out, rej("", err.(*RejectError))
	}
	now := a.now()
	e, err := verifyEK(a.cfg.EKRoots, req.EKCert, req.EKChain, req.EKPublic, now)
	if err != nil {
		return out, rej("", err.(*RejectError))
	}
	ak, err := ParseAK(req.AKPublic)
	if err != nil {
		return out, rej(e.id, err.(*RejectError))
	}
	encKey, err := tpm2.ImportEncapsulationKey(e.pub)
	if err != nil {
		return out, rej(e.id, rejectErr(ReasonEKMismatch, err, "the EK cannot receive a credential"))
	}
	secret, err := a.random(SecretSize)
	if err != nil {
		return out, err
	}
	nonce, err := a.random(NonceSize)
	if err != nil {
		return out, err
	}
	cred, encSecret, err := tpm2.CreateCredential(a.cfg.Rand, encKey, ak.Name(), secret)
	if err != nil {
		return out, fmt.Errorf("tpm: make credential: %w", err)
	}
	hash := sha256.Sum256(secret)
	err = a.st.do(func() error {
		d, err := a.st.loadDevice(e.id)
		if err != nil {
			return err
		}
		if d == nil {
			d = &deviceRecord{ID: e.id, State: StateActivating}
		}
		if d.State == StateRevoked {
			return rej(e.id, reject(ReasonDeviceRevoked, "this TPM was revoked on %s and cannot enrol again", d.RevokedAt.Format(time.RFC3339)))
		}
		d.EKCert, d.EKPublic, d.EKIssuer = e.cert.Raw, req.EKPublic, e.cert.Issuer.String()
		d.Pending = &pendingActivation{
			AKPublic: req.AKPublic, SecretHash: hash[:], Nonce: nonce,
			PCRs: slices.Clone(a.cfg.EnrolPCRs), Expires: now.Add(a.cfg.ActivationTTL),
		}
		out = ActivationChallenge{
			Type: TypeActivationChallenge, Version: Version, DeviceID: e.id,
			Credential: cred, Secret: encSecret, Nonce: nonce, Expires: d.Pending.Expires,
			Bank: Bank, PCRs: d.Pending.PCRs,
		}
		return a.st.saveDevice(d)
	})
	return out, err
}

// Activate checks the device's activation proof: the credential secret
// (only the TPM holding the EK and the AK could recover it) and an
// enrolment quote under the new AK whose PCR values match its digest. The
// device is then enrolled with that AK and waits for approval (a
// re-enrolment of an approved device needs approval again).
func (a *Attestor) Activate(ctx context.Context, p ActivationProof) (Device, error) {
	var out Device
	rej := func(r *RejectError) error { return a.recordReject(ctx, RecordEnrolmentRejected, p.DeviceID, r) }
	if err := checkHeader(p.Type, TypeActivationProof, p.Version); err != nil {
		return out, rej(err.(*RejectError))
	}
	err := a.st.do(func() error {
		d, err := a.st.loadDevice(p.DeviceID)
		if err != nil {
			return err
		}
		if d == nil {
			return rej(reject(ReasonDeviceUnknown, "no enrolment for this device: send an enroll request first"))
		}
		if d.State == StateRevoked {
			return rej(reject(ReasonDeviceRevoked, "the device is revoked"))
		}
		pend := d.Pending
		if pend == nil {
			return rej(reject(ReasonNoActivation, "no activation is pending: send a new enroll request"))
		}
		// One attempt per credential, whatever the outcome.
		d.Pending = nil
		fail := func(r *RejectError) error {
			if err := a.dropPending(d); err != nil {
				return errors.Join(rej(r), err)
			}
			return rej(r)
		}
		if !a.now().Before(pend.Expires) {
			return fail(reject(ReasonNoActivation, "the activation expired at %s: send a new enroll request", pend.Expires.Format(time.RFC3339)))
		}
		got := sha256.Sum256(p.Secret)
		if subtle.ConstantTimeCompare(got[:], pend.SecretHash) != 1 {
			return fail(reject(ReasonActivationFailed, "the activated credential is wrong: the AK is not in the TPM of this EK"))
		}
		ak, err := ParseAK(pend.AKPublic)
		if err != nil {
			return fail(err.(*RejectError))
		}
		if subtle.ConstantTimeCompare(p.Nonce, pend.Nonce) != 1 {
			return fail(reject(ReasonNonceMismatch, "the proof answers another nonce than the activation challenge's"))
		}
		vals, err := snapshotValues(p.PCRs, pend.PCRs)
		if err != nil {
			return fail(err.(*RejectError))
		}
		q, err := ak.VerifyQuote(p.Quote, p.Signature, QuoteCheck{Nonce: pend.Nonce, PCRs: pend.PCRs, Digest: PCRDigest(vals)})
		if err != nil {
			return fail(err.(*RejectError))
		}
		reenrolled := len(d.AKPublic) > 0
		now := a.now()
		certHash := sha256.Sum256(d.EKCert)
		if _, err := a.record(ctx, RecordDeviceEnrolled, enrolledRecord{
			DeviceID: d.ID, EKCertSHA256: hex.EncodeToString(certHash[:]), EKIssuer: d.EKIssuer,
			AKName: hex.EncodeToString(ak.Name()), SnapshotDigest: hex.EncodeToString(q.PCRDigest),
			SnapshotPCRs: pend.PCRs, Reenrolled: reenrolled,
		}); err != nil {
			return errors.Join(err, a.dropPending(d))
		}
		d.State, d.AKPublic, d.AKQualified, d.Policy = StateEnrolled, pend.AKPublic, q.Signer, ""
		d.EnrolledAt, d.ApprovedAt = now, time.Time{}
		d.Snapshot = &Snapshot{PCRs: vals, Digest: q.PCRDigest, At: now}
		d.CountersSeen, d.ResetCount, d.RestartCount = true, q.ResetCount, q.RestartCount
		d.Nonces = nil
		if err := a.st.saveDevice(d); err != nil {
			return fmt.Errorf("%w (the enrolment was recorded but not saved: enrol again)", err)
		}
		out = d.view()
		return nil
	})
	return out, err
}

// dropPending saves d after its pending activation was used up; a device
// that was never activated has nothing left worth keeping and its file goes.
func (a *Attestor) dropPending(d *deviceRecord) error {
	if d.State == StateActivating {
		if err := os.Remove(a.st.devicePath(d.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("tpm: remove %s: %w", a.st.devicePath(d.ID), err)
		}
		return nil
	}
	return a.st.saveDevice(d)
}

// snapshotValues orders the device's PCR read by index and checks it holds
// exactly the requested PCRs.
func snapshotValues(got []PCRValue, want []int) ([]PCRValue, error) {
	vals := slices.Clone(got)
	slices.SortFunc(vals, func(x, y PCRValue) int { return x.Index - y.Index })
	if len(vals) != len(want) {
		return nil, reject(ReasonPCRSelection, "the proof lists %d PCR values for %d requested PCRs", len(vals), len(want))
	}
	for i := range vals {
		if vals[i].Index != want[i] || len(vals[i].Value) != sha256.Size {
			return nil, reject(ReasonPCRSelection, "the proof's PCR values are not the requested PCRs %v", want)
		}
	}
	return vals, nil
}

// Approval is an operator's decision to admit an enrolled device: either
// the name of an existing class Policy, or PinPCRs, the PCRs of the device's
// enrolment snapshot to pin as its own policy ("device-<id>").
type Approval struct {
	Policy  string
	PinPCRs []int
}

// Approve lets an enrolled device attest under the approval's policy.
func (a *Attestor) Approve(ctx context.Context, deviceID string, ap Approval) (Device, error) {
	var out Device
	if (ap.Policy == "") == (len(ap.PinPCRs) == 0) {
		return out, fmt.Errorf("%w: give either a class policy name or the snapshot PCRs to pin (not both)", ErrBadArgument)
	}
	err := a.st.do(func() error {
		d, err := a.st.loadDevice(deviceID)
		if err != nil {
			return err
		}
		switch {
		case d == nil || d.State == StateActivating:
			return fmt.Errorf("%w: device %s is not enrolled (list devices with 'tradecore attest list')", ErrBadArgument, truncate(deviceID, 40))
		case d.State == StateRevoked:
			return &RejectError{Reason: ReasonDeviceRevoked, DeviceID: d.ID, Detail: "a revoked device cannot be approved"}
		}
		var pol Policy
		if ap.Policy != "" {
			p, err := a.st.loadPolicy(ap.Policy)
			if err != nil {
				return err
			}
			if p == nil {
				return fmt.Errorf("%w: policy %q does not exist (set it with 'tradecore attest policy set')", ErrBadArgument, truncate(ap.Policy, 70))
			}
			pol = *p
		} else {
			pins := slices.Clone(ap.PinPCRs)
			slices.Sort(pins)
			pol = Policy{Name: DevicePolicyPrefix + d.ID}
			for i, idx := range pins {
				if i > 0 && pins[i-1] == idx {
					return fmt.Errorf("%w: PCR %d listed twice", ErrBadArgument, idx)
				}
				j := slices.IndexFunc(d.Snapshot.PCRs, func(v PCRValue) bool { return v.Index == idx })
				if j < 0 {
					return fmt.Errorf("%w: PCR %d is not in the enrolment snapshot (it has %v)", ErrBadArgument, idx, snapshotIndices(d.Snapshot))
				}
				pol.PCRs = append(pol.PCRs, d.Snapshot.PCRs[j])
			}
			if err := pol.check(); err != nil {
				return err
			}
		}
		if _, err := a.record(ctx, RecordDeviceApproved, approvedRecord{
			DeviceID: d.ID, Policy: pol.Name, PCRs: pol.Selection(), PolicyDigest: hex.EncodeToString(pol.Digest()),
		}); err != nil {
			return err
		}
		if ap.Policy == "" {
			if err := a.st.savePolicy(pol); err != nil {
				return err
			}
		}
		d.State, d.Policy, d.ApprovedAt = StateApproved, pol.Name, a.now()
		if err := a.st.saveDevice(d); err != nil {
			return err
		}
		out = d.view()
		return nil
	})
	return out, err
}

func snapshotIndices(s *Snapshot) []int {
	if s == nil {
		return nil
	}
	out := make([]int, len(s.PCRs))
	for i, v := range s.PCRs {
		out[i] = v.Index
	}
	return out
}

// Revoke permanently refuses a device: its open challenges die, live
// attestations fail Revalidate, and the TPM cannot enrol again.
func (a *Attestor) Revoke(ctx context.Context, deviceID, reason string) (Device, error) {
	var out Device
	if reason == "" {
		return out, fmt.Errorf("%w: a revocation needs a reason", ErrBadArgument)
	}
	err := a.st.do(func() error {
		d, err := a.st.loadDevice(deviceID)
		if err != nil {
			return err
		}
		if d == nil {
			return fmt.Errorf("%w: device %s is not enrolled (list devices with 'tradecore attest list')", ErrBadArgument, truncate(deviceID, 40))
		}
		if d.State == StateRevoked {
			out = d.view()
			return nil
		}
		if _, err := a.record(ctx, RecordDeviceRevoked, revokedRecord{DeviceID: d.ID, Reason: reason}); err != nil {
			return err
		}
		d.State, d.RevokedAt, d.RevokeReason = StateRevoked, a.now(), reason
		d.Pending, d.Nonces = nil, nil
		if err := a.st.saveDevice(d); err != nil {
			return err
		}
		out = d.view()
		return nil
	})
	return out, err
}

// SetPolicy creates or replaces a class policy. Devices approved under it
// attest against the new golden values from their next challenge on, and
// their live attestations fail Revalidate with ReasonPolicyChanged.
func (a *Attestor) SetPolicy(ctx context.Context, p Policy) error {
	if err := p.check(); err != nil {
		return err
	}
	if len(p.Name) >= len(DevicePolicyPrefix) && p.Name[:len(DevicePolicyPrefix)] == DevicePolicyPrefix {
		return fmt.Errorf("%w: name %q: names starting %q are reserved for policies pinned at approval", ErrPolicyInvalid, p.Name, DevicePolicyPrefix)
	}
	return a.st.do(func() error {
		if _, err := a.record(ctx, RecordPolicySet, policyRecord{Policy: p.Name, PCRs: p.Selection(), Digest: hex.EncodeToString(p.Digest())}); err != nil {
			return err
		}
		return a.st.savePolicy(p)
	})
}

// Policies lists every policy (class and pinned).
func (a *Attestor) Policies(_ context.Context) ([]Policy, error) {
	var out []Policy
	err := a.st.do(func() (err error) { out, err = a.st.listPolicies(); return err })
	return out, err
}

// Devices lists every device, by id.
func (a *Attestor) Devices(_ context.Context) ([]Device, error) {
	var out []Device
	err := a.st.do(func() error {
		ds, err := a.st.listDevices()
		for _, d := range ds {
			out = append(out, d.view())
		}
		return err
	})
	return out, err
}

// Device returns one device.
func (a *Attestor) Device(_ context.Context, id string) (Device, error) {
	var out Device
	err := a.st.do(func() error {
		d, err := a.st.loadDevice(id)
		if err != nil {
			return err
		}
		if d == nil {
			return &RejectError{Reason: ReasonDeviceUnknown, Detail: "no such device"}
		}
		out = d.view()
		return nil
	})
	return out, err
}

// Challenge issues a fresh single-use nonce for an approved device, with
// the PCRs its policy selects. Call it at login, and again to renew.
func (a *Attestor) Challenge(_ context.Context, deviceID string) (Challenge, error) {
	var out Challenge
	if !validDeviceID(deviceID) {
		return out, reject(ReasonMalformed, "device id %q is not 32 lowercase hex digits", truncate(deviceID, 40))
	}
	nonce, err := a.random(NonceSize)
	if err != nil {
		return out, err
	}
	err = a.st.do(func() error {
		d, pol, err := a.approved(deviceID)
		if err != nil {
			return err
		}
		now := a.now()
		d.pruneNonces(now)
		if len(d.Nonces) >= a.cfg.MaxNonces {
			i := slices.IndexFunc(d.Nonces, func(n nonceRecord) bool { return !n.Used })
			if i < 0 {
				return &RejectError{Reason: ReasonChallengeLimit, DeviceID: d.ID,
					Detail: fmt.Sprintf("%d challenges answered within %v: wait for them to expire", len(d.Nonces), a.cfg.NonceTTL)}
			}
			d.Nonces = slices.Delete(d.Nonces, i, i+1)
		}
		exp := now.Add(a.cfg.NonceTTL)
		d.Nonces = append(d.Nonces, nonceRecord{Nonce: nonce, Expires: exp})
		if err := a.st.saveDevice(d); err != nil {
			return err
		}
		out = Challenge{Type: TypeChallenge, Version: Version, DeviceID: d.ID, Nonce: nonce, Expires: exp, Bank: Bank, PCRs: pol.Selection()}
		return nil
	})
	return out, err
}

// approved loads an approved device and its policy, or a reject.
func (a *Attestor) approved(id string) (*deviceRecord, *Policy, error) {
	d, err := a.st.loadDevice(id)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case d == nil || d.State == StateActivating:
		return nil, nil, &RejectError{Reason: ReasonDeviceUnknown, DeviceID: id, Detail: "no enrolled device has this id: enrol it (tcclient attest enroll)"}
	case d.State == StateRevoked:
		return d, nil, &RejectError{Reason: ReasonDeviceRevoked, DeviceID: id, Detail: "the device was revoked"}
	case d.State != StateApproved:
		return d, nil, &RejectError{Reason: ReasonDeviceNotApproved, DeviceID: id, Detail: "an operator must approve it first (tradecore attest approve)"}
	}
	pol, err := a.st.loadPolicy(d.Policy)
	if err != nil {
		return nil, nil, err
	}
	if pol == nil {
		return d, nil, &RejectError{Reason: ReasonPolicyMissing, DeviceID: id, Detail: fmt.Sprintf("policy %q is gone: set it again or re-approve the device", d.Policy)}
	}
	return d, pol, nil
}

func (d *deviceRecord) pruneNonces(now time.Time) {
	d.Nonces = slices.DeleteFunc(d.Nonces, func(n nonceRecord) bool { return !now.Before(n.Expires) })
}

// Attestation is a passed attestation: the device may be admitted until
// Expires, and its sessions should re-attest (Challenge, Verify) from
// RenewAt on. Check it with Revalidate before relying on it later.
type Attestation struct {
	DeviceID     string    `json:"device_id"`
	Policy       string    `json:"policy"`
	PCRDigest    []byte    `json:"pcr_digest"`
	VerifiedAt   time.Time `json:"verified_at"`
	RenewAt      time.Time `json:"renew_at"`
	Expires      time.Time `json:"expires"`
	ResetCount   uint32    `json:"reset_count"`
	RestartCount uint32    `json:"restart_count"`
	Rebooted     bool      `json:"rebooted"` // the TPM was reset or restarted since the last attestation
	AuditIndex   uint64    `json:"audit_index"`
}

// Verify checks a device's answer to a Challenge: the nonce was issued to
// this device, is unanswered and unexpired (it is consumed whatever the
// outcome); the quote verifies under the enrolled AK against the device's
// policy (see AK.VerifyQuote); and its reset/restart counters did not go
// back. A pass is recorded and returns an Attestation valid for
// Config.AttestationTTL; a failure is recorded and returns a *RejectError.
func (a *Attestor) Verify(ctx context.Context, resp QuoteResponse) (Attestation, error) {
	var out Attestation
	fail := func(r *RejectError) error { return a.recordReject(ctx, RecordAttestationFailed, resp.DeviceID, r) }
	if err := checkHeader(resp.Type, TypeQuote, resp.Version); err != nil {
		return out, fail(err.(*RejectError))
	}
	if !validDeviceID(resp.DeviceID) {
		return out, reject(ReasonMalformed, "device id %q is not 32 lowercase hex digits", truncate(resp.DeviceID, 40))
	}
	var rej *RejectError
	err := a.st.do(func() error {
		d, pol, err := a.approved(resp.DeviceID)
		if errors.As(err, &rej) {
			return nil
		}
		if err != nil {
			return err
		}
		now := a.now()
		i := slices.IndexFunc(d.Nonces, func(n nonceRecord) bool { return subtle.ConstantTimeCompare(n.Nonce, resp.Nonce) == 1 })
		switch {
		case i < 0:
			rej = reject(ReasonNonceUnknown, "the nonce was not issued to this device (or expired long ago): request a new challenge")
			return nil
		case d.Nonces[i].Used:
			rej = reject(ReasonNonceUsed, "the nonce was already answered: a quote is accepted once")
			return nil
		case !now.Before(d.Nonces[i].Expires):
			rej = reject(ReasonNonceExpired, "the nonce expired at %s: request a new challenge and answer within %v", d.Nonces[i].Expires.Format(time.RFC3339), a.cfg.NonceTTL)
			d.Nonces[i].Used = true
			return a.st.saveDevice(d)
		}
		d.Nonces[i].Used = true
		ak, err := ParseAK(d.AKPublic)
		if err != nil {
			return fmt.Errorf("%w: device %s: enrolled AK: %v", ErrState, d.ID, err)
		}
		q, qerr := ak.VerifyQuote(resp.Quote, resp.Signature, QuoteCheck{Nonce: resp.Nonce, PCRs: pol.Selection(), Digest: pol.Digest(), Signer: d.AKQualified})
		if qerr != nil {
			rej = qerr.(*RejectError)
			return a.st.saveDevice(d)
		}
		// The TPM obfuscates both counters for keys outside the endorsement
		// hierarchy by adding a per-key constant (TPM 2.0 Part 1, 36.7), so
		// only their differences mean something, modulo 2^32. A TPM Reset
		// sets the real restart count back to 0.
		dReset, dRestart := int32(q.ResetCount-d.ResetCount), int32(q.RestartCount-d.RestartCount)
		if d.CountersSeen && (dReset < 0 || (dReset == 0 && dRestart < 0)) {
			rej = reject(ReasonCounterRollback, "the TPM's reset/restart counters went back by %d/%d since the last attestation: its state was restored or replaced",
				-dReset, -dRestart)
			return a.st.saveDevice(d)
		}
		rebooted := d.CountersSeen && (dReset != 0 || dRestart != 0)
		att := Attestation{
			DeviceID: d.ID, Policy: pol.Name, PCRDigest: q.PCRDigest, VerifiedAt: now,
			RenewAt: now.Add(a.cfg.AttestationTTL - a.cfg.RenewBefore), Expires: now.Add(a.cfg.AttestationTTL),
			ResetCount: q.ResetCount, RestartCount: q.RestartCount, Rebooted: rebooted,
		}
		idx, err := a.record(ctx, RecordAttestationPassed, passedRecord{
			DeviceID: d.ID, Policy: pol.Name, PCRDigest: hex.EncodeToString(q.PCRDigest),
			ResetCount: q.ResetCount, RestartCount: q.RestartCount, Rebooted: rebooted, Expires: att.Expires,
		})
		if err != nil {
			return errors.Join(err, a.st.saveDevice(d))
		}
		att.AuditIndex = idx
		d.CountersSeen, d.ResetCount, d.RestartCount, d.AttestedAt = true, q.ResetCount, q.RestartCount, now
		if err := a.st.saveDevice(d); err != nil {
			return err
		}
		out = att
		return nil
	})
	if err != nil {
		return Attestation{}, err
	}
	if rej != nil {
		return Attestation{}, fail(rej)
	}
	return out, nil
}

// Revalidate reports whether a live attestation still admits its device:
// not expired, the device still approved (not revoked) under the same
// policy with the same golden values. The session layer calls it on a
// timer and before trusting a session after any pause; on failure it
// writes a tpm.attestation.ended record and the session must end with the
// returned reason.
func (a *Attestor) Revalidate(ctx context.Context, att Attestation) error {
	var rej *RejectError
	err := a.st.do(func() error {
		_, pol, err := a.approved(att.DeviceID)
		if errors.As(err, &rej) {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case !a.now().Before(att.Expires):
			rej = reject(ReasonAttestationExpired, "the attestation expired at %s without being renewed", att.Expires.Format(time.RFC3339))
		case pol.Name != att.Policy || !bytes.Equal(pol.Digest(), att.PCRDigest):
			rej = reject(ReasonPolicyChanged, "the device's PCR policy changed since it attested: attest again")
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rej != nil {
		return a.recordReject(ctx, RecordAttestationEnded, att.DeviceID, rej)
	}
	return nil
}

// Device is an enrolled device as operators see it.
type Device struct {
	ID           string     `json:"id"`
	State        string     `json:"state"`
	EKIssuer     string     `json:"ek_issuer"`
	AKName       string     `json:"ak_name,omitempty"`
	Policy       string     `json:"policy,omitempty"`
	EnrolledAt   time.Time  `json:"enrolled_at,omitzero"`
	ApprovedAt   time.Time  `json:"approved_at,omitzero"`
	RevokedAt    time.Time  `json:"revoked_at,omitzero"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
	AttestedAt   time.Time  `json:"attested_at,omitzero"`
	ResetCount   uint32     `json:"reset_count"`
	RestartCount uint32     `json:"restart_count"`
	Snapshot     []PCRValue `json:"snapshot,omitempty"`
}

func (d *deviceRecord) view() Device {
	v := Device{ID: d.ID, State: d.State, EKIssuer: d.EKIssuer, Policy: d.Policy, EnrolledAt: d.EnrolledAt,
		ApprovedAt: d.ApprovedAt, RevokedAt: d.RevokedAt, RevokeReason: d.RevokeReason, AttestedAt: d.AttestedAt,
		ResetCount: d.ResetCount, RestartCount: d.RestartCount}
	if len(d.AKPublic) > 0 {
		if ak, err := ParseAK(d.AKPublic); err == nil {
			v.AKName = hex.EncodeToString(ak.Name())
		}
	}
	if d.Snapshot != nil {
		v.Snapshot = d.Snapshot.PCRs
	}
	return v
}
