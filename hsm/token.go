package hsm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"
	"github.com/thales-e-security/pool"
)

// Defaults filled in by [Open] for zero Config fields.
const (
	DefaultModule          = "/usr/lib/softhsm/libsofthsm2.so"
	DefaultTokenLabel      = "tradecore"
	DefaultPINEnv          = "TRADECORE_HSM_PIN"
	DefaultMaxSessions     = 8
	DefaultPoolWaitTimeout = 5 * time.Second
)

// Config says which PKCS#11 module and token to use. Its zero value works for
// the local default when the PIN is in $TRADECORE_HSM_PIN; [Open] fills the
// defaults and rejects invalid fields by name.
type Config struct {
	// Module is the path of the PKCS#11 shared library; default DefaultModule.
	Module string
	// TokenLabel selects the token (never a slot number); default
	// DefaultTokenLabel.
	TokenLabel string
	// PINFile is a file holding the user PIN (one trailing newline is
	// trimmed). It wins over PINEnv.
	PINFile string
	// PINEnv names the environment variable holding the user PIN when PINFile
	// is empty; default DefaultPINEnv. There is deliberately no way to pass
	// the PIN itself: it must not appear on a command line.
	PINEnv string
	// MaxSessions bounds the PKCS#11 sessions used for operations (one more
	// is kept open to hold the login); default DefaultMaxSessions.
	MaxSessions int
	// PoolWaitTimeout bounds the wait for a free session; after it an
	// operation fails with ErrPoolExhausted. Default DefaultPoolWaitTimeout.
	PoolWaitTimeout time.Duration
	// Logger receives diagnostics (never PINs or key material); default
	// slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Module == "" {
		c.Module = DefaultModule
	}
	if c.TokenLabel == "" {
		c.TokenLabel = DefaultTokenLabel
	}
	if c.PINEnv == "" {
		c.PINEnv = DefaultPINEnv
	}
	if c.MaxSessions == 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	if c.MaxSessions < 1 {
		return c, fmt.Errorf("hsm: Config.MaxSessions is %d: use a positive number (or 0 for %d)", c.MaxSessions, DefaultMaxSessions)
	}
	if c.PoolWaitTimeout == 0 {
		c.PoolWaitTimeout = DefaultPoolWaitTimeout
	}
	if c.PoolWaitTimeout < 0 {
		return c, fmt.Errorf("hsm: Config.PoolWaitTimeout is negative: use a positive duration (or 0 for %v)", DefaultPoolWaitTimeout)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

func (c Config) pin() (string, error) {
	if c.PINFile != "" {
		b, err := os.ReadFile(c.PINFile)
		if err != nil {
			return "", fmt.Errorf("hsm: Config.PINFile: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	pin, ok := os.LookupEnv(c.PINEnv)
	if !ok || pin == "" {
		return "", fmt.Errorf("hsm: no PIN: set Config.PINFile, or the environment variable %s (Config.PINEnv)", c.PINEnv)
	}
	return pin, nil
}

// Token is a logged-in PKCS#11 token. It is safe for concurrent use. Open it
// with [Open]; the close function Open returns closes it, after which every
// method returns ErrClosed. Keys from a Token must not be used after it
// closes.
type Token struct {
	cfg  Config
	c11  *crypto11.Context
	p    *pkcs11.Ctx
	slot uint

	sem  chan struct{}             // one permit per session in use
	idle chan pkcs11.SessionHandle // opened sessions not in use

	genMu  sync.Mutex // serialises label checks with key creation
	closed atomic.Bool
	once   sync.Once
}

// Open loads the module, finds the token by label and logs in with the user
// PIN. It returns the token and the function that closes it (wait for
// in-flight operations, close sessions, unload the module when no other Token
// of the process uses it).
//
// Errors: ErrModuleMissing, ErrTokenMissing, ErrWrongPIN, or a config error
// naming the field. For SoftHSM2, SOFTHSM2_CONF must be set before the first
// Open of the process (see package softhsm).
func Open(ctx context.Context, cfg Config) (*Token, func() error, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(cfg.Module); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrModuleMissing, cfg.Module, err)
	}
	pin, err := cfg.pin()
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	c11, err := crypto11.Configure(&crypto11.Config{
		Path:            cfg.Module,
		TokenLabel:      cfg.TokenLabel,
		Pin:             pin,
		MaxSessions:     cfg.MaxSessions + 1, // our own pool below is the bound
		PoolWaitTimeout: cfg.PoolWaitTimeout,
	})
	if err != nil {
		return nil, nil, classifyOpen(err, cfg)
	}
	t := &Token{
		cfg:  cfg,
		c11:  c11,
		sem:  make(chan struct{}, cfg.MaxSessions),
		idle: make(chan pkcs11.SessionHandle, cfg.MaxSessions),
	}
	// crypto11 has initialised the module; a second handle on the same
	// library shares that initialisation (and the login of its session).
	t.p = pkcs11.New(cfg.Module)
	if t.p == nil {
		_ = c11.Close()
		return nil, nil, fmt.Errorf("%w: cannot load %s", ErrModuleMissing, cfg.Module)
	}
	if err := t.p.Initialize(); err != nil && !isCKR(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.p.Destroy()
		_ = c11.Close()
		return nil, nil, p11err("C_Initialize", err)
	}
	t.slot, err = findSlot(t.p, cfg.TokenLabel)
	if err != nil {
		t.p.Destroy()
		_ = c11.Close()
		return nil, nil, err
	}
	cfg.Logger.Debug("hsm: token open", "module", cfg.Module, "token", cfg.TokenLabel, "max_sessions", cfg.MaxSessions)
	return t, t.close, nil
}

func classifyOpen(err error, cfg Config) error {
	var perr pkcs11.Error
	if errors.As(err, &perr) {
		switch perr {
		case pkcs11.CKR_PIN_INCORRECT, pkcs11.CKR_PIN_INVALID, pkcs11.CKR_PIN_LEN_RANGE, pkcs11.CKR_PIN_LOCKED, pkcs11.CKR_PIN_EXPIRED:
			return fmt.Errorf("%w: token %q: %s", ErrWrongPIN, cfg.TokenLabel, perr.Error())
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "could not find PKCS#11 token"):
		return fmt.Errorf("%w: label %q%s", ErrTokenMissing, cfg.TokenLabel, softHSMHint(cfg.Module))
	case strings.Contains(msg, "failed to open module"):
		return fmt.Errorf("%w: %s", ErrModuleMissing, cfg.Module)
	case strings.Contains(msg, "failed to initialize module"):
		// SoftHSM fails C_Initialize when its configuration file is
		// unreadable (SOFTHSM2_CONF empty, missing or naming a bad file).
		return fmt.Errorf("hsm: open token %q: %w%s", cfg.TokenLabel, err, softHSMHint(cfg.Module))
	}
	return fmt.Errorf("hsm: open token %q: %w", cfg.TokenLabel, err)
}

// softHSMHint explains the commonest reason SoftHSM shows no token: its
// configuration is read from SOFTHSM2_CONF, which must name the token's
// folder.
func softHSMHint(module string) string {
	if !strings.Contains(strings.ToLower(module), "softhsm") {
		return ""
	}
	if conf, set := os.LookupEnv("SOFTHSM2_CONF"); set && conf == "" {
		return " (SOFTHSM2_CONF is set but empty: set it to the token's configuration, SOFTHSM2_CONF=<data-dir>/softhsm/softhsm2.conf for the local token, or unset it)"
	} else if conf != "" {
		return fmt.Sprintf(" (SoftHSM reads its tokens from the folder named in SOFTHSM2_CONF=%s: check it is the token's configuration)", conf)
	}
	return " (SOFTHSM2_CONF is not set, so SoftHSM looks in its system folder: set SOFTHSM2_CONF=<data-dir>/softhsm/softhsm2.conf for the local token)"
}

func findSlot(p *pkcs11.Ctx, label string) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, p11err("C_GetSlotList", err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if ti.Label == label && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%w: label %q", ErrTokenMissing, label)
}

func isCKR(err error, code uint) bool {
	var perr pkcs11.Error
	return errors.As(err, &perr) && uint(perr) == code
}

// Label returns the token label.
func (t *Token) Label() string { return t.cfg.TokenLabel }

func (t *Token) close() error {
	t.once.Do(func() {
		t.closed.Store(true)
		// Wait for in-flight operations by taking every permit.
		for range cap(t.sem) {
			t.sem <- struct{}{}
		}
		for {
			select {
			case sh := <-t.idle:
				_ = t.p.CloseSession(sh)
				continue
			default:
			}
			break
		}
		t.p.Destroy() // never C_Finalize: crypto11 owns the initialisation
		_ = t.c11.Close()
	})
	return nil
}

// acquire takes a session permit, waiting at most PoolWaitTimeout.
func (t *Token) acquire(ctx context.Context) error {
	if t.closed.Load() {
		return ErrClosed
	}
	select {
	case t.sem <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(t.cfg.PoolWaitTimeout)
	defer timer.Stop()
	select {
	case t.sem <- struct{}{}:
		if t.closed.Load() {
			<-t.sem
			return ErrClosed
		}
		return nil
	case <-timer.C:
		return fmt.Errorf("%w: %d sessions busy for %v", ErrPoolExhausted, cap(t.sem), t.cfg.PoolWaitTimeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *Token) release() { <-t.sem }

// withSession runs f on a logged-in session from the bounded pool.
func (t *Token) withSession(ctx context.Context, f func(sh pkcs11.SessionHandle) error) error {
	if err := t.acquire(ctx); err != nil {
		return err
	}
	defer t.release()
	var sh pkcs11.SessionHandle
	select {
	case sh = <-t.idle:
	default:
		var err error
		sh, err = t.p.OpenSession(t.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
		if err != nil {
			return p11err("C_OpenSession", err)
		}
	}
	err := f(sh)
	if isCKR(err, pkcs11.CKR_SESSION_HANDLE_INVALID) || isCKR(err, pkcs11.CKR_SESSION_CLOSED) {
		_ = t.p.CloseSession(sh)
		return err
	}
	t.idle <- sh
	return err
}

// mapPoolErr turns crypto11's pool timeout into ErrPoolExhausted.
func mapPoolErr(err error) error {
	if errors.Is(err, pool.ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrPoolExhausted, err)
	}
	return err
}
