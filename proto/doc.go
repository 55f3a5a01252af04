// Package proto is tradecore's binary order-entry and market-data protocol,
// version 1 (docs/protocol.md): frames of a 4-byte header (length, type,
// version) and a fixed-width little-endian body per message type.
//
// Every message is a plain struct with AppendFrame (encode, appending to a
// caller's buffer) and UnmarshalFrame (decode in place); Append, Decode and
// DecodeInto do the same through the Message interface. None of them
// allocates except Decode, which returns a new message. FrameReader splits a
// byte stream into checked frames without allocating. SignLogin and
// VerifyLogin compute and check the login's HMAC-SHA256. AttestHello,
// AttestChallenge, AttestQuote and AttestAccepted carry TPM device
// attestation in the session layer (a login with FlagDevice); their reason
// codes are the 64x gateway codes and the attestation's 8xx.
//
// The decoders take untrusted bytes: they never panic and refuse anything
// that is not exactly a frame of this version (fuzz tests prove it); the
// gateway turns their errors into reason codes with ReasonOf.
package proto
