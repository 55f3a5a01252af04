package tpm

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tradecore/tradecore/internal/atomicfile"
)

// Layout of the state folder (Config.Dir, by default <data-dir>/tpm):
//
//	lock                 flock(2)ed around every read-modify-write
//	devices/<id>.json    one device: EK, AK, state, nonces, counters
//	policies/<name>.json one PCR policy (the file form of ParsePolicy)
//
// Every operation takes the lock and re-reads the files it needs, so a
// daemon and a CLI on the same folder see one state; every write goes to a
// temporary file that is fsynced and renamed over the old one.
const (
	lockFile    = "lock"
	devicesDir  = "devices"
	policiesDir = "policies"
)

// Device states.
const (
	StateActivating = "activating" // credential issued, activation pending (never approved)
	StateEnrolled   = "enrolled"   // AK proven; waiting for an operator's approval
	StateApproved   = "approved"   // may attest
	StateRevoked    = "revoked"    // permanently refused
)

type store struct {
	dir  string
	mu   sync.Mutex // flock does not exclude goroutines sharing one descriptor
	lock *os.File
}

func openStore(dir string) (*store, error) {
	for _, d := range []string{dir, filepath.Join(dir, devicesDir), filepath.Join(dir, policiesDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("tpm: state folder: %w (check Config.Dir / --data-dir is writable)", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("tpm: state lock: %w", err)
	}
	return &store{dir: dir, lock: f}, nil
}

func (s *store) close() error { return s.lock.Close() }

// do runs fn holding the process mutex and the folder's exclusive flock.
func (s *store) do(fn func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		err := unix.Flock(int(s.lock.Fd()), unix.LOCK_EX)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("tpm: lock %s: %w", s.lock.Name(), err)
		}
	}
	defer unix.Flock(int(s.lock.Fd()), unix.LOCK_UN)
	return fn()
}

// nonceRecord is one issued challenge nonce.
type nonceRecord struct {
	Nonce   []byte    `json:"nonce"`
	Expires time.Time `json:"expires"`
	Used    bool      `json:"used,omitempty"`
}

// pendingActivation is an enrolment waiting for its activation proof.
type pendingActivation struct {
	AKPublic   []byte    `json:"ak_public"`
	SecretHash []byte    `json:"secret_sha256"`
	Nonce      []byte    `json:"nonce"`
	PCRs       []int     `json:"pcrs"`
	Expires    time.Time `json:"expires"`
}

// Snapshot is the PCR state a device quoted at enrolment: values it read,
// proven consistent with the digest its TPM signed with the new AK. An
// operator may pin (a subset of) it as the device's golden values.
type Snapshot struct {
	PCRs   []PCRValue `json:"pcrs"`
	Digest []byte     `json:"digest"`
	At     time.Time  `json:"at"`
}

// deviceRecord is a device's file (devices/<id>.json).
type deviceRecord struct {
	Version      int                `json:"version"`
	ID           string             `json:"id"`
	State        string             `json:"state"`
	EKCert       []byte             `json:"ek_cert"`
	EKPublic     []byte             `json:"ek_public"`
	EKIssuer     string             `json:"ek_issuer"`
	AKPublic     []byte             `json:"ak_public,omitempty"`
	AKQualified  []byte             `json:"ak_qualified_name,omitempty"`
	Policy       string             `json:"policy,omitempty"`
	EnrolledAt   time.Time          `json:"enrolled_at,omitzero"`
	ApprovedAt   time.Time          `json:"approved_at,omitzero"`
	RevokedAt    time.Time          `json:"revoked_at,omitzero"`
	RevokeReason string             `json:"revoke_reason,omitempty"`
	Snapshot     *Snapshot          `json:"snapshot,omitempty"`
	CountersSeen bool               `json:"counters_seen,omitempty"`
	ResetCount   uint32             `json:"reset_count"`
	RestartCount uint32             `json:"restart_count"`
	AttestedAt   time.Time          `json:"attested_at,omitzero"`
	Pending      *pendingActivation `json:"pending,omitempty"`
	Nonces       []nonceRecord      `json:"nonces,omitempty"`
}

func (s *store) devicePath(id string) string {
	return filepath.Join(s.dir, devicesDir, id+".json")
}

// loadDevice returns the device's record, or nil when none exists.
func (s *store) loadDevice(id string) (*deviceRecord, error) {
	if !validDeviceID(id) {
		return nil, nil
	}
	b, err := os.ReadFile(s.devicePath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tpm: read device %s: %w", id, err)
	}
	return decodeDevice(b, s.devicePath(id))
}

// decodeDevice parses a device file and checks its invariants.
func decodeDevice(b []byte, path string) (*deviceRecord, error) {
	var d deviceRecord
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrState, path, err)
	}
	if d.Version != 1 || !validDeviceID(d.ID) || !strings.HasSuffix(path, d.ID+".json") {
		return nil, fmt.Errorf("%w: %s: wrong version or device id", ErrState, path)
	}
	switch d.State {
	case StateActivating, StateEnrolled, StateApproved, StateRevoked:
	default:
		return nil, fmt.Errorf("%w: %s: unknown state %q", ErrState, path, truncate(d.State, 16))
	}
	if d.State != StateActivating && d.State != StateRevoked && (len(d.AKPublic) == 0 || len(d.AKQualified) == 0) {
		return nil, fmt.Errorf("%w: %s: %s device without an AK", ErrState, path, d.State)
	}
	if d.State == StateApproved && d.Policy == "" {
		return nil, fmt.Errorf("%w: %s: approved device without a policy", ErrState, path)
	}
	return &d, nil
}

func (s *store) saveDevice(d *deviceRecord) error {
	d.Version = 1
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.devicePath(d.ID), append(b, '\n'), 0o600)
}

func (s *store) listDevices() ([]*deviceRecord, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, devicesDir))
	if err != nil {
		return nil, fmt.Errorf("tpm: list devices: %w", err)
	}
	var out []*deviceRecord
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || !validDeviceID(id) {
			continue
		}
		d, err := s.loadDevice(id)
		if err != nil {
			return nil, err
		}
		if d != nil {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *store) policyPath(name string) string {
	return filepath.Join(s.dir, policiesDir, name+".json")
}

// loadPolicy returns the named policy, or nil when none exists.
func (s *store) loadPolicy(name string) (*Policy, error) {
	if !policyNameRE.MatchString(name) {
		return nil, nil
	}
	b, err := os.ReadFile(s.policyPath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tpm: read policy %s: %w", name, err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrState, s.policyPath(name), err)
	}
	if p.Name != name {
		return nil, fmt.Errorf("%w: %s names policy %q", ErrState, s.policyPath(name), p.Name)
	}
	return &p, nil
}

func (s *store) savePolicy(p Policy) error {
	b, err := p.Encode()
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.policyPath(p.Name), b, 0o600)
}

func (s *store) listPolicies() ([]Policy, error) {
	entries, err := os.ReadDir(filepath.Join(s.dir, policiesDir))
	if err != nil {
		return nil, fmt.Errorf("tpm: list policies: %w", err)
	}
	var out []Policy
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		p, err := s.loadPolicy(name)
		if err != nil {
			return nil, err
		}
		if p != nil {
			out = append(out, *p)
		}
	}
	return out, nil
}
