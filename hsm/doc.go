// Package hsm is tradecore's access to a PKCS#11 hardware security module:
// keys born in the token that never leave it, handed out as crypto.Signer;
// the signing key lifecycle (versions, 90-day rotation, revocation, the key
// manifest); and envelope encryption of personal data at rest with
// crypto-shredding.
//
// What to use:
//
//   - [Open] a token (module path, token label, PIN from a file or an
//     environment variable, read once). It returns the *Token and its close
//     function; close the token last, after everything made from it.
//   - [Token.GenerateKey], [Token.FindKey], [Token.FindKeyByLabel]: *Key is a
//     crypto.Signer. Ed25519 (the default) signs through CKM_EDDSA with
//     github.com/miekg/pkcs11; ECDSA P-256 through
//     github.com/ThalesGroup/crypto11 (DER signatures).
//   - [Init] then [NewService]: the signing service and key lifecycle. The
//     manifest file is the one source of truth of every process: changes
//     take an flock, re-read and append; every signature re-reads a changed
//     file first. Retired and revoked private keys are destroyed in the
//     token; rotations follow the manifest's key policy; each manifest entry
//     is recorded through ServiceConfig.Recorder (the audit log). Its close
//     function stops the background checks; it does not close the token.
//     *Service implements [Signer]; so does remote.Client, which talks to
//     `tradecore signer` over a unix socket.
//   - [NewVault]: Seal/Open of personal data per [DataClass], KEK rotation,
//     Shred (recorded first through VaultConfig.Recorder) and ApplyShreds
//     (re-applies recorded shreds after a restored backup). Its close
//     function drops cached data keys.
//   - Package manifest verifies a key manifest offline (pure Go); package
//     remote serves and dials the signing service; package softhsm sets up
//     SoftHSM2 tokens for tests and the local default.
//
// Errors are the package's sentinels (ErrModuleMissing, ErrTokenMissing,
// ErrWrongPIN, ErrPoolExhausted, ErrKeyNotFound, ErrDuplicateLabel,
// ErrKeyRetired, ErrManifestMissing, ErrNotRecorded, …), wrapped with
// detail; test with errors.Is. PKCS#11
// failures are *P11Error. No error or log line carries a PIN or key material.
//
// Every operation takes a session from a bounded pool (Config.MaxSessions)
// and waits at most Config.PoolWaitTimeout for one. A process loads a
// PKCS#11 module once: Tokens opened on the same module share its
// initialisation, which ends when the last one closes.
//
// Specifications: PKCS#11 v3.0 (https://docs.oasis-open.org/pkcs11/pkcs11-base/v3.0/pkcs11-base-v3.0.html)
// for CKK_EC_EDWARDS/CKM_EDDSA, RFC 8032 (Ed25519), FIPS 186-5 / SEC 1
// (ECDSA P-256), NIST SP 800-38D (AES-GCM), C2SP signed-note verifier keys
// (https://github.com/C2SP/C2SP/blob/main/signed-note.md). Formats: docs/keys.md.
package hsm
