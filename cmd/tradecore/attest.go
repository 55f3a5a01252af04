package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tradecore/tradecore/tpm"
)

const attestUsage = `usage: tradecore attest <command> [flags]

commands (server side of TPM device attestation, docs/attestation.md):
  enroll FILE            check a device's enroll request (from 'tcclient attest enroll');
                         print the activation challenge for the device
  activate FILE          check the device's activation proof; the device is enrolled, awaiting approval
  approve ID --pin PCRS  approve, pinning these PCRs of the enrolment snapshot (e.g. 0,2,4,7)
  approve ID --policy N  approve under class policy N
  revoke ID --reason R   revoke the device for good
  list                   every device, its state and policy
  policy set FILE        create or replace a class policy;  policy list: every policy
  challenge ID           print a fresh attestation challenge for the device
  verify FILE            verify the device's quote response; print the attestation

FILE may be - for standard input. Common flags: --data-dir, --format text|json;
enroll also --ek-ca PATH (PEM bundle of EK manufacturer CAs, default <data-dir>/tpm/ek-ca.pem).
State lives in <data-dir>/tpm (shared with the daemon). Audit records are queued in the audit
log's inbox (<data-dir>/audit/inbox) and recorded in the log by tradecore serve, or by
'tradecore audit ingest' when serve is not running.
Exit codes: 0 success, 1 failure or rejection (the reason code is printed), 2 usage error.
`

func runAttest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, attestUsage)
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "enroll", "activate", "approve", "revoke", "list", "policy", "challenge", "verify":
		return attestCommand(ctx, cmd, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, attestUsage)
		return nil
	default:
		fmt.Fprint(stderr, attestUsage)
		return fmt.Errorf("%w: unknown attest command %q", errUsage, cmd)
	}
}

func attestCommand(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tradecore attest "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := dataDirFlag(fs)
	format := fs.String("format", "text", "output format: text or json")
	ekCA := fs.String("ek-ca", "", "PEM bundle of trusted EK manufacturer CAs (enroll; default <data-dir>/tpm/ek-ca.pem)")
	pin := fs.String("pin", "", "approve: comma-separated PCRs of the enrolment snapshot to pin")
	policy := fs.String("policy", "", "approve: the class policy to approve the device under")
	reason := fs.String("reason", "", "revoke: why the device is revoked (required)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if *format != "text" && *format != "json" {
		return fmt.Errorf("%w: --format %q: use text or json", errUsage, *format)
	}
	want := map[string]int{"enroll": 1, "activate": 1, "approve": 1, "revoke": 1, "list": 0, "challenge": 1, "verify": 1}
	if cmd == "policy" {
		if len(pos) == 0 || (pos[0] == "set" && len(pos) != 2) || (pos[0] == "list" && len(pos) != 1) || (pos[0] != "set" && pos[0] != "list") {
			return fmt.Errorf("%w: use 'attest policy set FILE' or 'attest policy list'", errUsage)
		}
	} else if len(pos) != want[cmd] {
		if want[cmd] == 0 {
			return fmt.Errorf("%w: attest %s takes no arguments", errUsage, cmd)
		}
		return fmt.Errorf("%w: attest %s takes exactly one argument", errUsage, cmd)
	}
	var pins []int
	if cmd == "approve" {
		if (*pin == "") == (*policy == "") {
			return fmt.Errorf("%w: attest approve needs exactly one of --pin PCRS or --policy NAME", errUsage)
		}
		if pins, err = parsePCRList(*pin); err != nil {
			return err
		}
	}
	if cmd == "revoke" && *reason == "" {
		return fmt.Errorf("%w: attest revoke needs --reason", errUsage)
	}

	dir := filepath.Join(*dataDir, "tpm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w (choose another --data-dir)", dir, err)
	}
	rec := newInboxRecorder(*dataDir)
	defer rec.noteQueued(stderr)
	cfg := tpm.Config{Dir: dir, Recorder: rec, Logger: cliLogger(stderr)}
	if cmd == "enroll" {
		caPath := *ekCA
		if caPath == "" {
			caPath = filepath.Join(dir, "ek-ca.pem")
		}
		b, err := os.ReadFile(caPath)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %s does not exist (install the TPM vendors' EK CA certificates there, or pass --ek-ca)", tpm.ErrNoCAPool, caPath)
		}
		if err != nil {
			return err
		}
		if cfg.EKRoots, err = tpm.ParseCAPool(b); err != nil {
			return fmt.Errorf("--ek-ca %s: %w", caPath, err)
		}
	}
	a, closeA, err := tpm.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeA()
	out := func(v any, text func(w io.Writer)) error {
		if *format == "json" {
			return writeJSON(stdout, v)
		}
		text(stdout)
		return nil
	}

	switch cmd {
	case "enroll":
		b, err := readInput(pos[0])
		if err != nil {
			return err
		}
		req, err := tpm.ParseEnrollRequest(b)
		if err != nil {
			return err
		}
		ch, err := a.Enroll(ctx, req)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "device %s: EK certificate trusted; give this challenge to 'tcclient attest activate' before %s\n", ch.DeviceID, ch.Expires.Format(time.RFC3339))
		return writeMessage(stdout, ch)
	case "activate":
		b, err := readInput(pos[0])
		if err != nil {
			return err
		}
		p, err := tpm.ParseActivationProof(b)
		if err != nil {
			return err
		}
		d, err := a.Activate(ctx, p)
		if err != nil {
			return err
		}
		return out(d, func(w io.Writer) {
			fmt.Fprintf(w, "enrolled: device %s (AK %s); approve it with 'tradecore attest approve %s --pin PCRS' after checking its snapshot:\n", d.ID, d.AKName, d.ID)
			for _, v := range d.Snapshot {
				fmt.Fprintf(w, "  pcr %2d  %x\n", v.Index, v.Value)
			}
		})
	case "approve":
		d, err := a.Approve(ctx, pos[0], tpm.Approval{Policy: *policy, PinPCRs: pins})
		if err != nil {
			return err
		}
		return out(d, func(w io.Writer) { fmt.Fprintf(w, "approved: device %s under policy %s\n", d.ID, d.Policy) })
	case "revoke":
		d, err := a.Revoke(ctx, pos[0], *reason)
		if err != nil {
			return err
		}
		return out(d, func(w io.Writer) { fmt.Fprintf(w, "revoked: device %s (%s)\n", d.ID, d.RevokeReason) })
	case "list":
		ds, err := a.Devices(ctx)
		if err != nil {
			return err
		}
		if ds == nil {
			ds = []tpm.Device{}
		}
		return out(ds, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tSTATE\tPOLICY\tENROLLED\tLAST ATTESTED\tEK ISSUER")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.State, dash(d.Policy), stamp(d.EnrolledAt), stamp(d.AttestedAt), d.EKIssuer)
			}
			tw.Flush()
		})
	case "policy":
		if pos[0] == "list" {
			ps, err := a.Policies(ctx)
			if err != nil {
				return err
			}
			type view struct {
				Name   string `json:"name"`
				PCRs   []int  `json:"pcrs"`
				Digest string `json:"digest"`
			}
			vs := []view{}
			for _, p := range ps {
				vs = append(vs, view{p.Name, p.Selection(), hex.EncodeToString(p.Digest())})
			}
			return out(vs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tPCRS\tDIGEST")
				for _, v := range vs {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, joinInts(v.PCRs), v.Digest)
				}
				tw.Flush()
			})
		}
		b, err := readInput(pos[1])
		if err != nil {
			return err
		}
		p, err := tpm.ParsePolicy(b)
		if err != nil {
			return err
		}
		if err := a.SetPolicy(ctx, p); err != nil {
			return err
		}
		return out(map[string]any{"policy": p.Name, "pcrs": p.Selection()}, func(w io.Writer) {
			fmt.Fprintf(w, "policy %s set: PCRs %s\n", p.Name, joinInts(p.Selection()))
		})
	case "challenge":
		ch, err := a.Challenge(ctx, pos[0])
		if err != nil {
			return err
		}
		return writeMessage(stdout, ch)
	case "verify":
		b, err := readInput(pos[0])
		if err != nil {
			return err
		}
		q, err := tpm.ParseQuoteResponse(b)
		if err != nil {
			return err
		}
		att, err := a.Verify(ctx, q)
		if err != nil {
			return err
		}
		return out(att, func(w io.Writer) {
			fmt.Fprintf(w, "attested: device %s, policy %s, valid until %s (renew from %s)", att.DeviceID, att.Policy,
				att.Expires.Format(time.RFC3339), att.RenewAt.Format(time.RFC3339))
			if att.Rebooted {
				fmt.Fprint(w, "; the TPM was reset or restarted since the last attestation")
			}
			fmt.Fprintln(w)
		})
	}
	return nil
}

// parsePCRList parses "0,2,7".
func parsePCRList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n > 23 {
			return nil, fmt.Errorf("%w: --pin %q: list PCR indices 0..23 separated by commas", errUsage, s)
		}
		out = append(out, n)
	}
	return out, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// readInput reads a message file, or standard input for "-".
func readInput(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, tpm.MaxMessageSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

func writeMessage(w io.Writer, m any) error {
	b, err := tpm.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// openServeAttestor opens the daemon's attestor on <data-dir>/tpm, the
// state the `tradecore attest` verbs keep, recording straight into the
// audit log: the gateway attests device-bound logins with it
// (docs/protocol.md, "Device attestation"). Close it after the gateway.
func openServeAttestor(ctx context.Context, dataDir string, rec tpm.Recorder, log *slog.Logger) (*tpm.Attestor, func() error, error) {
	dir := filepath.Join(dataDir, "tpm")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", dir, err)
	}
	a, closeA, err := tpm.Open(ctx, tpm.Config{Dir: dir, Recorder: rec, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("device attestation: %w", err)
	}
	return a, closeA, nil
}
