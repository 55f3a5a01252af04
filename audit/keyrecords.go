package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tradecore/tradecore/hsm/manifest"
)

// DefaultKeyRecordGrace is how long after a revocation a log may go on
// without that revocation's keys.revoked record before the verifier fails it
// (VerifyOptions.KeyRecordGrace). The signing service records a change made
// by another process within its refresh interval (1 s), and a daemon that
// was stopped records it at its next start before anything else.
const DefaultKeyRecordGrace = time.Minute

// keyRecordTypes maps each manifest event to its audit record type (the
// hsm package's RecordKeys* constants; audit cannot import hsm, which needs
// cgo).
var keyRecordTypes = map[manifest.Event]string{
	manifest.EventInit:    "keys.init",
	manifest.EventRotate:  "keys.rotated",
	manifest.EventRevoke:  "keys.revoked",
	manifest.EventDestroy: "keys.destroyed",
}

// keyRecordBody is what the verifier reads of a keys.* record (hsm.KeyRecord):
// which manifest entry it records.
type keyRecordBody struct {
	FirstKeyID string `json:"first_key_id"`
	Seq        uint64 `json:"seq"`
	EntryHash  string `json:"entry_hash"`
}

// keyAnchor follows the log's keys.* records against the auditor's manifest,
// for the log-anchored rule (docs/keys.md, "What a signature proves"):
//
//   - every keys.* record names an entry of the manifest, with the same
//     entry hash (else the manifest is not the one the log recorded, or is
//     older than the log: get the newest);
//   - records come in manifest order (a repeat of an entry already recorded
//     is allowed: the service may record one twice after a crash);
//   - a checkpoint of tree size N may not be signed by a key that a record
//     among its first N leaves retired or revoked, whatever time the
//     checkpoint claims;
//   - a checkpoint timed KeyRecordGrace or more after a revocation must
//     contain that revocation's record.
type keyAnchor struct {
	keys  *manifest.Verified
	grace time.Duration
	// known: the records before the first leaf verified are known (a whole
	// log); a bundle starting later learns them at its first keys record.
	known   bool
	seq     int64  // newest manifest entry recorded so far; -1 none
	first   int64  // oldest entry recorded in this log; -1 none
	leaf    uint64 // leaf of the newest record
	revokes []int  // manifest entries that revoke a key
}

func newKeyAnchor(keys *manifest.Verified, from uint64, grace time.Duration) *keyAnchor {
	if grace <= 0 {
		grace = DefaultKeyRecordGrace
	}
	a := &keyAnchor{keys: keys, grace: grace, known: from == 0, seq: -1, first: -1}
	for i, e := range keys.Manifest.Entries {
		if e.Event == manifest.EventRevoke {
			a.revokes = append(a.revokes, i)
		}
	}
	return a
}

// record checks a keys.* leaf at index idx.
func (a *keyAnchor) record(idx uint64, typ string, body []byte) (reason string) {
	var r keyRecordBody
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Sprintf("%s record: %v", typ, err)
	}
	if r.FirstKeyID != a.keys.Keys[0].ID {
		return fmt.Sprintf("%s record of a key manifest with first key %s, not the pinned %s", typ, r.FirstKeyID, a.keys.Keys[0].ID)
	}
	n := uint64(len(a.keys.Manifest.Entries))
	if r.Seq >= n {
		return fmt.Sprintf("%s record of manifest entry %d, but the manifest given has %d entries: it is older than the log (get the newest manifest, tradecore keys export)", typ, r.Seq, n)
	}
	if h := a.keys.EntryHash(int(r.Seq)); r.EntryHash != h {
		return fmt.Sprintf("%s record of manifest entry %d with entry hash %s, the manifest's is %s: the log recorded another manifest", typ, r.Seq, r.EntryHash, h)
	}
	if want := keyRecordTypes[a.keys.Manifest.Entries[r.Seq].Event]; typ != want {
		return fmt.Sprintf("manifest entry %d recorded as %s, want %s", r.Seq, typ, want)
	}
	switch {
	case int64(r.Seq) <= a.seq:
		return "" // recorded again (a crash between recording and saving the service's state)
	case a.seq >= 0 && int64(r.Seq) != a.seq+1:
		return fmt.Sprintf("%s record of manifest entry %d after entry %d: entries %d to %d are missing from the log", typ, r.Seq, a.seq, a.seq+1, r.Seq-1)
	}
	if a.first < 0 {
		a.first = int64(r.Seq)
	}
	a.seq, a.leaf, a.known = int64(r.Seq), idx, true
	return ""
}

// checkpoint checks the signers of a checkpoint c of tree size c.Size, all
// of whose leaves were read.
func (a *keyAnchor) checkpoint(c Checkpoint, by []SignedBy) (reason string) {
	if !a.known {
		return ""
	}
	for _, b := range by {
		k := a.keys.Key(b.KeyID)
		if k == nil || a.seq < 0 {
			continue
		}
		if k.RevokedSeq != 0 && int64(k.RevokedSeq) <= a.seq {
			return fmt.Sprintf("signed by key %s, which manifest entry %d (recorded at leaf %d or before, inside this checkpoint's tree) revoked (%s)", k.ID, k.RevokedSeq, a.leaf, k.RevokeReason)
		}
		if k.RetiredSeq != 0 && int64(k.RetiredSeq) <= a.seq {
			return fmt.Sprintf("signed by key %s, which manifest entry %d (recorded at leaf %d or before, inside this checkpoint's tree) had retired", k.ID, k.RetiredSeq, a.leaf)
		}
	}
	t := time.Unix(0, c.Time)
	for _, i := range a.revokes {
		e := &a.keys.Manifest.Entries[i]
		if int64(i) > a.seq && !t.Before(e.Time.Add(a.grace)) {
			return fmt.Sprintf("the checkpoint is timed %s, %s or more after manifest entry %d revoked key %s, but its tree does not record that revocation (keys.revoked): the log went on as if the key were good",
				t.UTC().Format(time.RFC3339Nano), a.grace, i, e.Revoked.KeyID)
		}
	}
	return ""
}

// unrecorded lists the manifest entries the log does not record.
func (a *keyAnchor) unrecorded() []uint64 {
	if !a.known {
		return nil
	}
	var out []uint64
	for i := range a.keys.Manifest.Entries {
		if int64(i) > a.seq || int64(i) < a.first || a.first < 0 {
			out = append(out, uint64(i))
		}
	}
	return out
}

func isKeyRecord(typ []byte) bool { return strings.HasPrefix(string(typ), "keys.") }
