// Package softhsm sets up SoftHSM2 tokens for tests and for tradecore's local
// default: one folder holds its own softhsm2.conf and token directory, and
// the generated PINs go to files of mode 0600 in a separate credentials
// folder outside it (so a copy of the data dir is not a working clone of the
// keys). Nothing is written to /etc and no PIN ever appears on a command
// line, in an error or in a log line.
//
// Use [Ensure] to create (or find again) a token by label; it returns a
// [Token] that names the PKCS#11 module, the token label and the user PIN
// file, which is everything hsm.Open needs:
//
//	tok, err := softhsm.Ensure(ctx, softhsm.Config{Dir: filepath.Join(dataDir, "softhsm"), PINDir: credentialsDir})
//	h, closeHSM, err := hsm.Open(ctx, hsm.Config{Module: tok.Module, TokenLabel: tok.Label, PINFile: tok.UserPINFile})
//
// The local default used by `tradecore keys init` and `make run` is the folder
// <data-dir>/softhsm with the token label "tradecore" and the PINs in the
// credentials folder (--credentials-dir, default $CREDENTIALS_DIRECTORY):
// hsm-user-pin and hsm-so-pin.
//
// # One configuration per process
//
// SoftHSM reads SOFTHSM2_CONF once, at C_Initialize, and a process loads a
// PKCS#11 module once: every session of the process shares that one
// initialisation. [Ensure] therefore sets SOFTHSM2_CONF in the process
// environment, and it fails with [ErrOtherConf] when the module is already
// initialised in this process from another configuration (finalise it first by
// closing every hsm handle). Tests that need several tokens at once put them in
// one folder: one folder holds any number of tokens (one per label), sharing
// the folder's configuration (and, with one PINDir, one PIN pair). SoftHSM re-reads its configuration
// after the module is finalised, so sequential tests may each use their own
// folder.
//
// The token is initialised over PKCS#11 (C_InitToken, C_InitPIN), not through
// softhsm2-util, whose --pin flags would put the PINs on a command line; it
// is found again by label through softhsm2-util --show-slots, which needs no
// PIN.
//
// Specification: PKCS#11 v2.40 (https://docs.oasis-open.org/pkcs11/pkcs11-base/v2.40/os/pkcs11-base-v2.40-os.html),
// SoftHSM v2 (https://github.com/softhsm/SoftHSMv2).
package softhsm
