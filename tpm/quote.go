package tpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// tpmGenerated is TPM_GENERATED_VALUE, the magic every TPM-made attestation
// starts with (TPM 2.0 Part 2, 6.2).
const tpmGenerated = 0xff544347

// QuoteCheck is what a quote must prove: it signs Nonce, covers exactly
// PCRs (ascending) of the SHA-256 bank, and its PCR digest equals Digest
// (the policy's golden values, never the device's own read).
//
// Signer is the AK's qualified name (TPM 2.0 Part 1, 16: the hash chain of
// the names of its parents and itself) that the TPM puts in every quote.
// The verifier cannot compute it from the AK alone, so it is taken from the
// enrolment quote (verified under the AK just proven by activation) and
// required in every later quote; nil accepts any SHA-256 qualified name.
type QuoteCheck struct {
	Nonce  []byte
	PCRs   []int
	Digest []byte
	Signer []byte
}

// Quote is what a verified quote reports about the TPM.
type Quote struct {
	Signer          []byte // the AK's qualified name
	PCRDigest       []byte
	Clock           uint64 // milliseconds the TPM has been powered
	ResetCount      uint32 // TPM Resets (reboots) since the TPM was cleared
	RestartCount    uint32 // TPM Restarts (hibernate/resume) since the last reset
	Safe            bool
	FirmwareVersion uint64
}

// VerifyQuote checks a quote (TPMS_ATTEST bytes) and its TPMT_SIGNATURE
// against the AK and want, in this order, each with its own reason: the
// signature (ECDSA P-256 over SHA-256 of the quote), TPM_GENERATED_VALUE,
// the attestation type, the signer's Name, the nonce, the exact PCR
// selection, and the PCR digest. It does no I/O and keeps no state; nonce
// freshness and reset counters are the Attestor's.
func (ak *AK) VerifyQuote(quote, sig []byte, want QuoteCheck) (Quote, error) {
	if len(quote) > MaxQuoteSize || len(sig) > MaxSigSize {
		return Quote{}, reject(ReasonMalformed, "quote or signature too large")
	}
	r, s, err := parseSignature(sig)
	if err != nil {
		return Quote{}, err
	}
	digest := sha256.Sum256(quote)
	if !ecdsa.Verify(ak.pub, digest[:], r, s) {
		return Quote{}, reject(ReasonSignatureInvalid, "the quote's signature does not verify under the enrolled AK")
	}
	// Signed by the AK. A restricted key signs only TPM-made data that
	// starts with the magic, or external data that provably does not.
	if len(quote) < 6 || binary.BigEndian.Uint32(quote) != tpmGenerated {
		return Quote{}, reject(ReasonNotTPMGenerated, "the signed data does not start with TPM_GENERATED_VALUE")
	}
	if tpm2.TPMST(binary.BigEndian.Uint16(quote[4:])) != tpm2.TPMSTAttestQuote {
		return Quote{}, reject(ReasonNotQuote, "the signed attestation is type 0x%04x, not TPM_ST_ATTEST_QUOTE", binary.BigEndian.Uint16(quote[4:]))
	}
	att, err := parseCanonical[tpm2.TPMSAttest](quote)
	if err != nil {
		return Quote{}, rejectErr(ReasonMalformed, err, "the quote is not a TPMS_ATTEST")
	}
	qn := att.QualifiedSigner.Buffer
	if len(qn) != 2+sha256.Size || binary.BigEndian.Uint16(qn) != uint16(tpm2.TPMAlgSHA256) ||
		(want.Signer != nil && !bytes.Equal(qn, want.Signer)) {
		return Quote{}, reject(ReasonSignerMismatch, "the quote names another signing key than the enrolled AK")
	}
	if subtle.ConstantTimeCompare(att.ExtraData.Buffer, want.Nonce) != 1 {
		return Quote{}, reject(ReasonNonceMismatch, "the quote signs another nonce than the challenge's")
	}
	info, err := att.Attested.Quote()
	if err != nil {
		return Quote{}, rejectErr(ReasonMalformed, err, "the quote has no TPMS_QUOTE_INFO")
	}
	if !sameSelection(info.PCRSelect, want.PCRs) {
		return Quote{}, reject(ReasonPCRSelection, "the quote covers another PCR selection than the policy's %v of the sha256 bank", want.PCRs)
	}
	if subtle.ConstantTimeCompare(info.PCRDigest.Buffer, want.Digest) != 1 {
		return Quote{}, reject(ReasonPCRMismatch, "the PCR values differ from the policy's golden values: the device booted other software or a PCR was extended")
	}
	return Quote{
		Signer: qn, PCRDigest: info.PCRDigest.Buffer, Clock: att.ClockInfo.Clock,
		ResetCount: att.ClockInfo.ResetCount, RestartCount: att.ClockInfo.RestartCount,
		Safe: bool(att.ClockInfo.Safe), FirmwareVersion: att.FirmwareVersion,
	}, nil
}

// parseSignature parses a TPMT_SIGNATURE that must be ECDSA with SHA-256.
func parseSignature(sig []byte) (r, s *big.Int, err error) {
	ts, err := parseCanonical[tpm2.TPMTSignature](sig)
	if err != nil {
		return nil, nil, rejectErr(ReasonMalformed, err, "the signature is not a TPMT_SIGNATURE")
	}
	if ts.SigAlg != tpm2.TPMAlgECDSA {
		return nil, nil, reject(ReasonSignatureInvalid, "the signature algorithm is 0x%04x, not ECDSA", uint16(ts.SigAlg))
	}
	e, err := ts.Signature.ECDSA()
	if err != nil {
		return nil, nil, rejectErr(ReasonMalformed, err, "the ECDSA signature")
	}
	if e.Hash != tpm2.TPMAlgSHA256 {
		return nil, nil, reject(ReasonSignatureInvalid, "the signature hash is 0x%04x, not SHA-256", uint16(e.Hash))
	}
	if len(e.SignatureR.Buffer) > 32 || len(e.SignatureS.Buffer) > 32 {
		return nil, nil, reject(ReasonMalformed, "the ECDSA signature's r or s is longer than 32 bytes")
	}
	return new(big.Int).SetBytes(e.SignatureR.Buffer), new(big.Int).SetBytes(e.SignatureS.Buffer), nil
}

// sameSelection reports whether sel is exactly one SHA-256 bank selection
// holding exactly pcrs.
func sameSelection(sel tpm2.TPMLPCRSelection, pcrs []int) bool {
	if len(sel.PCRSelections) != 1 {
		return false
	}
	s := sel.PCRSelections[0]
	if s.Hash != tpm2.TPMAlgSHA256 || len(s.PCRSelect) < 3 || len(s.PCRSelect) > 8 {
		return false
	}
	want := selectionBitmap(pcrs)
	for i, b := range s.PCRSelect {
		var w byte
		if i < len(want) {
			w = want[i]
		}
		if b != w {
			return false
		}
	}
	return true
}

// PCRSelection is the TPML_PCR_SELECTION a device quotes for pcrs of the
// SHA-256 bank (device side).
func PCRSelection(pcrs []int) tpm2.TPMLPCRSelection {
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: tpm2.TPMAlgSHA256, PCRSelect: selectionBitmap(pcrs),
	}}}
}
