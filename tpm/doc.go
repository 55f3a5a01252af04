// Package tpm is the venue's side of TPM 2.0 device attestation: a trading
// host proves with its TPM that it is an enrolled device in a known-good
// state before its sessions are admitted, and again before each attestation
// expires. The protocol, file formats, reason codes and audit records are
// specified in docs/attestation.md; package device is the host's side.
//
// What to use:
//
//   - [Open] an *Attestor on the state folder (Config.Dir, by default
//     <data-dir>/tpm) with the audit log as Config.Recorder and the EK
//     manufacturer CA pool ([ParseCAPool]) as Config.EKRoots. Close it
//     with the returned function. Every call takes the folder's lock and
//     re-reads the state, so the daemon and `tradecore attest` agree.
//   - Enrolment: [Attestor.Enroll] (EK certificate chain, EK = certificate
//     key, restricted P-256 AK) returns an [ActivationChallenge];
//     [Attestor.Activate] checks the activated credential and the
//     enrolment quote. An operator then calls [Attestor.Approve] (pin PCRs
//     of the enrolment snapshot, or a class [Policy] set with
//     [Attestor.SetPolicy]) or [Attestor.Revoke].
//   - At login (a session layer): [Attestor.Challenge] gives a single-use
//     nonce and the PCRs to quote; [Attestor.Verify] checks the device's
//     [QuoteResponse] and returns an [Attestation] valid for
//     Config.AttestationTTL (15 minutes). Re-attest from Attestation.RenewAt
//     with the same two calls, and call [Attestor.Revalidate] on a timer:
//     it fails once the attestation expired, the device was revoked or its
//     policy changed. Nothing here runs per order.
//   - [AK.VerifyQuote] is the pure quote check (no I/O), used by Verify.
//
// Every refusal is a *RejectError with a stable [Reason] code (8xx);
// errors.Is(err, ErrRejected) matches them all and [ReasonOf] reads the
// code. Configuration and operator mistakes are ErrConfig, ErrNoCAPool,
// ErrPolicyInvalid and ErrBadArgument; a damaged state folder is ErrState.
//
// Specifications: TCG TPM 2.0 Library Part 1–3 (credential protection,
// TPM2_ActivateCredential, TPM2_Quote, TPMS_ATTEST), TCG EK Credential
// Profile 2.0 (EK certificate and its NV index, parsed with
// go-attestation), TCG PC Client Platform Firmware Profile (PCR usage).
package tpm
