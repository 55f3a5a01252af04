package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/internal/atomicfile"
	"github.com/tradecore/tradecore/softhsm"
)

const keysUsage = `usage: tradecore keys <command> [flags]

commands:
  init                  create the HSM token (local SoftHSM default) and the first signing key
  rotate                activate a new signing key now (--algorithm/--max-age change the policy)
  revoke ID --reason R  revoke key ID (compromise) from --at (default now) and destroy it;
                        a new key is activated when ID is the active key
  list                  every key version in the manifest
  status                the active key, its age and when it rotates
  export                print (or --out FILE) the verified manifest, or --pem ID for one public key
  verify                verify a manifest as an auditor: --pinned FIRST_ID, freshness against
                        the newest manifest this verifier saw (--seen)

Run 'tradecore keys <command> -h' for its flags. The manifest is <data-dir>/keys/manifest.json.
The local token's PINs are read from --credentials-dir, never from the data dir (docs/keys.md).
Exit codes: 0 success, 1 failure, 2 usage error.
`

// errHelpShown means a verb printed its help on request: exit 0.
var errHelpShown = errors.New("help shown")

// tokenFlags are the flags that select the token and the manifest folder.
type tokenFlags struct {
	dataDir, module, token, pinFile, pinEnv, credentials *string
}

func addTokenFlags(fs *flag.FlagSet) *tokenFlags {
	return &tokenFlags{
		dataDir:     dataDirFlag(fs),
		module:      fs.String("module", "", "PKCS#11 module path of a token other than the local SoftHSM default (needs --pin-file or --pin-env)"),
		token:       fs.String("token", hsm.DefaultTokenLabel, "token label"),
		pinFile:     fs.String("pin-file", "", "file holding the user PIN of the --module token"),
		pinEnv:      fs.String("pin-env", "", "environment variable holding the user PIN of the --module token"),
		credentials: fs.String("credentials-dir", "", "folder of the local token's PIN files hsm-user-pin and hsm-so-pin, outside the data dir\n(default $CREDENTIALS_DIRECTORY, else $TRADECORE_CREDENTIALS_DIR, else ~/.config/tradecore/credentials)"),
	}
}

func (f *tokenFlags) selection() tokenSelection {
	return tokenSelection{DataDir: *f.dataDir, Module: *f.module, Token: *f.token, PINFile: *f.pinFile, PINEnv: *f.pinEnv, CredentialsDir: *f.credentials}
}

// tokenSelection names a token and where the key manifest lives. With no
// Module, PINFile or PINEnv it is the local SoftHSM2 default under DataDir,
// with its PINs in CredentialsDir.
type tokenSelection struct {
	DataDir, Module, Token, PINFile, PINEnv, CredentialsDir string
}

func (t tokenSelection) keysDir() string { return filepath.Join(t.DataDir, "keys") }

// credentialsDir resolves the PIN folder of the local token: the flag, then
// systemd's $CREDENTIALS_DIRECTORY, then $TRADECORE_CREDENTIALS_DIR, then
// ~/.config/tradecore/credentials. It must not be inside the data dir.
func (t tokenSelection) credentialsDir() (string, error) {
	dir := t.CredentialsDir
	for _, env := range []string{"CREDENTIALS_DIRECTORY", "TRADECORE_CREDENTIALS_DIR"} {
		if dir == "" {
			dir = os.Getenv(env)
		}
	}
	if dir == "" {
		cfg, err := os.UserConfigDir()
		if err != nil {
			return "", fmt.Errorf("%w: no --credentials-dir and no home folder: give --credentials-dir", errUsage)
		}
		dir = filepath.Join(cfg, "tradecore", "credentials")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--credentials-dir: %w", err)
	}
	data, err := filepath.Abs(t.DataDir)
	if err != nil {
		return "", fmt.Errorf("--data-dir: %w", err)
	}
	if rel, err := filepath.Rel(data, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%w: --credentials-dir %s is inside --data-dir %s: a copy of the data dir would clone the keys; choose a folder outside it", softhsm.ErrPINInDataDir, abs, data)
	}
	return abs, nil
}

// check refuses flag combinations that cannot select a PIN, naming the flags.
func (t tokenSelection) check() error {
	local := t.Module == "" && t.PINFile == "" && t.PINEnv == ""
	switch {
	case local:
		_, err := t.credentialsDir()
		return err
	case t.Module == "":
		return fmt.Errorf("%w: --pin-file/--pin-env are for a --module token; the local default reads its PIN from --credentials-dir", errUsage)
	case t.PINFile == "" && t.PINEnv == "":
		return fmt.Errorf("%w: --module needs --pin-file FILE or --pin-env VAR for the token's user PIN", errUsage)
	}
	return nil
}

// open opens the token. The local SoftHSM2 default is created when create is
// true (keys init, and serve).
func (t tokenSelection) open(ctx context.Context, log *slog.Logger, create bool) (*hsm.Token, func() error, error) {
	if err := t.check(); err != nil {
		return nil, nil, err
	}
	cfg := hsm.Config{Module: t.Module, TokenLabel: t.Token, PINFile: t.PINFile, PINEnv: t.PINEnv, Logger: log}
	local := t.Module == "" && t.PINFile == "" && t.PINEnv == ""
	if local {
		creds, err := t.credentialsDir()
		if err != nil {
			return nil, nil, err
		}
		scfg := softhsm.Config{Dir: filepath.Join(t.DataDir, "softhsm"), PINDir: creds, Label: t.Token}
		var st *softhsm.Token
		if create {
			st, err = softhsm.Ensure(ctx, scfg)
		} else {
			st, err = softhsm.Find(ctx, scfg)
		}
		switch {
		case errors.Is(err, softhsm.ErrTokenNotFound):
			return nil, nil, fmt.Errorf("%w (run 'tradecore keys init --data-dir %s', or fix --token)", err, t.DataDir)
		case errors.Is(err, softhsm.ErrPINInDataDir):
			return nil, nil, fmt.Errorf("%w (or choose another --credentials-dir)", err)
		case err != nil:
			return nil, nil, err
		}
		if _, err := os.Stat(st.UserPINFile); err != nil {
			return nil, nil, fmt.Errorf("no user PIN at %s: give the --credentials-dir holding hsm-user-pin for this token", st.UserPINFile)
		}
		cfg.Module, cfg.PINFile = st.Module, st.UserPINFile
	} else {
		switch {
		case t.PINFile != "":
			if _, err := os.Stat(t.PINFile); err != nil {
				return nil, nil, fmt.Errorf("--pin-file %s: %w (give the file holding the user PIN)", t.PINFile, err)
			}
		case t.PINEnv != "":
			if v, ok := os.LookupEnv(t.PINEnv); !ok || v == "" {
				return nil, nil, fmt.Errorf("--pin-env %s: the variable is not set (export it, or give --pin-file)", t.PINEnv)
			}
		}
	}
	// Log in while no other process changes the token (see hsm.LockManifest).
	unlock, err := hsm.LockManifest(ctx, t.keysDir())
	if err != nil {
		return nil, nil, err
	}
	tok, closeTok, err := hsm.Open(ctx, cfg)
	unlock()
	switch {
	case errors.Is(err, hsm.ErrTokenMissing):
		return nil, nil, fmt.Errorf("%w (check --token %q and --module)", err, t.Token)
	case errors.Is(err, hsm.ErrWrongPIN) && local:
		return nil, nil, fmt.Errorf("%w (the PIN in --credentials-dir is not this token's)", err)
	case errors.Is(err, hsm.ErrWrongPIN):
		return nil, nil, fmt.Errorf("%w (check --pin-file / --pin-env)", err)
	case errors.Is(err, hsm.ErrModuleMissing):
		return nil, nil, fmt.Errorf("%w (check --module)", err)
	}
	return tok, closeTok, err
}

func cliLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "init":
		err = keysInit(ctx, rest, stdout, stderr)
	case "list":
		err = keysList(ctx, rest, stdout, stderr)
	case "rotate":
		err = keysRotate(ctx, rest, stdout, stderr)
	case "revoke":
		err = keysRevoke(ctx, rest, stdout, stderr)
	case "export":
		err = keysExport(ctx, rest, stdout, stderr)
	case "status":
		err = keysStatus(ctx, rest, stdout, stderr)
	case "verify":
		err = keysVerify(ctx, rest, stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	default:
		fmt.Fprint(stderr, keysUsage)
		return fmt.Errorf("%w: unknown keys command %q", errUsage, cmd)
	}
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

// command is a verb's flag set with its synopsis.
type command struct {
	fs       *flag.FlagSet
	synopsis string
	stdout   io.Writer
}

func newCommand(name, synopsis string, stdout, stderr io.Writer) *command {
	c := &command{fs: flag.NewFlagSet("tradecore "+name, flag.ContinueOnError), synopsis: synopsis, stdout: stdout}
	c.fs.SetOutput(stderr)
	c.fs.Usage = func() {
		fmt.Fprintf(c.fs.Output(), "usage: tradecore %s %s\n\nflags:\n", name, synopsis)
		c.fs.PrintDefaults()
	}
	return c
}

// parse parses flags, allowing positional arguments before and after them,
// and returns the positional arguments. -h prints the help to stdout and
// returns errHelpShown (exit 0).
func (c *command) parse(args []string) ([]string, error) {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			c.fs.SetOutput(c.stdout)
			c.fs.Usage()
			return nil, errHelpShown
		}
	}
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			return nil, fmt.Errorf("%w: %w", errUsage, err)
		}
		args = c.fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// noArgs parses and refuses positional arguments.
func (c *command) noArgs(args []string) error {
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: %s takes no arguments (got %q)", errUsage, c.fs.Name(), pos[0])
	}
	return nil
}

func formatFlag(fs *flag.FlagSet) *string {
	return fs.String("format", "text", "output format: text or json")
}

func checkFormat(f string) error {
	if f != "text" && f != "json" {
		return fmt.Errorf("%w: --format %q: use text or json", errUsage, f)
	}
	return nil
}

func keysInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("keys init", "[flags]", stdout, stderr)
	f := addTokenFlags(c.fs)
	format := formatFlag(c.fs)
	alg := c.fs.String("algorithm", string(hsm.Ed25519), "key policy: signing algorithm, ed25519 or ecdsa-p256")
	maxAge := c.fs.Duration("max-age", hsm.DefaultMaxAge, "key policy: age at which a key is rotated (whole seconds)")
	newRoot := c.fs.Bool("new-root", false, "the manifest is lost: destroy the token's signing keys and start a new root (every verifier must re-pin)")
	rootOut := c.fs.String("root-out", "", "also write the first key id (the root to pin) to this file")
	if err := c.noArgs(args); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	if *alg != string(hsm.Ed25519) && *alg != string(hsm.ECDSAP256) {
		return fmt.Errorf("%w: --algorithm %q: use ed25519 or ecdsa-p256", errUsage, *alg)
	}
	if *maxAge < time.Second || *maxAge%time.Second != 0 {
		return fmt.Errorf("%w: --max-age %v: use whole seconds, at least 1s", errUsage, *maxAge)
	}
	log := cliLogger(stderr)
	sel := f.selection()
	tok, closeTok, err := sel.open(ctx, log, true)
	if err != nil {
		return err
	}
	defer closeTok()
	created, err := hsm.Init(ctx, tok, hsm.ServiceConfig{Dir: sel.keysDir(), Algorithm: hsm.Algorithm(*alg), MaxAge: *maxAge, NewRoot: *newRoot, Logger: log})
	if err != nil {
		return err
	}
	v, err := loadManifest(sel.keysDir(), "", "")
	if err != nil {
		return err
	}
	if !created {
		// An existing manifest keeps its policy: say so rather than ignore the flags.
		var ignored []string
		c.fs.Visit(func(fl *flag.Flag) {
			switch {
			case fl.Name == "algorithm" && hsm.Algorithm(*alg) != v.Policy.Algorithm,
				fl.Name == "max-age" && uint64(*maxAge/time.Second) != v.Policy.MaxAgeSeconds,
				fl.Name == "new-root":
				ignored = append(ignored, "--"+fl.Name)
			}
		})
		if len(ignored) > 0 {
			return fmt.Errorf("%w: already initialised (policy %s, max age %s): %s would be ignored; change the policy with 'tradecore keys rotate --algorithm A --max-age D'",
				errUsage, v.Policy.Algorithm, v.Policy.MaxAge(), strings.Join(ignored, ", "))
		}
	}
	if *rootOut != "" {
		if err := atomicfile.WriteFile(*rootOut, []byte(v.Keys[0].ID+"\n"), 0o644); err != nil {
			return fmt.Errorf("--root-out: %w", err)
		}
	}
	out := struct {
		Created    bool            `json:"created"`
		FirstKeyID string          `json:"first_key_id"`
		ActiveKey  string          `json:"active_key_id"`
		Policy     manifest.Policy `json:"policy"`
		Manifest   string          `json:"manifest"`
	}{created, v.Keys[0].ID, v.Active().ID, v.Policy, filepath.Join(sel.keysDir(), hsm.ManifestFile)}
	if *format == "json" {
		return writeJSON(stdout, out)
	}
	if created {
		fmt.Fprintf(stdout, "initialised: first key %s (pin this id to verify the manifest offline)\n", out.FirstKeyID)
	} else {
		fmt.Fprintf(stdout, "already initialised: first key %s, active key %s\n", out.FirstKeyID, out.ActiveKey)
	}
	return nil
}

// manifestFlags are the flags of the read-only commands.
type manifestFlags struct {
	dataDir, file, pinned, seen, format *string
}

func addManifestFlags(fs *flag.FlagSet) *manifestFlags {
	return &manifestFlags{
		dataDir: dataDirFlag(fs),
		file:    fs.String("manifest", "", "manifest file to read, - for stdin (default <data-dir>/keys/manifest.json)"),
		pinned:  fs.String("pinned", "", "verify against this first key id (or @FILE holding it), and check freshness (--seen);\nwithout it only the chain's integrity is checked, against its own first entry"),
		seen:    fs.String("seen", "", "this verifier's freshness state for --pinned (default $XDG_STATE_HOME/tradecore/seen/<first id>.json,\nelse ~/.local/state/tradecore/seen/<first id>.json)"),
		format:  formatFlag(fs),
	}
}

func (f *manifestFlags) path() string {
	if *f.file != "" {
		return *f.file
	}
	return filepath.Join(*f.dataDir, "keys", hsm.ManifestFile)
}

// pin returns the pinned id (reading @FILE) or "".
func (f *manifestFlags) pin() (string, error) {
	p := *f.pinned
	if !strings.HasPrefix(p, "@") {
		return p, nil
	}
	b, err := os.ReadFile(p[1:])
	if err != nil {
		return "", fmt.Errorf("--pinned %s: %w", p, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// defaultSeenPath is where a verifier keeps its freshness state for a pin.
func defaultSeenPath(pin string) (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("%w: no home folder for the freshness state: give --seen FILE", errUsage)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "tradecore", "seen", pin+".json"), nil
}

// load reads and verifies the manifest the flags name.
func (f *manifestFlags) load() (*manifest.Verified, []byte, error) {
	if err := checkFormat(*f.format); err != nil {
		return nil, nil, err
	}
	pin, err := f.pin()
	if err != nil {
		return nil, nil, err
	}
	seen := *f.seen
	if seen != "" && pin == "" {
		return nil, nil, fmt.Errorf("%w: --seen needs --pinned", errUsage)
	}
	if pin != "" && seen == "" {
		if seen, err = defaultSeenPath(pin); err != nil {
			return nil, nil, err
		}
	}
	var data []byte
	if *f.file == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, manifest.MaxSize+1))
	} else {
		data, err = os.ReadFile(f.path())
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("%w: no manifest at %s (run 'tradecore keys init', or give --manifest)", hsm.ErrNotInitialized, f.path())
	}
	if err != nil {
		return nil, nil, err
	}
	v, err := verifyBytes(data, pin, seen)
	return v, data, err
}

// verifyBytes verifies data against pin with freshness state seen, or,
// without a pin, its integrity against its own first entry.
func verifyBytes(data []byte, pin, seen string) (*manifest.Verified, error) {
	if pin != "" {
		v, err := manifest.VerifyFresh(data, pin, seen)
		if errors.Is(err, manifest.ErrStale) || errors.Is(err, manifest.ErrDiverged) {
			return nil, fmt.Errorf("%w (freshness state %s: get the current manifest; see docs/keys.md, \"Verify as an auditor\")", err, seen)
		}
		return v, err
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return nil, err
	}
	if len(m.Entries) == 0 || m.Entries[0].Key == nil {
		return nil, fmt.Errorf("%w: no first key", manifest.ErrInvalid)
	}
	return manifest.Verify(data, m.Entries[0].Key.ID)
}

// loadManifest reads and verifies dir's manifest (pin "": integrity only).
func loadManifest(dir, pin, seen string) (*manifest.Verified, error) {
	data, err := os.ReadFile(filepath.Join(dir, hsm.ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no manifest in %s (run 'tradecore keys init')", hsm.ErrNotInitialized, dir)
	}
	if err != nil {
		return nil, err
	}
	return verifyBytes(data, pin, seen)
}

type keyView struct {
	ID           string     `json:"id"`
	Algorithm    string     `json:"algorithm"`
	State        string     `json:"state"`
	Label        string     `json:"label"`
	Created      time.Time  `json:"created"`
	ActiveFrom   time.Time  `json:"active_from"`
	Expires      time.Time  `json:"expires"`
	RetiredAt    *time.Time `json:"retired_at,omitempty"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	RevokeReason string     `json:"revoke_reason,omitempty"`
	DestroyedAt  *time.Time `json:"private_key_destroyed_at,omitempty"`
	NoteVerifier string     `json:"note_verifier,omitempty"`
}

func viewOf(k *manifest.KeyState) keyView {
	v := keyView{ID: k.ID, Algorithm: string(k.Algorithm), Label: k.Label, Created: k.Created, ActiveFrom: k.ActiveFrom,
		Expires: k.Expires, RevokeReason: k.RevokeReason, NoteVerifier: k.NoteVerifier, State: "active"}
	if !k.RetiredAt.IsZero() {
		t := k.RetiredAt
		v.RetiredAt, v.State = &t, "retired"
	}
	if !k.RevokedAt.IsZero() {
		t := k.RevokedAt
		v.RevokedAt, v.State = &t, "revoked"
	}
	if k.DestroyedSeq != 0 {
		t := k.DestroyedAt
		v.DestroyedAt = &t
	}
	return v
}

func keysList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("keys list", "[flags]", stdout, stderr)
	f := addManifestFlags(c.fs)
	if err := c.noArgs(args); err != nil {
		return err
	}
	v, _, err := f.load()
	if err != nil {
		return err
	}
	views := make([]keyView, len(v.Keys))
	for i := range v.Keys {
		views[i] = viewOf(&v.Keys[i])
	}
	if *f.format == "json" {
		return writeJSON(stdout, views)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tALGORITHM\tSTATE\tACTIVE FROM\tEXPIRES\tPRIVATE KEY\tREVOKED")
	for _, k := range views {
		rev, priv := "-", "in token"
		if k.RevokedAt != nil {
			rev = k.RevokedAt.Format(time.RFC3339) + " (" + k.RevokeReason + ")"
		}
		if k.DestroyedAt != nil {
			priv = "destroyed"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, k.ActiveFrom.Format(time.RFC3339), k.Expires.Format(time.RFC3339), priv, rev)
	}
	return tw.Flush()
}

// openService opens the token and the lifecycle for a one-shot command.
func openService(ctx context.Context, sel tokenSelection, log *slog.Logger, long bool) (*hsm.Service, func() error, error) {
	if err := sel.check(); err != nil {
		return nil, nil, err
	}
	if _, err := os.Stat(filepath.Join(sel.keysDir(), hsm.ManifestFile)); err != nil {
		return nil, nil, fmt.Errorf("%w: no manifest in %s (run 'tradecore keys init'; if the token has keys, restore the manifest first: docs/keys.md, \"Recovery\")", hsm.ErrNotInitialized, sel.keysDir())
	}
	tok, closeTok, err := sel.open(ctx, log, false)
	if err != nil {
		return nil, nil, err
	}
	cfg := hsm.ServiceConfig{Dir: sel.keysDir(), Logger: log, CheckInterval: -1, RefreshInterval: -1}
	if long {
		cfg.CheckInterval, cfg.RefreshInterval = hsm.DefaultCheckInterval, hsm.DefaultRefreshInterval
	}
	svc, closeSvc, err := hsm.NewService(ctx, tok, cfg)
	if err != nil {
		closeTok()
		return nil, nil, err
	}
	return svc, func() error { return errors.Join(closeSvc(), closeTok()) }, nil
}

func keysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("keys rotate", "[flags]", stdout, stderr)
	f := addTokenFlags(c.fs)
	format := formatFlag(c.fs)
	alg := c.fs.String("algorithm", "", "change the key policy's algorithm (ed25519 or ecdsa-p256) from this rotation on")
	maxAge := c.fs.Duration("max-age", 0, "change the key policy's max age from this rotation on (whole seconds)")
	if err := c.noArgs(args); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	if *alg != "" && *alg != string(hsm.Ed25519) && *alg != string(hsm.ECDSAP256) {
		return fmt.Errorf("%w: --algorithm %q: use ed25519 or ecdsa-p256", errUsage, *alg)
	}
	if *maxAge < 0 || *maxAge%time.Second != 0 {
		return fmt.Errorf("%w: --max-age %v: use whole seconds", errUsage, *maxAge)
	}
	svc, closeAll, err := openService(ctx, f.selection(), cliLogger(stderr), false)
	if err != nil {
		return err
	}
	defer closeAll()
	old := svc.Active().ID
	var k manifest.KeyState
	if *alg != "" || *maxAge != 0 {
		p := svc.Verified().Policy
		if *alg != "" {
			p.Algorithm = hsm.Algorithm(*alg)
		}
		if *maxAge != 0 {
			p.MaxAgeSeconds = uint64(*maxAge / time.Second)
		}
		k, err = svc.RotateToPolicy(ctx, p)
	} else {
		k, err = svc.Rotate(ctx)
	}
	if err != nil && k.ID == "" {
		return err
	}
	if *format == "json" {
		if werr := writeJSON(stdout, map[string]any{"previous_key_id": old, "key": viewOf(&k)}); werr != nil {
			return werr
		}
	} else {
		fmt.Fprintf(stdout, "rotated: %s -> %s (%s, expires %s); private key %s destroyed\n", old, k.ID, k.Algorithm, k.Expires.Format(time.RFC3339), old)
	}
	return err
}

func keysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("keys revoke", "ID --reason R [flags]", stdout, stderr)
	f := addTokenFlags(c.fs)
	format := formatFlag(c.fs)
	reason := c.fs.String("reason", "", "why the key is revoked (required; public: no personal data)")
	at := c.fs.String("at", "", "RFC 3339 time from which the key is compromised (default now)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: keys revoke takes exactly one key id", errUsage)
	}
	if *reason == "" {
		return fmt.Errorf("%w: keys revoke needs --reason", errUsage)
	}
	if len(*reason) > manifest.MaxReasonLen {
		return fmt.Errorf("%w: --reason is longer than %d bytes", errUsage, manifest.MaxReasonLen)
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	var when time.Time
	if *at != "" {
		if when, err = time.Parse(time.RFC3339Nano, *at); err != nil {
			return fmt.Errorf("%w: --at: %w", errUsage, err)
		}
	}
	svc, closeAll, err := openService(ctx, f.selection(), cliLogger(stderr), false)
	if err != nil {
		return err
	}
	defer closeAll()
	wasActive := svc.Active().ID == pos[0]
	k, err := svc.Revoke(ctx, pos[0], when, *reason)
	if err != nil && k.ID == "" {
		return err
	}
	if *format == "json" {
		if werr := writeJSON(stdout, map[string]any{"revoked_key_id": pos[0], "key": viewOf(&k), "new_key": wasActive}); werr != nil {
			return werr
		}
	} else if wasActive {
		fmt.Fprintf(stdout, "revoked: %s (private key destroyed); active key now %s\n", pos[0], k.ID)
	} else {
		fmt.Fprintf(stdout, "revoked: %s (private key destroyed); active key unchanged: %s\n", pos[0], k.ID)
	}
	return err
}

func keysExport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("keys export", "[flags]", stdout, stderr)
	f := addManifestFlags(c.fs)
	pemID := c.fs.String("pem", "", "write only this key's public key as PEM")
	out := c.fs.String("out", "-", "write to this file (atomically) instead of stdout (-)")
	if err := c.noArgs(args); err != nil {
		return err
	}
	v, data, err := f.load()
	if err != nil {
		return err
	}
	if *pemID != "" {
		k := v.Key(*pemID)
		if k == nil {
			return fmt.Errorf("%w: --pem %s is not in the manifest", hsm.ErrKeyNotFound, *pemID)
		}
		data = []byte(k.PublicKeyPEM)
	}
	if *out == "-" {
		_, err = stdout.Write(data)
		return err
	}
	if err := atomicfile.WriteFile(*out, data, 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

func keysStatus(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("keys status", "[flags]", stdout, stderr)
	f := addManifestFlags(c.fs)
	if err := c.noArgs(args); err != nil {
		return err
	}
	v, _, err := f.load()
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	a := v.Active()
	revoked := 0
	for i := range v.Keys {
		if !v.Keys[i].RevokedAt.IsZero() {
			revoked++
		}
	}
	st := struct {
		ActiveKey     keyView         `json:"active_key"`
		FirstKeyID    string          `json:"first_key_id"`
		Pinned        bool            `json:"pinned"`
		Policy        manifest.Policy `json:"policy"`
		AgeSeconds    int64           `json:"age_seconds"`
		RotatesIn     int64           `json:"rotates_in_seconds"`
		RotationDue   bool            `json:"rotation_due"`
		Keys          int             `json:"keys"`
		Revoked       int             `json:"revoked"`
		ManifestEntry int             `json:"manifest_entries"`
		HeadHash      string          `json:"head_hash"`
	}{viewOf(a), v.Keys[0].ID, *f.pinned != "", v.Policy, int64(now.Sub(a.ActiveFrom).Seconds()), int64(a.Expires.Sub(now).Seconds()),
		!now.Before(a.Expires), len(v.Keys), revoked, len(v.Manifest.Entries), v.Head().Hash}
	if *f.format == "json" {
		return writeJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "active key:   %s (%s)\n", a.ID, a.Algorithm)
	pinned := "not pinned: integrity only"
	if st.Pinned {
		pinned = "pinned, fresh"
	}
	fmt.Fprintf(stdout, "first key:    %s (%s)\n", st.FirstKeyID, pinned)
	fmt.Fprintf(stdout, "policy:       %s, max age %s\n", v.Policy.Algorithm, v.Policy.MaxAge())
	fmt.Fprintf(stdout, "active since: %s (%s ago)\n", a.ActiveFrom.Format(time.RFC3339), now.Sub(a.ActiveFrom).Round(time.Second))
	fmt.Fprintf(stdout, "expires:      %s (rotation due: %v)\n", a.Expires.Format(time.RFC3339), st.RotationDue)
	fmt.Fprintf(stdout, "keys:         %d (%d revoked), %d manifest entries\n", st.Keys, st.Revoked, st.ManifestEntry)
	return nil
}

// keysVerify is the auditor's check: the manifest against the pinned first
// key, and freshness against the newest manifest this verifier saw.
func keysVerify(_ context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("keys verify", "--pinned FIRST_ID|@FILE [flags]", stdout, stderr)
	f := addManifestFlags(c.fs)
	if err := c.noArgs(args); err != nil {
		return err
	}
	if *f.pinned == "" {
		return fmt.Errorf("%w: keys verify needs --pinned FIRST_ID (or @FILE): the first key id you obtained out of band", errUsage)
	}
	v, _, err := f.load()
	if err != nil {
		return err
	}
	h := v.Head()
	out := struct {
		OK         bool            `json:"ok"`
		FirstKeyID string          `json:"first_key_id"`
		Entries    uint64          `json:"entries"`
		HeadHash   string          `json:"head_hash"`
		ActiveKey  string          `json:"active_key_id"`
		Policy     manifest.Policy `json:"policy"`
		Keys       []keyView       `json:"keys"`
	}{true, h.FirstKeyID, h.Size, h.Hash, v.Active().ID, v.Policy, nil}
	for i := range v.Keys {
		out.Keys = append(out.Keys, viewOf(&v.Keys[i]))
	}
	if *f.format == "json" {
		return writeJSON(stdout, out)
	}
	fmt.Fprintf(stdout, "manifest OK: first key %s, %d entries, head %s, active key %s\n", h.FirstKeyID, h.Size, h.Hash, out.ActiveKey)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
