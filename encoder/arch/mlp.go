package arch

import "github.com/embedpipe/embedpipe/encoder/kernels"

// MLP is the feed-forward block of a transformer layer.
//
// Plain: Down(Act(Up(x))). Gated (GLU family): Up produces 2×Inter values
// per row, [a | b], and the block computes Down(Act(a) ⊙ b). Gate and up
// projections stored as two tensors (Qwen3's gate_proj and up_proj) are
// fused into one Up with LoadFusedDense, gate first.
type MLP struct {
	Up, Down *kernels.Dense
	Act      Activation
	Gated    bool
	Inter    int // width after activation (Down.In)
}

// BufferLen is the number of floats Forward needs in inter for rows rows.
func (m *MLP) BufferLen(rows int) int { return rows * m.Up.Out }

// Forward writes the block's output for rows rows of x into dst
// (rows×Down.Out); inter is working space of BufferLen(rows) floats.
func (m *MLP) Forward(dst, x, inter []float32, rows int) {
	m.ForwardPool(nil, dst, x, inter, rows)
}

// ForwardPool is Forward with the projections split across the workers of
// p (nil: the calling goroutine).
func (m *MLP) ForwardPool(p *kernels.Pool, dst, x, inter []float32, rows int) {
	if m.hidden(p, x, inter, rows) {
		m.Down.ForwardParallel(p, dst, inter, rows, nil)
	}
}

// ForwardAddPool is ForwardPool adding the block's output to dst: the
// residual connection fused into the down projection. dst may alias x,
// which the up projection has consumed before dst is written.
func (m *MLP) ForwardAddPool(p *kernels.Pool, dst, x, inter []float32, rows int) {
	if m.hidden(p, x, inter, rows) {
		m.Down.ForwardAdd(p, dst, inter, rows)
	}
}

// hidden computes the activated rows×Inter hidden layer of x into inter;
// it reports false when there is nothing to do.
func (m *MLP) hidden(p *kernels.Pool, x, inter []float32, rows int) bool {
	if rows == 0 {
		return false
	}
	if !m.Gated {
		// The activation is applied by the GEMM, block by block while the
		// block is in cache; the result equals GEMM then activation.
		m.Up.ForwardParallel(p, inter, x, rows, m.Act)
		return true
	}
	m.Up.ForwardParallel(p, inter, x, rows, nil)
	// Compact each row's Act(a)⊙b in place to a rows×Inter matrix. Row r's
	// result goes to [r·I, (r+1)·I), which for r ≥ 1 lies before its own
	// input at [2r·I, 2(r+1)·I) and after every result already written, so
	// no unread input is overwritten.
	I := m.Inter
	for r := 0; r < rows; r++ {
		a := inter[2*r*I : 2*r*I+I]
		b := inter[2*r*I+I : 2*r*I+2*I]
		o := inter[r*I : r*I+I]
		if r > 0 {
			copy(o, a)
		}
		m.Act(o)
		kernels.Mul(o, b)
	}
	return true
}
