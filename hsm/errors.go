package hsm

import (
	"errors"
	"fmt"
)

var (
	// ErrModuleMissing means the PKCS#11 module (shared library) could not be
	// loaded. Check Config.Module names an installed library (for SoftHSM2,
	// install softhsm2: scripts/deps.sh).
	ErrModuleMissing = errors.New("hsm: PKCS#11 module missing")
	// ErrTokenMissing means no token with Config.TokenLabel is present. Create
	// it (`tradecore keys init`) or fix the label; for SoftHSM also check
	// SOFTHSM2_CONF points at the right configuration.
	ErrTokenMissing = errors.New("hsm: token missing")
	// ErrWrongPIN means the token refused the user PIN (or the PIN is locked).
	// Fix the PIN file or environment variable; do not retry in a loop, tokens
	// lock the PIN after a few failures.
	ErrWrongPIN = errors.New("hsm: wrong PIN")
	// ErrPoolExhausted means every session of the bounded pool stayed busy for
	// Config.PoolWaitTimeout. Retry later, lower the load, or raise
	// Config.MaxSessions.
	ErrPoolExhausted = errors.New("hsm: session pool exhausted")
	// ErrKeyNotFound means no key with the id or label exists in the token.
	// Check the id against the key manifest; a shredded subject key is gone
	// for good.
	ErrKeyNotFound = errors.New("hsm: key not found")
	// ErrDuplicateLabel means a key with the label already exists in the token;
	// labels are unique. Choose another label.
	ErrDuplicateLabel = errors.New("hsm: duplicate key label")
	// ErrKeyRetired means a signature was requested from a key version that is
	// no longer active (rotated out, expired or revoked). Sign with the active
	// key; old versions only verify.
	ErrKeyRetired = errors.New("hsm: key version retired")
	// ErrClosed means the handle was used after its close function ran. Open a
	// new one.
	ErrClosed = errors.New("hsm: closed")
	// ErrBadCiphertext means a sealed value is malformed, was altered, or was
	// sealed for another data class or subject. Do not retry; treat the value
	// as corrupt.
	ErrBadCiphertext = errors.New("hsm: bad ciphertext")
	// ErrShredded means the subject's key was destroyed (crypto-shredding): the
	// subject's sealed values can never be opened again. Expected after an
	// erasure request.
	ErrShredded = errors.New("hsm: subject key destroyed")
	// ErrBusy means the key manifest kept changing while a signature waited
	// for a stable view of it (another process rotating or revoking keys in
	// a loop). Retry the signature.
	ErrBusy = errors.New("hsm: key manifest busy")
	// ErrNotInitialized means the key lifecycle has no manifest yet. Run
	// `tradecore keys init`.
	ErrNotInitialized = errors.New("hsm: keys not initialised")
	// ErrManifestMissing means the token holds signing keys but the key
	// manifest is gone, so starting a new one would silently make a new
	// root. Restore manifest.json (backup, auditor's copy, a running
	// signer), or deliberately start a new root (`tradecore keys init
	// --new-root`) and have every verifier re-pin.
	ErrManifestMissing = errors.New("hsm: key manifest missing")
	// ErrNotRecorded means a manifest entry is not (yet) in the audit log,
	// so the key it activates does not sign. Fix the audit log; the
	// service records pending entries at its next refresh.
	ErrNotRecorded = errors.New("hsm: manifest entry not recorded in the audit log")
	// ErrNoRecorder means an action that must be recorded in the audit log
	// (a crypto-shred) was asked of a Vault without a Recorder. Configure
	// VaultConfig.Recorder.
	ErrNoRecorder = errors.New("hsm: no audit recorder")
	// ErrAlreadyRevoked means the key is revoked already; nothing to do.
	ErrAlreadyRevoked = errors.New("hsm: key already revoked")
	// ErrUnsupported means the algorithm or option is not supported. Use one
	// of the listed algorithms.
	ErrUnsupported = errors.New("hsm: unsupported")
)

// P11Error is a PKCS#11 failure of one named operation. It never carries a
// PIN or key material.
type P11Error struct {
	Op  string // the PKCS#11 function, e.g. "C_Sign"
	Err error  // the underlying error (a pkcs11.Error for CKR_ codes)
}

func (e *P11Error) Error() string { return fmt.Sprintf("hsm: %s: %v", e.Op, e.Err) }

// Unwrap returns the underlying error.
func (e *P11Error) Unwrap() error { return e.Err }

func p11err(op string, err error) error {
	if err == nil {
		return nil
	}
	return &P11Error{Op: op, Err: err}
}
