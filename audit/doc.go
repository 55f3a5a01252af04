// Package audit is tradecore's tamper-evident audit log, which is also the
// engine's recovery journal: every sequenced command and every event, plus
// the records services write, as canonical JSON leaves of an RFC 6962 Merkle
// tree, stored in append-only segment files and committed to by signed
// checkpoints (C2SP tlog-checkpoint notes, signed through the HSM).
//
// What to use:
//
//   - [Open] the log (a Config with the audit folder and a [Signer]; the HSM
//     signing service through audit/hsmsign). It starts the checkpointer and,
//     unless Config.ExternalCommit, a committer for service records. Its close
//     function commits, signs a final checkpoint and closes the writer.
//   - [Log.Record] is the service records contract (docs/audit-format.md,
//     "Service records"): it returns once the record is durable.
//   - [Log.Writer] gives the journaler the [Writer]: AppendCommand,
//     AppendEvent, AppendRecord, AppendSnapshot copy into a preallocated buffer
//     (no lock, channel or allocation per record); Commit writes them in one
//     write(2) (+ fdatasync at DurabilityFsync); Durable is the atomic
//     watermark the publisher gates on. Only the journaler goroutine calls
//     Append*, Commit and Close.
//   - [OpenReader] / [Reader.Read] iterate entries [from, to) in order
//     (recovery replay, the PostgreSQL copier); [DecodeCommand] and
//     [DecodeEvent] turn leaves back into core values, with the [Scales] of the
//     latest "audit.instruments" record; [ReadCommands] does that for replay.
//   - [VerifyDir], [VerifyBundle], [VerifyCheckpoint], [VerifyProof],
//     [VerifyReport]: the offline verifier (pure Go; cmd/auditverify).
//   - [OpenIndex] / [Index.Search] answer queries; [ExportBundle], [Prove],
//     [BuildReport] and [SignReport] back `tradecore audit`.
//   - [Commit] makes the keyed (HMAC) commitment a record carries instead of
//     personal data; [RetentionOf] gives a record type's retention.
//
// Subpackages: merkle (RFC 6962 tree and proofs), hsmsign (hsm.Signer as a
// Signer; it needs cgo, so it is kept out of this package).
//
// Specifications: RFC 6962 §2.1 (https://www.rfc-editor.org/rfc/rfc6962),
// C2SP tlog-checkpoint and signed-note (https://c2sp.org/tlog-checkpoint,
// https://c2sp.org/signed-note). Formats: docs/audit-format.md.
package audit
