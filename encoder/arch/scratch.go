package arch

import "github.com/embedpipe/embedpipe/encoder/kernels"

// Scratch holds the per-call working buffers of Encoder.Forward. A Scratch is
// used by one call at a time; callers pool them (sync.Pool) so that steady
// state needs no allocation: buffers only grow, and keep their size between
// calls.
type Scratch struct {
	// Pool, when non-nil, lets the dense layers of a Forward call split
	// their rows across its workers. Results are the same with or without
	// it. A Pool runs one operation at a time, so callers set it only when
	// no other call is using the same Pool.
	Pool *kernels.Pool
	// Observer, when non-nil, receives the intermediate results of the
	// Forward calls made with this Scratch (see Observer). Nil for
	// ordinary encoding.
	Observer Observer
	// NoPrefixCache makes the causal stacks encode a shared prefix in
	// every sequence instead of once per batch (see MinPrefixTokens), for
	// comparisons; results agree within float32 rounding either way.
	NoPrefixCache bool

	bufs  [][]float32
	ints  []int
	layer int     // the layer being observed, set by observeStates
	attn  attnJob // the fused attention of the call in flight
}

// Buf returns buffer slot with length n, growing it when needed. Its contents
// are unspecified. Slots are small integers chosen by the architecture; two
// slots never alias.
func (s *Scratch) Buf(slot, n int) []float32 {
	for len(s.bufs) <= slot {
		s.bufs = append(s.bufs, nil)
	}
	b := s.bufs[slot]
	if cap(b) < n {
		// Grow with head room so that batches of slowly rising size do not
		// reallocate every time.
		b = make([]float32, n, n+n/4)
		s.bufs[slot] = b
	}
	return b[:n]
}

// Bytes reports the memory the Scratch holds, for diagnostics.
func (s *Scratch) Bytes() int {
	n := 0
	for _, b := range s.bufs {
		n += 4 * cap(b)
	}
	return n
}
