package arch

import (
	"fmt"
	"slices"
	"sync"

	"github.com/embedpipe/embedpipe/encoder/kernels"
)

// Qwen3-MoE is Qwen3 whose feed-forward blocks are mixtures of experts: a
// router (mlp.gate) scores the experts of each token, softmax turns the
// scores into probabilities, the num_experts_per_tok most probable experts
// are kept (their probabilities renormalised to sum to 1 when
// norm_topk_prob is set), and the block's output is the weighted sum of
// those experts' SwiGLU MLPs. Layers listed in mlp_only_layers, or off the
// decoder_sparse_step grid, keep a dense MLP.
//
// Experts run batched: the tokens routed to an expert are gathered into one
// matrix and go through its MLP in one GEMM per projection, so the cost is
// that of a dense MLP of num_experts_per_tok/num_experts of the tokens per
// expert, never a matrix-vector product per token.

func buildQwen3MoE(cfg *Config, w Weights) (Encoder, error) {
	c, err := parseQwen3Config(cfg)
	if err != nil {
		return nil, err
	}
	act := c.actFn
	// transformers calls it num_experts; some configs carry the
	// num_local_experts alias instead.
	expertsKey := "num_experts"
	if !cfg.Has(expertsKey) {
		expertsKey = "num_local_experts"
	}
	nExp, err := cfg.Int(expertsKey, 1, 1<<16)
	if err != nil {
		return nil, err
	}
	k, err := cfg.Int("num_experts_per_tok", 1, nExp)
	if err != nil {
		return nil, err
	}
	moeInter, err := cfg.Int("moe_intermediate_size", 1, 1<<20)
	if err != nil {
		return nil, err
	}
	normTopK, err := cfg.BoolOr("norm_topk_prob", false)
	if err != nil {
		return nil, err
	}
	step, err := cfg.IntOr("decoder_sparse_step", 1, 1, 1024)
	if err != nil {
		return nil, err
	}
	var denseOnly []int
	if err := cfg.Decode("mlp_only_layers", &denseOnly); err != nil {
		return nil, err
	}
	H := c.hidden
	return buildDecoder(cfg, w, c, moeInter, func(lp string, l int) (feedForward, error) {
		if slices.Contains(denseOnly, l) || (l+1)%step != 0 {
			mlp, err := loadSwiGLU(w, lp+"mlp.", H, c.inter, act)
			if err != nil {
				return nil, err
			}
			return denseFF{mlp}, nil
		}
		m := &moeFF{k: k, normTopK: normTopK, hidden: H, inter: moeInter}
		if m.gate, err = LoadDenseFloat32(w, lp+"mlp.gate", nExp, H, false); err != nil {
			return nil, err
		}
		for e := 0; e < nExp; e++ {
			ex, err := loadSwiGLU(w, fmt.Sprintf("%smlp.experts.%d.", lp, e), H, moeInter, act)
			if err != nil {
				return nil, err
			}
			m.experts = append(m.experts, ex)
		}
		return m, nil
	})
}

// moeFF is a routed mixture of SwiGLU experts.
type moeFF struct {
	gate          *kernels.Dense // router: experts×hidden, no bias
	experts       []*MLP
	k             int // experts per token
	normTopK      bool
	hidden, inter int
	routes        sync.Pool // *moeRoutes
}

// moeRoutes is the integer working memory of one forward call, pooled
// because Scratch holds only float buffers.
type moeRoutes struct {
	sel    []int32 // rows×k chosen experts
	byExp  []int32 // the rows×k assignments (t·k+j), grouped by expert
	starts []int   // experts+1 offsets into byExp
	pos    []int   // per expert, the next free entry of byExp
}

func (m *moeFF) forward(dst, x []float32, s *Scratch, first, rows int) {
	E, k, H := len(m.experts), m.k, m.hidden
	logits := s.Buf(first, rows*E)
	weights := s.Buf(first+1, rows*k)
	m.gate.Forward(logits, x, rows)
	r, _ := m.routes.Get().(*moeRoutes)
	if r == nil {
		r = &moeRoutes{}
	}
	defer m.routes.Put(r)
	r.sel = slices.Grow(r.sel[:0], rows*k)[:rows*k]
	r.byExp = slices.Grow(r.byExp[:0], rows*k)[:rows*k]
	r.starts = slices.Grow(r.starts[:0], E+1)[:E+1]
	clear(r.starts)
	for t := 0; t < rows; t++ {
		p := logits[t*E : t*E+E]
		kernels.Softmax(p)
		sel := r.sel[t*k : t*k+k]
		kernels.TopK(sel, p)
		wt := weights[t*k : t*k+k]
		var sum float32
		for j, e := range sel {
			wt[j] = p[e]
			sum += p[e]
			r.starts[e+1]++
		}
		if m.normTopK && sum > 0 {
			for j := range wt {
				wt[j] /= sum
			}
		}
	}
	if s.Observer != nil {
		s.Observer.Routes(s.layer, r.sel, weights, k)
	}
	// Counting sort of the assignments by expert, tokens in order within
	// each expert.
	for e := 0; e < E; e++ {
		r.starts[e+1] += r.starts[e]
	}
	r.pos = append(r.pos[:0], r.starts[:E]...)
	for a, e := range r.sel {
		r.byExp[r.pos[e]] = int32(a)
		r.pos[e]++
	}
	clear(dst[:rows*H])
	// A token picks an expert at most once, so no expert gets more than
	// rows tokens.
	xe := s.Buf(first+2, rows*H)
	ye := s.Buf(first+3, rows*H)
	inter := s.Buf(first+4, rows*2*m.inter)
	for e, ex := range m.experts {
		as := r.byExp[r.starts[e]:r.starts[e+1]]
		if len(as) == 0 {
			continue
		}
		for i, a := range as {
			t := int(a) / k
			copy(xe[i*H:i*H+H], x[t*H:t*H+H])
		}
		ex.Forward(ye, xe, inter, len(as))
		for i, a := range as {
			t := int(a) / k
			kernels.AddScaled(dst[t*H:t*H+H], ye[i*H:i*H+H], weights[a])
		}
	}
}
