// Package apikey is the order-entry gateway's API key store: per-user keys
// with trading and market-data scopes, a 90-day expiry, an optional
// source-address allow-list and revocation. Each key's 32-byte secret (the
// HMAC key of the login, docs/protocol.md) is sealed by the data vault
// (hsm.Vault, class api-key-secret) and never stored in plain text; it is
// shown once, when the key is created or rotated.
//
// A key may require an attested device (Key.RequireDevice: one device id,
// or AnyDevice): the gateway then admits its sessions only after the
// device's TPM attestation (docs/protocol.md, "Device attestation").
//
// The store is one file, <dir>/apikeys.json, replaced atomically under an
// flock (<dir>/apikeys.lock) by every process that changes it (the
// `tradecore apikeys` verbs); a running daemon re-reads it whenever it
// changed (Lookup checks on every login), so a revocation takes effect at
// the next login without a restart. The file also keeps an append-only list
// of changes (Changes) that the daemon copies into the audit log.
package apikey

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/internal/atomicfile"
	"github.com/tradecore/tradecore/proto"
)

// Files in the store's folder.
const (
	File     = "apikeys.json"
	LockFile = "apikeys.lock"
)

// DefaultLifetime is a key's validity from its creation; DefaultGrace how
// long a rotated key keeps working beside its successor.
const (
	DefaultLifetime = 90 * 24 * time.Hour
	DefaultGrace    = 24 * time.Hour
)

// AnyDevice in Key.RequireDevice admits any approved device.
const AnyDevice = "any"

// Scope is what a key may be used for.
type Scope string

// The scopes.
const (
	ScopeTrade Scope = "trade" // the order-entry port
	ScopeData  Scope = "data"  // the market-data port
)

// Errors. Each says what to do in its doc comment.
var (
	// ErrNotFound: no key with that id; check the id (tradecore apikeys list).
	ErrNotFound = errors.New("apikey: no such key")
	// ErrRevoked: the key was revoked; create a new one.
	ErrRevoked = errors.New("apikey: key revoked")
	// ErrExpired: the key is past its expiry; rotate it (tradecore apikeys rotate).
	ErrExpired = errors.New("apikey: key expired")
	// ErrInvalid: a request is incomplete or contradictory; the message names the field.
	ErrInvalid = errors.New("apikey: invalid request")
	// ErrExists: the user already has an active key with one of the scopes;
	// rotate or revoke it instead of creating another.
	ErrExists = errors.New("apikey: the user already has an active key with that scope")
	// ErrCorrupt: the store file cannot be parsed; restore it from a backup.
	ErrCorrupt = errors.New("apikey: store file damaged")
)

// Key is one API key without its secret.
type Key struct {
	ID      string  `json:"id"`
	User    string  `json:"user"`
	Account uint32  `json:"account"`
	Scopes  []Scope `json:"scopes"`
	// Allow lists the source addresses (CIDR prefixes or single addresses)
	// the key may log in from; empty allows any.
	Allow        []string   `json:"allow,omitempty"`
	Created      time.Time  `json:"created"`
	Expires      time.Time  `json:"expires"`
	Revoked      *time.Time `json:"revoked,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
	RotatedFrom  string     `json:"rotated_from,omitempty"`
	RotatedTo    string     `json:"rotated_to,omitempty"`
	// RequireDevice, when set, admits the key's sessions only from an
	// attested device: this device id (32 lowercase hex digits) or, with
	// AnyDevice, any approved one. A store holding such a key is written
	// as version 2, which builds that do not know the field refuse to read
	// rather than ignore it.
	RequireDevice string `json:"require_device,omitempty"`
	// Sealed is the secret as sealed by the vault.
	Sealed []byte `json:"sealed_secret"`
}

// State returns nil for a key usable at now, ErrRevoked or ErrExpired.
func (k *Key) State(now time.Time) error {
	switch {
	case k.Revoked != nil:
		return ErrRevoked
	case !now.Before(k.Expires):
		return ErrExpired
	}
	return nil
}

// Has reports whether the key has scope s.
func (k *Key) Has(s Scope) bool { return slices.Contains(k.Scopes, s) }

// Allows reports whether the key may log in from addr.
func (k *Key) Allows(addr netip.Addr) bool {
	if len(k.Allow) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, a := range k.Allow {
		if p, err := parsePrefix(a); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// Change is one entry of the store's change list: what the audit log gets
// (never a secret).
type Change struct {
	Seq       uint64    `json:"seq"`
	Time      time.Time `json:"time"`
	Action    string    `json:"action"` // created, rotated, revoked
	KeyID     string    `json:"key_id"`
	User      string    `json:"user"`
	Account   uint32    `json:"account"`
	Scopes    []Scope   `json:"scopes,omitempty"`
	Expires   time.Time `json:"expires,omitzero"`
	RotatedTo string    `json:"rotated_to,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// RequireDevice is the new key's device requirement (created).
	RequireDevice string `json:"require_device,omitempty"`
}

type storeFile struct {
	Version int      `json:"version"`
	Keys    []Key    `json:"keys"`
	Changes []Change `json:"changes"`
}

// Sealer seals and opens secrets: the data vault in production
// (VaultSealer). aad binds a ciphertext to its key id.
type Sealer interface {
	Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	Open(ctx context.Context, ciphertext, aad []byte) ([]byte, error)
}

// vaultSubject is the vault subject of every API key secret.
const vaultSubject = "gateway-apikeys"

type vaultSealer struct{ v *hsm.Vault }

// VaultSealer seals with v, class hsm.ClassAPIKeySecret.
func VaultSealer(v *hsm.Vault) Sealer { return vaultSealer{v} }

func (s vaultSealer) Seal(ctx context.Context, pt, aad []byte) ([]byte, error) {
	return s.v.Seal(ctx, hsm.ClassAPIKeySecret, vaultSubject, pt, aad)
}
func (s vaultSealer) Open(ctx context.Context, ct, aad []byte) ([]byte, error) {
	return s.v.Open(ctx, hsm.ClassAPIKeySecret, ct, aad)
}

// Config configures a Store. Dir and Sealer are required.
type Config struct {
	Dir    string
	Sealer Sealer
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Store is the key store. Safe for concurrent use, and across processes.
type Store struct {
	cfg Config

	mu      sync.Mutex
	id      fileID
	file    storeFile
	secrets map[string][]byte // opened secrets by key id
}

// Open opens (creating when missing) the store in cfg.Dir. It makes sure
// the vault's data key for the secrets exists, under the store's lock, so
// that processes sharing the vault never create it twice.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Dir == "" || cfg.Sealer == nil {
		return nil, fmt.Errorf("%w: Config.Dir and Config.Sealer are required", ErrInvalid)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("apikey: create %s: %w", cfg.Dir, err)
	}
	s := &Store{cfg: cfg, secrets: map[string][]byte{}}
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := cfg.Sealer.Seal(ctx, nil, []byte("apikey probe")); err != nil {
		return nil, fmt.Errorf("apikey: the vault cannot seal (is the HSM token open?): %w", err)
	}
	if err := s.reloadLocked(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Store) path() string { return filepath.Join(s.cfg.Dir, File) }

// lock takes the store's exclusive flock, waiting until ctx is done.
func (s *Store) lock(ctx context.Context) (func(), error) {
	f, err := os.OpenFile(filepath.Join(s.cfg.Dir, LockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("apikey: open lock: %w", err)
	}
	for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("apikey: lock: %w", err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("apikey: waiting for the store's lock (another tradecore process is changing keys): %w", ctx.Err())
		case <-time.After(wait):
		}
	}
}

// fileID identifies one version of a file that is only replaced by rename.
type fileID struct {
	ino          uint64
	size         int64
	mtime, ctime int64
}

func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}, nil
}

// reloadLocked re-reads the file when it changed and opens the secrets of
// keys not seen before. s.mu must not be held by another goroutine's reload.
func (s *Store) reloadLocked(ctx context.Context) error {
	id, err := statID(s.path())
	if errors.Is(err, fs.ErrNotExist) {
		s.file, s.id = storeFile{Version: 1}, fileID{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("apikey: %w", err)
	}
	if id == s.id {
		return nil
	}
	data, err := os.ReadFile(s.path())
	if err != nil {
		return fmt.Errorf("apikey: %w", err)
	}
	var f storeFile
	if err := json.Unmarshal(data, &f); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, s.path(), err)
	}
	if f.Version != 1 && f.Version != 2 {
		return fmt.Errorf("%w: version %d; this build reads versions 1 and 2", ErrCorrupt, f.Version)
	}
	for i := range f.Keys {
		if err := CheckDeviceRequirement(f.Keys[i].RequireDevice); err != nil {
			return fmt.Errorf("%w: key %s: %v", ErrCorrupt, f.Keys[i].ID, err)
		}
	}
	secrets := make(map[string][]byte, len(f.Keys))
	for i := range f.Keys {
		k := &f.Keys[i]
		if sec, ok := s.secrets[k.ID]; ok {
			secrets[k.ID] = sec
			continue
		}
		sec, err := s.cfg.Sealer.Open(ctx, k.Sealed, []byte(k.ID))
		if err != nil {
			return fmt.Errorf("apikey: open the secret of key %s: %w", k.ID, err)
		}
		secrets[k.ID] = sec
	}
	s.file, s.id, s.secrets = f, id, secrets
	return nil
}

// save writes f and adopts it. The caller holds the flock and s.mu.
func (s *Store) save(f storeFile) error {
	f.Version = 1
	if slices.ContainsFunc(f.Keys, func(k Key) bool { return k.RequireDevice != "" }) {
		f.Version = 2 // older builds would ignore the requirement: make them refuse the file
	}
	data, err := json.MarshalIndent(&f, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(s.path(), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("apikey: %w", err)
	}
	id, err := statID(s.path())
	if err != nil {
		return fmt.Errorf("apikey: %w", err)
	}
	s.file, s.id = f, id
	return nil
}

// change runs fn on a fresh copy of the file under the flock and saves it.
func (s *Store) change(ctx context.Context, fn func(f *storeFile, now time.Time) error) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.reloadLocked(ctx); err != nil {
		return err
	}
	f := storeFile{Version: 1, Keys: slices.Clone(s.file.Keys), Changes: slices.Clone(s.file.Changes)}
	if err := fn(&f, s.cfg.Now().UTC().Truncate(time.Second)); err != nil {
		return err
	}
	return s.save(f)
}

// CreateRequest describes a new key.
type CreateRequest struct {
	User    string  // the user's id (a random id, never a name)
	Account uint32  // the account it trades for (trade scope)
	Scopes  []Scope // at least one
	Allow   []string
	// Lifetime overrides DefaultLifetime (at most that).
	Lifetime time.Duration
	// RequireDevice: "" (none), AnyDevice, or a device id (Key.RequireDevice).
	RequireDevice string
}

// CheckDeviceRequirement checks the form of a device requirement: empty,
// AnyDevice, or a device id of 32 lowercase hex digits.
func CheckDeviceRequirement(s string) error {
	if s == "" || s == AnyDevice {
		return nil
	}
	if _, ok := proto.ParseDeviceID(s); !ok {
		return fmt.Errorf("%w: require device %q: give a device id (32 lowercase hex digits, tradecore attest list) or %q", ErrInvalid, s, AnyDevice)
	}
	return nil
}

func (r *CreateRequest) check() error {
	if r.User == "" || len(r.User) > 64 || strings.ContainsAny(r.User, " \t\n\"\\") {
		return fmt.Errorf("%w: user must be 1..64 characters without spaces or quotes", ErrInvalid)
	}
	if len(r.Scopes) == 0 {
		return fmt.Errorf("%w: give at least one scope (trade, data)", ErrInvalid)
	}
	for _, sc := range r.Scopes {
		if sc != ScopeTrade && sc != ScopeData {
			return fmt.Errorf("%w: scope %q; use trade or data", ErrInvalid, sc)
		}
	}
	if slices.Contains(r.Scopes, ScopeTrade) && r.Account == 0 {
		return fmt.Errorf("%w: a trade-scope key needs an account (non-zero)", ErrInvalid)
	}
	for _, a := range r.Allow {
		if _, err := parsePrefix(a); err != nil {
			return fmt.Errorf("%w: allow %q is not an address or CIDR prefix", ErrInvalid, a)
		}
	}
	if r.Lifetime < 0 || r.Lifetime > DefaultLifetime {
		return fmt.Errorf("%w: lifetime must be at most %v", ErrInvalid, DefaultLifetime)
	}
	return CheckDeviceRequirement(r.RequireDevice)
}

// newID returns a random key id: 16 characters of [a-z2-7].
func newID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// newKey makes a key and its sealed secret.
func (s *Store) newKey(ctx context.Context, r CreateRequest, now time.Time) (Key, []byte, error) {
	life := r.Lifetime
	if life == 0 {
		life = DefaultLifetime
	}
	secret := make([]byte, proto.SecretSize)
	_, _ = rand.Read(secret)
	k := Key{ID: newID(), User: r.User, Account: r.Account, Scopes: slices.Clone(r.Scopes), Allow: slices.Clone(r.Allow),
		Created: now, Expires: now.Add(life), RequireDevice: r.RequireDevice}
	sealed, err := s.cfg.Sealer.Seal(ctx, secret, []byte(k.ID))
	if err != nil {
		return Key{}, nil, fmt.Errorf("apikey: seal the secret: %w", err)
	}
	k.Sealed = sealed
	return k, secret, nil
}

func conflict(f *storeFile, user string, scopes []Scope, now time.Time, except string) error {
	for i := range f.Keys {
		k := &f.Keys[i]
		if k.User != user || k.ID == except || k.RotatedTo != "" || k.State(now) != nil {
			continue
		}
		for _, sc := range scopes {
			if k.Has(sc) {
				return fmt.Errorf("%w: key %s (%s)", ErrExists, k.ID, sc)
			}
		}
	}
	return nil
}

func appendChange(f *storeFile, c Change) {
	c.Seq = uint64(len(f.Changes)) + 1
	f.Changes = append(f.Changes, c)
}

// Create makes a new key and returns it with its secret, which is not
// stored anywhere in plain text: show it once.
func (s *Store) Create(ctx context.Context, r CreateRequest) (Key, []byte, error) {
	if err := r.check(); err != nil {
		return Key{}, nil, err
	}
	var k Key
	var secret []byte
	err := s.change(ctx, func(f *storeFile, now time.Time) error {
		if err := conflict(f, r.User, r.Scopes, now, ""); err != nil {
			return err
		}
		var err error
		if k, secret, err = s.newKey(ctx, r, now); err != nil {
			return err
		}
		f.Keys = append(f.Keys, k)
		appendChange(f, Change{Time: now, Action: "created", KeyID: k.ID, User: k.User, Account: k.Account, Scopes: k.Scopes, Expires: k.Expires,
			RequireDevice: k.RequireDevice})
		return nil
	})
	if err != nil {
		return Key{}, nil, err
	}
	s.mu.Lock()
	s.secrets[k.ID] = secret
	s.mu.Unlock()
	return k, secret, nil
}

// Rotate makes a successor of key id (same user, account, scopes,
// allow-list and device requirement, a fresh secret and a full lifetime) and lets the old key work
// for grace more (DefaultGrace when 0; never beyond its own expiry). It
// returns the new key and its secret.
func (s *Store) Rotate(ctx context.Context, id string, grace time.Duration) (Key, []byte, error) {
	if grace == 0 {
		grace = DefaultGrace
	}
	if grace < 0 {
		return Key{}, nil, fmt.Errorf("%w: grace must not be negative", ErrInvalid)
	}
	var k Key
	var secret []byte
	err := s.change(ctx, func(f *storeFile, now time.Time) error {
		i := slices.IndexFunc(f.Keys, func(k Key) bool { return k.ID == id })
		if i < 0 {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		old := &f.Keys[i]
		if old.Revoked != nil {
			return fmt.Errorf("%w: %s; create a new key", ErrRevoked, id)
		}
		if old.RotatedTo != "" {
			return fmt.Errorf("%w: %s was already rotated to %s; rotate that one", ErrInvalid, id, old.RotatedTo)
		}
		var err error
		k, secret, err = s.newKey(ctx, CreateRequest{User: old.User, Account: old.Account, Scopes: old.Scopes, Allow: old.Allow,
			RequireDevice: old.RequireDevice}, now)
		if err != nil {
			return err
		}
		k.RotatedFrom = old.ID
		old.RotatedTo = k.ID
		if end := now.Add(grace); end.Before(old.Expires) {
			old.Expires = end
		}
		f.Keys = append(f.Keys, k)
		appendChange(f, Change{Time: now, Action: "rotated", KeyID: old.ID, User: old.User, Account: old.Account, Expires: old.Expires, RotatedTo: k.ID})
		appendChange(f, Change{Time: now, Action: "created", KeyID: k.ID, User: k.User, Account: k.Account, Scopes: k.Scopes, Expires: k.Expires,
			RequireDevice: k.RequireDevice})
		return nil
	})
	if err != nil {
		return Key{}, nil, err
	}
	s.mu.Lock()
	s.secrets[k.ID] = secret
	s.mu.Unlock()
	return k, secret, nil
}

// Revoke revokes key id at once; reason is recorded (no secrets, no personal
// data).
func (s *Store) Revoke(ctx context.Context, id, reason string) (Key, error) {
	if reason == "" {
		return Key{}, fmt.Errorf("%w: give a reason", ErrInvalid)
	}
	var k Key
	err := s.change(ctx, func(f *storeFile, now time.Time) error {
		i := slices.IndexFunc(f.Keys, func(k Key) bool { return k.ID == id })
		if i < 0 {
			return fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		if f.Keys[i].Revoked != nil {
			return fmt.Errorf("%w: %s is already revoked", ErrRevoked, id)
		}
		f.Keys[i].Revoked, f.Keys[i].RevokeReason = &now, reason
		k = f.Keys[i]
		appendChange(f, Change{Time: now, Action: "revoked", KeyID: k.ID, User: k.User, Account: k.Account, Reason: reason})
		return nil
	})
	return k, err
}

// refresh re-reads the file if another process changed it.
func (s *Store) refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked(ctx)
}

// List returns every key (without secrets), newest file state.
func (s *Store) List(ctx context.Context) ([]Key, error) {
	if err := s.refresh(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.file.Keys)
	for i := range out {
		out[i].Sealed = nil
	}
	return out, nil
}

// Lookup returns key id and its secret (do not modify it), re-reading the
// file first if it changed. Revoked and expired keys come back too, so that
// the login can check the MAC before it reports their state: check
// Key.State.
func (s *Store) Lookup(ctx context.Context, id string) (Key, []byte, error) {
	if err := s.refresh(ctx); err != nil {
		return Key{}, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.file.Keys {
		if k := s.file.Keys[i]; k.ID == id {
			k.Sealed = nil
			return k, s.secrets[id], nil
		}
	}
	return Key{}, nil, fmt.Errorf("%w: %s", ErrNotFound, id)
}

// Changes returns the changes after seq, re-reading the file first.
func (s *Store) Changes(ctx context.Context, after uint64) ([]Change, error) {
	if err := s.refresh(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if after >= uint64(len(s.file.Changes)) {
		return nil, nil
	}
	return slices.Clone(s.file.Changes[after:]), nil
}
