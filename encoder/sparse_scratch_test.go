package encoder

import (
	"context"
	"strings"
	"testing"
	"unsafe"

	"github.com/embedpipe/embedpipe/internal/refs"
)

// sparseScratchHeld returns the bytes the sparse path's buffers of s hold
// (their capacities, which is what was allocated).
func sparseScratchHeld(s *callScratch) int {
	entry, word := int(unsafe.Sizeof(spEntry{})), int(unsafe.Sizeof(int(0)))
	return cap(s.logits)*4 + cap(s.spAcc)*8 + cap(s.spMax)*4 +
		(cap(s.spEntries)+cap(s.spSorted))*entry + (cap(s.spCount)+cap(s.spPos))*word
}

// TestSparseScratchBound runs tiny-splade in its worst case — every
// vocabulary score positive, so a group of 16 sequences finds 16 × 30,522
// entries — and checks that the buffers the sparse path then holds fit in
// the stated Info().Sparse.ScratchBytes; the sorted copy of the entries
// alone is 5.6 MiB, which a bound without it would miss. A second call on
// the same scratch allocates nothing more.
func TestSparseScratchBound(t *testing.T) {
	m, err := Load(refs.ModelDir(t, "tiny-splade"))
	if err != nil {
		t.Fatal(err)
	}
	// A large output bias makes every logit, hence every score, positive:
	// the most entries a group can have.
	for _, tile := range m.mlm.tiles {
		for i := range tile.Bias {
			tile.Bias[i] += 1000
		}
	}
	var b Batch
	for i := range 20 { // 3 to 5 tokens each
		if _, err := m.AppendTo(&b, strings.Repeat("word ", i%3+1), "", 0); err != nil {
			t.Fatal(err)
		}
	}
	// One sequence longer than a token tile, a group of its own.
	if _, err := m.AppendTo(&b, strings.Repeat("spill over the tile ", 60), "", 0); err != nil {
		t.Fatal(err)
	}
	if n := b.Starts[len(b.Starts)-1] - b.Starts[len(b.Starts)-2]; n <= sparseTokTile {
		t.Fatalf("long sequence has %d tokens, want more than %d", n, sparseTokTile)
	}
	s := &callScratch{}
	var dst SparseVectors
	if err := m.embedSparse(context.Background(), s, &b, SparseOptions{}, &dst); err != nil {
		t.Fatal(err)
	}
	vocab := m.Info().Sparse.Vocab
	for i := range dst.Len() {
		if idx, _ := dst.Vector(i); len(idx) != vocab {
			t.Fatalf("vector %d has %d entries, want all %d: the worst case was not reached", i, len(idx), vocab)
		}
	}
	// 16 short sequences make the first group: its sorted entries are
	// the full 16 × vocab.
	if cap(s.spSorted) < sparseGroupSeqs*vocab {
		t.Fatalf("sorted entries buffer %d, want %d: no group was full", cap(s.spSorted), sparseGroupSeqs*vocab)
	}
	held, bound := sparseScratchHeld(s), m.Info().Sparse.ScratchBytes
	t.Logf("sparse scratch held %d bytes (%.2f MiB), stated bound %d (%.2f MiB)", held, float64(held)/(1<<20), bound, float64(bound)/(1<<20))
	if held > bound {
		t.Errorf("the sparse path holds %d bytes of scratch, more than the stated bound %d", held, bound)
	}
	before := held
	dst.Reset()
	if err := m.embedSparse(context.Background(), s, &b, SparseOptions{TopK: 7}, &dst); err != nil {
		t.Fatal(err)
	}
	if held := sparseScratchHeld(s); held != before {
		t.Errorf("second call: scratch %d bytes, first %d: the buffers grew in steady state", held, before)
	}
}
