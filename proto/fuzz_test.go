package proto_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/tradecore/tradecore/proto"
)

// FuzzFrames: any bytes through the frame reader and the decoders never
// panic; every frame the reader passes decodes (except an AttestQuote whose
// lengths or trailing bytes are wrong: ErrMalformed); whatever decodes
// re-encodes to the same bytes (padding aside, which receivers ignore, so a
// canonical re-encode is checked instead).
func FuzzFrames(f *testing.F) {
	for _, m := range samples() {
		f.Add(proto.Append(nil, m))
	}
	f.Add([]byte{0xff, 0xff, 'N', 1})
	f.Add([]byte{4, 0, 'H', 2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := proto.NewFrameReader(bytes.NewReader(b), 0)
		for {
			frame, err := fr.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) &&
					!errors.Is(err, proto.ErrMalformed) && !errors.Is(err, proto.ErrOversized) && !errors.Is(err, proto.ErrVersion) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			m, err := proto.Decode(frame)
			if err != nil {
				// Only a quote's content checks refuse a well-framed frame.
				if proto.Type(frame[2]) != proto.TAttestQuote || !errors.Is(err, proto.ErrMalformed) {
					t.Fatalf("a frame the reader passed does not decode: %v", err)
				}
				continue
			}
			again := proto.Append(nil, m)
			m2, err := proto.Decode(again)
			if err != nil || !bytes.Equal(proto.Append(nil, m2), again) {
				t.Fatalf("re-encoding is not stable: %v", err)
			}
			if len(again) != len(frame) || !bytes.Equal(again[:4], frame[:4]) {
				t.Fatalf("header changed on re-encode")
			}
		}
	})
}

// FuzzLogin: the login parser and MAC check on arbitrary bytes.
func FuzzLogin(f *testing.F) {
	f.Add(proto.Append(nil, samples()[0]))
	f.Add(make([]byte, 88))
	f.Add([]byte{88, 0, 'L', 1})
	secret := bytes.Repeat([]byte{7}, proto.SecretSize)
	f.Fuzz(func(t *testing.T, b []byte) {
		var l proto.Login
		err := proto.ParseLogin(b, &l)
		ok := proto.VerifyLogin(b, secret)
		if err != nil {
			return
		}
		if !proto.ValidKeyID(l.KeyID[:]) {
			t.Fatal("ParseLogin passed an invalid key id")
		}
		// A login that verifies must be the one we sign.
		if ok {
			c := l
			proto.SignLogin(&c, secret)
			if c.MAC != l.MAC {
				t.Fatal("VerifyLogin and SignLogin disagree")
			}
		}
	})
}

// FuzzMarketData: the market-data decoder, as a client runs it on the feed.
func FuzzMarketData(f *testing.F) {
	var feed []byte
	for _, m := range samples() {
		switch m.Type() {
		case proto.TMDAdd, proto.TMDExecute, proto.TMDCancel, proto.TMDDelete, proto.TMDReplace, proto.TMDTrade,
			proto.TMDSystem, proto.TSnapshotBegin, proto.TSnapshotEnd:
			f.Add(proto.Append(nil, m))
			feed = proto.Append(feed, m)
		}
	}
	f.Add(feed)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr := proto.NewFrameReader(bytes.NewReader(b), 0)
		var book proto.Book
		for {
			frame, err := fr.Next()
			if err != nil {
				return
			}
			_ = book.Apply(frame)
		}
	})
}

// FuzzAttestQuote: the server's decoder of the device's quote frame, on
// arbitrary bytes. What it accepts has lengths in range, and re-encodes to
// exactly the bytes received (the frame has no padding: one encoding).
func FuzzAttestQuote(f *testing.F) {
	for _, m := range samples() {
		if m.Type() == proto.TAttestQuote {
			f.Add(proto.Append(nil, m))
		}
	}
	f.Add(append([]byte{0xb8, 0x01, 'P', 1}, make([]byte, 436)...))
	f.Add([]byte{0xb8, 0x01, 'P', 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var q proto.AttestQuote
		if err := q.UnmarshalFrame(b); err != nil {
			if !errors.Is(err, proto.ErrMalformed) && !errors.Is(err, proto.ErrOversized) && !errors.Is(err, proto.ErrVersion) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if len(q.QuoteBytes()) != int(q.QuoteLen) || len(q.SignatureBytes()) != int(q.SignatureLen) || q.QuoteLen == 0 || q.SignatureLen == 0 {
			t.Fatalf("accepted lengths %d/%d", q.QuoteLen, q.SignatureLen)
		}
		if !bytes.Equal(proto.Append(nil, &q), b) {
			t.Fatal("an accepted quote frame does not re-encode to itself")
		}
		var again proto.AttestQuote
		if err := again.SetQuote(q.QuoteBytes(), q.SignatureBytes()); err != nil || again.Quote != q.Quote || again.Signature != q.Signature {
			t.Fatalf("SetQuote of the decoded fields differs: %v", err)
		}
	})
}

// FuzzAttestChallenge: the client's decoder of the server's challenge and
// its PCR selection, on arbitrary bytes.
func FuzzAttestChallenge(f *testing.F) {
	for _, m := range samples() {
		if m.Type() == proto.TAttestChallenge || m.Type() == proto.TAttestHello || m.Type() == proto.TAttestAccepted {
			f.Add(proto.Append(nil, m))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var ch proto.AttestChallenge
		if err := ch.UnmarshalFrame(b); err != nil {
			return
		}
		pcrs, err := ch.PCRList()
		if err != nil {
			if !errors.Is(err, proto.ErrAttestField) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		var back proto.AttestChallenge
		if err := back.SetPCRs(pcrs); err != nil || back.PCRs != ch.PCRs || len(pcrs) == 0 {
			t.Fatalf("PCR list %v does not give back mask %#x: %v", pcrs, ch.PCRs, err)
		}
	})
}
