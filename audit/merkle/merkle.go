// Package merkle is the RFC 6962 Merkle hash tree of the audit log: SHA-256
// leaf and node hashes with the 0x00 and 0x01 domain prefixes, an
// incremental compact range for appending, and inclusion and consistency
// proofs with their verifiers.
//
// Specification: RFC 6962 section 2.1 (https://www.rfc-editor.org/rfc/rfc6962#section-2.1),
// with the verification algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.
// The package is pure Go and allocation-free on its append path.
package merkle

import (
	"crypto/sha256"
	"errors"
	"hash"
	"math/bits"
)

// HashSize is the size of every hash in the tree.
const HashSize = sha256.Size

// Hash is a leaf or node hash.
type Hash = [HashSize]byte

// ErrProof is wrapped by every proof verification failure: the proof does
// not link the leaf (or the smaller tree) to the root it was checked against.
// Do not trust the leaf or checkpoint it was meant to prove.
var ErrProof = errors.New("merkle: proof does not verify")

// ErrRange is returned for indexes or sizes outside the tree; fix the
// arguments (an index must be below the tree size, a smaller size no larger
// than the bigger one).
var ErrRange = errors.New("merkle: index or size out of range")

// EmptyRoot is the root of the empty tree: SHA-256 of the empty string.
var EmptyRoot = sha256.Sum256(nil)

// HashLeaf returns SHA-256(0x00 || leaf).
func HashLeaf(leaf []byte) Hash {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	var out Hash
	h.Sum(out[:0])
	return out
}

// LeafHasher computes leaf hashes without allocating (HashLeaf allocates a
// digest per call). Not safe for concurrent use.
type LeafHasher struct {
	h   hash.Hash
	sum [HashSize]byte
}

// NewLeafHasher returns a LeafHasher.
func NewLeafHasher() *LeafHasher { return &LeafHasher{h: sha256.New()} }

var leafPrefix = []byte{0}

// Hash returns HashLeaf(leaf).
func (lh *LeafHasher) Hash(leaf []byte) Hash {
	lh.h.Reset()
	lh.h.Write(leafPrefix)
	lh.h.Write(leaf)
	lh.h.Sum(lh.sum[:0])
	return lh.sum
}

// HashChildren returns SHA-256(0x01 || left || right).
func HashChildren(left, right *Hash) Hash {
	var buf [1 + 2*HashSize]byte
	buf[0] = 1
	copy(buf[1:], left[:])
	copy(buf[1+HashSize:], right[:])
	return sha256.Sum256(buf[:])
}

// Range is a compact range: the hashes of the maximal aligned subtrees that
// cover the leaves [Begin, End), left to right. Appending a leaf costs one
// leaf hash and on average one node hash. A Range starting at 0 yields the
// tree's root. The zero value is the empty range at 0.
type Range struct {
	begin, end uint64
	hashes     []Hash
	levels     []uint8
}

// NewRange returns an empty range starting at begin.
func NewRange(begin uint64) *Range { return &Range{begin: begin, end: begin} }

// RangeFromHashes rebuilds the compact range [begin, end) from its subtree
// hashes (as returned by Hashes). It fails with ErrRange when the number of
// hashes does not match the range's decomposition.
func RangeFromHashes(begin, end uint64, hashes []Hash) (*Range, error) {
	if end < begin {
		return nil, ErrRange
	}
	levels := decompose(begin, end)
	if len(levels) != len(hashes) {
		return nil, ErrRange
	}
	return &Range{begin: begin, end: end, hashes: append([]Hash(nil), hashes...), levels: levels}, nil
}

// decompose lists the levels of the aligned subtrees that cover [begin, end)
// greedily from the left.
func decompose(begin, end uint64) []uint8 {
	var out []uint8
	for begin < end {
		lvl := uint8(63)
		if begin != 0 {
			lvl = uint8(bits.TrailingZeros64(begin))
		}
		for lvl > 0 && (uint64(1)<<lvl > end-begin) {
			lvl--
		}
		out = append(out, lvl)
		begin += uint64(1) << lvl
	}
	return out
}

// Begin returns the first leaf index the range covers.
func (r *Range) Begin() uint64 { return r.begin }

// End returns one past the last leaf index the range covers.
func (r *Range) End() uint64 { return r.end }

// Hashes returns the range's subtree hashes, left to right (shared; do not modify).
func (r *Range) Hashes() []Hash { return r.hashes }

// Clone returns an independent copy.
func (r *Range) Clone() *Range {
	return &Range{begin: r.begin, end: r.end, hashes: append([]Hash(nil), r.hashes...), levels: append([]uint8(nil), r.levels...)}
}

// AppendLeaf appends the leaf with hash h (HashLeaf of its bytes).
func (r *Range) AppendLeaf(h *Hash) { r.appendNode(0, *h) }

// appendNode appends the subtree of 2^level leaves starting at r.end; r.end
// must be a multiple of 2^level.
func (r *Range) appendNode(level uint8, h Hash) {
	size := uint64(1) << level
	pos := r.end
	for n := len(r.hashes); n > 0; n = len(r.hashes) {
		if r.levels[n-1] != level || (pos>>level)&1 == 0 {
			break
		}
		h = HashChildren(&r.hashes[n-1], &h)
		r.hashes, r.levels = r.hashes[:n-1], r.levels[:n-1]
		pos -= uint64(1) << level
		level++
	}
	r.hashes = append(r.hashes, h)
	r.levels = append(r.levels, level)
	r.end += size
}

// Merge appends other, which must begin where r ends (ErrRange otherwise).
func (r *Range) Merge(other *Range) error {
	if other.begin != r.end {
		return ErrRange
	}
	for i, h := range other.hashes {
		r.appendNode(other.levels[i], h)
	}
	return nil
}

// Root returns the RFC 6962 root of the tree [0, End). It fails with
// ErrRange unless the range begins at 0.
func (r *Range) Root() (Hash, error) {
	if r.begin != 0 {
		return Hash{}, ErrRange
	}
	n := len(r.hashes)
	if n == 0 {
		return EmptyRoot, nil
	}
	root := r.hashes[n-1]
	for i := n - 2; i >= 0; i-- {
		root = HashChildren(&r.hashes[i], &root)
	}
	return root, nil
}

// largestPow2Below returns the largest power of two strictly below n (n > 1).
func largestPow2Below(n uint64) uint64 { return uint64(1) << (63 - bits.LeadingZeros64(n-1)) }

// RootOf returns the root over the given leaf hashes.
func RootOf(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return EmptyRoot
	case 1:
		return leaves[0]
	}
	k := largestPow2Below(uint64(len(leaves)))
	l, r := RootOf(leaves[:k]), RootOf(leaves[k:])
	return HashChildren(&l, &r)
}

// InclusionProof returns the audit path of leaf index in the tree of the
// given leaf hashes (RFC 6962 section 2.1.1).
func InclusionProof(index uint64, leaves []Hash) ([]Hash, error) {
	if index >= uint64(len(leaves)) {
		return nil, ErrRange
	}
	return path(index, leaves, nil), nil
}

func path(m uint64, d []Hash, out []Hash) []Hash {
	n := uint64(len(d))
	if n <= 1 {
		return out
	}
	k := largestPow2Below(n)
	if m < k {
		out = path(m, d[:k], out)
		return append(out, RootOf(d[k:]))
	}
	out = path(m-k, d[k:], out)
	return append(out, RootOf(d[:k]))
}

// ConsistencyProof returns the proof that the tree of the first size leaves
// is a prefix of the tree of all the given leaves (RFC 6962 section 2.1.2).
// It is empty when size is 0 or equals the number of leaves.
func ConsistencyProof(size uint64, leaves []Hash) ([]Hash, error) {
	n := uint64(len(leaves))
	if size > n {
		return nil, ErrRange
	}
	if size == 0 || size == n {
		return nil, nil
	}
	return subproof(size, leaves, true, nil), nil
}

func subproof(m uint64, d []Hash, b bool, out []Hash) []Hash {
	n := uint64(len(d))
	if m == n {
		if b {
			return out
		}
		return append(out, RootOf(d))
	}
	k := largestPow2Below(n)
	if m <= k {
		out = subproof(m, d[:k], b, out)
		return append(out, RootOf(d[k:]))
	}
	out = subproof(m-k, d[k:], false, out)
	return append(out, RootOf(d[:k]))
}

// VerifyInclusion checks that leafHash is leaf index of the tree of size
// leaves with the given root (RFC 9162 section 2.1.3.2).
func VerifyInclusion(index, size uint64, leafHash *Hash, proof []Hash, root *Hash) error {
	if index >= size {
		return ErrRange
	}
	fn, sn := index, size-1
	r := *leafHash
	for i := range proof {
		p := &proof[i]
		if sn == 0 {
			return ErrProof
		}
		if fn&1 == 1 || fn == sn {
			r = HashChildren(p, &r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = HashChildren(&r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || r != *root {
		return ErrProof
	}
	return nil
}

// VerifyConsistency checks that the tree of size1 leaves with root1 is a
// prefix of the tree of size2 leaves with root2 (RFC 9162 section 2.1.4.2).
// Equal sizes need an empty proof and equal roots; size1 0 needs an empty
// proof (every tree extends the empty one).
func VerifyConsistency(size1, size2 uint64, root1, root2 *Hash, proof []Hash) error {
	switch {
	case size1 > size2:
		return ErrRange
	case size1 == size2:
		if len(proof) != 0 || *root1 != *root2 {
			return ErrProof
		}
		return nil
	case size1 == 0:
		if len(proof) != 0 {
			return ErrProof
		}
		return nil
	case len(proof) == 0:
		return ErrProof
	}
	c := proof
	if size1&(size1-1) == 0 {
		c = append([]Hash{*root1}, proof...)
	}
	fn, sn := size1-1, size2-1
	for fn&1 == 1 {
		fn >>= 1
		sn >>= 1
	}
	fr, sr := c[0], c[0]
	for i := 1; i < len(c); i++ {
		p := &c[i]
		if sn == 0 {
			return ErrProof
		}
		if fn&1 == 1 || fn == sn {
			fr = HashChildren(p, &fr)
			sr = HashChildren(p, &sr)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			sr = HashChildren(&sr, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if fr != *root1 || sr != *root2 || sn != 0 {
		return ErrProof
	}
	return nil
}
