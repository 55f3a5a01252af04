package merkle

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tdproof "github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

type vectors struct {
	Leaves []string   `json:"leaves"`
	Levels [][]string `json:"levels"`
	Roots  []string   `json:"roots"`
}

func loadVectors(t *testing.T) (leaves [][]byte, levels [][]Hash, roots []Hash) {
	t.Helper()
	data, err := os.ReadFile("testdata/rfc6962-vectors.json")
	require.NoError(t, err)
	var v vectors
	require.NoError(t, json.Unmarshal(data, &v))
	for _, s := range v.Leaves {
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		leaves = append(leaves, b)
	}
	h := func(s string) Hash {
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		require.Len(t, b, HashSize)
		return Hash(b)
	}
	for _, l := range v.Levels {
		var lv []Hash
		for _, s := range l {
			lv = append(lv, h(s))
		}
		levels = append(levels, lv)
	}
	for _, s := range v.Roots {
		roots = append(roots, h(s))
	}
	return leaves, levels, roots
}

func TestRFC6962Vectors(t *testing.T) {
	leaves, levels, roots := loadVectors(t)
	require.Len(t, roots, len(leaves)+1)
	var hashes []Hash
	for i, l := range leaves {
		h := HashLeaf(l)
		assert.Equal(t, levels[0][i], h, "leaf hash %d", i)
		hashes = append(hashes, h)
	}
	for lvl := 1; lvl < len(levels); lvl++ {
		for i := range levels[lvl] {
			assert.Equal(t, levels[lvl][i], HashChildren(&levels[lvl-1][2*i], &levels[lvl-1][2*i+1]), "node %d/%d", lvl, i)
		}
	}
	r := NewRange(0)
	for size := 0; size <= len(leaves); size++ {
		assert.Equal(t, roots[size], RootOf(hashes[:size]), "RootOf size %d", size)
		got, err := r.Root()
		require.NoError(t, err)
		assert.Equal(t, roots[size], got, "compact range root size %d", size)
		if size < len(leaves) {
			r.AppendLeaf(&hashes[size])
		}
	}
	// Every inclusion and consistency proof over the vectors verifies
	// against the published roots.
	for size := 1; size <= len(leaves); size++ {
		for i := 0; i < size; i++ {
			p, err := InclusionProof(uint64(i), hashes[:size])
			require.NoError(t, err)
			require.NoError(t, VerifyInclusion(uint64(i), uint64(size), &hashes[i], p, &roots[size]))
		}
		for m := 0; m <= size; m++ {
			p, err := ConsistencyProof(uint64(m), hashes[:size])
			require.NoError(t, err)
			require.NoError(t, VerifyConsistency(uint64(m), uint64(size), &roots[m], &roots[size], p), "consistency %d→%d", m, size)
		}
	}
}

func randHashes(rng *rand.Rand, n int) []Hash {
	out := make([]Hash, n)
	for i := range out {
		var b [8]byte
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		out[i] = HashLeaf(b[:])
	}
	return out
}

func slices(hs []Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// TestAgainstTransparencyDev cross-checks roots and proofs with
// github.com/transparency-dev/merkle, an independent implementation: our
// proofs verify with its verifier, and its proofs (rebuilt from its node
// lists) verify with ours.
func TestAgainstTransparencyDev(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	hashes := randHashes(rng, 130)
	roots := make([]Hash, len(hashes)+1)
	for n := range roots {
		roots[n] = RootOf(hashes[:n])
	}
	hasher := rfc6962.DefaultHasher
	for size := 1; size <= len(hashes); size++ {
		for i := 0; i < size; i += 1 + size/20 {
			p, err := InclusionProof(uint64(i), hashes[:size])
			require.NoError(t, err)
			require.NoError(t, tdproof.VerifyInclusion(hasher, uint64(i), uint64(size), hashes[i][:], slices(p), roots[size][:]), "td verifies our inclusion %d/%d", i, size)
			nodes, err := tdproof.Inclusion(uint64(i), uint64(size))
			require.NoError(t, err)
			theirs := tdRehash(t, nodes, hashes)
			require.NoError(t, VerifyInclusion(uint64(i), uint64(size), &hashes[i], theirs, &roots[size]), "we verify td inclusion %d/%d", i, size)
			assert.Equal(t, len(p), len(theirs))
			for k := range p {
				assert.Equal(t, p[k], theirs[k], "inclusion %d/%d hash %d", i, size, k)
			}
		}
		for m := 1; m <= size; m += 1 + size/15 {
			p, err := ConsistencyProof(uint64(m), hashes[:size])
			require.NoError(t, err)
			require.NoError(t, tdproof.VerifyConsistency(hasher, uint64(m), uint64(size), slices(p), roots[m][:], roots[size][:]), "td verifies our consistency %d→%d", m, size)
			nodes, err := tdproof.Consistency(uint64(m), uint64(size))
			require.NoError(t, err)
			theirs := tdRehash(t, nodes, hashes)
			require.NoError(t, VerifyConsistency(uint64(m), uint64(size), &roots[m], &roots[size], theirs), "we verify td consistency %d→%d", m, size)
		}
	}
}

// tdRehash turns transparency-dev's proof node list into hashes, computing
// every node from the leaves with our RootOf (a node at level L, index I is
// the root of leaves [I<<L, (I+1)<<L)).
func tdRehash(t *testing.T, nodes tdproof.Nodes, leaves []Hash) []Hash {
	t.Helper()
	hs := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		b, e := id.Index<<id.Level, (id.Index+1)<<id.Level
		r := RootOf(leaves[b:e])
		hs[i] = r[:]
	}
	out, err := nodes.Rehash(hs, rfc6962.DefaultHasher.HashChildren)
	require.NoError(t, err)
	res := make([]Hash, len(out))
	for i := range out {
		res[i] = Hash(out[i])
	}
	return res
}

func TestRangeMergeAndRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	hashes := randHashes(rng, 200)
	for trial := 0; trial < 300; trial++ {
		a := rng.IntN(len(hashes))
		b := a + rng.IntN(len(hashes)-a+1)
		left := NewRange(0)
		for i := 0; i < a; i++ {
			left.AppendLeaf(&hashes[i])
		}
		right := NewRange(uint64(a))
		for i := a; i < b; i++ {
			right.AppendLeaf(&hashes[i])
		}
		// Rebuilding from the published hashes gives the same range.
		re, err := RangeFromHashes(uint64(a), uint64(b), right.Hashes())
		require.NoError(t, err)
		lc := left.Clone()
		require.NoError(t, lc.Merge(re))
		got, err := lc.Root()
		require.NoError(t, err)
		assert.Equal(t, RootOf(hashes[:b]), got, fmt.Sprintf("[0,%d)+[%d,%d)", a, a, b))
		_, err = re.Root()
		if a != 0 {
			assert.ErrorIs(t, err, ErrRange)
		}
	}
	_, err := RangeFromHashes(3, 9, nil)
	assert.ErrorIs(t, err, ErrRange)
	assert.ErrorIs(t, NewRange(0).Merge(NewRange(5)), ErrRange)
}

func TestProofRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	hashes := randHashes(rng, 37)
	root := RootOf(hashes)
	p, err := InclusionProof(11, hashes)
	require.NoError(t, err)
	require.NoError(t, VerifyInclusion(11, 37, &hashes[11], p, &root))
	assert.ErrorIs(t, VerifyInclusion(12, 37, &hashes[11], p, &root), ErrProof, "wrong index")
	assert.ErrorIs(t, VerifyInclusion(11, 16, &hashes[11], p, &root), ErrProof, "wrong size")
	assert.ErrorIs(t, VerifyInclusion(11, 37, &hashes[11], p[:len(p)-1], &root), ErrProof, "short proof")
	assert.ErrorIs(t, VerifyInclusion(11, 37, &hashes[11], append(p, root), &root), ErrProof, "long proof")
	assert.ErrorIs(t, VerifyInclusion(37, 37, &hashes[11], p, &root), ErrRange)
	for i := range p {
		q := append([]Hash(nil), p...)
		q[i][rng.IntN(HashSize)] ^= 1 << rng.IntN(8)
		assert.ErrorIs(t, VerifyInclusion(11, 37, &hashes[11], q, &root), ErrProof, "flipped proof hash %d", i)
	}
	r20 := RootOf(hashes[:20])
	c, err := ConsistencyProof(20, hashes)
	require.NoError(t, err)
	require.NoError(t, VerifyConsistency(20, 37, &r20, &root, c))
	assert.ErrorIs(t, VerifyConsistency(21, 37, &r20, &root, c), ErrProof)
	assert.ErrorIs(t, VerifyConsistency(20, 37, &root, &root, c), ErrProof)
	assert.ErrorIs(t, VerifyConsistency(20, 37, &r20, &root, nil), ErrProof)
	assert.ErrorIs(t, VerifyConsistency(37, 37, &r20, &root, nil), ErrProof)
	assert.ErrorIs(t, VerifyConsistency(38, 37, &r20, &root, nil), ErrRange)
	assert.Equal(t, Hash(sha256.Sum256(nil)), EmptyRoot)
}

func FuzzVerify(f *testing.F) {
	f.Add(uint64(3), uint64(7), uint64(4), []byte("seed"))
	f.Add(uint64(0), uint64(1), uint64(0), []byte{})
	f.Add(uint64(1<<63), uint64(1<<64-1), uint64(5), make([]byte, 5*HashSize))
	f.Fuzz(func(t *testing.T, index, size, size1 uint64, raw []byte) {
		var proof []Hash
		for len(raw) >= HashSize && len(proof) < 70 {
			proof = append(proof, Hash(raw[:HashSize]))
			raw = raw[HashSize:]
		}
		var h Hash
		copy(h[:], raw)
		_ = VerifyInclusion(index, size, &h, proof, &h)
		_ = VerifyConsistency(size1, size, &h, &h, proof)
	})
}

func BenchmarkAppend(b *testing.B) {
	leaf := []byte(`{"i":1,"t":1,"type":"event.accepted","body":{"seq":1}}`)
	r := NewRange(0)
	b.ReportAllocs()
	for b.Loop() {
		h := HashLeaf(leaf)
		r.AppendLeaf(&h)
	}
}
