package hsm

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tradecore/tradecore/hsm/manifest"
)

// Lifecycle defaults.
const (
	DefaultMaxAge        = 90 * 24 * time.Hour // key rotation age
	DefaultCheckInterval = time.Hour           // how often the service checks the age
	DefaultManifestName  = "tradecore"         // signed-note key name
	DefaultRetention     = 7 * 365 * 24 * time.Hour
	// ManifestFile is the manifest's name inside ServiceConfig.Dir.
	ManifestFile = "manifest.json"
)

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
	// Dir holds manifest.json (e.g. <data-dir>/keys); created 0700.
	Dir string
	// Name is the manifest's signed-note key name; default "tradecore".
	Name string
	// Algorithm of new keys; default Ed25519.
	Algorithm Algorithm
	// MaxAge is how long a key signs before it is rotated; default 90 days.
	MaxAge time.Duration
	// CheckInterval is how often the age is checked in the background; default
	// one hour; negative disables the background check (CheckRotation still
	// runs at start and before each signature).
	CheckInterval time.Duration
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
	if c.MaxAge < 0 {
		return c, errors.New("hsm: ServiceConfig.MaxAge is negative: use a positive duration (or 0 for 90 days)")
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = DefaultCheckInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Service is the signing service and key lifecycle over one token: versions,
// automatic rotation at MaxAge, manual rotation, revocation, and the manifest
// that records them (written atomically to Dir/manifest.json). Retired key
// versions never sign again. Safe for concurrent use.
type Service struct {
	tok  *Token
	cfg  ServiceConfig
	path string

	mu     sync.RWMutex
	m      *manifest.Manifest
	v      *manifest.Verified
	active *Key

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// Init creates the first key and the manifest in cfg.Dir unless a manifest
// exists. It reports whether it created one. Init is what `tradecore keys
// init` runs.
func Init(ctx context.Context, tok *Token, cfg ServiceConfig) (created bool, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return false, err
	}
	path := filepath.Join(cfg.Dir, ManifestFile)
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("hsm: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return false, fmt.Errorf("hsm: create keys dir: %w", err)
	}
	s := &Service{tok: tok, cfg: cfg, path: path, m: &manifest.Manifest{Format: manifest.Format, Name: cfg.Name}}
	if _, err := s.appendKey(ctx, manifest.EventInit, nil); err != nil {
		return false, err
	}
	return true, nil
}

// NewService loads the manifest from cfg.Dir (ErrNotInitialized when there is
// none), finds the active key in tok, rotates it if it is due, and starts
// the background age check. The close function stops the check; it does not
// close tok, which the caller opened and closes after the service.
func NewService(ctx context.Context, tok *Token, cfg ServiceConfig) (*Service, func() error, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	s := &Service{tok: tok, cfg: cfg, path: filepath.Join(cfg.Dir, ManifestFile), stop: make(chan struct{}), done: make(chan struct{})}
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: no %s in %s", ErrNotInitialized, ManifestFile, cfg.Dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("hsm: read manifest: %w", err)
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	if len(m.Entries) == 0 {
		return nil, nil, fmt.Errorf("%w: empty manifest", manifest.ErrInvalid)
	}
	v, err := manifest.VerifyManifest(m, m.Entries[0].Key.ID)
	if err != nil {
		return nil, nil, err
	}
	s.m, s.v = m, v
	if s.active, err = tok.FindKey(ctx, v.Active().ID); err != nil {
		return nil, nil, fmt.Errorf("hsm: active key %s: %w", v.Active().ID, err)
	}
	if _, err := s.CheckRotation(ctx); err != nil {
		return nil, nil, err
	}
	if cfg.CheckInterval > 0 {
		go s.loop(cfg.CheckInterval)
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

func (s *Service) loop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if _, err := s.CheckRotation(context.Background()); err != nil {
				s.cfg.Logger.Error("hsm: scheduled key rotation failed", "err", err)
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
	return s.m.Entries[0].Key.ID
}

// Manifest implements Signer.
func (s *Service) Manifest(context.Context) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return manifest.Marshal(s.m)
}

// due reports whether the active key has reached its age at now.
func (s *Service) due(now time.Time) bool { return !now.Before(s.v.Active().Expires) }

// Sign implements Signer.
func (s *Service) Sign(ctx context.Context, msg []byte) (Signature, error) {
	s.mu.RLock()
	if s.due(s.cfg.Now()) {
		s.mu.RUnlock()
		if _, err := s.CheckRotation(ctx); err != nil {
			return Signature{}, err
		}
		s.mu.RLock()
	}
	// Holding the read lock while signing means a rotation (write lock) waits
	// for in-flight signatures: a retired version never signs after it.
	k := s.active
	sig, err := manifest.SignMessage(ctxSigner{ctx, k}, msg)
	s.mu.RUnlock()
	if err != nil {
		return Signature{}, err
	}
	return Signature{KeyID: k.id, Algorithm: k.alg, Sig: sig}, nil
}

// SignWith implements Signer: only the active key signs.
func (s *Service) SignWith(ctx context.Context, keyID string, msg []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, v, now := s.active, s.v, s.cfg.Now()
	if keyID != k.id {
		if v.Key(keyID) != nil {
			return nil, fmt.Errorf("%w: %s", ErrKeyRetired, keyID)
		}
		return nil, fmt.Errorf("%w: %s is not in the manifest", ErrKeyNotFound, keyID)
	}
	if s.due(now) {
		return nil, fmt.Errorf("%w: %s reached its age; sign with the new active key", ErrKeyRetired, keyID)
	}
	return manifest.SignMessage(ctxSigner{ctx, k}, msg)
}

// CheckRotation rotates the active key when the clock has reached its
// expiry (created + MaxAge): not at expiry-1ns, exactly at expiry.
func (s *Service) CheckRotation(ctx context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.due(s.cfg.Now()) {
		return false, nil
	}
	old := s.active.id
	if _, err := s.appendKey(ctx, manifest.EventRotate, nil); err != nil {
		return false, err
	}
	s.cfg.Logger.Info("hsm: key rotated at its age", "old_key_id", old, "key_id", s.active.id)
	return true, nil
}

// Rotate activates a new key now (manual rotation).
func (s *Service) Rotate(ctx context.Context) (manifest.KeyState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.active.id
	k, err := s.appendKey(ctx, manifest.EventRotate, nil)
	if err != nil {
		return manifest.KeyState{}, err
	}
	s.cfg.Logger.Info("hsm: key rotated manually", "old_key_id", old, "key_id", k.ID)
	return k, nil
}

// Revoke records that key id is compromised from at (zero: now) for reason,
// and activates a new key. at must not be in the future.
func (s *Service) Revoke(ctx context.Context, id string, at time.Time, reason string) (manifest.KeyState, error) {
	if reason == "" {
		return manifest.KeyState{}, errors.New("hsm: Revoke: empty reason")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now().UTC()
	if at.IsZero() {
		at = now
	}
	if at.After(now) {
		return manifest.KeyState{}, fmt.Errorf("hsm: Revoke: time %v is in the future", at)
	}
	ks := s.v.Key(id)
	if ks == nil {
		return manifest.KeyState{}, fmt.Errorf("%w: %s is not in the manifest", ErrKeyNotFound, id)
	}
	if !ks.RevokedAt.IsZero() {
		return manifest.KeyState{}, fmt.Errorf("hsm: Revoke: %s already revoked", id)
	}
	k, err := s.appendKey(ctx, manifest.EventRevoke, &manifest.Revocation{KeyID: id, At: at.UTC(), Reason: reason})
	if err != nil {
		return manifest.KeyState{}, err
	}
	s.cfg.Logger.Warn("hsm: key revoked", "key_id", id, "reason", reason, "new_key_id", k.ID)
	return k, nil
}

// appendKey generates a key, appends the entry that activates it, signs it
// (previous key, then the new key), writes the manifest and switches the
// active key. Callers hold s.mu (or own s exclusively).
func (s *Service) appendKey(ctx context.Context, ev manifest.Event, rev *manifest.Revocation) (manifest.KeyState, error) {
	now := s.cfg.Now().UTC()
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return manifest.KeyState{}, err
	}
	label := fmt.Sprintf("%s-sign-%s-%s", s.cfg.Name, now.Format("20060102T150405Z"), hex.EncodeToString(rnd[:]))
	k, err := s.tok.GenerateKey(ctx, label, s.cfg.Algorithm)
	if err != nil {
		return manifest.KeyState{}, err
	}
	mk, err := manifest.NewKey(s.m.Name, label, k.Public(), now, now, now.Add(s.cfg.MaxAge))
	if err != nil {
		return manifest.KeyState{}, err
	}
	next := *s.m
	next.Entries = append(append([]manifest.Entry(nil), s.m.Entries...), manifest.Entry{
		Seq: uint64(len(s.m.Entries)), Event: ev, Time: now, Key: mk, Revoked: rev,
	})
	e := &next.Entries[len(next.Entries)-1]
	if e.Seq > 0 {
		e.Prev = manifest.EntryHash(&next.Entries[e.Seq-1])
	}
	input := manifest.SigningInput(next.Name, e)
	signers := []*Key{k}
	if s.active != nil {
		signers = []*Key{s.active, k}
	}
	for _, sk := range signers {
		sig, err := manifest.SignMessage(ctxSigner{ctx, sk}, input)
		if err != nil {
			return manifest.KeyState{}, fmt.Errorf("hsm: sign manifest entry: %w", err)
		}
		e.Signatures = append(e.Signatures, manifest.Signature{KeyID: sk.id, Sig: sig})
	}
	v, err := manifest.VerifyManifest(&next, next.Entries[0].Key.ID)
	if err != nil {
		return manifest.KeyState{}, fmt.Errorf("hsm: new manifest does not verify: %w", err)
	}
	data, err := manifest.Marshal(&next)
	if err != nil {
		return manifest.KeyState{}, err
	}
	if err := WriteFileAtomic(s.path, data, 0o644); err != nil {
		return manifest.KeyState{}, err
	}
	s.m, s.v, s.active = &next, v, k
	return *v.Active(), nil
}

// WriteFileAtomic replaces path with data: temp file in the same folder,
// fsync, rename, fsync of the folder.
func WriteFileAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("hsm: write %s: %w", filepath.Base(path), err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("hsm: write %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hsm: write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("hsm: write %s: %w", filepath.Base(path), err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("hsm: sync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("hsm: sync dir: %w", err)
	}
	return nil
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
