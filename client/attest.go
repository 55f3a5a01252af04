package client

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tradecore/tradecore/proto"
	"github.com/tradecore/tradecore/tpm"
	"github.com/tradecore/tradecore/tpm/device"
)

// Device answers the server's attestation challenges with a TPM quote
// (docs/protocol.md, "Device attestation"). OpenDevice gives the TPM-backed
// one; Quote may be called from any goroutine.
type Device interface {
	// ID is the device id the venue enrolled (32 lowercase hex digits).
	ID() string
	// Quote answers a challenge (tpm/device's TPM.Quote with the AK).
	Quote(ch tpm.Challenge) (tpm.QuoteResponse, error)
}

// ErrAttest: the device could not answer a challenge (the TPM or the AK
// file failed); the server ends or refuses the session. Check the TPM path
// and the AK file (tcclient attest enroll/activate).
var ErrAttest = errors.New("client: device attestation failed")

// TPMDevice is a Device on a TPM: /dev/tpmrm0 or a swtpm socket, with the
// AK file `tcclient attest activate` installed.
type TPMDevice struct {
	mu  sync.Mutex // one TPM command sequence at a time
	t   *device.TPM
	key device.Key
	id  string
}

var _ Device = (*TPMDevice)(nil)

// OpenDevice opens the TPM at tpmPath (device.DefaultPath when empty) and
// loads the AK file keyFile. The device id comes from the AK file, or, in a
// file written before it kept one, from the TPM's EK. Close the TPM with
// the returned function after the client.
func OpenDevice(tpmPath, keyFile string) (*TPMDevice, func() error, error) {
	if tpmPath == "" {
		tpmPath = device.DefaultPath
	}
	k, err := device.LoadKey(keyFile)
	if err != nil {
		return nil, nil, err
	}
	t, closeTPM, err := device.Open(tpmPath)
	if err != nil {
		return nil, nil, err
	}
	id := k.DeviceID
	if id == "" {
		if id, err = t.DeviceID(); err != nil {
			closeTPM()
			return nil, nil, err
		}
	}
	if _, ok := proto.ParseDeviceID(id); !ok {
		closeTPM()
		return nil, nil, fmt.Errorf("client: AK file %s: device id %q is not 32 lowercase hex digits: activate again", keyFile, id)
	}
	return &TPMDevice{t: t, key: k, id: id}, closeTPM, nil
}

// ID implements Device.
func (d *TPMDevice) ID() string { return d.id }

// Quote implements Device.
func (d *TPMDevice) Quote(ch tpm.Challenge) (tpm.QuoteResponse, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.t.Quote(d.key, ch)
}

// Attestation is the session's attestation as the server last confirmed it
// (AttestAccepted).
type Attestation struct {
	DeviceID string
	Expires  time.Time // the attestation ends then unless renewed
	RenewAt  time.Time // the server challenges again from then
	Renewals int64     // challenges answered in this client's sessions after their logins
	// Err is the last failure to answer a challenge (nil: none).
	Err error
}

// Attestation returns the current attestation; the zero value without
// Config.Device or before the first AttestAccepted.
func (c *Client) Attestation() Attestation {
	c.amu.Lock()
	defer c.amu.Unlock()
	return c.att
}

func (c *Client) noteAccepted(m *proto.AttestAccepted) {
	c.amu.Lock()
	c.att.DeviceID = proto.DeviceIDString(m.DeviceID)
	c.att.Expires, c.att.RenewAt = time.Unix(0, m.Expires), time.Unix(0, m.RenewAt)
	c.amu.Unlock()
}

func (c *Client) noteAttestErr(err error) {
	c.amu.Lock()
	c.att.Err = err
	c.amu.Unlock()
}

// answer quotes a challenge frame with the device and encodes the
// AttestQuote.
func (c *Client) answer(ch *proto.AttestChallenge) (*proto.AttestQuote, error) {
	dev := c.cfg.Device
	want, _ := proto.ParseDeviceID(dev.ID())
	if ch.DeviceID != want {
		return nil, fmt.Errorf("%w: challenged device %s is not this device %s", ErrAttest, proto.DeviceIDString(ch.DeviceID), dev.ID())
	}
	pcrs, err := ch.PCRList()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAttest, err)
	}
	resp, err := dev.Quote(tpm.Challenge{Type: tpm.TypeChallenge, Version: tpm.Version, DeviceID: dev.ID(),
		Nonce: ch.Nonce[:], Expires: time.Unix(0, ch.Expires), Bank: tpm.Bank, PCRs: pcrs})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAttest, err)
	}
	q := &proto.AttestQuote{DeviceID: want, Nonce: ch.Nonce}
	if err := q.SetQuote(resp.Quote, resp.Signature); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAttest, err)
	}
	return q, nil
}

// attester answers in-session challenges off the receiving path: Recv
// hands each challenge over and goes on.
func (c *Client) attester() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case ch := <-c.challenges:
			q, err := c.answer(&ch)
			if err != nil {
				c.noteAttestErr(err)
				continue // the server ends the session when the challenge expires
			}
			if err := c.Send(q); err != nil {
				c.noteAttestErr(err)
				continue
			}
			c.amu.Lock()
			c.att.Renewals++
			c.amu.Unlock()
		}
	}
}
