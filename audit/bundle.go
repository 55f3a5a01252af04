package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/tradecore/tradecore/audit/merkle"
)

// BundleFormat is the first field of an export bundle's header.
const BundleFormat = "tradecore-audit-bundle/v1"

// maxBundleHeader bounds the bundle header line.
const maxBundleHeader = 64 << 20

// BundleHeader is the first line of an export bundle (docs/audit-format.md,
// "Export bundle"): leaves [From, To) follow, one per line, each exactly the
// leaf bytes. Left is the compact range [0, From) and Right the compact
// range [To, RightEnd), both as base64 subtree hashes, so the verifier can
// recompute every root from From to RightEnd; Checkpoints are the signed
// notes whose sizes fall in [From, RightEnd], RightEnd being the size of the
// first checkpoint at or after To.
type BundleHeader struct {
	Format      string   `json:"format"`
	From        uint64   `json:"from"`
	To          uint64   `json:"to"`
	Left        []string `json:"left"`
	Right       []string `json:"right"`
	RightEnd    uint64   `json:"right_end"`
	Checkpoints []string `json:"checkpoints"`
	// Instruments is the body of the last "audit.instruments" record before
	// From (the scales the first leaves are written in); "" when From is 0.
	// It is context for reading prices, not evidence: every leaf is bound
	// to the signed roots whatever scales decode it.
	Instruments string `json:"instruments"`
}

// ErrBundle is wrapped when an export bundle cannot be parsed.
var ErrBundle = errors.New("audit: bad bundle")

// ExportBundle writes the bundle of leaves [from, to) of the log in dir
// (to = 0: to the end). It reads the log from its start to compute the
// compact ranges.
func ExportBundle(ctx context.Context, dir string, from, to uint64, w io.Writer) (BundleHeader, error) {
	r, err := OpenReader(dir)
	if err != nil {
		return BundleHeader{}, err
	}
	size, err := r.Size()
	if err != nil {
		return BundleHeader{}, err
	}
	if to == 0 || to > size {
		to = size
	}
	if from > to {
		return BundleHeader{}, fmt.Errorf("audit: --from %d is after --to %d (the log has %d entries)", from, to, size)
	}
	notes, err := ReadCheckpoints(dir)
	if err != nil {
		return BundleHeader{}, err
	}
	h := BundleHeader{Format: BundleFormat, From: from, To: to, RightEnd: to, Left: []string{}, Right: []string{}, Checkpoints: []string{}}
	var sizes []uint64
	for _, n := range notes {
		pn, err := ParseNote(n)
		if err != nil {
			return h, err
		}
		c, err := ParseCheckpointText(pn.Text)
		if err != nil {
			return h, err
		}
		sizes = append(sizes, c.Size)
	}
	end := to
	for _, s := range sizes {
		if s >= to {
			end = s
			break
		}
	}
	h.RightEnd = end
	for i, s := range sizes {
		if s >= from && s <= end && s > 0 {
			h.Checkpoints = append(h.Checkpoints, string(notes[i]))
		}
	}
	left, right := merkle.NewRange(0), merkle.NewRange(to)
	err = r.Read(0, end, func(e *Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		lh := merkle.HashLeaf(e.Leaf)
		switch {
		case e.Index < from:
			left.AppendLeaf(&lh)
			if e.Type == TypeInstruments {
				lhd, err := ParseLeaf(e.Leaf)
				if err != nil {
					return err
				}
				h.Instruments = string(lhd.Body)
			}
		case e.Index >= to:
			right.AppendLeaf(&lh)
		}
		return nil
	})
	if err != nil {
		return h, err
	}
	for _, x := range left.Hashes() {
		h.Left = append(h.Left, base64.StdEncoding.EncodeToString(x[:]))
	}
	for _, x := range right.Hashes() {
		h.Right = append(h.Right, base64.StdEncoding.EncodeToString(x[:]))
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	hb, err := json.Marshal(&h)
	if err != nil {
		return h, err
	}
	bw.Write(hb)
	bw.WriteByte('\n')
	err = r.Read(from, to, func(e *Entry) error {
		bw.Write(e.Leaf)
		return bw.WriteByte('\n')
	})
	if err != nil {
		return h, err
	}
	return h, bw.Flush()
}

// ParseBundleHeader parses a bundle's first line strictly.
func ParseBundleHeader(line []byte) (BundleHeader, *merkle.Range, *merkle.Range, error) {
	var h BundleHeader
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, nil, nil, fmt.Errorf("%w: header: %w", ErrBundle, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return h, nil, nil, fmt.Errorf("%w: header: trailing data", ErrBundle)
	}
	if h.Format != BundleFormat {
		return h, nil, nil, fmt.Errorf("%w: format %q, want %q", ErrBundle, h.Format, BundleFormat)
	}
	if h.From > h.To || h.To > h.RightEnd {
		return h, nil, nil, fmt.Errorf("%w: from %d, to %d, right_end %d are out of order", ErrBundle, h.From, h.To, h.RightEnd)
	}
	dec64 := func(ss []string) ([]merkle.Hash, error) {
		if len(ss) > 64 {
			return nil, fmt.Errorf("%w: more than 64 range hashes", ErrBundle)
		}
		out := make([]merkle.Hash, len(ss))
		for i, s := range ss {
			b, err := base64.StdEncoding.Strict().DecodeString(s)
			if err != nil || len(b) != merkle.HashSize {
				return nil, fmt.Errorf("%w: range hash %d is not base64 of 32 bytes", ErrBundle, i)
			}
			out[i] = merkle.Hash(b)
		}
		return out, nil
	}
	lh, err := dec64(h.Left)
	if err != nil {
		return h, nil, nil, err
	}
	rh, err := dec64(h.Right)
	if err != nil {
		return h, nil, nil, err
	}
	left, err := merkle.RangeFromHashes(0, h.From, lh)
	if err != nil {
		return h, nil, nil, fmt.Errorf("%w: left range does not fit [0, %d)", ErrBundle, h.From)
	}
	right, err := merkle.RangeFromHashes(h.To, h.RightEnd, rh)
	if err != nil {
		return h, nil, nil, fmt.Errorf("%w: right range does not fit [%d, %d)", ErrBundle, h.To, h.RightEnd)
	}
	return h, left, right, nil
}

// VerifyBundle verifies an export bundle read from r: every leaf, every
// checkpoint it carries, and that its leaves lead to the final checkpoint's
// signed root. Snapshot files are not in a bundle and are counted missing.
func VerifyBundle(ctx context.Context, r io.Reader, opts VerifyOptions) (*VerifyResult, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	line, err := readLine(br, maxBundleHeader)
	if err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrBundle, err)
	}
	h, left, right, err := ParseBundleHeader(line)
	if err != nil {
		return nil, err
	}
	notes := make([][]byte, len(h.Checkpoints))
	for i, s := range h.Checkpoints {
		notes[i] = []byte(s)
	}
	v, err := newVerifier(opts, notes, h.From, left)
	if err != nil {
		return nil, err
	}
	if h.Instruments != "" {
		if v.scales, err = parseInstruments([]byte(h.Instruments)); err != nil {
			return nil, fmt.Errorf("%w: instruments: %w", ErrBundle, err)
		}
	}
	for i := h.From; i < h.To; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		leaf, err := readLine(br, MaxLeafSize)
		if err != nil {
			return nil, &VerifyError{Index: int64(i), Reason: fmt.Sprintf("the bundle ends before leaf %d of [%d, %d)", i, h.From, h.To), Err: err}
		}
		if err := v.leaf(leaf); err != nil {
			return nil, err
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return nil, &VerifyError{Index: int64(h.To), Reason: "the bundle has more lines than its header announces"}
	}
	return v.finish(right)
}

// readLine reads one '\n'-terminated line of at most max bytes (without the
// newline).
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var out []byte
	for {
		chunk, err := br.ReadSlice('\n')
		out = append(out, chunk...)
		if len(out) > max+1 {
			return nil, errors.New("line too long")
		}
		if err == nil {
			return out[:len(out)-1], nil
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}
