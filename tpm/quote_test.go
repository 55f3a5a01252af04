package tpm_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/stretchr/testify/require"

	"github.com/tradecore/tradecore/tpm"
	"github.com/tradecore/tradecore/tpm/device"
)

// softAK is a software stand-in for a TPM AK: the same public area, so
// VerifyQuote's structural checks can be driven with valid signatures over
// data no TPM would sign.
type softAK struct {
	priv   *ecdsa.PrivateKey
	public []byte
	ak     *tpm.AK
	qn     []byte
}

func newSoftAK(t testing.TB, restricted bool) *softAK {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := device.AKTemplate
	tmpl.ObjectAttributes.Restricted = restricted
	raw, err := priv.PublicKey.Bytes() // 0x04 || X || Y
	require.NoError(t, err)
	x, y := raw[1:33], raw[33:]
	tmpl.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{X: tpm2.TPM2BECCParameter{Buffer: x}, Y: tpm2.TPM2BECCParameter{Buffer: y}})
	s := &softAK{priv: priv, public: tpm2.Marshal(tmpl)}
	if restricted {
		s.ak, err = tpm.ParseAK(s.public)
		require.NoError(t, err)
	}
	qn := sha256.Sum256([]byte("parent chain"))
	s.qn = append([]byte{0x00, 0x0b}, qn[:]...)
	return s
}

func softwareAKPublic(t testing.TB, restricted bool) []byte { return newSoftAK(t, restricted).public }

type attestSpec struct {
	magic  tpm2.TPMGenerated
	typ    tpm2.TPMST
	signer []byte
	nonce  []byte
	sel    tpm2.TPMLPCRSelection
	digest []byte
}

func (s *softAK) spec(nonce []byte, pcrs []tpm.PCRValue) attestSpec {
	idx := make([]int, len(pcrs))
	for i, v := range pcrs {
		idx[i] = v.Index
	}
	return attestSpec{magic: tpm2.TPMGeneratedValue, typ: tpm2.TPMSTAttestQuote, signer: s.qn, nonce: nonce,
		sel: tpm.PCRSelection(idx), digest: tpm.PCRDigest(pcrs)}
}

func (s *softAK) make(t testing.TB, sp attestSpec) (quote, sig []byte) {
	att := tpm2.TPMSAttest{
		Magic: tpm2.TPMGeneratedValue, Type: tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: sp.signer},
		ExtraData:       tpm2.TPM2BData{Buffer: sp.nonce},
		ClockInfo:       tpm2.TPMSClockInfo{Clock: 1000, ResetCount: 3, RestartCount: 0, Safe: true},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: sp.sel, PCRDigest: tpm2.TPM2BDigest{Buffer: sp.digest},
		}),
	}
	quote = tpm2.Marshal(att)
	binary.BigEndian.PutUint32(quote, uint32(sp.magic))
	binary.BigEndian.PutUint16(quote[4:], uint16(sp.typ))
	return quote, s.sign(t, quote)
}

func (s *softAK) sign(t testing.TB, data []byte) []byte {
	h := sha256.Sum256(data)
	r, ss, err := ecdsa.Sign(rand.Reader, s.priv, h[:])
	require.NoError(t, err)
	return sigBytes(tpm2.TPMAlgECDSA, tpm2.TPMAlgSHA256, r, ss)
}

func sigBytes(alg, hash tpm2.TPMAlgID, r, s *big.Int) []byte {
	return tpm2.Marshal(tpm2.TPMTSignature{SigAlg: alg, Signature: tpm2.NewTPMUSignature(alg, &tpm2.TPMSSignatureECC{
		Hash: hash, SignatureR: tpm2.TPM2BECCParameter{Buffer: r.Bytes()}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s.Bytes()},
	})})
}

func goldenPCRs() []tpm.PCRValue {
	var out []tpm.PCRValue
	for _, i := range []int{0, 2, 7} {
		v := sha256.Sum256([]byte{byte(i)})
		out = append(out, tpm.PCRValue{Index: i, Value: v[:]})
	}
	return out
}

func TestVerifyQuoteChecks(t *testing.T) {
	s := newSoftAK(t, true)
	nonce := make([]byte, tpm.NonceSize)
	pcrs := goldenPCRs()
	want := tpm.QuoteCheck{Nonce: nonce, PCRs: []int{0, 2, 7}, Digest: tpm.PCRDigest(pcrs), Signer: s.qn}

	q, sig := s.make(t, s.spec(nonce, pcrs))
	got, err := s.ak.VerifyQuote(q, sig, want)
	require.NoError(t, err)
	require.Equal(t, uint32(3), got.ResetCount)
	require.Equal(t, s.qn, got.Signer)

	other := newSoftAK(t, true)
	for _, tc := range []struct {
		name   string
		build  func() ([]byte, []byte)
		reason tpm.Reason
	}{
		{"tampered quote", func() ([]byte, []byte) {
			q, sig := s.make(t, s.spec(nonce, pcrs))
			q[len(q)-1] ^= 1
			return q, sig
		}, tpm.ReasonSignatureInvalid},
		{"signed by another key", func() ([]byte, []byte) { return other.make(t, other.spec(nonce, pcrs)) }, tpm.ReasonSignatureInvalid},
		{"RSA signature algorithm", func() ([]byte, []byte) {
			q, _ := s.make(t, s.spec(nonce, pcrs))
			return q, tpm2.Marshal(tpm2.TPMTSignature{SigAlg: tpm2.TPMAlgRSASSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA,
				&tpm2.TPMSSignatureRSA{Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: make([]byte, 256)}})})
		}, tpm.ReasonSignatureInvalid},
		{"SHA-1 hash", func() ([]byte, []byte) {
			q, _ := s.make(t, s.spec(nonce, pcrs))
			return q, sigBytes(tpm2.TPMAlgECDSA, tpm2.TPMAlgSHA1, big.NewInt(1), big.NewInt(1))
		}, tpm.ReasonSignatureInvalid},
		{"not TPM generated", func() ([]byte, []byte) {
			sp := s.spec(nonce, pcrs)
			sp.magic = 0x12345678
			return s.make(t, sp)
		}, tpm.ReasonNotTPMGenerated},
		{"certify, not quote", func() ([]byte, []byte) {
			sp := s.spec(nonce, pcrs)
			sp.typ = tpm2.TPMSTAttestCertify
			return s.make(t, sp)
		}, tpm.ReasonNotQuote},
		{"other signer name", func() ([]byte, []byte) {
			sp := s.spec(nonce, pcrs)
			sp.signer = append([]byte{0x00, 0x0b}, make([]byte, 32)...)
			return s.make(t, sp)
		}, tpm.ReasonSignerMismatch},
		{"other nonce", func() ([]byte, []byte) { return s.make(t, s.spec([]byte("another nonce"), pcrs)) }, tpm.ReasonNonceMismatch},
		{"two banks", func() ([]byte, []byte) {
			sp := s.spec(nonce, pcrs)
			sp.sel.PCRSelections = append(sp.sel.PCRSelections, tpm2.TPMSPCRSelection{Hash: tpm2.TPMAlgSHA1, PCRSelect: []byte{1, 0, 0}})
			return s.make(t, sp)
		}, tpm.ReasonPCRSelection},
		{"SHA-1 bank", func() ([]byte, []byte) {
			sp := s.spec(nonce, pcrs)
			sp.sel.PCRSelections[0].Hash = tpm2.TPMAlgSHA1
			return s.make(t, sp)
		}, tpm.ReasonPCRSelection},
		{"wider bitmap with an extra PCR", func() ([]byte, []byte) {
			sp := s.spec(nonce, pcrs)
			sp.sel.PCRSelections[0].PCRSelect = []byte{0x85, 0, 0, 1}
			return s.make(t, sp)
		}, tpm.ReasonPCRSelection},
		{"other digest", func() ([]byte, []byte) {
			sp := s.spec(nonce, pcrs)
			sp.digest = make([]byte, 32)
			return s.make(t, sp)
		}, tpm.ReasonPCRMismatch},
		{"trailing bytes", func() ([]byte, []byte) {
			q, _ := s.make(t, s.spec(nonce, pcrs))
			q = append(q, 0)
			return q, s.sign(t, q)
		}, tpm.ReasonMalformed},
		{"truncated", func() ([]byte, []byte) {
			q, _ := s.make(t, s.spec(nonce, pcrs))
			q = q[:10]
			return q, s.sign(t, q)
		}, tpm.ReasonMalformed},
		{"garbage signature", func() ([]byte, []byte) {
			q, _ := s.make(t, s.spec(nonce, pcrs))
			return q, []byte{0x00, 0x18, 0xff}
		}, tpm.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, sig := tc.build()
			_, err := s.ak.VerifyQuote(q, sig, want)
			requireReason(t, err, tc.reason)
		})
	}
	// A wider but equivalent bitmap (4 bytes, no extra PCR) is the same selection.
	sp := s.spec(nonce, pcrs)
	sp.sel.PCRSelections[0].PCRSelect = append(sp.sel.PCRSelections[0].PCRSelect, 0)
	q, sig = s.make(t, sp)
	_, err = s.ak.VerifyQuote(q, sig, want)
	require.NoError(t, err)
}

func TestParseAKRejects(t *testing.T) {
	_, err := tpm.ParseAK(softwareAKPublic(t, false))
	requireReason(t, err, tpm.ReasonAKInvalid)
	tmpl := device.AKTemplate
	tmpl.ObjectAttributes.FixedTPM = false
	_, err = tpm.ParseAK(tpm2.Marshal(tmpl))
	requireReason(t, err, tpm.ReasonAKInvalid)
	tmpl = device.AKTemplate
	tmpl.ObjectAttributes.Decrypt = true
	_, err = tpm.ParseAK(tpm2.Marshal(tmpl))
	requireReason(t, err, tpm.ReasonAKInvalid)
	_, err = tpm.ParseAK(tpm2.Marshal(tpm2.ECCSRKTemplate))
	requireReason(t, err, tpm.ReasonAKInvalid)
	_, err = tpm.ParseAK(append(newSoftAK(t, true).public, 0))
	requireReason(t, err, tpm.ReasonMalformed)
}

// BenchmarkVerifyQuote is the quote verification time (target ≤ 1 ms).
func BenchmarkVerifyQuote(b *testing.B) {
	s := newSoftAK(b, true)
	nonce := make([]byte, tpm.NonceSize)
	pcrs := goldenPCRs()
	want := tpm.QuoteCheck{Nonce: nonce, PCRs: []int{0, 2, 7}, Digest: tpm.PCRDigest(pcrs), Signer: s.qn}
	q, sig := s.make(b, s.spec(nonce, pcrs))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.ak.VerifyQuote(q, sig, want); err != nil {
			b.Fatal(err)
		}
	}
}
