package tpm

import (
	"errors"
	"fmt"
)

// Reason is why an enrolment, an attestation or a live attestation was
// refused. Codes are stable (never renumbered or reused) and documented in
// docs/attestation.md; the 8xx range keeps them apart from the engine's
// order reason codes.
type Reason uint16

// Reason codes. 80x message and state, 81x quote checks, 82x enrolment,
// 83x live attestations, 84x the server itself.
const (
	ReasonMalformed          Reason = 800 // the message or a TPM structure in it does not parse
	ReasonDeviceUnknown      Reason = 801 // no device with this id is enrolled
	ReasonDeviceNotApproved  Reason = 802 // enrolled, but no operator has approved it yet
	ReasonDeviceRevoked      Reason = 803 // the device was revoked
	ReasonNonceUnknown       Reason = 804 // the nonce was never issued to this device (or was pruned)
	ReasonNonceMismatch      Reason = 805 // the quote signs another nonce than the one answered
	ReasonNonceUsed          Reason = 806 // the nonce was already answered: a replay
	ReasonNonceExpired       Reason = 807 // the nonce expired before the answer arrived
	ReasonChallengeLimit     Reason = 808 // too many answered challenges still unexpired for this device
	ReasonSignatureInvalid   Reason = 810 // the quote's signature does not verify under the enrolled AK
	ReasonNotTPMGenerated    Reason = 811 // the signed data lacks TPM_GENERATED_VALUE: not made by the TPM
	ReasonNotQuote           Reason = 812 // the signed data is another attestation type than a quote
	ReasonSignerMismatch     Reason = 813 // the quote names another signing key than the enrolled AK
	ReasonPCRSelection       Reason = 814 // the quote covers another PCR selection than the policy's
	ReasonPCRMismatch        Reason = 815 // the PCR digest differs from the policy's golden values
	ReasonCounterRollback    Reason = 816 // reset/restart counters went backwards: restored TPM state
	ReasonEKCertInvalid      Reason = 820 // the EK certificate does not parse or breaks the TCG profile
	ReasonEKUntrusted        Reason = 821 // the EK certificate does not chain to the configured CA pool
	ReasonEKMismatch         Reason = 822 // the EK public key differs from the certificate's, or is not a standard EK
	ReasonAKInvalid          Reason = 823 // the AK is not a restricted ECC P-256 signing key bound to its TPM
	ReasonActivationFailed   Reason = 824 // the credential was not activated: the AK is not in the EK's TPM
	ReasonNoActivation       Reason = 825 // no credential activation is pending (or it expired)
	ReasonAttestationExpired Reason = 830 // a live attestation was not renewed before it expired
	ReasonPolicyChanged      Reason = 831 // the device's PCR policy changed since the attestation
	ReasonPolicyMissing      Reason = 832 // the device's policy does not exist
	ReasonAuditFailed        Reason = 840 // the audit record could not be written, so the action was refused
)

var reasonNames = map[Reason]string{
	ReasonMalformed:          "malformed",
	ReasonDeviceUnknown:      "device-unknown",
	ReasonDeviceNotApproved:  "device-not-approved",
	ReasonDeviceRevoked:      "device-revoked",
	ReasonNonceUnknown:       "nonce-unknown",
	ReasonNonceMismatch:      "nonce-mismatch",
	ReasonNonceUsed:          "nonce-used",
	ReasonNonceExpired:       "nonce-expired",
	ReasonChallengeLimit:     "challenge-limit",
	ReasonSignatureInvalid:   "signature-invalid",
	ReasonNotTPMGenerated:    "not-tpm-generated",
	ReasonNotQuote:           "not-quote",
	ReasonSignerMismatch:     "signer-mismatch",
	ReasonPCRSelection:       "pcr-selection-mismatch",
	ReasonPCRMismatch:        "pcr-mismatch",
	ReasonCounterRollback:    "counter-rollback",
	ReasonEKCertInvalid:      "ek-cert-invalid",
	ReasonEKUntrusted:        "ek-untrusted",
	ReasonEKMismatch:         "ek-mismatch",
	ReasonAKInvalid:          "ak-invalid",
	ReasonActivationFailed:   "activation-failed",
	ReasonNoActivation:       "no-activation",
	ReasonAttestationExpired: "attestation-expired",
	ReasonPolicyChanged:      "policy-changed",
	ReasonPolicyMissing:      "policy-missing",
	ReasonAuditFailed:        "audit-failed",
}

// String is the reason's stable name ("nonce-used").
func (r Reason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason-%d", uint16(r))
}

// Reasons lists every reason code in ascending order.
func Reasons() []Reason {
	out := make([]Reason, 0, len(reasonNames))
	for r := Reason(800); r < 900; r++ {
		if _, ok := reasonNames[r]; ok {
			out = append(out, r)
		}
	}
	return out
}

var (
	// ErrRejected is matched (errors.Is) by every *RejectError: the device or
	// its message was refused. Read the reason with [ReasonOf]; the device
	// must not be admitted. Retrying with the same message never helps.
	ErrRejected = errors.New("tpm: rejected")
	// ErrConfig means the Config is unusable; the message names the field and
	// the fix.
	ErrConfig = errors.New("tpm: invalid config")
	// ErrNoCAPool means no EK manufacturer CA pool is configured, so no
	// device can enrol. Set Config.EKRoots (tradecore: --ek-ca, default
	// <data-dir>/tpm/ek-ca.pem) to the TPM vendors' CA certificates.
	ErrNoCAPool = errors.New("tpm: no EK CA pool configured")
	// ErrPolicyInvalid means a PCR policy file does not parse or breaks a rule;
	// the message names the field. Fix the file and set it again.
	ErrPolicyInvalid = errors.New("tpm: invalid policy")
	// ErrState means the server's state in the data dir is damaged or was
	// edited by hand; the message names the file. Restore it from a backup
	// or re-enrol the device.
	ErrState = errors.New("tpm: damaged state")
	// ErrBadArgument means an operator request is invalid (unknown device
	// for approve, a PCR not in the enrolment snapshot, …); the message says
	// which field to fix.
	ErrBadArgument = errors.New("tpm: invalid request")
)

// RejectError is a refusal with its reason code. It matches ErrRejected.
// Detail never contains secrets or key material.
type RejectError struct {
	Reason   Reason
	DeviceID string // empty when the message named no valid device
	Detail   string // what was wrong and what to do
	Err      error  // underlying cause, if any (for errors.As / errors.Is)
}

func (e *RejectError) Error() string {
	s := fmt.Sprintf("tpm: rejected (%d %s)", uint16(e.Reason), e.Reason)
	if e.DeviceID != "" {
		s += " device " + e.DeviceID
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is ErrRejected.
func (e *RejectError) Is(target error) bool { return target == ErrRejected }

// Unwrap returns the underlying cause.
func (e *RejectError) Unwrap() error { return e.Err }

// ReasonOf returns the reason code of a *RejectError in err's chain, or 0.
func ReasonOf(err error) Reason {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return 0
}

func reject(r Reason, detail string, args ...any) *RejectError {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(detail, args...)}
}

func rejectErr(r Reason, err error, detail string, args ...any) *RejectError {
	return &RejectError{Reason: r, Detail: fmt.Sprintf(detail, args...), Err: err}
}
