// Package device is the device side of tradecore's TPM attestation: it
// reads the EK certificate, creates and loads the attestation key (AK),
// activates the enrolment credential and quotes PCRs, producing the
// messages of package tpm (docs/attestation.md).
//
// Use [Open] on /dev/tpmrm0 (the kernel's resource-managed TPM) or on a
// swtpm unix socket, then [TPM.EnrollRequest], [TPM.Activate] and
// [TPM.Quote]. The AK's key blob ([Key]) is wrapped by the TPM's storage
// root key and is useless outside that TPM; keep it in a file next to the
// client ([LoadKey], [Key.Save]). Every transient TPM handle is flushed
// before a call returns.
package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"

	"github.com/tradecore/tradecore/internal/atomicfile"
	"github.com/tradecore/tradecore/tpm"
)

// EKCertIndex is the NV index of the RSA-2048 EK certificate (TCG EK
// Credential Profile 2.0, 2.2.1.4).
const EKCertIndex = 0x01C00002

// DefaultPath is the kernel's resource-managed TPM device.
const DefaultPath = "/dev/tpmrm0"

var (
	// ErrNoEKCert means the TPM holds no RSA EK certificate at NV index
	// 0x01C00002. The TPM's manufacturer did not provision one; such a TPM
	// cannot enrol.
	ErrNoEKCert = errors.New("device: no EK certificate in the TPM")
	// ErrNoKey means no AK file exists yet: run the enrolment first
	// (tcclient attest enroll).
	ErrNoKey = errors.New("device: no attestation key")
)

// TPM is a connection to the device's TPM.
type TPM struct {
	t transport.TPM
}

// Open connects to the TPM at path: a character device (/dev/tpmrm0) or a
// swtpm unix socket. The returned function closes the connection.
func Open(path string) (*TPM, func() error, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("device: TPM %s: %w (give --tpm the TPM device or a swtpm socket)", path, err)
	}
	var c transport.TPMCloser
	if fi.Mode()&os.ModeSocket != 0 {
		c, err = linuxudstpm.Open(path)
	} else {
		c, err = linuxtpm.Open(path)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("device: open TPM %s: %w", path, err)
	}
	return &TPM{t: c}, c.Close, nil
}

// New wraps an open transport.
func New(t transport.TPM) *TPM { return &TPM{t: t} }

// Key is an AK as the TPM wrapped it: public area and private blob, and
// the device id the server enrolled it under (set once activated).
type Key struct {
	Public   []byte `json:"public"`              // TPMT_PUBLIC
	Private  []byte `json:"private"`             // TPM2B_PRIVATE contents, wrapped by the SRK
	DeviceID string `json:"device_id,omitempty"` // 32 hex digits; empty before activation
}

// LoadKey reads a Key file written by Save.
func LoadKey(path string) (Key, error) {
	var k Key
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return k, fmt.Errorf("%w: %s (run 'tcclient attest enroll' first)", ErrNoKey, path)
	}
	if err != nil {
		return k, err
	}
	if err := json.Unmarshal(b, &k); err != nil || len(k.Public) == 0 || len(k.Private) == 0 {
		return Key{}, fmt.Errorf("device: %s is not an AK file: enrol again", path)
	}
	return k, nil
}

// Save writes the key file (mode 0600) atomically.
func (k Key) Save(path string) error {
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// AKTemplate is the attestation key the device creates: restricted ECC
// P-256 ECDSA-SHA256 signing key, fixedTPM and fixedParent.
var AKTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		Restricted:          true,
		SignEncrypt:         true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
		KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
}

// handle is a loaded transient object; flush it when done.
type handle struct {
	h    tpm2.TPMHandle
	name tpm2.TPM2BName
	pub  tpm2.TPM2BPublic
}

func (t *TPM) flush(h handle) {
	_, _ = tpm2.FlushContext{FlushHandle: h.h}.Execute(t.t)
}

func (t *TPM) createPrimary(hier tpm2.TPMHandle, tmpl tpm2.TPMTPublic) (handle, error) {
	rsp, err := tpm2.CreatePrimary{PrimaryHandle: hier, InPublic: tpm2.New2B(tmpl)}.Execute(t.t)
	if err != nil {
		return handle{}, err
	}
	return handle{h: rsp.ObjectHandle, name: rsp.Name, pub: rsp.OutPublic}, nil
}

// ek recreates the RSA EK from the TCG default template.
func (t *TPM) ek() (handle, error) {
	h, err := t.createPrimary(tpm2.TPMRHEndorsement, tpm2.RSAEKTemplate)
	if err != nil {
		return handle{}, fmt.Errorf("device: create EK: %w", err)
	}
	return h, nil
}

// srk recreates the ECC storage root key that wraps the AK.
func (t *TPM) srk() (handle, error) {
	h, err := t.createPrimary(tpm2.TPMRHOwner, tpm2.ECCSRKTemplate)
	if err != nil {
		return handle{}, fmt.Errorf("device: create SRK: %w", err)
	}
	return h, nil
}

// EKCertificate reads the EK certificate from NV index EKCertIndex.
func (t *TPM) EKCertificate() ([]byte, error) {
	idx := tpm2.TPMHandle(EKCertIndex)
	pub, err := tpm2.NVReadPublic{NVIndex: idx}.Execute(t.t)
	if err != nil {
		return nil, fmt.Errorf("%w: NV index 0x%08x: %v", ErrNoEKCert, EKCertIndex, err)
	}
	nv, err := pub.NVPublic.Contents()
	if err != nil {
		return nil, fmt.Errorf("device: EK certificate NV public: %w", err)
	}
	const chunk = 512
	out := make([]byte, 0, nv.DataSize)
	for off := 0; off < int(nv.DataSize); off += chunk {
		n := min(chunk, int(nv.DataSize)-off)
		rsp, err := tpm2.NVRead{
			AuthHandle: tpm2.AuthHandle{Handle: idx, Name: pub.NVName, Auth: tpm2.PasswordAuth(nil)},
			NVIndex:    tpm2.NamedHandle{Handle: idx, Name: pub.NVName},
			Size:       uint16(n), Offset: uint16(off),
		}.Execute(t.t)
		if err != nil {
			return nil, fmt.Errorf("device: read EK certificate: %w", err)
		}
		out = append(out, rsp.Data.Buffer...)
	}
	return out, nil
}

// CreateAK creates a new attestation key under the storage root key.
func (t *TPM) CreateAK() (Key, error) {
	srk, err := t.srk()
	if err != nil {
		return Key{}, err
	}
	defer t.flush(srk)
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: srk.h, Name: srk.name, Auth: tpm2.PasswordAuth(nil)},
		InPublic:     tpm2.New2B(AKTemplate),
	}.Execute(t.t)
	if err != nil {
		return Key{}, fmt.Errorf("device: create AK: %w", err)
	}
	return Key{Public: rsp.OutPublic.Bytes(), Private: rsp.OutPrivate.Buffer}, nil
}

// loadAK loads k under the SRK; flush both handles when done.
func (t *TPM) loadAK(k Key) (ak, srk handle, err error) {
	srk, err = t.srk()
	if err != nil {
		return handle{}, handle{}, err
	}
	rsp, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srk.h, Name: srk.name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    tpm2.TPM2BPrivate{Buffer: k.Private},
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](k.Public),
	}.Execute(t.t)
	if err != nil {
		t.flush(srk)
		return handle{}, handle{}, fmt.Errorf("device: load AK (was it created in this TPM?): %w", err)
	}
	return handle{h: rsp.ObjectHandle, name: rsp.Name}, srk, nil
}

// DeviceID derives this TPM's device id from its EK (tpm.DeviceID), as the
// server does at enrolment. It recreates the EK, which takes a while on
// some TPMs: a Key file keeps the id once activated.
func (t *TPM) DeviceID() (string, error) {
	ek, err := t.ek()
	if err != nil {
		return "", err
	}
	defer t.flush(ek)
	pub, err := ek.pub.Contents()
	if err != nil {
		return "", fmt.Errorf("device: EK public area: %w", err)
	}
	parms, err := pub.Parameters.RSADetail()
	if err != nil {
		return "", fmt.Errorf("device: EK is not RSA: %w", err)
	}
	unique, err := pub.Unique.RSA()
	if err != nil {
		return "", fmt.Errorf("device: EK is not RSA: %w", err)
	}
	rsaPub, err := tpm2.RSAPub(parms, unique)
	if err != nil {
		return "", fmt.Errorf("device: EK key: %w", err)
	}
	return tpm.DeviceID(rsaPub)
}

// EnrollRequest builds the enrolment request for an AK made by CreateAK.
func (t *TPM) EnrollRequest(k Key) (tpm.EnrollRequest, error) {
	cert, err := t.EKCertificate()
	if err != nil {
		return tpm.EnrollRequest{}, err
	}
	ek, err := t.ek()
	if err != nil {
		return tpm.EnrollRequest{}, err
	}
	defer t.flush(ek)
	return tpm.EnrollRequest{
		Type: tpm.TypeEnrollRequest, Version: tpm.Version,
		EKCert: cert, EKPublic: ek.pub.Bytes(), AKPublic: k.Public,
	}, nil
}

// Activate recovers the enrolment credential with the EK and the AK (the
// TPM refuses unless both are its own) and quotes the requested PCRs.
func (t *TPM) Activate(k Key, ch tpm.ActivationChallenge) (tpm.ActivationProof, error) {
	var out tpm.ActivationProof
	ek, err := t.ek()
	if err != nil {
		return out, err
	}
	defer t.flush(ek)
	ak, srk, err := t.loadAK(k)
	if err != nil {
		return out, err
	}
	defer t.flush(srk)
	defer t.flush(ak)
	rsp, err := tpm2.ActivateCredential{
		ActivateHandle: tpm2.AuthHandle{Handle: ak.h, Name: ak.name, Auth: tpm2.PasswordAuth(nil)},
		KeyHandle: tpm2.AuthHandle{Handle: ek.h, Name: ek.name, Auth: tpm2.Policy(tpm2.TPMAlgSHA256, 16,
			func(tp transport.TPM, s tpm2.TPMISHPolicy, nonce tpm2.TPM2BNonce) error {
				_, err := tpm2.PolicySecret{AuthHandle: tpm2.TPMRHEndorsement, PolicySession: s, NonceTPM: nonce}.Execute(tp)
				return err
			})},
		CredentialBlob: tpm2.TPM2BIDObject{Buffer: ch.Credential},
		Secret:         tpm2.TPM2BEncryptedSecret{Buffer: ch.Secret},
	}.Execute(t.t)
	if err != nil {
		return out, fmt.Errorf("device: activate credential (the AK and EK must be in this TPM): %w", err)
	}
	quote, sig, err := t.quote(ak, ch.Nonce, ch.PCRs)
	if err != nil {
		return out, err
	}
	vals, err := t.ReadPCRs(ch.PCRs)
	if err != nil {
		return out, err
	}
	return tpm.ActivationProof{
		Type: tpm.TypeActivationProof, Version: tpm.Version, DeviceID: ch.DeviceID,
		Secret: rsp.CertInfo.Buffer, Nonce: ch.Nonce, Quote: quote, Signature: sig, PCRs: vals,
	}, nil
}

// Quote answers an attestation challenge.
func (t *TPM) Quote(k Key, ch tpm.Challenge) (tpm.QuoteResponse, error) {
	ak, srk, err := t.loadAK(k)
	if err != nil {
		return tpm.QuoteResponse{}, err
	}
	defer t.flush(srk)
	defer t.flush(ak)
	quote, sig, err := t.quote(ak, ch.Nonce, ch.PCRs)
	if err != nil {
		return tpm.QuoteResponse{}, err
	}
	return tpm.QuoteResponse{
		Type: tpm.TypeQuote, Version: tpm.Version, DeviceID: ch.DeviceID,
		Nonce: ch.Nonce, Quote: quote, Signature: sig,
	}, nil
}

func (t *TPM) quote(ak handle, nonce []byte, pcrs []int) (quote, sig []byte, err error) {
	rsp, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: ak.h, Name: ak.name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      tpm.PCRSelection(pcrs),
	}.Execute(t.t)
	if err != nil {
		return nil, nil, fmt.Errorf("device: quote: %w", err)
	}
	return rsp.Quoted.Bytes(), tpm2.Marshal(rsp.Signature), nil
}

// ReadPCRs reads the SHA-256 bank values of pcrs (ascending).
func (t *TPM) ReadPCRs(pcrs []int) ([]tpm.PCRValue, error) {
	out := make([]tpm.PCRValue, 0, len(pcrs))
	// TPM2_PCR_Read returns at most 8 digests per call.
	for start := 0; start < len(pcrs); start += 8 {
		part := pcrs[start:min(start+8, len(pcrs))]
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm.PCRSelection(part)}.Execute(t.t)
		if err != nil {
			return nil, fmt.Errorf("device: read PCRs: %w", err)
		}
		if len(rsp.PCRValues.Digests) != len(part) {
			return nil, fmt.Errorf("device: read PCRs: the TPM returned %d of %d values", len(rsp.PCRValues.Digests), len(part))
		}
		for i, d := range rsp.PCRValues.Digests {
			out = append(out, tpm.PCRValue{Index: part[i], Value: d.Buffer})
		}
	}
	return out, nil
}
