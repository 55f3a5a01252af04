package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/tradecore/tradecore/tpm"
	"github.com/tradecore/tradecore/tpm/device"
)

const attestUsage = `usage: tcclient attest <step> [flags]

steps (device side of TPM attestation, docs/attestation.md):
  enroll         create a new attestation key in the TPM; print the enroll request
                 for 'tradecore attest enroll'
  activate FILE  answer the server's activation challenge; print the activation proof
                 for 'tradecore attest activate'
  quote FILE     answer an attestation challenge ('tradecore attest challenge');
                 print the quote response for 'tradecore attest verify'

FILE may be - for standard input. Flags:
  --tpm PATH  the TPM: a character device or a swtpm unix socket
              (default $TCCLIENT_TPM, else /dev/tpmrm0)
  --key FILE  the attestation key file (default $TCCLIENT_DIR/ak.json, else ./tcclient/ak.json);
              enroll writes FILE.new, activate makes it FILE once the server accepts it
  --out FILE  write the message to FILE instead of standard output
Exit codes: 0 success, 1 failure, 2 usage error.
`

func runAttest(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, attestUsage)
		return errUsage
	}
	step := args[0]
	if step == "help" || step == "-h" || step == "--help" {
		fmt.Fprint(stdout, attestUsage)
		return nil
	}
	if step != "enroll" && step != "activate" && step != "quote" {
		fmt.Fprint(stderr, attestUsage)
		return fmt.Errorf("%w: unknown attest step %q", errUsage, step)
	}
	fs := flag.NewFlagSet("tcclient attest "+step, flag.ContinueOnError)
	fs.SetOutput(stderr)
	tpmPath := fs.String("tpm", envOr("TCCLIENT_TPM", device.DefaultPath), "TPM character device or swtpm unix socket")
	defKey := filepath.Join("tcclient", "ak.json")
	if d := os.Getenv("TCCLIENT_DIR"); d != "" {
		defKey = filepath.Join(d, "ak.json")
	}
	keyPath := fs.String("key", defKey, "attestation key file")
	outPath := fs.String("out", "", "write the message here instead of standard output")
	pos, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	wantArgs := 1
	if step == "enroll" {
		wantArgs = 0
	}
	if len(pos) != wantArgs {
		if wantArgs == 0 {
			return fmt.Errorf("%w: attest enroll takes no arguments", errUsage)
		}
		return fmt.Errorf("%w: attest %s takes the challenge FILE (or -)", errUsage, step)
	}
	var in []byte
	if wantArgs == 1 {
		if in, err = readInput(pos[0]); err != nil {
			return err
		}
	}
	t, closeTPM, err := device.Open(*tpmPath)
	if err != nil {
		return err
	}
	defer closeTPM()

	var msg any
	switch step {
	case "enroll":
		k, err := t.CreateAK()
		if err != nil {
			return err
		}
		req, err := t.EnrollRequest(k)
		if err != nil {
			return err
		}
		if err := k.Save(*keyPath + ".new"); err != nil {
			return fmt.Errorf("save the new AK: %w (choose another --key)", err)
		}
		msg = req
	case "activate":
		ch, err := tpm.ParseActivationChallenge(in)
		if err != nil {
			return err
		}
		k, err := device.LoadKey(*keyPath + ".new")
		if err != nil {
			return err
		}
		proof, err := t.Activate(k, ch)
		if err != nil {
			return err
		}
		// Keep the device id with the AK: a trading login announces it
		// (tcclient --device-key) without recreating the EK.
		k.DeviceID = ch.DeviceID
		if err := k.Save(*keyPath + ".new"); err != nil {
			return fmt.Errorf("save the AK: %w", err)
		}
		// The server accepts the AK only if this proof passes; the key
		// file is useless to anyone else (wrapped by this TPM), so it
		// replaces the old one now.
		if err := os.Rename(*keyPath+".new", *keyPath); err != nil {
			return fmt.Errorf("install the AK: %w", err)
		}
		msg = proof
	case "quote":
		ch, err := tpm.ParseChallenge(in)
		if err != nil {
			return err
		}
		k, err := device.LoadKey(*keyPath)
		if errors.Is(err, device.ErrNoKey) {
			return fmt.Errorf("%w (or pass --key)", err)
		}
		if err != nil {
			return err
		}
		q, err := t.Quote(k, ch)
		if err != nil {
			return err
		}
		msg = q
	}
	b, err := tpm.Marshal(msg)
	if err != nil {
		return err
	}
	if *outPath != "" {
		return os.WriteFile(*outPath, b, 0o600)
	}
	_, err = stdout.Write(b)
	return err
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// parseArgs parses flags, allowing positional arguments before and after.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
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
	return io.ReadAll(io.LimitReader(r, tpm.MaxMessageSize+1))
}
