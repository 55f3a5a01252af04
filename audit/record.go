package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Record types the log writes itself. Services may not use the "audit.",
// "cmd." and "event." prefixes.
const (
	// TypeInstruments carries the scales of the instruments that later core
	// records use (body: InstrumentsBody).
	TypeInstruments = "audit.instruments"
	// TypeSnapshot references an engine snapshot file by SHA-256 (body:
	// SnapshotBody).
	TypeSnapshot = "engine.snapshot"
)

// InstrumentScale is one instrument's entry in an "audit.instruments" record.
type InstrumentScale struct {
	ID     uint32 `json:"id"`
	Symbol string `json:"symbol"`
	Tick   string `json:"tick"` // decimal tick size, e.g. "0.01"
	Lot    string `json:"lot"`  // decimal lot size, e.g. "100"
}

// InstrumentsBody is the body of an "audit.instruments" record: the full
// table in force from this record on (it replaces any earlier one).
type InstrumentsBody struct {
	Instruments []InstrumentScale `json:"instruments"`
}

// SnapshotBody is the body of an "engine.snapshot" record: the engine's state
// after applying command Seq was written to File (relative to the audit
// folder, under snapshots/), whose SHA-256 and size are given; StateHash is
// core.Engine.StateHash at that point. Replay may start from the snapshot and
// continue with command Seq+1.
type SnapshotBody struct {
	Seq       uint64 `json:"seq"`
	StateHash string `json:"state_hash"` // hex
	File      string `json:"file"`
	SHA256    string `json:"sha256"` // hex
	Size      int64  `json:"size"`
}

// Retention classes: how long records of a type must be kept.
const (
	RetentionTrading   = "trading"   // 7 years: orders, executions, account and risk events, keys, access
	RetentionAML       = "aml"       // 5 years: records typed "aml.*"
	RetentionSanctions = "sanctions" // 10 years: records typed "sanctions.*"
)

// RetentionOf returns a record type's retention class and its period in
// years. It derives them from the type alone, so no leaf carries them:
// "aml.*" is AML (5 years), "sanctions.*" sanctions screening (10 years),
// everything else trading (7 years).
func RetentionOf(typ string) (class string, years int) {
	switch {
	case strings.HasPrefix(typ, "aml."):
		return RetentionAML, 5
	case strings.HasPrefix(typ, "sanctions."):
		return RetentionSanctions, 10
	}
	return RetentionTrading, 7
}

// ErrRecord is wrapped when a service record is refused: the type or body
// breaks the rules in docs/audit-format.md ("Service records"). Fix the
// caller; the action the record describes must be refused too.
var ErrRecord = errors.New("audit: record refused")

// checkServiceType refuses types a service may not write.
func checkServiceType(typ string) error {
	if !ValidType(typ) {
		return fmt.Errorf("%w: type %q: use a lower-case dotted name like \"keys.revoked\" (letters, digits, '-', '_')", ErrRecord, typ)
	}
	for _, p := range []string{"audit.", "cmd.", "event."} {
		if strings.HasPrefix(typ, p) {
			return fmt.Errorf("%w: type %q: the %q prefix is reserved for the log and the engine", ErrRecord, typ, p)
		}
	}
	if typ == TypeSnapshot {
		return fmt.Errorf("%w: type %q is written through Writer.AppendSnapshot", ErrRecord, typ)
	}
	return nil
}

// EncodeBody marshals a service record body with encoding/json and checks it
// against the log's rules (a JSON object, integers only, no duplicate keys).
func EncodeBody(body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("%w: body does not marshal: %w", ErrRecord, err)
	}
	if err := CheckBody(b); err != nil {
		return nil, fmt.Errorf("%w: %w; pass a struct of integers, strings and booleans (prices as decimal strings)", ErrRecord, err)
	}
	return b, nil
}

// MinCommitKeySize is the shortest key Commit accepts.
const MinCommitKeySize = 32

// ErrCommitKey means the commitment key is too short; use a random key of at
// least MinCommitKeySize bytes from the data vault.
var ErrCommitKey = errors.New("audit: commitment key shorter than 32 bytes")

// Commit returns a keyed commitment to a piece of personal data, for a record
// that must refer to a person without carrying their data:
//
//	"hmac-sha256:" + base64url(HMAC-SHA256(key, domain || 0x00 || value))
//
// domain names what value is ("tax-id", "name", …). The key is the data
// subject's (or data class's) secret from the vault; it is never written to
// the log, and destroying it (crypto-shredding) leaves the commitment
// unlinkable while every leaf and proof stays valid. Whoever holds the key
// can recompute the commitment to confirm a value.
func Commit(key []byte, domain, value string) (string, error) {
	if len(key) < MinCommitKeySize {
		return "", ErrCommitKey
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write([]byte(value))
	return "hmac-sha256:" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)), nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
