// Package hsmsign adapts tradecore's HSM signing service (hsm.Signer:
// *hsm.Service in-process, remote.Client over a unix socket) to the audit
// log's audit.Signer, so checkpoints and daily reports are signed in the HSM.
// It is a separate package because hsm needs cgo (PKCS#11) while audit and
// the auditors' verifier are pure Go.
package hsmsign

import (
	"context"
	"time"

	"github.com/tradecore/tradecore/audit"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
)

// Signer is an audit.Signer over an hsm.Signer.
type Signer struct{ s hsm.Signer }

var _ audit.Signer = (*Signer)(nil)

// New wraps s. When s is an *hsm.Service the result also implements
// audit.Rotator, so the log signs a handover checkpoint (old key, then new)
// before the key reaches its age.
func New(s hsm.Signer) audit.Signer {
	if svc, ok := s.(rotatingService); ok {
		return &Rotating{Signer: Signer{s}, svc: svc}
	}
	return &Signer{s}
}

// Sign implements audit.Signer.
func (s *Signer) Sign(ctx context.Context, msg []byte) (string, []byte, error) {
	sig, err := s.s.Sign(ctx, msg)
	if err != nil {
		return "", nil, err
	}
	return sig.KeyID, sig.Sig, nil
}

// Manifest implements audit.Signer.
func (s *Signer) Manifest(ctx context.Context) ([]byte, error) { return s.s.Manifest(ctx) }

type rotatingService interface {
	hsm.Signer
	Active() manifest.KeyState
	Rotate(ctx context.Context) (manifest.KeyState, error)
}

// Rotating is a Signer that also hands keys over (audit.Rotator).
type Rotating struct {
	Signer
	svc rotatingService
}

var _ audit.Rotator = (*Rotating)(nil)

// RotationDue implements audit.Rotator: the active key expires by now.
func (r *Rotating) RotationDue(now time.Time) bool { return !now.Before(r.svc.Active().Expires) }

// Rotate implements audit.Rotator.
func (r *Rotating) Rotate(ctx context.Context) error {
	_, err := r.svc.Rotate(ctx)
	return err
}
