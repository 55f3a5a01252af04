package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/tradecore/tradecore/hsm"
	"github.com/tradecore/tradecore/hsm/remote"
)

// runSigner serves the signing service on a unix socket until ctx is done
// (SIGINT/SIGTERM). Callers connect with remote.Dial.
func runSigner(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("signer", stderr)
	fs.Init("tradecore signer", fs.ErrorHandling())
	f := addHSMFlags(fs)
	socket := fs.String("socket", "", "unix socket path to serve on (required)")
	allow := fs.String("allow-uid", "", "comma-separated uids allowed to sign (default: this process's uid)")
	if pos, err := parse(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return fmt.Errorf("%w: signer takes no arguments", errUsage)
	}
	if *socket == "" {
		return fmt.Errorf("%w: signer needs --socket PATH", errUsage)
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
	svc, closeAll, err := openService(ctx, f, log, hsm.DefaultCheckInterval)
	if err != nil {
		return err
	}
	defer closeAll()
	ln, err := remote.Listen(*socket)
	if err != nil {
		return err
	}
	defer os.Remove(*socket)
	log.Info("signer: serving", "socket", *socket, "active_key_id", svc.Active().ID, "allow_uids", uids)
	err = remote.Serve(ctx, ln, svc, remote.ServerConfig{AllowUIDs: uids, Logger: log})
	log.Info("signer: stopped")
	return err
}
