package tpm_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/tradecore/tradecore/tpm"
)

// Every parser of device- or operator-supplied bytes has a fuzz target:
// none may panic, and a failure is always a reject with a reason (or a
// policy error).

func mustMarshal(t testing.TB, m any) []byte {
	b, err := tpm.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkReject(t *testing.T, err error) {
	if err != nil && tpm.ReasonOf(err) == 0 {
		t.Fatalf("error without a reason code: %v", err)
	}
}

func FuzzParseMessages(f *testing.F) {
	n := make([]byte, tpm.NonceSize)
	id := "0123456789abcdef0123456789abcdef"
	f.Add(mustMarshal(f, tpm.EnrollRequest{Type: tpm.TypeEnrollRequest, Version: 1, EKCert: []byte{1}, EKPublic: []byte{1}, AKPublic: []byte{1}}))
	f.Add(mustMarshal(f, tpm.ActivationChallenge{Type: tpm.TypeActivationChallenge, Version: 1, DeviceID: id, Credential: []byte{1}, Secret: []byte{1}, Nonce: n, Bank: "sha256", PCRs: []int{0, 7}}))
	f.Add(mustMarshal(f, tpm.ActivationProof{Type: tpm.TypeActivationProof, Version: 1, DeviceID: id, Secret: n, Nonce: n, Quote: []byte{1}, Signature: []byte{1}, PCRs: []tpm.PCRValue{{Index: 0, Value: n}}}))
	f.Add(mustMarshal(f, tpm.Challenge{Type: tpm.TypeChallenge, Version: 1, DeviceID: id, Nonce: n, Expires: time.Unix(1, 0), Bank: "sha256", PCRs: []int{0}}))
	f.Add(mustMarshal(f, tpm.QuoteResponse{Type: tpm.TypeQuote, Version: 1, DeviceID: id, Nonce: n, Quote: []byte{1}, Signature: []byte{1}}))
	f.Add([]byte(`{"type":"tpm.quote","version":1,"device_id":"x","nonce":"!!"}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := tpm.ParseEnrollRequest(b)
		checkReject(t, err)
		_, err = tpm.ParseActivationChallenge(b)
		checkReject(t, err)
		_, err = tpm.ParseActivationProof(b)
		checkReject(t, err)
		_, err = tpm.ParseChallenge(b)
		checkReject(t, err)
		_, err = tpm.ParseQuoteResponse(b)
		checkReject(t, err)
	})
}

// FuzzVerifyQuote feeds arbitrary quote and signature bytes (TPMS_ATTEST,
// TPMT_SIGNATURE) to the verifier, seeded with a valid pair.
func FuzzVerifyQuote(f *testing.F) {
	s := newSoftAK(f, true)
	nonce := make([]byte, tpm.NonceSize)
	pcrs := goldenPCRs()
	want := tpm.QuoteCheck{Nonce: nonce, PCRs: []int{0, 2, 7}, Digest: tpm.PCRDigest(pcrs), Signer: s.qn}
	q, sig := s.make(f, s.spec(nonce, pcrs))
	f.Add(q, sig)
	f.Add(q[:20], sig[:10])
	f.Add([]byte{0xff, 0x54, 0x43, 0x47, 0x80, 0x18}, []byte{0x00, 0x18, 0x00, 0x0b, 0x00, 0x00, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, quote, sig []byte) {
		_, err := s.ak.VerifyQuote(quote, sig, want)
		checkReject(t, err)
		// Signed by the AK, any structure is still fully checked.
		_, err = s.ak.VerifyQuote(quote, s.sign(t, quote), want)
		checkReject(t, err)
	})
}

// FuzzParseAK feeds arbitrary TPMT_PUBLIC bytes to the AK parser.
func FuzzParseAK(f *testing.F) {
	f.Add(newSoftAK(f, true).public)
	f.Add(tpm2.Marshal(tpm2.RSAEKTemplate))
	f.Add([]byte{0x00, 0x23, 0x00, 0x0b})
	f.Fuzz(func(t *testing.T, b []byte) {
		ak, err := tpm.ParseAK(b)
		checkReject(t, err)
		if err == nil && len(ak.Name()) != 34 {
			t.Fatalf("AK name of %d bytes", len(ak.Name()))
		}
	})
}

// FuzzEnroll feeds arbitrary EK certificates, chains and EK public areas
// through enrolment's verification.
func FuzzEnroll(f *testing.F) {
	dir := f.TempDir()
	rec := &fakeRecorder{}
	a, closeA, err := tpm.Open(context.Background(), tpm.Config{Dir: dir, Recorder: rec, EKRoots: testPool(f)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { closeA() })
	f.Add([]byte{0x10, 0x01, 0x00, 0x00, 0x05, 0x30, 0x03, 0x02, 0x01, 0x00}, []byte{}, tpm2.Marshal(tpm2.RSAEKTemplate), newSoftAK(f, true).public)
	f.Add(testPoolCert(f), testPoolCert(f), tpm2.Marshal(tpm2.RSAEKTemplate), []byte{})
	f.Fuzz(func(t *testing.T, cert, chain, ekPub, akPub []byte) {
		req := tpm.EnrollRequest{Type: tpm.TypeEnrollRequest, Version: 1, EKCert: cert, EKPublic: ekPub, AKPublic: akPub}
		if len(chain) > 0 {
			req.EKChain = [][]byte{chain}
		}
		_, err := a.Enroll(context.Background(), req)
		checkReject(t, err)
	})
}

// FuzzParsePolicy feeds arbitrary policy files to the parser.
func FuzzParsePolicy(f *testing.F) {
	v := sha256.Sum256(nil)
	p, err := tpm.Policy{Name: "trading-host-v1", PCRs: []tpm.PCRValue{{Index: 0, Value: v[:]}, {Index: 7, Value: v[:]}}}.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(p)
	f.Add([]byte(`{"version":1,"name":"x","bank":"sha256","pcrs":{"07":"00"}}`))
	f.Add([]byte(`{"version":1,"name":"x","bank":"sha1","pcrs":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		pol, err := tpm.ParsePolicy(b)
		if err != nil {
			return
		}
		// What parses re-encodes and parses to the same policy.
		enc, err := pol.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := tpm.ParsePolicy(enc)
		if err != nil || string(again.Digest()) != string(pol.Digest()) || again.Name != pol.Name {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzParseCAPool feeds arbitrary PEM bundles to the CA pool parser.
func FuzzParseCAPool(f *testing.F) {
	f.Add(testPoolPEM)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = tpm.ParseCAPool(b)
	})
}
