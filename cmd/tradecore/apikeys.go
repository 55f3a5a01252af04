package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tradecore/tradecore/gateway/apikey"
	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/internal/atomicfile"
)

const apikeysUsage = `usage: tradecore apikeys <command> [flags]

API keys of the order-entry and market-data ports (docs/protocol.md). Secrets
are sealed by the data vault in the HSM; a secret is shown once, at create or
rotate. A key created with --require-device logs in only from that TPM-attested
device (any approved one with "any"; tradecore attest list shows the ids);
rotation keeps the requirement.

commands:
  create --user U --scope trade[,data] [--account N] [--allow CIDR,...] [--require-device ID|any] [--out FILE]
  list
  rotate ID [--grace 24h] [--out FILE]
  revoke ID --reason R
`

func runAPIKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, apikeysUsage)
		return errUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "create":
		err = apikeysCreate(ctx, rest, stdout, stderr)
	case "list":
		err = apikeysList(ctx, rest, stdout, stderr)
	case "rotate":
		err = apikeysRotate(ctx, rest, stdout, stderr)
	case "revoke":
		err = apikeysRevoke(ctx, rest, stdout, stderr)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, apikeysUsage)
		return nil
	default:
		fmt.Fprint(stderr, apikeysUsage)
		return fmt.Errorf("%w: unknown apikeys command %q", errUsage, cmd)
	}
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

// gatewayDir is where the API key store lives.
func gatewayDir(dataDir string) string { return filepath.Join(dataDir, "gateway") }

// openAPIKeys opens the token, the data vault and the key store.
func openAPIKeys(ctx context.Context, sel tokenSelection, log *slog.Logger) (*apikey.Store, func() error, error) {
	tok, closeTok, err := sel.open(ctx, log, true)
	if err != nil {
		return nil, nil, err
	}
	v, closeV, err := hsm.NewVault(ctx, tok, hsm.VaultConfig{Dir: sel.keysDir()})
	if err != nil {
		closeTok()
		return nil, nil, fmt.Errorf("open the data vault: %w", err)
	}
	closeAll := func() error { return errors.Join(closeV(), closeTok()) }
	st, err := apikey.Open(ctx, apikey.Config{Dir: gatewayDir(sel.DataDir), Sealer: apikey.VaultSealer(v)})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return st, closeAll, nil
}

// KeyFile is what --out writes for a client (tcclient --key-file): the key
// id, its secret in hex, and the account. Mode 0600: it holds a secret.
type KeyFile struct {
	KeyID   string `json:"key_id"`
	Secret  string `json:"secret"`
	Account uint32 `json:"account"`
}

func writeKeyFile(path string, k apikey.Key, secret []byte) error {
	var b strings.Builder
	if err := writeJSON(&b, KeyFile{KeyID: k.ID, Secret: hex.EncodeToString(secret), Account: k.Account}); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, []byte(b.String()), 0o600)
}

type apikeyView struct {
	ID          string   `json:"id"`
	User        string   `json:"user"`
	Account     uint32   `json:"account"`
	Scopes      []string `json:"scopes"`
	Allow       []string `json:"allow,omitempty"`
	Created     string   `json:"created"`
	Expires     string   `json:"expires"`
	State       string   `json:"state"`
	RotatedFrom string   `json:"rotated_from,omitempty"`
	RotatedTo   string   `json:"rotated_to,omitempty"`
	// RequireDevice is "" (no attestation), "any", or a device id.
	RequireDevice string `json:"require_device,omitempty"`
	Secret        string `json:"secret,omitempty"`
}

func viewOfAPIKey(k *apikey.Key, now time.Time) apikeyView {
	v := apikeyView{ID: k.ID, User: k.User, Account: k.Account, Allow: k.Allow, Created: k.Created.Format(time.RFC3339),
		Expires: k.Expires.Format(time.RFC3339), State: "active", RotatedFrom: k.RotatedFrom, RotatedTo: k.RotatedTo,
		RequireDevice: k.RequireDevice}
	for _, s := range k.Scopes {
		v.Scopes = append(v.Scopes, string(s))
	}
	switch err := k.State(now); {
	case errors.Is(err, apikey.ErrRevoked):
		v.State = "revoked"
	case errors.Is(err, apikey.ErrExpired):
		v.State = "expired"
	case k.RotatedTo != "":
		v.State = "rotated (grace)"
	}
	return v
}

func printNewKey(stdout, stderr io.Writer, format string, k apikey.Key, secret []byte, out string) error {
	if out != "" {
		if err := writeKeyFile(out, k, secret); err != nil {
			return fmt.Errorf("write --out %s: %w", out, err)
		}
	}
	v := viewOfAPIKey(&k, time.Now())
	v.Secret = hex.EncodeToString(secret)
	fmt.Fprintln(stderr, "The secret is shown once and stored nowhere in plain text: give it to the client now.")
	if format == "json" {
		return writeJSON(stdout, v)
	}
	fmt.Fprintf(stdout, "key id:  %s\nsecret:  %s\naccount: %d\nscopes:  %s\nexpires: %s\ndevice:  %s\n", k.ID, v.Secret, k.Account,
		strings.Join(v.Scopes, ","), v.Expires, deviceColumn(k.RequireDevice))
	return nil
}

func apikeysCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("apikeys create", "--user U --scope trade[,data] [--account N] [flags]", stdout, stderr)
	f := addTokenFlags(c.fs)
	format := formatFlag(c.fs)
	user := c.fs.String("user", "", "the user's id (a random id, not a name; required)")
	account := c.fs.Uint("account", 0, "the account the key trades for (required with the trade scope)")
	scopes := c.fs.String("scope", "trade", "scopes, comma-separated: trade, data")
	allow := c.fs.String("allow", "", "source addresses or CIDR prefixes allowed, comma-separated (default any)")
	lifetime := c.fs.Duration("lifetime", apikey.DefaultLifetime, "validity, at most 90 days (2160h)")
	out := c.fs.String("out", "", "also write a key file (id, secret, account; mode 0600) for tcclient --key-file")
	device := c.fs.String("require-device", "", "admit the key only from this TPM-attested device id, or \"any\" approved device (default: no attestation)")
	if err := c.noArgs(args); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	if *account > 1<<32-1 {
		return fmt.Errorf("%w: --account %d does not fit 32 bits", errUsage, *account)
	}
	if err := apikey.CheckDeviceRequirement(*device); err != nil {
		return fmt.Errorf("%w: --require-device: %w", errUsage, err)
	}
	req := apikey.CreateRequest{User: *user, Account: uint32(*account), Lifetime: *lifetime, RequireDevice: *device}
	for _, s := range splitList(*scopes) {
		req.Scopes = append(req.Scopes, apikey.Scope(s))
	}
	req.Allow = splitList(*allow)
	st, closeAll, err := openAPIKeys(ctx, f.selection(), cliLogger(stderr))
	if err != nil {
		return err
	}
	defer closeAll()
	k, secret, err := st.Create(ctx, req)
	if err != nil {
		return err
	}
	return printNewKey(stdout, stderr, *format, k, secret, *out)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func apikeysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("apikeys list", "[flags]", stdout, stderr)
	f := addTokenFlags(c.fs)
	format := formatFlag(c.fs)
	if err := c.noArgs(args); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	st, closeAll, err := openAPIKeys(ctx, f.selection(), cliLogger(stderr))
	if err != nil {
		return err
	}
	defer closeAll()
	keys, err := st.List(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	views := make([]apikeyView, 0, len(keys))
	for i := range keys {
		views = append(views, viewOfAPIKey(&keys[i], now))
	}
	if *format == "json" {
		return writeJSON(stdout, views)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tUSER\tACCOUNT\tSCOPES\tDEVICE\tEXPIRES\tSTATE")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", v.ID, v.User, v.Account, strings.Join(v.Scopes, ","), deviceColumn(v.RequireDevice), v.Expires, v.State)
	}
	return tw.Flush()
}

func apikeysRotate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("apikeys rotate", "ID [--grace D] [flags]", stdout, stderr)
	f := addTokenFlags(c.fs)
	format := formatFlag(c.fs)
	grace := c.fs.Duration("grace", apikey.DefaultGrace, "how long the old key keeps working")
	out := c.fs.String("out", "", "also write a key file of the new key for tcclient --key-file")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: apikeys rotate takes exactly one key id", errUsage)
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	st, closeAll, err := openAPIKeys(ctx, f.selection(), cliLogger(stderr))
	if err != nil {
		return err
	}
	defer closeAll()
	k, secret, err := st.Rotate(ctx, pos[0], *grace)
	if err != nil {
		return err
	}
	return printNewKey(stdout, stderr, *format, k, secret, *out)
}

func apikeysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("apikeys revoke", "ID --reason R [flags]", stdout, stderr)
	f := addTokenFlags(c.fs)
	format := formatFlag(c.fs)
	reason := c.fs.String("reason", "", "why (required; no personal data)")
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: apikeys revoke takes exactly one key id", errUsage)
	}
	if *reason == "" {
		return fmt.Errorf("%w: apikeys revoke needs --reason", errUsage)
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	st, closeAll, err := openAPIKeys(ctx, f.selection(), cliLogger(stderr))
	if err != nil {
		return err
	}
	defer closeAll()
	k, err := st.Revoke(ctx, pos[0], *reason)
	if err != nil {
		return err
	}
	if *format == "json" {
		return writeJSON(stdout, viewOfAPIKey(&k, time.Now()))
	}
	fmt.Fprintf(stdout, "revoked: %s (user %s, account %d); running servers refuse it at the next login\n", k.ID, k.User, k.Account)
	return nil
}

// deviceColumn shows a key's device requirement.
func deviceColumn(req string) string {
	if req == "" {
		return "-"
	}
	return req
}
