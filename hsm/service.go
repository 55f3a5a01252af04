package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/internal/atomicfile"
)

// Lifecycle defaults.
const (
	DefaultMaxAge          = 90 * 24 * time.Hour // key rotation age
	DefaultCheckInterval   = time.Hour           // how often the service checks the age
	DefaultRefreshInterval = time.Second         // how often a running service re-reads the manifest in the background
	DefaultManifestName    = "tradecore"         // signed-note key name
	DefaultRetention       = 7 * 365 * 24 * time.Hour
	// ManifestFile is the manifest's name inside ServiceConfig.Dir.
	ManifestFile = "manifest.json"
	// LockFile serialises every change of the manifest across processes.
	LockFile = "manifest.lock"
	// AuditStateFile records which manifest entries are in the audit log.
	AuditStateFile = "audit-recorded.json"
)

// Audit record types written through ServiceConfig.Recorder, one per
// manifest entry (bodies: [KeyRecord]).
const (
	RecordKeysInit      = "keys.init"
	RecordKeysRotated   = "keys.rotated"
	RecordKeysRevoked   = "keys.revoked"
	RecordKeysDestroyed = "keys.destroyed"
)

// Recorder appends audit records (the audit log's Record method; see
// docs/keys.md for the record types and bodies).
type Recorder interface {
	Record(ctx context.Context, typ string, body any) (uint64, error)
}

// KeyRecord is the body of a keys.* audit record: one manifest entry,
// without key material (public keys are in the manifest, found by id).
type KeyRecord struct {
	FirstKeyID     string           `json:"first_key_id"`
	Seq            uint64           `json:"seq"`
	EntryHash      string           `json:"entry_hash"`
	Prev           string           `json:"prev"`
	Time           time.Time        `json:"time"`
	KeyID          string           `json:"key_id,omitempty"` // the key the entry activates
	Algorithm      Algorithm        `json:"algorithm,omitempty"`
	ActiveFrom     *time.Time       `json:"active_from,omitempty"`
	Expires        *time.Time       `json:"expires,omitempty"`
	Policy         *manifest.Policy `json:"policy,omitempty"`
	RevokedKeyID   string           `json:"revoked_key_id,omitempty"`
	RevokedAt      *time.Time       `json:"revoked_at,omitempty"`
	Reason         string           `json:"reason,omitempty"`
	DestroyedKeyID string           `json:"destroyed_key_id,omitempty"`
}

// Signature is a signature by the signing service and the key that made it.
type Signature struct {
	KeyID     string
	Algorithm Algorithm
	Sig       []byte // see manifest.SignMessage for the encoding
}

// Signer is the signing service's API. *Service implements it in-process;
// remote.Client implements it over a unix socket to `tradecore signer`, so
// the PKCS#11 session can live in another process. Declare narrower
// interfaces where you consume it.
type Signer interface {
	// Sign signs msg with the active key (rotating first when it is due).
	Sign(ctx context.Context, msg []byte) (Signature, error)
	// SignWith signs msg with key id, which must be the active key:
	// otherwise ErrKeyRetired (known but retired or revoked) or
	// ErrKeyNotFound.
	SignWith(ctx context.Context, keyID string, msg []byte) ([]byte, error)
	// Manifest returns the current key manifest (JSON).
	Manifest(ctx context.Context) ([]byte, error)
}

var _ Signer = (*Service)(nil)

// ServiceConfig configures the key lifecycle. Its zero value works except
// for Dir, which is required.
type ServiceConfig struct {
	// Dir holds manifest.json, its lock and the audit state (e.g.
	// <data-dir>/keys); created 0700.
	Dir string
	// Name is the manifest's signed-note key name; default "tradecore".
	Name string
	// Algorithm and MaxAge are the key policy written by Init (default
	// Ed25519, 90 days). Later rotations follow the policy in the manifest,
	// not these fields.
	Algorithm Algorithm
	MaxAge    time.Duration
	// NewRoot lets Init start a new manifest although the token holds
	// signing keys (the manifest was lost): their private objects are
	// destroyed first. Without it Init refuses with ErrManifestMissing.
	NewRoot bool
	// CheckInterval is how often the age is checked in the background; default
	// one hour; negative disables the background check (the age is still
	// checked at start and before each signature).
	CheckInterval time.Duration
	// RefreshInterval is how often a running service re-reads the manifest
	// in the background (besides the check before every signature); default
	// 1s; negative disables the background re-read (for one-shot CLI use).
	RefreshInterval time.Duration
	// Recorder receives one audit record per manifest entry. With one, the
	// active key signs only once the entry that activated it is recorded.
	// Without one (nil), entries stay pending, which NewService logs as a
	// warning; a later service with a Recorder records them.
	Recorder Recorder
	// Now is the clock; default time.Now. Tests inject a fake one.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

func (c ServiceConfig) withDefaults() (ServiceConfig, error) {
	if c.Dir == "" {
		return c, errors.New("hsm: ServiceConfig.Dir is empty: give the folder for manifest.json (e.g. <data-dir>/keys)")
	}
	if c.Name == "" {
		c.Name = DefaultManifestName
	}
	if c.Algorithm == "" {
		c.Algorithm = Ed25519
	}
	if c.Algorithm != Ed25519 && c.Algorithm != ECDSAP256 {
		return c, fmt.Errorf("hsm: ServiceConfig.Algorithm %q: use %q or %q", c.Algorithm, Ed25519, ECDSAP256)
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.MaxAge < time.Second || c.MaxAge%time.Second != 0 || c.MaxAge > manifest.MaxAgeSecondsLimit*time.Second {
		return c, fmt.Errorf("hsm: ServiceConfig.MaxAge %v: use whole seconds between 1s and 100 years (or 0 for 90 days)", c.MaxAge)
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

func (c ServiceConfig) policy() manifest.Policy {
	return manifest.Policy{Algorithm: c.Algorithm, MaxAgeSeconds: uint64(c.MaxAge / time.Second)}
}

// Service is the signing service and key lifecycle over one token: versions,
// automatic rotation at the policy's max age, manual rotation, revocation,
// destruction, and the manifest that records them.
//
// The manifest file is the one source of truth shared by every process:
// each change takes an exclusive lock (Dir/manifest.lock), re-reads the
// file, refuses one that does not extend what the process saw, appends
// entries and replaces the file atomically. Every signature first checks
// whether the file changed and re-reads it, so a key rotated or revoked by
// another process never signs here afterwards; a background re-read every
// RefreshInterval bounds the staleness of everything else. Retired and
// revoked private keys are destroyed in the token. Safe for concurrent use.
type Service struct {
	tok                       *Token
	cfg                       ServiceConfig
	path, lockPath, auditPath string

	mu       sync.RWMutex
	raw      []byte
	v        *manifest.Verified
	id       fileID
	active   *Key
	bad      error // the file on disk was refused: no signature until it is fixed
	recorded int64 // highest entry seq known to be in the audit log; -1 none

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func newServiceState(tok *Token, cfg ServiceConfig) *Service {
	return &Service{tok: tok, cfg: cfg, path: filepath.Join(cfg.Dir, ManifestFile), lockPath: filepath.Join(cfg.Dir, LockFile),
		auditPath: filepath.Join(cfg.Dir, AuditStateFile), recorded: -1}
}

// Init creates the first key and the manifest in cfg.Dir unless a manifest
// exists, and reports whether it created one. When there is no manifest but
// the token already holds signing keys, the manifest was lost: Init refuses
// with ErrManifestMissing (the error names the recovery steps) unless
// cfg.NewRoot. Init is what `tradecore keys init` runs.
func Init(ctx context.Context, tok *Token, cfg ServiceConfig) (created bool, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return false, fmt.Errorf("hsm: create keys dir: %w", err)
	}
	s := newServiceState(tok, cfg)
	unlock, err := lockFile(ctx, s.lockPath)
	if err != nil {
		return false, err
	}
	defer unlock()
	if _, err := os.Stat(s.path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("hsm: %w", err)
	}
	ids, err := tok.SigningKeyIDs(ctx)
	if err != nil {
		return false, err
	}
	if len(ids) > 0 {
		if !cfg.NewRoot {
			return false, fmt.Errorf("%w: %s is missing but token %q holds %d signing key(s) (first %s). Restore manifest.json "+
				"from a backup, from an auditor's copy or from a running signer ('tradecore keys export'); "+
				"'tradecore keys init --new-root' instead destroys those keys and starts a new root that every verifier must re-pin (docs/keys.md, \"Recovery\")",
				ErrManifestMissing, s.path, tok.Label(), len(ids), ids[0])
		}
		for _, id := range ids {
			if err := tok.DestroyPrivateKey(ctx, id); err != nil && !errors.Is(err, ErrKeyNotFound) {
				return false, err
			}
		}
		cfg.Logger.Warn("hsm: new root: destroyed the private keys of a lost manifest", "keys", len(ids))
	}
	s.v = nil
	k, err := s.newKey(ctx, cfg.Algorithm)
	if err != nil {
		return false, err
	}
	p := cfg.policy()
	if err := s.appendLocked(ctx, manifest.Entry{Event: manifest.EventInit, Policy: &p}, k); err != nil {
		return false, err
	}
	if cfg.Recorder != nil {
		if err := s.recordLocked(ctx); err != nil {
			return true, err
		}
	}
	return true, nil
}

// NewService loads the manifest from cfg.Dir (ErrNotInitialized when there is
// none), finds the active key in tok, finishes what an interrupted change
// left (destroys retired private keys), rotates the key if it is due, and
// starts the background checks. The close function stops them; it does not
// close tok, which the caller opened and closes after the service.
func NewService(ctx context.Context, tok *Token, cfg ServiceConfig) (*Service, func() error, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	s := newServiceState(tok, cfg)
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	if _, err := os.Stat(s.path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: no %s in %s", ErrNotInitialized, ManifestFile, cfg.Dir)
	}
	if err := s.change(ctx, func() error { return nil }); err != nil {
		return nil, nil, err
	}
	if cfg.Recorder == nil && (cfg.CheckInterval > 0 || cfg.RefreshInterval > 0) {
		cfg.Logger.Warn("hsm: no audit recorder: manifest entries are not recorded in the audit log here; a service with one records them", "entries", len(s.v.Manifest.Entries))
	}
	if _, err := s.CheckRotation(ctx); err != nil {
		return nil, nil, err
	}
	if cfg.CheckInterval > 0 || cfg.RefreshInterval > 0 {
		go s.loop()
	} else {
		close(s.done)
	}
	return s, s.close, nil
}

func (s *Service) close() error {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
	})
	return nil
}

func (s *Service) loop() {
	defer close(s.done)
	var check, refresh <-chan time.Time
	if s.cfg.CheckInterval > 0 {
		t := time.NewTicker(s.cfg.CheckInterval)
		defer t.Stop()
		check = t.C
	}
	if s.cfg.RefreshInterval > 0 {
		t := time.NewTicker(s.cfg.RefreshInterval)
		defer t.Stop()
		refresh = t.C
	}
	ctx := context.Background()
	for {
		select {
		case <-s.stop:
			return
		case <-check:
			if _, err := s.CheckRotation(ctx); err != nil {
				s.cfg.Logger.Error("hsm: scheduled key rotation failed", "err", err)
			}
		case <-refresh:
			if err := s.Refresh(ctx); err != nil {
				s.cfg.Logger.Error("hsm: manifest refresh failed; signing refused until it succeeds", "err", err)
			}
		}
	}
}

// Verified returns the verified manifest (do not modify it).
func (s *Service) Verified() *manifest.Verified {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.v
}

// Active returns the active key version.
func (s *Service) Active() manifest.KeyState {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return *s.v.Active()
}

// FirstKeyID is the id to pin for offline manifest verification.
func (s *Service) FirstKeyID() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.v.Keys[0].ID
}

// Manifest implements Signer: the manifest as this process last read it.
func (s *Service) Manifest(context.Context) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return bytes.Clone(s.raw), nil
}

// due reports whether the active key has reached its age at now.
func (s *Service) due(now time.Time) bool { return !now.Before(s.v.Active().Expires) }

// Refresh re-reads the manifest now if the file changed, and records pending
// entries when the service has a Recorder. Sign calls it; the background
// loop calls it every RefreshInterval.
func (s *Service) Refresh(ctx context.Context) error {
	id, err := statID(s.path)
	s.mu.RLock()
	same := err == nil && id == s.id && s.bad == nil
	pending := s.cfg.Recorder != nil && s.recorded < int64(len(s.v.Manifest.Entries))-1
	s.mu.RUnlock()
	if same && !pending {
		return nil
	}
	if pending {
		return s.change(ctx, func() error { return nil })
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked(ctx)
}

// loadLocked reads the manifest file and adopts it when it verifies against
// the first key this process knows and extends what it saw. Otherwise the
// service refuses to sign (s.bad) until a good file is back. s.mu held.
func (s *Service) loadLocked(ctx context.Context) error {
	id, _ := statID(s.path)
	raw, err := os.ReadFile(s.path)
	if err != nil {
		return s.refuse(fmt.Errorf("hsm: read manifest: %w (restore %s from a backup)", err, s.path))
	}
	if s.v != nil && bytes.Equal(raw, s.raw) {
		s.id, s.bad = id, nil
		return nil
	}
	pin := ""
	if s.v != nil {
		pin = s.v.Keys[0].ID
	} else if m, err := manifest.Parse(raw); err == nil && len(m.Entries) > 0 && m.Entries[0].Key != nil {
		pin = m.Entries[0].Key.ID
	}
	v, err := manifest.Verify(raw, pin)
	if err != nil {
		return s.refuse(fmt.Errorf("hsm: %s: %w", s.path, err))
	}
	if s.v != nil {
		if err := v.CheckFresh(s.v.Head()); err != nil {
			return s.refuse(fmt.Errorf("hsm: %s was replaced by an older or different manifest: %w", s.path, err))
		}
	}
	active := s.active
	if s.active == nil || s.active.id != v.Active().ID {
		if active, err = s.tok.FindKey(ctx, v.Active().ID); err != nil {
			return s.refuse(fmt.Errorf("hsm: active key %s: %w", v.Active().ID, err))
		}
	}
	if s.v != nil && s.v.Active().ID != v.Active().ID {
		s.cfg.Logger.Info("hsm: manifest changed by another process", "old_key_id", s.v.Active().ID, "key_id", v.Active().ID, "entries", len(v.Manifest.Entries))
	}
	s.raw, s.v, s.id, s.active, s.bad = raw, v, id, active, nil
	return nil
}

func (s *Service) refuse(err error) error {
	s.bad = err
	return err
}

// change runs f with the manifest lock held and the file freshly loaded,
// then destroys leftover private keys of retired versions and records
// pending entries. f appends entries with appendLocked.
func (s *Service) change(ctx context.Context, f func() error) error {
	unlock, err := lockFile(ctx, s.lockPath)
	if err != nil {
		return err
	}
	defer unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadLocked(ctx); err != nil {
		return err
	}
	if err := f(); err != nil {
		return err
	}
	if err := s.destroyRetiredLocked(ctx); err != nil {
		return err
	}
	if s.cfg.Recorder != nil {
		return s.recordLocked(ctx)
	}
	return nil
}

// destroyRetiredLocked destroys the private object of every key that is no
// longer active, and records each first destruction in the manifest. A key
// the manifest already records as destroyed but that is back in the token
// (a restored backup of tokens/) is destroyed again, without a new entry.
func (s *Service) destroyRetiredLocked(ctx context.Context) error {
	for i := 0; i < len(s.v.Keys)-1; i++ {
		k := s.v.Keys[i]
		err := s.tok.DestroyPrivateKey(ctx, k.ID)
		if err != nil && !errors.Is(err, ErrKeyNotFound) {
			return fmt.Errorf("hsm: destroy retired key %s: %w", k.ID, err)
		}
		if k.DestroyedSeq != 0 {
			if err == nil {
				s.cfg.Logger.Warn("hsm: a destroyed key was back in the token (restored backup?) and is destroyed again", "key_id", k.ID)
			}
			continue
		}
		if err := s.appendLocked(ctx, manifest.Entry{Event: manifest.EventDestroy, Destroyed: &manifest.Destruction{KeyID: k.ID}}, nil); err != nil {
			return err
		}
	}
	return nil
}

// newKey generates a key of alg in the token under a fresh unique label.
func (s *Service) newKey(ctx context.Context, alg Algorithm) (*Key, error) {
	now := s.cfg.Now().UTC()
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, err
	}
	label := fmt.Sprintf("%s-sign-%s-%s", s.cfg.Name, now.Format("20060102T150405Z"), hex.EncodeToString(rnd[:]))
	return s.tok.GenerateKey(ctx, label, alg)
}

// appendLocked completes e (seq, time, prev, the new key k when not nil),
// signs it with the active key and k, verifies the result, writes the
// manifest and adopts it. On failure before the write, k is destroyed.
// Callers hold the lock and s.mu, with the file freshly loaded.
func (s *Service) appendLocked(ctx context.Context, e manifest.Entry, k *Key) (err error) {
	defer func() {
		if err != nil && k != nil {
			_ = s.tok.DestroyKey(ctx, k.id)
		}
	}()
	now := s.cfg.Now().UTC()
	next := manifest.Manifest{Format: manifest.Format, Name: s.cfg.Name}
	policy := s.cfg.policy()
	if s.v != nil {
		next = s.v.Manifest
		next.Entries = append([]manifest.Entry(nil), s.v.Manifest.Entries...)
		policy = s.v.Policy
		if last := next.Entries[len(next.Entries)-1].Time; now.Before(last) {
			now = last // entry times never go backwards, even if the clock does
		}
	}
	if e.Policy != nil {
		policy = *e.Policy
	}
	e.Seq, e.Time = uint64(len(next.Entries)), now
	if e.Seq > 0 {
		e.Prev = s.v.EntryHash(int(e.Seq) - 1)
	}
	var signers []*Key
	if s.active != nil {
		signers = append(signers, s.active)
	}
	if k != nil {
		if k.alg != policy.Algorithm {
			return fmt.Errorf("hsm: new key is %s, the policy says %s", k.alg, policy.Algorithm)
		}
		mk, err := manifest.NewKey(next.Name, k.label, k.Public(), now, now, now.Add(policy.MaxAge()))
		if err != nil {
			return err
		}
		e.Key = &mk
		signers = append(signers, k)
	}
	input := manifest.SigningInput(next.Name, &e)
	for _, sk := range signers {
		sig, err := manifest.SignMessage(ctxSigner{ctx, sk}, input)
		if err != nil {
			return fmt.Errorf("hsm: sign manifest entry with %s: %w", sk.id, err)
		}
		e.Signatures = append(e.Signatures, manifest.Signature{KeyID: sk.id, Sig: sig})
	}
	next.Entries = append(next.Entries, e)
	data, err := manifest.Marshal(&next)
	if err != nil {
		return err
	}
	v, err := manifest.Verify(data, next.Entries[0].Key.ID)
	if err != nil {
		return fmt.Errorf("hsm: new manifest does not verify: %w", err)
	}
	if err := atomicfile.WriteFile(s.path, data, 0o644); err != nil {
		return fmt.Errorf("hsm: manifest: %w", err)
	}
	id, _ := statID(s.path)
	s.raw, s.v, s.id, s.bad = data, v, id, nil
	if k != nil {
		s.active = k
	}
	return nil
}

// auditState is the content of AuditStateFile.
type auditState struct {
	Seq       uint64 `json:"seq"`
	EntryHash string `json:"entry_hash"`
}

// recordLocked records every entry after the last recorded one.
func (s *Service) recordLocked(ctx context.Context) error {
	s.recorded = -1
	if b, err := os.ReadFile(s.auditPath); err == nil {
		var st auditState
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("hsm: %s is corrupt: %w (compare the manifest with the audit log's keys.* records, then fix or remove it)", s.auditPath, err)
		}
		if st.Seq >= uint64(len(s.v.Manifest.Entries)) || s.v.EntryHash(int(st.Seq)) != st.EntryHash {
			return s.refuse(fmt.Errorf("hsm: the audit log recorded manifest entry %d as %s, which this manifest does not contain: "+
				"the manifest was replaced (restore the newest one; see docs/keys.md, \"Recovery\")", st.Seq, st.EntryHash))
		}
		s.recorded = int64(st.Seq)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hsm: read %s: %w", s.auditPath, err)
	}
	for i := s.recorded + 1; i < int64(len(s.v.Manifest.Entries)); i++ {
		typ, body := s.record(int(i))
		if _, err := s.cfg.Recorder.Record(ctx, typ, body); err != nil {
			return fmt.Errorf("%w: manifest entry %d (%s) is written but not in the audit log: %w; it is recorded at the next refresh, and the key it activates does not sign until then",
				ErrNotRecorded, i, typ, err)
		}
		b, _ := json.Marshal(auditState{Seq: uint64(i), EntryHash: s.v.EntryHash(int(i))})
		if err := atomicfile.WriteFile(s.auditPath, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("hsm: audit state: %w", err)
		}
		s.recorded = i
	}
	return nil
}

// record builds the audit record of entry i.
func (s *Service) record(i int) (string, KeyRecord) {
	e := &s.v.Manifest.Entries[i]
	r := KeyRecord{FirstKeyID: s.v.Keys[0].ID, Seq: e.Seq, EntryHash: s.v.EntryHash(i), Prev: e.Prev, Time: e.Time, Policy: e.Policy}
	if k := e.Key; k != nil {
		af, ex := k.ActiveFrom, k.Expires
		r.KeyID, r.Algorithm, r.ActiveFrom, r.Expires = k.ID, k.Algorithm, &af, &ex
	}
	if rv := e.Revoked; rv != nil {
		at := rv.At
		r.RevokedKeyID, r.RevokedAt, r.Reason = rv.KeyID, &at, rv.Reason
	}
	if d := e.Destroyed; d != nil {
		r.DestroyedKeyID = d.KeyID
	}
	typ := map[manifest.Event]string{manifest.EventInit: RecordKeysInit, manifest.EventRotate: RecordKeysRotated,
		manifest.EventRevoke: RecordKeysRevoked, manifest.EventDestroy: RecordKeysDestroyed}[e.Event]
	return typ, r
}

// signable returns the active key if it may sign now. s.mu held (read).
func (s *Service) signable() (*Key, error) {
	if s.bad != nil {
		return nil, fmt.Errorf("hsm: signing refused: %w", s.bad)
	}
	a := s.v.Active()
	if s.cfg.Recorder != nil && int64(a.ActivatedSeq) > s.recorded {
		return nil, fmt.Errorf("%w: manifest entry %d activating key %s is not in the audit log yet; signing refused until it is", ErrNotRecorded, a.ActivatedSeq, a.ID)
	}
	if s.active == nil || s.active.id != a.ID {
		return nil, fmt.Errorf("hsm: active key %s not loaded", a.ID)
	}
	return s.active, nil
}

// Sign implements Signer. It first re-reads the manifest if the file
// changed, so a key retired or revoked by any process never signs after the
// change is written.
func (s *Service) Sign(ctx context.Context, msg []byte) (Signature, error) {
	for attempt := 0; ; attempt++ {
		if err := s.Refresh(ctx); err != nil {
			return Signature{}, err
		}
		s.mu.RLock()
		due := s.due(s.cfg.Now())
		s.mu.RUnlock()
		if due {
			if _, err := s.CheckRotation(ctx); err != nil {
				return Signature{}, err
			}
		}
		// Holding the read lock while signing means a change in this process
		// (write lock) waits for in-flight signatures.
		s.mu.RLock()
		k, err := s.signable()
		if err != nil {
			s.mu.RUnlock()
			return Signature{}, err
		}
		sig, err := manifest.SignMessage(ctxSigner{ctx, k}, msg)
		s.mu.RUnlock()
		if err != nil && attempt == 0 && keyGone(err) {
			// Another process retired the key and destroyed its private object
			// between our check and C_Sign: re-read and sign with the new key.
			s.forceReload(ctx)
			continue
		}
		if err != nil {
			return Signature{}, err
		}
		return Signature{KeyID: k.id, Algorithm: k.alg, Sig: sig}, nil
	}
}

func (s *Service) forceReload(ctx context.Context) {
	s.mu.Lock()
	s.id = fileID{}
	_ = s.loadLocked(ctx)
	s.mu.Unlock()
}

func keyGone(err error) bool {
	return isCKR(err, pkcs11.CKR_OBJECT_HANDLE_INVALID) || isCKR(err, pkcs11.CKR_KEY_HANDLE_INVALID)
}

// SignWith implements Signer: only the active key signs.
func (s *Service) SignWith(ctx context.Context, keyID string, msg []byte) ([]byte, error) {
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	a := s.v.Active()
	if keyID != a.ID {
		if s.v.Key(keyID) != nil {
			return nil, fmt.Errorf("%w: %s", ErrKeyRetired, keyID)
		}
		return nil, fmt.Errorf("%w: %s is not in the manifest", ErrKeyNotFound, keyID)
	}
	if s.due(s.cfg.Now()) {
		return nil, fmt.Errorf("%w: %s reached its age; sign with the new active key", ErrKeyRetired, keyID)
	}
	k, err := s.signable()
	if err != nil {
		return nil, err
	}
	return manifest.SignMessage(ctxSigner{ctx, k}, msg)
}

// CheckRotation rotates the active key when the clock has reached its
// expiry (active_from + the policy's max age): not at expiry-1ns, exactly
// at expiry. A rotation another process already made is adopted instead.
func (s *Service) CheckRotation(ctx context.Context) (bool, error) {
	s.mu.RLock()
	due := s.due(s.cfg.Now())
	s.mu.RUnlock()
	if !due {
		return false, nil
	}
	rotated := false
	err := s.change(ctx, func() error {
		if !s.due(s.cfg.Now()) {
			return nil // rotated elsewhere meanwhile
		}
		old := s.active.id
		if err := s.rotateLocked(ctx, nil); err != nil {
			return err
		}
		rotated = true
		s.cfg.Logger.Info("hsm: key rotated at its age", "old_key_id", old, "key_id", s.active.id)
		return nil
	})
	return rotated, err
}

func (s *Service) rotateLocked(ctx context.Context, p *manifest.Policy) error {
	alg := s.v.Policy.Algorithm
	if p != nil {
		alg = p.Algorithm
	}
	k, err := s.newKey(ctx, alg)
	if err != nil {
		return err
	}
	return s.appendLocked(ctx, manifest.Entry{Event: manifest.EventRotate, Policy: p}, k)
}

// Rotate activates a new key now (manual rotation) under the manifest's
// policy, and destroys the old key's private object.
func (s *Service) Rotate(ctx context.Context) (manifest.KeyState, error) {
	return s.rotate(ctx, nil)
}

// RotateToPolicy changes the key policy (algorithm, max age) and activates
// a key that follows it.
func (s *Service) RotateToPolicy(ctx context.Context, p manifest.Policy) (manifest.KeyState, error) {
	if p.Algorithm != Ed25519 && p.Algorithm != ECDSAP256 {
		return manifest.KeyState{}, fmt.Errorf("%w: algorithm %q (use %q or %q)", ErrUnsupported, p.Algorithm, Ed25519, ECDSAP256)
	}
	if p.MaxAgeSeconds == 0 || p.MaxAgeSeconds > manifest.MaxAgeSecondsLimit {
		return manifest.KeyState{}, fmt.Errorf("hsm: policy max age %ds: use 1s to 100 years", p.MaxAgeSeconds)
	}
	return s.rotate(ctx, &p)
}

func (s *Service) rotate(ctx context.Context, p *manifest.Policy) (manifest.KeyState, error) {
	var k manifest.KeyState
	err := s.change(ctx, func() error {
		old := s.active.id
		if err := s.rotateLocked(ctx, p); err != nil {
			return err
		}
		k = *s.v.Active()
		s.cfg.Logger.Info("hsm: key rotated manually", "old_key_id", old, "key_id", k.ID)
		return nil
	})
	if err != nil && k.ID == "" {
		return manifest.KeyState{}, err
	}
	return k, err
}

// Revoke records that key id is compromised from at (zero: now) for reason
// and destroys its private object. When id is the active key a new key is
// activated in the same entry; revoking a retired key leaves the active key
// alone. at must not be in the future. It returns the active key.
func (s *Service) Revoke(ctx context.Context, id string, at time.Time, reason string) (manifest.KeyState, error) {
	if reason == "" || len(reason) > manifest.MaxReasonLen {
		return manifest.KeyState{}, fmt.Errorf("hsm: Revoke: the reason must be 1..%d bytes", manifest.MaxReasonLen)
	}
	var active manifest.KeyState
	err := s.change(ctx, func() error {
		now := s.cfg.Now().UTC()
		if at.IsZero() {
			at = now
		}
		if last := s.v.Manifest.Entries[len(s.v.Manifest.Entries)-1].Time; now.Before(last) {
			now = last
		}
		if at.After(now) {
			return fmt.Errorf("hsm: Revoke: time %v is in the future", at)
		}
		ks := s.v.Key(id)
		if ks == nil {
			return fmt.Errorf("%w: %s is not in the manifest", ErrKeyNotFound, id)
		}
		if !ks.RevokedAt.IsZero() {
			return fmt.Errorf("%w: %s (at %s: %s)", ErrAlreadyRevoked, id, ks.RevokedAt.Format(time.RFC3339), ks.RevokeReason)
		}
		e := manifest.Entry{Event: manifest.EventRevoke, Revoked: &manifest.Revocation{KeyID: id, At: at.UTC(), Reason: reason}}
		var k *Key
		if id == s.v.Active().ID {
			var err error
			if k, err = s.newKey(ctx, s.v.Policy.Algorithm); err != nil {
				return err
			}
		}
		if err := s.appendLocked(ctx, e, k); err != nil {
			return err
		}
		active = *s.v.Active()
		s.cfg.Logger.Warn("hsm: key revoked", "key_id", id, "active_key_id", active.ID)
		return nil
	})
	if err != nil && active.ID == "" {
		return manifest.KeyState{}, err
	}
	return active, err
}

// ctxSigner passes a context to Key.SignContext through crypto.Signer.
type ctxSigner struct {
	ctx context.Context
	k   *Key
}

func (c ctxSigner) Public() crypto.PublicKey { return c.k.pub }
func (c ctxSigner) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	return c.k.SignContext(c.ctx, msg, opts)
}
