package tpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-attestation/attest"
	x509ext "github.com/google/go-attestation/x509"
	"github.com/google/go-tpm/tpm2"
)

// CAPool is the set of EK manufacturer CA certificates enrolment trusts:
// self-signed certificates are roots, the others intermediates.
type CAPool struct {
	roots, intermediates *x509.CertPool
	nroots               int
}

// ParseCAPool reads a PEM bundle of CA certificates (the TPM vendors' EK
// root and intermediate CAs). At least one must be a self-signed root.
func ParseCAPool(pemData []byte) (*CAPool, error) {
	p := &CAPool{roots: x509.NewCertPool(), intermediates: x509.NewCertPool()}
	rest := pemData
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: EK CA pool: %v (the file must hold PEM CERTIFICATE blocks)", ErrConfig, err)
		}
		if !c.IsCA {
			return nil, fmt.Errorf("%w: EK CA pool: %q is not a CA certificate", ErrConfig, c.Subject.String())
		}
		if bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil {
			p.roots.AddCert(c)
			p.nroots++
		} else {
			p.intermediates.AddCert(c)
		}
	}
	if p.nroots == 0 {
		return nil, fmt.Errorf("%w: EK CA pool holds no self-signed root certificate: add the TPM vendor's root CA", ErrConfig)
	}
	return p, nil
}

// ek is an enrolment's verified endorsement key.
type ek struct {
	cert   *x509.Certificate
	pub    *tpm2.TPMTPublic
	rsaPub *rsa.PublicKey
	id     string
}

// verifyEK checks the EK certificate (TCG EK credential profile, chain to
// pool at now) and that ekPublic is the TCG default RSA-2048 EK whose key
// is the certificate's.
func verifyEK(pool *CAPool, certDER []byte, chain [][]byte, ekPublic []byte, now time.Time) (*ek, error) {
	cert, err := attest.ParseEKCertificate(certDER)
	if err != nil {
		return nil, rejectErr(ReasonEKCertInvalid, err, "the EK certificate does not parse")
	}
	if _, err := x509ext.ToEKCertificate(cert); err != nil {
		return nil, rejectErr(ReasonEKCertInvalid, err, "the EK certificate breaks the TCG EK credential profile")
	}
	inter := pool.intermediates.Clone()
	for _, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, rejectErr(ReasonEKCertInvalid, err, "an ek_chain certificate does not parse")
		}
		inter.AddCert(c)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots: pool.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			return nil, rejectErr(ReasonEKUntrusted, err, "the EK certificate (issuer %q) does not chain to the EK CA pool: add its manufacturer's CA if the vendor is trusted", cert.Issuer.String())
		}
		return nil, rejectErr(ReasonEKCertInvalid, err, "the EK certificate chain does not verify")
	}
	certKey, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil, reject(ReasonEKMismatch, "the EK certificate holds a %T key: only RSA-2048 EKs (NV index 0x01C00002) are supported", cert.PublicKey)
	}
	pub, err := parseCanonical[tpm2.TPMTPublic](ekPublic)
	if err != nil {
		return nil, rejectErr(ReasonMalformed, err, "ek_public is not a TPMT_PUBLIC")
	}
	unique, err := pub.Unique.RSA()
	if err != nil || pub.Type != tpm2.TPMAlgRSA {
		return nil, reject(ReasonEKMismatch, "ek_public is not an RSA key")
	}
	want := tpm2.RSAEKTemplate
	want.Unique = pub.Unique
	if !bytes.Equal(tpm2.Marshal(want), ekPublic) {
		return nil, reject(ReasonEKMismatch, "ek_public is not the TCG default RSA-2048 EK template (attributes, policy or parameters differ)")
	}
	parms, err := pub.Parameters.RSADetail()
	if err != nil {
		return nil, rejectErr(ReasonEKMismatch, err, "ek_public has no RSA parameters")
	}
	rsaPub, err := tpm2.RSAPub(parms, unique)
	if err != nil {
		return nil, rejectErr(ReasonEKMismatch, err, "ek_public's RSA key")
	}
	if !rsaPub.Equal(certKey) {
		return nil, reject(ReasonEKMismatch, "ek_public's key is not the EK certificate's key")
	}
	id, err := DeviceID(rsaPub)
	if err != nil {
		return nil, rejectErr(ReasonEKMismatch, err, "ek_public's key")
	}
	return &ek{cert: cert, pub: pub, rsaPub: rsaPub, id: id}, nil
}

// DeviceID derives a device's id from its EK public key: the first 16 bytes
// of SHA-256 over the key's PKIX (SubjectPublicKeyInfo) DER, as 32 lowercase
// hex digits. It is stable across AKs and re-enrolments of the same TPM.
func DeviceID(ekPub any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(ekPub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:16]), nil
}

// AK is a parsed attestation key: a restricted ECC P-256 ECDSA-SHA256
// signing key that the TPM created (fixedTPM, fixedParent,
// sensitiveDataOrigin). Its Name binds those attributes; credential
// activation proves an object of that Name is in the EK's TPM.
type AK struct {
	pub  *ecdsa.PublicKey
	name []byte
}

// ParseAK parses and checks an AK's TPMT_PUBLIC.
func ParseAK(public []byte) (*AK, error) {
	pub, err := parseCanonical[tpm2.TPMTPublic](public)
	if err != nil {
		return nil, rejectErr(ReasonMalformed, err, "ak_public is not a TPMT_PUBLIC")
	}
	a := pub.ObjectAttributes
	if pub.Type != tpm2.TPMAlgECC || pub.NameAlg != tpm2.TPMAlgSHA256 {
		return nil, reject(ReasonAKInvalid, "the AK must be an ECC key with name algorithm SHA-256")
	}
	if !a.FixedTPM || !a.FixedParent || !a.SensitiveDataOrigin || !a.Restricted || !a.SignEncrypt || a.Decrypt {
		return nil, reject(ReasonAKInvalid, "the AK must be restricted, signing-only, fixedTPM, fixedParent and sensitiveDataOrigin")
	}
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, rejectErr(ReasonAKInvalid, err, "the AK has no ECC parameters")
	}
	if parms.CurveID != tpm2.TPMECCNistP256 || parms.Symmetric.Algorithm != tpm2.TPMAlgNull || parms.KDF.Scheme != tpm2.TPMAlgNull {
		return nil, reject(ReasonAKInvalid, "the AK must use curve NIST P-256 with no symmetric and no KDF scheme")
	}
	if parms.Scheme.Scheme != tpm2.TPMAlgECDSA {
		return nil, reject(ReasonAKInvalid, "the AK's scheme must be ECDSA")
	}
	det, err := parms.Scheme.Details.ECDSA()
	if err != nil || det.HashAlg != tpm2.TPMAlgSHA256 {
		return nil, reject(ReasonAKInvalid, "the AK's scheme must be ECDSA with SHA-256")
	}
	point, err := pub.Unique.ECC()
	if err != nil {
		return nil, rejectErr(ReasonAKInvalid, err, "the AK has no ECC point")
	}
	ecPub, err := tpm2.ECDSAPub(parms, point)
	if err != nil {
		return nil, rejectErr(ReasonAKInvalid, err, "the AK's point is not on P-256")
	}
	name, err := tpm2.ObjectName(pub)
	if err != nil {
		return nil, rejectErr(ReasonAKInvalid, err, "the AK's name")
	}
	return &AK{pub: ecPub, name: name.Buffer}, nil
}

// Name is the AK's TPM Name (nameAlg || digest of its TPMT_PUBLIC).
func (ak *AK) Name() []byte { return ak.name }

// PublicKey is the AK's ECDSA public key.
func (ak *AK) PublicKey() *ecdsa.PublicKey { return ak.pub }

// parseCanonical unmarshals a TPM structure and insists the bytes are its
// exact encoding (no trailing data, no alternative forms).
func parseCanonical[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](b []byte) (p *T, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("invalid TPM structure: %v", r)
		}
	}()
	v, err := tpm2.Unmarshal[T, P](b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(tpm2.Marshal(*v), b) {
		return nil, errors.New("not in canonical form (trailing or redundant bytes)")
	}
	return v, nil
}
