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
	"text/tabwriter"
	"time"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/manifest"
	"github.com/tradecore/tradecore/softhsm"
)

const keysUsage = `usage: tradecore keys <command> [flags]

commands:
  init                 create the HSM token (local SoftHSM default) and the first signing key
  list                 list every key version in the manifest
  rotate               activate a new signing key now
  revoke ID --reason R revoke key ID (compromise) from --at (default now); activates a new key
  export               print the verified key manifest (JSON), or --pem ID for one public key
  status               the active key, its age and when it rotates

Common flags: --data-dir, --format text|json, and for the token --module, --token,
--pin-file, --pin-env (default: SoftHSM2 under <data-dir>/softhsm, token "tradecore",
PIN in <data-dir>/softhsm/user.pin). The manifest is <data-dir>/keys/manifest.json.
Exit codes: 0 success, 1 failure, 2 usage error.
`

// hsmFlags are the flags that select the token.
type hsmFlags struct {
	dataDir, module, token, pinFile, pinEnv, format *string
}

func addHSMFlags(fs *flag.FlagSet) *hsmFlags {
	return &hsmFlags{
		dataDir: dataDirFlag(fs),
		module:  fs.String("module", "", "PKCS#11 module path (default: SoftHSM2 under <data-dir>/softhsm)"),
		token:   fs.String("token", hsm.DefaultTokenLabel, "token label"),
		pinFile: fs.String("pin-file", "", "file holding the user PIN (default <data-dir>/softhsm/user.pin for the local SoftHSM)"),
		pinEnv:  fs.String("pin-env", "", "environment variable holding the user PIN (when --pin-file is empty)"),
		format:  fs.String("format", "text", "output format: text or json"),
	}
}

func (f *hsmFlags) keysDir() string { return f.selection().keysDir() }

// selection is the token the flags select.
func (f *hsmFlags) selection() tokenSelection {
	return tokenSelection{DataDir: *f.dataDir, Module: *f.module, Token: *f.token, PINFile: *f.pinFile, PINEnv: *f.pinEnv}
}

// tokenSelection names a token and where the key manifest lives. With no
// Module, PINFile or PINEnv it is the local SoftHSM2 default under DataDir.
type tokenSelection struct {
	DataDir, Module, Token, PINFile, PINEnv string
}

func (t tokenSelection) keysDir() string { return filepath.Join(t.DataDir, "keys") }

func (f *hsmFlags) checkFormat() error {
	if *f.format != "text" && *f.format != "json" {
		return fmt.Errorf("%w: --format %q: use text or json", errUsage, *f.format)
	}
	return nil
}

// openToken opens the token the flags select (see tokenSelection.open).
func (f *hsmFlags) openToken(ctx context.Context, log *slog.Logger, create bool) (*hsm.Token, func() error, error) {
	return f.selection().open(ctx, log, create)
}

// open opens the token. The local SoftHSM2 default is created when create is
// true (keys init, and make run).
func (t tokenSelection) open(ctx context.Context, log *slog.Logger, create bool) (*hsm.Token, func() error, error) {
	cfg := hsm.Config{Module: t.Module, TokenLabel: t.Token, PINFile: t.PINFile, PINEnv: t.PINEnv, Logger: log}
	if t.Module == "" && t.PINFile == "" && t.PINEnv == "" {
		scfg := softhsm.Config{Dir: filepath.Join(t.DataDir, "softhsm"), Label: t.Token}
		var st *softhsm.Token
		var err error
		if create {
			st, err = softhsm.Ensure(ctx, scfg)
		} else {
			st, err = softhsm.Find(ctx, scfg)
		}
		if errors.Is(err, softhsm.ErrTokenNotFound) {
			return nil, nil, fmt.Errorf("%w (run 'tradecore keys init --data-dir %s')", err, t.DataDir)
		}
		if err != nil {
			return nil, nil, err
		}
		cfg.Module, cfg.PINFile = st.Module, st.UserPINFile
	}
	return hsm.Open(ctx, cfg)
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
	switch cmd {
	case "init":
		return keysInit(ctx, rest, stdout, stderr)
	case "list":
		return keysList(ctx, rest, stdout, stderr)
	case "rotate":
		return keysRotate(ctx, rest, stdout, stderr)
	case "revoke":
		return keysRevoke(ctx, rest, stdout, stderr)
	case "export":
		return keysExport(ctx, rest, stdout, stderr)
	case "status":
		return keysStatus(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	default:
		fmt.Fprint(stderr, keysUsage)
		return fmt.Errorf("%w: unknown keys command %q", errUsage, cmd)
	}
}

// parse parses flags, allowing positional arguments before and after them;
// it returns the positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %w", errUsage, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tradecore keys "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func keysInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("init", stderr)
	f := addHSMFlags(fs)
	alg := fs.String("algorithm", string(hsm.Ed25519), "signing algorithm: ed25519 or ecdsa-p256")
	maxAge := fs.Duration("max-age", hsm.DefaultMaxAge, "key age at which it is rotated")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return fmt.Errorf("%w: keys init takes no arguments", errUsage)
	}
	if err := f.checkFormat(); err != nil {
		return err
	}
	if *alg != string(hsm.Ed25519) && *alg != string(hsm.ECDSAP256) {
		return fmt.Errorf("%w: --algorithm %q: use ed25519 or ecdsa-p256", errUsage, *alg)
	}
	log := cliLogger(stderr)
	tok, closeTok, err := f.openToken(ctx, log, true)
	if err != nil {
		return err
	}
	defer closeTok()
	created, err := hsm.Init(ctx, tok, hsm.ServiceConfig{Dir: f.keysDir(), Algorithm: hsm.Algorithm(*alg), MaxAge: *maxAge, Logger: log})
	if err != nil {
		return err
	}
	v, err := loadManifest(f.keysDir())
	if err != nil {
		return err
	}
	out := struct {
		Created    bool   `json:"created"`
		FirstKeyID string `json:"first_key_id"`
		ActiveKey  string `json:"active_key_id"`
		Manifest   string `json:"manifest"`
	}{created, v.Keys[0].ID, v.Active().ID, filepath.Join(f.keysDir(), hsm.ManifestFile)}
	if *f.format == "json" {
		return writeJSON(stdout, out)
	}
	if created {
		fmt.Fprintf(stdout, "initialised: first key %s (pin this id to verify the manifest offline)\n", out.FirstKeyID)
	} else {
		fmt.Fprintf(stdout, "already initialised: first key %s, active key %s\n", out.FirstKeyID, out.ActiveKey)
	}
	return nil
}

// loadManifest reads and verifies the manifest against its own first key
// (integrity of the chain; an auditor pins the first id out of band).
func loadManifest(dir string) (*manifest.Verified, error) {
	data, err := os.ReadFile(filepath.Join(dir, hsm.ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: no manifest in %s (run 'tradecore keys init')", hsm.ErrNotInitialized, dir)
	}
	if err != nil {
		return nil, err
	}
	m, err := manifest.Parse(data)
	if err != nil {
		return nil, err
	}
	if len(m.Entries) == 0 {
		return nil, fmt.Errorf("%w: no entries", manifest.ErrInvalid)
	}
	return manifest.VerifyManifest(m, m.Entries[0].Key.ID)
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
	return v
}

func keysList(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("list", stderr)
	f := addHSMFlags(fs)
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return fmt.Errorf("%w: keys list takes no arguments", errUsage)
	}
	if err := f.checkFormat(); err != nil {
		return err
	}
	v, err := loadManifest(f.keysDir())
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
	fmt.Fprintln(tw, "ID\tALGORITHM\tSTATE\tACTIVE FROM\tEXPIRES\tREVOKED")
	for _, k := range views {
		rev := "-"
		if k.RevokedAt != nil {
			rev = k.RevokedAt.Format(time.RFC3339) + " (" + k.RevokeReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, k.ActiveFrom.Format(time.RFC3339), k.Expires.Format(time.RFC3339), rev)
	}
	return tw.Flush()
}

func openService(ctx context.Context, f *hsmFlags, log *slog.Logger, interval time.Duration) (*hsm.Service, func() error, error) {
	if _, err := os.Stat(filepath.Join(f.keysDir(), hsm.ManifestFile)); err != nil {
		return nil, nil, fmt.Errorf("%w: no manifest in %s (run 'tradecore keys init')", hsm.ErrNotInitialized, f.keysDir())
	}
	tok, closeTok, err := f.openToken(ctx, log, false)
	if err != nil {
		return nil, nil, err
	}
	svc, closeSvc, err := hsm.NewService(ctx, tok, hsm.ServiceConfig{Dir: f.keysDir(), Logger: log, CheckInterval: interval})
	if err != nil {
		closeTok()
		return nil, nil, err
	}
	return svc, func() error { return errors.Join(closeSvc(), closeTok()) }, nil
}

func keysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("rotate", stderr)
	f := addHSMFlags(fs)
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return fmt.Errorf("%w: keys rotate takes no arguments", errUsage)
	}
	if err := f.checkFormat(); err != nil {
		return err
	}
	svc, closeAll, err := openService(ctx, f, cliLogger(stderr), -1)
	if err != nil {
		return err
	}
	defer closeAll()
	old := svc.Active().ID
	k, err := svc.Rotate(ctx)
	if err != nil {
		return err
	}
	if *f.format == "json" {
		return writeJSON(stdout, map[string]any{"previous_key_id": old, "key": viewOf(&k)})
	}
	fmt.Fprintf(stdout, "rotated: %s -> %s (expires %s)\n", old, k.ID, k.Expires.Format(time.RFC3339))
	return nil
}

func keysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("revoke", stderr)
	f := addHSMFlags(fs)
	reason := fs.String("reason", "", "why the key is revoked (required)")
	at := fs.String("at", "", "RFC 3339 time from which the key is compromised (default now)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: keys revoke takes exactly one key id", errUsage)
	}
	if *reason == "" {
		return fmt.Errorf("%w: keys revoke needs --reason", errUsage)
	}
	if err := f.checkFormat(); err != nil {
		return err
	}
	var when time.Time
	if *at != "" {
		if when, err = time.Parse(time.RFC3339Nano, *at); err != nil {
			return fmt.Errorf("%w: --at: %w", errUsage, err)
		}
	}
	svc, closeAll, err := openService(ctx, f, cliLogger(stderr), -1)
	if err != nil {
		return err
	}
	defer closeAll()
	k, err := svc.Revoke(ctx, pos[0], when, *reason)
	if err != nil {
		return err
	}
	if *f.format == "json" {
		return writeJSON(stdout, map[string]any{"revoked_key_id": pos[0], "key": viewOf(&k)})
	}
	fmt.Fprintf(stdout, "revoked: %s; active key now %s\n", pos[0], k.ID)
	return nil
}

func keysExport(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("export", stderr)
	f := addHSMFlags(fs)
	pemID := fs.String("pem", "", "print only this key's public key as PEM")
	pin := fs.String("pinned", "", "verify the manifest against this first key id (default: its own first entry)")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return fmt.Errorf("%w: keys export takes no arguments", errUsage)
	}
	if err := f.checkFormat(); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(f.keysDir(), hsm.ManifestFile))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: no manifest in %s (run 'tradecore keys init')", hsm.ErrNotInitialized, f.keysDir())
	}
	if err != nil {
		return err
	}
	v, err := loadManifest(f.keysDir())
	if err != nil {
		return err
	}
	if *pin != "" {
		if v, err = manifest.Verify(data, *pin); err != nil {
			return err
		}
	}
	if *pemID != "" {
		k := v.Key(*pemID)
		if k == nil {
			return fmt.Errorf("%w: %s is not in the manifest", hsm.ErrKeyNotFound, *pemID)
		}
		_, err := io.WriteString(stdout, k.PublicKeyPEM)
		return err
	}
	_, err = stdout.Write(data)
	return err
}

func keysStatus(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("status", stderr)
	f := addHSMFlags(fs)
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return fmt.Errorf("%w: keys status takes no arguments", errUsage)
	}
	if err := f.checkFormat(); err != nil {
		return err
	}
	v, err := loadManifest(f.keysDir())
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
		ActiveKey     keyView `json:"active_key"`
		FirstKeyID    string  `json:"first_key_id"`
		AgeSeconds    int64   `json:"age_seconds"`
		RotatesIn     int64   `json:"rotates_in_seconds"`
		RotationDue   bool    `json:"rotation_due"`
		Keys          int     `json:"keys"`
		Revoked       int     `json:"revoked"`
		ManifestEntry int     `json:"manifest_entries"`
	}{viewOf(a), v.Keys[0].ID, int64(now.Sub(a.ActiveFrom).Seconds()), int64(a.Expires.Sub(now).Seconds()),
		!now.Before(a.Expires), len(v.Keys), revoked, len(v.Manifest.Entries)}
	if *f.format == "json" {
		return writeJSON(stdout, st)
	}
	fmt.Fprintf(stdout, "active key:   %s (%s)\n", a.ID, a.Algorithm)
	fmt.Fprintf(stdout, "first key:    %s\n", st.FirstKeyID)
	fmt.Fprintf(stdout, "active since: %s (%s ago)\n", a.ActiveFrom.Format(time.RFC3339), now.Sub(a.ActiveFrom).Round(time.Second))
	fmt.Fprintf(stdout, "expires:      %s (rotation due: %v)\n", a.Expires.Format(time.RFC3339), st.RotationDue)
	fmt.Fprintf(stdout, "keys:         %d (%d revoked)\n", st.Keys, st.Revoked)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
