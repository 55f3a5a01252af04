package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"

	"github.com/tradecore/tradecore/hsm/remote"
)

// runSigner serves the signing service on a unix socket until ctx is done
// (SIGINT/SIGTERM). Callers connect with remote.Dial. It re-reads the key
// manifest before every signature and every second, so rotations and
// revocations made by `tradecore keys` take effect here at once.
func runSigner(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("signer", "--socket PATH [flags]", stdout, stderr)
	f := addTokenFlags(c.fs)
	socket := c.fs.String("socket", "", "unix socket path to serve on (required); locked, so a second signer is refused")
	allow := c.fs.String("allow-uid", "", "comma-separated uids allowed to sign (default: this process's uid)")
	group := c.fs.String("socket-group", "", "group (name or gid) of the socket file, e.g. the trading process's group")
	maxConns := c.fs.Int("max-conns", remote.DefaultMaxConns, "most connections served at once")
	err := c.noArgs(args)
	if err == errHelpShown {
		return nil
	}
	if err != nil {
		return err
	}
	if *socket == "" {
		return fmt.Errorf("%w: signer needs --socket PATH", errUsage)
	}
	if *maxConns < 1 {
		return fmt.Errorf("%w: --max-conns %d: use a positive number", errUsage, *maxConns)
	}
	var uids []int
	if *allow != "" {
		for _, s := range strings.Split(*allow, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 0 {
				return fmt.Errorf("%w: --allow-uid %q: want comma-separated uids", errUsage, *allow)
			}
			uids = append(uids, n)
		}
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	// Lock the socket before touching the token: a second signer leaves.
	ln, closeLn, err := remote.Listen(*socket, remote.ListenConfig{Group: *group})
	if err != nil {
		return err
	}
	defer closeLn()
	svc, closeAll, err := openService(ctx, f.selection(), log, true)
	if err != nil {
		return err
	}
	defer closeAll()
	scfg := remote.ServerConfig{AllowUIDs: uids, MaxConns: *maxConns, Logger: log}
	log.Info("signer: serving", "socket", *socket, "socket_group", *group, "active_key_id", svc.Active().ID,
		"first_key_id", svc.FirstKeyID(), "allow_uids", fmt.Sprint(scfg.EffectiveAllowUIDs()), "max_conns", *maxConns)
	err = remote.Serve(ctx, ln, svc, scfg)
	log.Info("signer: stopped")
	return err
}
