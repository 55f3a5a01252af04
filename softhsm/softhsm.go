package softhsm

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/miekg/pkcs11"
)

// DefaultLabel is the token label of tradecore's local default token.
const DefaultLabel = "tradecore"

// EnvConf is the environment variable SoftHSM reads its configuration path from.
const EnvConf = "SOFTHSM2_CONF"

// File names inside a token folder.
const (
	ConfFile    = "softhsm2.conf" // SoftHSM configuration
	TokenSubdir = "tokens"        // SoftHSM token directory
	UserPINFile = "hsm-user-pin"  // user PIN inside Config.PINDir, mode 0600
	SOPINFile   = "hsm-so-pin"    // security officer PIN inside Config.PINDir, mode 0600
)

// Where older versions kept the PINs, inside Dir; Find and Ensure refuse a
// folder that still has them.
var legacyPINFiles = []string{"user.pin", "so.pin"}

// ModulePaths are the places [FindModule] looks for libsofthsm2.so, in order.
var ModulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
	"/usr/local/lib/softhsm/libsofthsm2.so",
	"/usr/lib64/pkcs11/libsofthsm2.so",
	"/opt/homebrew/lib/softhsm/libsofthsm2.so",
}

var (
	// ErrModuleNotFound means libsofthsm2.so is not installed. Install the
	// softhsm2 package (scripts/deps.sh) or set Config.Module.
	ErrModuleNotFound = errors.New("softhsm: module libsofthsm2.so not found")
	// ErrTokenNotFound means no token with the label exists in the folder.
	// Create it with [Ensure] (or `tradecore keys init`).
	ErrTokenNotFound = errors.New("softhsm: token not found")
	// ErrOtherConf means the SoftHSM module is already initialised in this
	// process from another configuration, so a token in this folder would be
	// invisible to it. Close every hsm handle first, or keep all tokens of the
	// process in one folder.
	ErrOtherConf = errors.New("softhsm: module already initialised from another configuration")
	// ErrPINInDataDir means a PIN file lies inside the token folder (or
	// Config.PINDir is inside it), so a copy of the folder would be a working
	// clone of the keys. Move the PIN files to a credentials folder outside
	// the data dir (docs/keys.md, "PINs").
	ErrPINInDataDir = errors.New("softhsm: PIN file inside the token folder")
	// ErrNoFreeSlot means SoftHSM offered no uninitialised slot. Check the
	// token directory is writable.
	ErrNoFreeSlot = errors.New("softhsm: no free slot to initialise a token")
)

// Config says where a token lives. Its zero value is invalid: Dir is required.
type Config struct {
	// Dir holds softhsm2.conf and the token directory. It is created with
	// mode 0700 when missing.
	Dir string
	// PINDir holds the PIN files (hsm-user-pin, hsm-so-pin), and must not be
	// inside Dir: a copy of Dir without the PINs is not a working clone of
	// the keys. systemd's $CREDENTIALS_DIRECTORY fits. Required.
	PINDir string
	// Label is the token label; default [DefaultLabel].
	Label string
	// Module is the path of libsofthsm2.so; default the first of [ModulePaths]
	// that exists.
	Module string
}

// Token is an initialised SoftHSM token: everything needed to open it.
type Token struct {
	Module      string // path of libsofthsm2.so
	Label       string // token label
	ConfPath    string // SOFTHSM2_CONF value
	TokenDir    string // SoftHSM token directory
	UserPINFile string // file holding the user PIN, mode 0600
	SOPINFile   string // file holding the security officer PIN, mode 0600
}

// FindModule returns the first of [ModulePaths] that exists, or
// [ErrModuleNotFound].
func FindModule() (string, error) {
	for _, p := range ModulePaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrModuleNotFound
}

func (c Config) withDefaults() (Config, error) {
	if c.Dir == "" {
		return c, errors.New("softhsm: Config.Dir is empty: give the folder that holds the token")
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, fmt.Errorf("softhsm: Config.Dir: %w", err)
	}
	c.Dir = abs
	if c.PINDir == "" {
		return c, errors.New("softhsm: Config.PINDir is empty: give a folder outside Config.Dir for the PIN files")
	}
	if c.PINDir, err = filepath.Abs(c.PINDir); err != nil {
		return c, fmt.Errorf("softhsm: Config.PINDir: %w", err)
	}
	if within(c.PINDir, c.Dir) {
		return c, fmt.Errorf("%w: Config.PINDir %s is inside Config.Dir %s: choose a folder outside it", ErrPINInDataDir, c.PINDir, c.Dir)
	}
	for _, f := range legacyPINFiles {
		if _, err := os.Stat(filepath.Join(c.Dir, f)); err == nil {
			return c, fmt.Errorf("%w: %s: move %s to %s and %s to %s (docs/keys.md, \"PINs\")", ErrPINInDataDir,
				filepath.Join(c.Dir, f), filepath.Join(c.Dir, "user.pin"), filepath.Join(c.PINDir, UserPINFile),
				filepath.Join(c.Dir, "so.pin"), filepath.Join(c.PINDir, SOPINFile))
		}
	}
	if c.Label == "" {
		c.Label = DefaultLabel
	}
	if len(c.Label) > 32 {
		return c, fmt.Errorf("softhsm: Config.Label %q is longer than 32 bytes (PKCS#11 limit)", c.Label)
	}
	if c.Module == "" {
		m, err := FindModule()
		if err != nil {
			return c, err
		}
		c.Module = m
	} else if _, err := os.Stat(c.Module); err != nil {
		return c, fmt.Errorf("%w: Config.Module %s: %w", ErrModuleNotFound, c.Module, err)
	}
	return c, nil
}

func (c Config) token() *Token {
	return &Token{
		Module:      c.Module,
		Label:       c.Label,
		ConfPath:    filepath.Join(c.Dir, ConfFile),
		TokenDir:    filepath.Join(c.Dir, TokenSubdir),
		UserPINFile: filepath.Join(c.PINDir, UserPINFile),
		SOPINFile:   filepath.Join(c.PINDir, SOPINFile),
	}
}

// Setenv points this process's SOFTHSM2_CONF at the token's configuration.
// It must happen before the module is loaded; [Ensure] and [Find] call it.
func (t *Token) Setenv() error {
	return os.Setenv(EnvConf, t.ConfPath)
}

// Env returns the environment entry that selects this token's configuration,
// for child processes such as pkcs11-tool.
func (t *Token) Env() string { return EnvConf + "=" + t.ConfPath }

// Find returns the token with cfg.Label in cfg.Dir, or [ErrTokenNotFound]. It
// sets SOFTHSM2_CONF in the process environment.
func Find(ctx context.Context, cfg Config) (*Token, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tok := cfg.token()
	if _, err := os.Stat(tok.ConfPath); err != nil {
		return nil, fmt.Errorf("%w: label %q in %s (no %s)", ErrTokenNotFound, cfg.Label, cfg.Dir, ConfFile)
	}
	labels, err := tok.Labels(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range labels {
		if l == cfg.Label {
			return tok, tok.Setenv()
		}
	}
	return nil, fmt.Errorf("%w: label %q in %s", ErrTokenNotFound, cfg.Label, cfg.Dir)
}

// Labels lists the labels of the initialised tokens of the token's folder,
// through `softhsm2-util --show-slots` (which needs no PIN).
func (t *Token) Labels(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, "softhsm2-util", "--show-slots")
	cmd.Env = append(os.Environ(), t.Env())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("softhsm: softhsm2-util --show-slots: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var labels []string
	initialized := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "Slot ") && !strings.Contains(line, ":"):
			initialized = false
		case strings.HasPrefix(line, "Initialized:"):
			initialized = strings.TrimSpace(strings.TrimPrefix(line, "Initialized:")) == "yes"
		case strings.HasPrefix(line, "Label:") && initialized:
			labels = append(labels, strings.TrimSpace(strings.TrimPrefix(line, "Label:")))
		}
	}
	return labels, nil
}

// Ensure returns the token with cfg.Label in cfg.Dir, creating the folder, its
// configuration, its PINs and the token when missing. It sets SOFTHSM2_CONF
// in the process environment. It is not safe to call concurrently with other
// code that loads the SoftHSM module.
func Ensure(ctx context.Context, cfg Config) (*Token, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	tok := cfg.token()
	if err := os.MkdirAll(tok.TokenDir, 0o700); err != nil {
		return nil, fmt.Errorf("softhsm: create token dir: %w", err)
	}
	if err := os.MkdirAll(cfg.PINDir, 0o700); err != nil {
		return nil, fmt.Errorf("softhsm: create PIN dir: %w", err)
	}
	if err := writeIfMissing(tok.ConfPath, []byte(confText(tok.TokenDir)), 0o600); err != nil {
		return nil, err
	}
	if err := ensurePIN(tok.SOPINFile); err != nil {
		return nil, err
	}
	if err := ensurePIN(tok.UserPINFile); err != nil {
		return nil, err
	}
	found, err := Find(ctx, cfg)
	if err == nil {
		return found, nil
	}
	if !errors.Is(err, ErrTokenNotFound) {
		return nil, err
	}
	if err := tok.initToken(); err != nil {
		return nil, err
	}
	return tok, nil
}

// within reports whether path is dir or inside it (after resolving
// symbolic links where they exist).
func within(path, dir string) bool {
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func confText(tokenDir string) string {
	return "# written by tradecore softhsm.Ensure\n" +
		"directories.tokendir = " + tokenDir + "\n" +
		"objectstore.backend = file\n" +
		"log.level = ERROR\n" +
		"slots.removable = false\n"
}

func writeIfMissing(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("softhsm: create %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("softhsm: write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("softhsm: sync %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

// ensurePIN writes a fresh random PIN (32 hex digits) to path unless it exists.
func ensurePIN(path string) error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("softhsm: generate PIN: %w", err)
	}
	pin := make([]byte, hex.EncodedLen(len(b)))
	hex.Encode(pin, b[:])
	return writeIfMissing(path, append(pin, '\n'), 0o600)
}

// ReadPIN reads a PIN file, trimming one trailing newline. The PIN never
// appears in the returned error.
func ReadPIN(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("softhsm: read PIN file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// initToken initialises a free slot over PKCS#11 with the folder's PINs.
func (t *Token) initToken() error {
	soPIN, err := ReadPIN(t.SOPINFile)
	if err != nil {
		return err
	}
	userPIN, err := ReadPIN(t.UserPINFile)
	if err != nil {
		return err
	}
	prev, hadPrev := os.LookupEnv(EnvConf)
	p := pkcs11.New(t.Module)
	if p == nil {
		return fmt.Errorf("%w: cannot load %s", ErrModuleNotFound, t.Module)
	}
	defer p.Destroy()
	if err := t.Setenv(); err != nil {
		return err
	}
	finalize := true
	if err := p.Initialize(); err != nil {
		var perr pkcs11.Error
		if !errors.As(err, &perr) || perr != pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED {
			return fmt.Errorf("softhsm: C_Initialize: %w", err)
		}
		if hadPrev && prev != t.ConfPath {
			_ = os.Setenv(EnvConf, prev)
			return fmt.Errorf("%w (loaded from %s)", ErrOtherConf, prev)
		}
		finalize = false // someone else in this process owns the initialisation
	}
	if finalize {
		defer p.Finalize()
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("softhsm: C_GetSlotList: %w", err)
	}
	slot, ok := uint(0), false
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			return fmt.Errorf("softhsm: C_GetTokenInfo: %w", err)
		}
		if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
			slot, ok = s, true
			break
		}
	}
	if !ok {
		return ErrNoFreeSlot
	}
	if err := p.InitToken(slot, soPIN, t.Label); err != nil {
		return fmt.Errorf("softhsm: C_InitToken: %w", err)
	}
	// C_InitToken moves the token to a new slot id in SoftHSM: find it by label.
	slots, err = p.GetSlotList(true)
	if err != nil {
		return fmt.Errorf("softhsm: C_GetSlotList: %w", err)
	}
	ok = false
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err == nil && ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED != 0 && ti.Label == t.Label && ti.Flags&pkcs11.CKF_USER_PIN_INITIALIZED == 0 {
			slot, ok = s, true
			break
		}
	}
	if !ok {
		return fmt.Errorf("%w: label %q after C_InitToken", ErrTokenNotFound, t.Label)
	}
	sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return fmt.Errorf("softhsm: C_OpenSession: %w", err)
	}
	defer p.CloseSession(sh)
	if err := p.Login(sh, pkcs11.CKU_SO, soPIN); err != nil {
		return fmt.Errorf("softhsm: C_Login as SO: %w", err)
	}
	defer p.Logout(sh)
	if err := p.InitPIN(sh, userPIN); err != nil {
		return fmt.Errorf("softhsm: C_InitPIN: %w", err)
	}
	return nil
}
