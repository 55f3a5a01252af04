package tpm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Version is the version of the attestation messages this package speaks.
const Version = 1

// Message types (the "type" field of every message).
const (
	TypeEnrollRequest       = "tpm.enroll_request"
	TypeActivationChallenge = "tpm.activation_challenge"
	TypeActivationProof     = "tpm.activation_proof"
	TypeChallenge           = "tpm.challenge"
	TypeQuote               = "tpm.quote"
)

// Size limits of device-supplied fields, checked before anything is parsed.
const (
	MaxMessageSize = 64 << 10 // one JSON message
	MaxCertSize    = 8 << 10  // one DER certificate
	MaxChainCerts  = 4        // intermediates in EnrollRequest.EKChain
	MaxPublicSize  = 1024     // a TPMT_PUBLIC
	MaxQuoteSize   = 1024     // a TPMS_ATTEST
	MaxSigSize     = 512      // a TPMT_SIGNATURE
	NonceSize      = 32       // every nonce the server issues
	SecretSize     = 32       // the activation credential
)

// Bank is the only PCR bank policies use.
const Bank = "sha256"

// EnrollRequest is the device's first enrolment message. Binary fields are
// base64 (standard, padded) in JSON.
type EnrollRequest struct {
	Type    string `json:"type"`    // TypeEnrollRequest
	Version int    `json:"version"` // Version
	// EKCert is the EK certificate exactly as read from the TPM's NV index
	// 0x01C00002 (DER, optionally with the TCG NV header).
	EKCert []byte `json:"ek_cert"`
	// EKChain holds optional intermediate CA certificates (DER) between the
	// EK certificate and a root of the server's CA pool.
	EKChain [][]byte `json:"ek_chain,omitempty"`
	// EKPublic is the EK's TPMT_PUBLIC (the TCG default RSA-2048 EK template).
	EKPublic []byte `json:"ek_public"`
	// AKPublic is the new attestation key's TPMT_PUBLIC.
	AKPublic []byte `json:"ak_public"`
}

// ActivationChallenge is the server's answer to an EnrollRequest: a
// credential only the TPM holding both the EK and the AK can open, and a
// nonce for the enrolment quote.
type ActivationChallenge struct {
	Type       string    `json:"type"` // TypeActivationChallenge
	Version    int       `json:"version"`
	DeviceID   string    `json:"device_id"`
	Credential []byte    `json:"credential"`       // TPM2B_ID_OBJECT contents (TPM2_ActivateCredential credentialBlob)
	Secret     []byte    `json:"encrypted_secret"` // TPM2B_ENCRYPTED_SECRET contents (TPM2_ActivateCredential secret)
	Nonce      []byte    `json:"nonce"`            // qualifying data of the enrolment quote, NonceSize bytes
	Expires    time.Time `json:"expires"`          // RFC 3339, UTC; answer before
	Bank       string    `json:"bank"`             // "sha256"
	PCRs       []int     `json:"pcrs"`             // PCR indices to quote, ascending
}

// PCRValue is one PCR's value in the SHA-256 bank.
type PCRValue struct {
	Index int    `json:"index"`
	Value []byte `json:"value"` // 32 bytes
}

// ActivationProof is the device's answer to an ActivationChallenge: the
// activated credential, and a quote over the requested PCRs with the PCR
// values it read (checked against the quote's digest and kept as the
// candidate golden values an operator may approve).
type ActivationProof struct {
	Type      string     `json:"type"` // TypeActivationProof
	Version   int        `json:"version"`
	DeviceID  string     `json:"device_id"`
	Secret    []byte     `json:"secret"`    // TPM2_ActivateCredential certInfo
	Nonce     []byte     `json:"nonce"`     // the challenge's nonce
	Quote     []byte     `json:"quote"`     // TPMS_ATTEST (TPM2_Quote quoted, without the size)
	Signature []byte     `json:"signature"` // TPMT_SIGNATURE
	PCRs      []PCRValue `json:"pcrs"`
}

// Challenge is the server's attestation challenge: quote these PCRs of
// the SHA-256 bank with this nonce as qualifying data before Expires.
type Challenge struct {
	Type     string    `json:"type"` // TypeChallenge
	Version  int       `json:"version"`
	DeviceID string    `json:"device_id"`
	Nonce    []byte    `json:"nonce"`   // NonceSize bytes, single use
	Expires  time.Time `json:"expires"` // RFC 3339, UTC
	Bank     string    `json:"bank"`    // "sha256"
	PCRs     []int     `json:"pcrs"`    // ascending
}

// QuoteResponse is the device's answer to a Challenge.
type QuoteResponse struct {
	Type      string `json:"type"` // TypeQuote
	Version   int    `json:"version"`
	DeviceID  string `json:"device_id"`
	Nonce     []byte `json:"nonce"`     // the challenge's nonce
	Quote     []byte `json:"quote"`     // TPMS_ATTEST
	Signature []byte `json:"signature"` // TPMT_SIGNATURE
}

// ParseEnrollRequest decodes and size-checks an EnrollRequest. It does not
// verify it: Attestor.Enroll does.
func ParseEnrollRequest(b []byte) (EnrollRequest, error) {
	var m EnrollRequest
	if err := decodeStrict(b, &m); err != nil {
		return m, err
	}
	if err := checkHeader(m.Type, TypeEnrollRequest, m.Version); err != nil {
		return m, err
	}
	if err := checkLen("ek_cert", m.EKCert, 1, MaxCertSize); err != nil {
		return m, err
	}
	if len(m.EKChain) > MaxChainCerts {
		return m, reject(ReasonMalformed, "ek_chain has %d certificates, at most %d", len(m.EKChain), MaxChainCerts)
	}
	for i, c := range m.EKChain {
		if err := checkLen(fmt.Sprintf("ek_chain[%d]", i), c, 1, MaxCertSize); err != nil {
			return m, err
		}
	}
	if err := checkLen("ek_public", m.EKPublic, 1, MaxPublicSize); err != nil {
		return m, err
	}
	return m, checkLen("ak_public", m.AKPublic, 1, MaxPublicSize)
}

// ParseActivationChallenge decodes an ActivationChallenge (device side).
func ParseActivationChallenge(b []byte) (ActivationChallenge, error) {
	var m ActivationChallenge
	if err := decodeStrict(b, &m); err != nil {
		return m, err
	}
	if err := checkHeader(m.Type, TypeActivationChallenge, m.Version); err != nil {
		return m, err
	}
	if err := checkDeviceID(m.DeviceID); err != nil {
		return m, err
	}
	if err := checkLen("credential", m.Credential, 1, MaxPublicSize); err != nil {
		return m, err
	}
	if err := checkLen("encrypted_secret", m.Secret, 1, MaxPublicSize); err != nil {
		return m, err
	}
	if err := checkLen("nonce", m.Nonce, NonceSize, NonceSize); err != nil {
		return m, err
	}
	_, err := checkSelection(m.Bank, m.PCRs)
	return m, err
}

// ParseActivationProof decodes and size-checks an ActivationProof.
func ParseActivationProof(b []byte) (ActivationProof, error) {
	var m ActivationProof
	if err := decodeStrict(b, &m); err != nil {
		return m, err
	}
	if err := checkHeader(m.Type, TypeActivationProof, m.Version); err != nil {
		return m, err
	}
	if err := checkDeviceID(m.DeviceID); err != nil {
		return m, err
	}
	if err := checkLen("secret", m.Secret, 1, 64); err != nil {
		return m, err
	}
	if err := checkLen("nonce", m.Nonce, 1, 64); err != nil {
		return m, err
	}
	if err := checkLen("quote", m.Quote, 1, MaxQuoteSize); err != nil {
		return m, err
	}
	if err := checkLen("signature", m.Signature, 1, MaxSigSize); err != nil {
		return m, err
	}
	if len(m.PCRs) > maxPCR+1 {
		return m, reject(ReasonMalformed, "pcrs: %d values, at most %d", len(m.PCRs), maxPCR+1)
	}
	for _, v := range m.PCRs {
		if v.Index < 0 || v.Index > maxPCR || len(v.Value) != 32 {
			return m, reject(ReasonMalformed, "pcrs: index %d with %d-byte value: want 0..%d and 32 bytes", v.Index, len(v.Value), maxPCR)
		}
	}
	return m, nil
}

// ParseChallenge decodes a Challenge (device side).
func ParseChallenge(b []byte) (Challenge, error) {
	var m Challenge
	if err := decodeStrict(b, &m); err != nil {
		return m, err
	}
	if err := checkHeader(m.Type, TypeChallenge, m.Version); err != nil {
		return m, err
	}
	if err := checkDeviceID(m.DeviceID); err != nil {
		return m, err
	}
	if err := checkLen("nonce", m.Nonce, NonceSize, NonceSize); err != nil {
		return m, err
	}
	_, err := checkSelection(m.Bank, m.PCRs)
	return m, err
}

// ParseQuoteResponse decodes and size-checks a QuoteResponse. It does not
// verify it: Attestor.Verify does.
func ParseQuoteResponse(b []byte) (QuoteResponse, error) {
	var m QuoteResponse
	if err := decodeStrict(b, &m); err != nil {
		return m, err
	}
	if err := checkHeader(m.Type, TypeQuote, m.Version); err != nil {
		return m, err
	}
	if err := checkDeviceID(m.DeviceID); err != nil {
		return m, err
	}
	if err := checkLen("nonce", m.Nonce, 1, 64); err != nil {
		return m, err
	}
	if err := checkLen("quote", m.Quote, 1, MaxQuoteSize); err != nil {
		return m, err
	}
	return m, checkLen("signature", m.Signature, 1, MaxSigSize)
}

// Marshal encodes a message as indented JSON with a trailing newline, the
// form the CLIs read and write.
func Marshal(m any) ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// decodeStrict decodes exactly one JSON object with no unknown fields.
func decodeStrict(b []byte, v any) error {
	if len(b) > MaxMessageSize {
		return reject(ReasonMalformed, "message is %d bytes, at most %d", len(b), MaxMessageSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return rejectErr(ReasonMalformed, err, "message is not valid JSON of the expected shape")
	}
	if _, err := dec.Token(); err != io.EOF {
		return reject(ReasonMalformed, "trailing data after the message")
	}
	return nil
}

func checkHeader(got, want string, version int) error {
	if got != want {
		return reject(ReasonMalformed, "type %q: want %q", got, want)
	}
	if version != Version {
		return reject(ReasonMalformed, "version %d: this server speaks version %d", version, Version)
	}
	return nil
}

func checkLen(field string, b []byte, lo, hi int) error {
	if len(b) < lo || len(b) > hi {
		if lo == hi {
			return reject(ReasonMalformed, "%s is %d bytes: want %d", field, len(b), lo)
		}
		return reject(ReasonMalformed, "%s is %d bytes: want %d..%d", field, len(b), lo, hi)
	}
	return nil
}

func checkDeviceID(id string) error {
	if !validDeviceID(id) {
		return reject(ReasonMalformed, "device_id %q is not a device id (32 lowercase hex digits)", truncate(id, 40))
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
