package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/tradecore/tradecore/core"
	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/proto"
	"github.com/tradecore/tradecore/tpm"
)

// Attestor is what the gateway needs of TPM device attestation
// (tpm.Attestor, opened with the audit log as its Recorder: it writes the
// tpm.attestation.* records itself).
type Attestor interface {
	Challenge(ctx context.Context, deviceID string) (tpm.Challenge, error)
	Verify(ctx context.Context, resp tpm.QuoteResponse) (tpm.Attestation, error)
	Revalidate(ctx context.Context, att tpm.Attestation) error
}

var _ Attestor = (*tpm.Attestor)(nil)

// attestState is an attested session's device and its current
// attestation. att is owned by the session's keeper goroutine once the
// session is live.
type attestState struct {
	id      string
	wire    [proto.DeviceIDSize]byte
	att     tpm.Attestation
	pending atomic.Bool             // a renewal challenge awaits its quote
	quotes  chan *proto.AttestQuote // the reader hands the answer to the keeper
	stop    chan struct{}           // closed when the session's read loop ends
}

// deviceRequirement combines what the key and its account require: ""
// (nothing), apikey.AnyDevice, or one device id. conflict reports a key
// and an account that name two different devices: no device satisfies
// both.
func (g *Gateway) deviceRequirement(key *apikey.Key) (req string, conflict bool) {
	a, b := key.RequireDevice, ""
	if key.Account != 0 {
		b = g.cfg.AccountDevices[key.Account]
	}
	switch {
	case a == "" || a == apikey.AnyDevice && b != "":
		return b, false
	case b == "" || b == apikey.AnyDevice || a == b:
		return a, false
	}
	return "", true
}

// attestReason turns an Attestor error into the reason sent: the
// attestation's own code (8xx), or attestation-unavailable when the server
// itself failed (its state folder unreadable, …).
func (g *Gateway) attestReason(err error, deviceID string) core.Reason {
	if r := tpm.ReasonOf(err); r != 0 {
		return core.Reason(r)
	}
	g.deps.Logger.Error("gateway: device attestation failed on the server's side; the session is refused", "device_id", deviceID, "err", err)
	return proto.ReasonAttestUnavailable
}

// challengeFrame encodes ch as an AttestChallenge.
func challengeFrame(dst []byte, ch *tpm.Challenge, wire [proto.DeviceIDSize]byte) ([]byte, error) {
	m := proto.AttestChallenge{DeviceID: wire, Expires: ch.Expires.UnixNano(), Bank: proto.BankSHA256}
	if len(ch.Nonce) != len(m.Nonce) {
		return nil, errors.New("gateway: the attestor's nonce is not 32 bytes")
	}
	copy(m.Nonce[:], ch.Nonce)
	if err := m.SetPCRs(ch.PCRs); err != nil {
		return nil, err
	}
	return m.AppendFrame(dst), nil
}

// quoteResponse converts a quote frame for the Attestor, under the device
// the session challenged.
func quoteResponse(q *proto.AttestQuote, deviceID string) tpm.QuoteResponse {
	return tpm.QuoteResponse{Type: tpm.TypeQuote, Version: tpm.Version, DeviceID: deviceID,
		Nonce: append([]byte(nil), q.Nonce[:]...), Quote: append([]byte(nil), q.QuoteBytes()...),
		Signature: append([]byte(nil), q.SignatureBytes()...)}
}

// attestLogin runs check 10 of the login (docs/protocol.md, "Device
// attestation") on the session goroutine, which owns the conn: the
// AttestHello, the challenge, the quote and its verification, all before
// the login deadline already set on the conn.
func (g *Gateway) attestLogin(ctx context.Context, s *session, fr *proto.FrameReader, announced bool, req string, conflict bool, deadline time.Time) (a *attestState, id string, r core.Reason) {
	if !announced {
		return nil, "", proto.ReasonAttestRequired
	}
	f, err := fr.Next()
	if err != nil {
		r := proto.ReasonLoginTimeout
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, io.EOF) {
			r = proto.ReasonOf(err)
		}
		return nil, "", r
	}
	var hello proto.AttestHello
	if err := hello.UnmarshalFrame(f); err != nil {
		return nil, "", proto.ReasonOf(err)
	}
	id = proto.DeviceIDString(hello.DeviceID)
	if conflict || req != "" && req != apikey.AnyDevice && req != id {
		return nil, id, proto.ReasonDeviceNotAllowed
	}
	if g.deps.Attestor == nil {
		g.deps.Logger.Error("gateway: a login needs device attestation but the server has none configured; refused", "device_id", id)
		return nil, id, proto.ReasonAttestUnavailable
	}
	ch, err := g.deps.Attestor.Challenge(ctx, id)
	if err != nil {
		return nil, id, g.attestReason(err, id)
	}
	frame, err := challengeFrame(nil, &ch, hello.DeviceID)
	if err != nil {
		return nil, id, g.attestReason(err, id)
	}
	if _, err := s.conn.Write(frame); err != nil {
		return nil, id, proto.ReasonAttestTimeout
	}
	g.m.out(s.port, byte(proto.TAttestChallenge))
	answerBy := deadline
	if d := time.Now().Add(ch.Expires.Sub(g.cfg.Now())); d.Before(answerBy) {
		answerBy = d
	}
	_ = s.conn.SetReadDeadline(answerBy)
	defer func() { _ = s.conn.SetReadDeadline(deadline) }()
	f, err = fr.Next()
	if err != nil {
		r := proto.ReasonAttestTimeout
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			r = proto.ReasonOf(err)
		}
		return nil, id, r
	}
	var q proto.AttestQuote
	if err := q.UnmarshalFrame(f); err != nil {
		return nil, id, proto.ReasonOf(err)
	}
	if q.DeviceID != hello.DeviceID {
		return nil, id, proto.ReasonDeviceNotAllowed
	}
	att, err := g.deps.Attestor.Verify(ctx, quoteResponse(&q, id))
	if err != nil {
		return nil, id, g.attestReason(err, id)
	}
	return &attestState{id: id, wire: hello.DeviceID, att: att, quotes: make(chan *proto.AttestQuote, 1), stop: make(chan struct{})}, id, 0
}

// acceptedFrame encodes the session's attestation as AttestAccepted.
func (a *attestState) acceptedFrame(dst []byte) []byte {
	m := proto.AttestAccepted{DeviceID: a.wire, Expires: a.att.Expires.UnixNano(), RenewAt: a.att.RenewAt.UnixNano()}
	return m.AppendFrame(dst)
}

// takeQuote hands an in-session AttestQuote frame to the keeper. It
// returns the reason to end the session with, 0 when the quote was taken:
// a quote nobody asked for, or one that does not decode, is malformed.
func (g *Gateway) takeQuote(s *session, f []byte) core.Reason {
	a := s.attest
	if !a.pending.CompareAndSwap(true, false) {
		return proto.ReasonMalformed
	}
	q := new(proto.AttestQuote)
	if err := q.UnmarshalFrame(f); err != nil {
		return proto.ReasonOf(err)
	}
	a.quotes <- q // buffered, and only one challenge is ever outstanding
	return 0
}

// keepAttested is an attested session's keeper goroutine: it revalidates
// the attestation every Config.AttestCheck (revocation, policy change,
// expiry), and from its RenewAt sends a new challenge and verifies the
// answer. Any failure ends the session with its reason (the Attestor
// records tpm.attestation.failed or .ended; the session's end is recorded
// as gateway.session_closed). It never touches the order path.
func (g *Gateway) keepAttested(ctx context.Context, s *session) {
	defer g.wg.Done()
	a := s.attest
	pb := g.pubOf(s)
	check := time.NewTicker(g.cfg.AttestCheck)
	defer check.Stop()
	end := func(r core.Reason) {
		g.deps.Logger.Info("gateway: attested session ended", "port", s.port.String(), "key_id", s.keyID, "account", s.account,
			"device_id", a.id, "reason", proto.ReasonName(r))
		g.end(s, pb, r)
	}
	revalidate := func() bool {
		if err := g.deps.Attestor.Revalidate(ctx, a.att); err != nil {
			end(g.attestReason(err, a.id))
			return false
		}
		return true
	}
	send := func(frame []byte) bool {
		m := ctlMsg{op: opSend, s: s}
		m.n = uint8(copy(m.frame[:], frame))
		return pb.send(&m)
	}
	var buf []byte
	for {
		renew := time.NewTimer(max(a.att.RenewAt.Sub(g.cfg.Now()), 0))
		select {
		case <-a.stop:
			renew.Stop()
			return
		case <-ctx.Done():
			renew.Stop()
			return
		case <-check.C:
			renew.Stop()
			if !revalidate() {
				return
			}
			continue
		case <-renew.C:
		}
		ch, err := g.deps.Attestor.Challenge(ctx, a.id)
		if err != nil {
			end(g.attestReason(err, a.id))
			return
		}
		if buf, err = challengeFrame(buf[:0], &ch, a.wire); err != nil {
			end(g.attestReason(err, a.id))
			return
		}
		a.pending.Store(true)
		if !send(buf) {
			end(proto.ReasonShutdown)
			return
		}
		by := ch.Expires
		if a.att.Expires.Before(by) {
			by = a.att.Expires
		}
		timeout := time.NewTimer(max(by.Sub(g.cfg.Now()), 0))
		var q *proto.AttestQuote
	wait:
		for {
			select {
			case <-a.stop:
				timeout.Stop()
				return
			case <-ctx.Done():
				timeout.Stop()
				return
			case <-check.C:
				if !revalidate() {
					timeout.Stop()
					return
				}
			case <-timeout.C:
				end(proto.ReasonAttestTimeout)
				return
			case q = <-a.quotes:
				timeout.Stop()
				break wait
			}
		}
		if q.DeviceID != a.wire {
			end(proto.ReasonDeviceNotAllowed)
			return
		}
		att, err := g.deps.Attestor.Verify(ctx, quoteResponse(q, a.id))
		if err != nil {
			end(g.attestReason(err, a.id))
			return
		}
		a.att = att
		buf = a.acceptedFrame(buf[:0])
		if !send(buf) {
			end(proto.ReasonShutdown)
			return
		}
	}
}
