package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/tradecore/tradecore/audit/merkle"
	"github.com/tradecore/tradecore/hsm/manifest"
)

// ProofFormat is the format field of an inclusion proof file.
const ProofFormat = "tradecore-audit-proof/v1"

// Proof is the inclusion proof of one leaf in a signed checkpoint, as
// `tradecore audit prove` prints it.
type Proof struct {
	Format     string   `json:"format"`
	Index      uint64   `json:"index"`
	Leaf       string   `json:"leaf"` // the leaf's bytes (JSON text)
	TreeSize   uint64   `json:"tree_size"`
	Hashes     []string `json:"proof"` // base64, RFC 6962 audit path
	Checkpoint string   `json:"checkpoint"`
}

// ErrProof is wrapped by proof failures: the file is malformed, the
// checkpoint does not verify, or the leaf is not in it.
var ErrProof = errors.New("audit: bad proof")

// Prove builds the inclusion proof of entry idx of the log in dir in the
// first stored checkpoint that covers it (size = 0) or in the checkpoint of
// the given size. It hashes the leaves below the checkpoint's size.
func Prove(ctx context.Context, dir string, idx, size uint64) (*Proof, error) {
	notes, err := ReadCheckpoints(dir)
	if err != nil {
		return nil, err
	}
	var note []byte
	var cp Checkpoint
	for _, n := range notes {
		pn, err := ParseNote(n)
		if err != nil {
			return nil, err
		}
		c, err := ParseCheckpointText(pn.Text)
		if err != nil {
			return nil, err
		}
		if (size == 0 && c.Size > idx) || (size != 0 && c.Size == size) {
			note, cp = n, c
			break
		}
	}
	if note == nil {
		if size != 0 {
			return nil, fmt.Errorf("audit: no stored checkpoint has tree size %d; omit --size to use the first that covers the entry", size)
		}
		return nil, fmt.Errorf("audit: no signed checkpoint covers entry %d yet; wait for the next checkpoint (every second by default)", idx)
	}
	if idx >= cp.Size {
		return nil, fmt.Errorf("audit: entry %d is not in the checkpoint of size %d", idx, cp.Size)
	}
	r, err := OpenReader(dir)
	if err != nil {
		return nil, err
	}
	hashes := make([]merkle.Hash, 0, cp.Size)
	var leaf []byte
	err = r.Read(0, cp.Size, func(e *Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		hashes = append(hashes, merkle.HashLeaf(e.Leaf))
		if e.Index == idx {
			leaf = append([]byte(nil), e.Leaf...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if uint64(len(hashes)) != cp.Size {
		return nil, fmt.Errorf("%w: the log has %d entries but its checkpoint covers %d", ErrCorrupt, len(hashes), cp.Size)
	}
	path, err := merkle.InclusionProof(idx, hashes)
	if err != nil {
		return nil, err
	}
	if merkle.RootOf(hashes) != cp.Root {
		return nil, fmt.Errorf("%w: the leaves do not match the signed root of size %d; run auditverify", ErrCorrupt, cp.Size)
	}
	p := &Proof{Format: ProofFormat, Index: idx, Leaf: string(leaf), TreeSize: cp.Size, Hashes: []string{}, Checkpoint: string(note)}
	for _, h := range path {
		p.Hashes = append(p.Hashes, base64.StdEncoding.EncodeToString(h[:]))
	}
	return p, nil
}

// ParseProof parses a proof file strictly.
func ParseProof(data []byte) (*Proof, error) {
	if len(data) > MaxNoteSize+MaxLeafSize+64<<10 {
		return nil, fmt.Errorf("%w: too large", ErrProof)
	}
	var p Proof
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrProof, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", ErrProof)
	}
	if p.Format != ProofFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrProof, p.Format, ProofFormat)
	}
	if len(p.Hashes) > 64 {
		return nil, fmt.Errorf("%w: more than 64 proof hashes", ErrProof)
	}
	return &p, nil
}

// VerifyProof checks a proof file against a verified manifest: the
// checkpoint's signature (rules of VerifyCheckpoint), that the leaf says it
// is entry Index, and that it is included at Index in the signed tree.
func VerifyProof(data []byte, keys *manifest.Verified, origin string) (*Proof, Checkpoint, error) {
	p, err := ParseProof(data)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	c, _, err := VerifyCheckpoint([]byte(p.Checkpoint), keys, origin)
	if err != nil {
		return p, c, err
	}
	if c.Size != p.TreeSize {
		return p, c, fmt.Errorf("%w: tree_size %d but the checkpoint's size is %d", ErrProof, p.TreeSize, c.Size)
	}
	h, err := ParseLeaf([]byte(p.Leaf))
	if err != nil {
		return p, c, fmt.Errorf("%w: %w", ErrProof, err)
	}
	if h.Index != p.Index {
		return p, c, fmt.Errorf("%w: the leaf says it is entry %d, the proof says %d", ErrProof, h.Index, p.Index)
	}
	path := make([]merkle.Hash, len(p.Hashes))
	for i, s := range p.Hashes {
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(b) != merkle.HashSize {
			return p, c, fmt.Errorf("%w: proof hash %d is not base64 of 32 bytes", ErrProof, i)
		}
		path[i] = merkle.Hash(b)
	}
	lh := merkle.HashLeaf([]byte(p.Leaf))
	if err := merkle.VerifyInclusion(p.Index, c.Size, &lh, path, &c.Root); err != nil {
		return p, c, fmt.Errorf("%w: the leaf is not at index %d of the signed tree of size %d", ErrProof, p.Index, c.Size)
	}
	return p, c, nil
}
