package encoder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"unsafe"

	"github.com/embedpipe/embedpipe/encoder/arch"
	"github.com/embedpipe/embedpipe/encoder/kernels"
	"github.com/embedpipe/embedpipe/encoder/safetensors"
)

// SparseInfo describes the head of a sparse (SPLADE) encoder.
type SparseInfo struct {
	// Vocab is the width of the sparse vectors: one dimension per
	// vocabulary token.
	Vocab int `json:"vocab"`
	// Pooling is SpladePooling's pooling_strategy, "max" or "sum".
	Pooling string `json:"pooling"`
	// Activation is SpladePooling's activation_function: "relu" scores a
	// logit x as log(1+relu(x)), "log1p_relu" as log(1+log(1+relu(x))).
	Activation string `json:"activation"`
	// ScratchBytes bounds the working memory of the vocabulary projection
	// per EmbedSparseBatch call, whatever the batch size or the number of
	// positive weights: the logits tile, the running values and the
	// found and sorted entries of one group of sequences (see
	// EmbedSparseBatch).
	ScratchBytes int `json:"scratch_bytes"`
}

// spladeSpec is a parsed SpladePooling config.
type spladeSpec struct {
	pooling, activation string
	dim                 int // declared word_embedding_dimension, 0 if absent
}

// readSplade reads a SpladePooling module's config.json.
func readSplade(path string) (spladeSpec, error) {
	var c struct {
		Pooling *string `json:"pooling_strategy"`
		Act     *string `json:"activation_function"`
		Dim     *int    `json:"word_embedding_dimension"`
	}
	sp := spladeSpec{pooling: "max", activation: "relu"} // sentence-transformers' defaults
	if err := readJSON(path, &c); err != nil && !isNotExist(err) {
		return sp, err
	}
	if c.Pooling != nil {
		sp.pooling = *c.Pooling
	}
	if c.Act != nil {
		sp.activation = *c.Act
	}
	if c.Dim != nil {
		sp.dim = *c.Dim
	}
	if sp.pooling != "max" && sp.pooling != "sum" {
		return sp, fmt.Errorf("%w: %s: pooling_strategy %q (supported: max, sum)", ErrUnsupported, path, sp.pooling)
	}
	if sp.activation != "relu" && sp.activation != "log1p_relu" {
		return sp, fmt.Errorf("%w: %s: activation_function %q (supported: relu, log1p_relu)", ErrUnsupported, path, sp.activation)
	}
	return sp, nil
}

// The vocabulary projection of a sparse encoder is tiled so that its
// scratch does not grow with the batch or the vocabulary: the logits of at
// most sparseTokTile tokens × sparseVocabTile vocabulary entries exist at
// once, and the running pooled values of at most sparseGroupSeqs sequences
// × sparseVocabTile entries.
const (
	sparseTokTile   = 128
	sparseVocabTile = 2048
	sparseGroupSeqs = 16
)

// sparseScratchBytes is the bound stated in SparseInfo.ScratchBytes: the
// float32 logits of one tile, the running values of one group (float32
// maxima and float64 sums), and the (sequence, index, value) entries of one
// group twice over (as found, and counting-sorted by sequence) in the worst
// case where every score is positive, plus the group's per-sequence counts
// and positions. EmbedSparseBatch sizes these buffers exactly and never
// grows them past it.
func sparseScratchBytes(vocab int) int {
	const entry = int(unsafe.Sizeof(spEntry{}))
	return sparseTokTile*sparseVocabTile*4 + sparseGroupSeqs*sparseVocabTile*(4+8) +
		2*sparseGroupSeqs*vocab*entry + 2*(sparseGroupSeqs+1)*int(unsafe.Sizeof(int(0)))
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// mlmHead is a BERT-family masked-language-model head: a transform (dense,
// activation, LayerNorm) and the projection onto the vocabulary, cut into
// tiles of sparseVocabTile outputs.
type mlmHead struct {
	transform *kernels.Dense
	act       arch.Activation
	norm      *arch.Norm
	tiles     []*kernels.Dense
	vocab     int
	spec      spladeSpec
}

// mlmNames are the tensor names of one family's masked-LM head.
type mlmNames struct {
	dense, norm, bias string
	decoder           []string // decoder weights, tried in order (tied: the word embeddings)
	decoderBias       string
}

var (
	bertMLM = mlmNames{
		dense: "cls.predictions.transform.dense", norm: "cls.predictions.transform.LayerNorm",
		bias:        "cls.predictions.bias",
		decoder:     []string{"cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"},
		decoderBias: "cls.predictions.decoder.bias",
	}
	robertaMLM = mlmNames{
		dense: "lm_head.dense", norm: "lm_head.layer_norm", bias: "lm_head.bias",
		decoder:     []string{"lm_head.decoder.weight", "roberta.embeddings.word_embeddings.weight", "embeddings.word_embeddings.weight"},
		decoderBias: "lm_head.decoder.bias",
	}
)

// loadMLMHead loads the masked-LM head of a BertForMaskedLM (or
// RobertaForMaskedLM) checkpoint. A decoder tied to the word embeddings
// (no decoder weight stored) reads the embedding table.
func loadMLMHead(cfg *arch.Config, ck *safetensors.Checkpoint, mt string, hidden, vocab int, spec spladeSpec) (*mlmHead, error) {
	var n mlmNames
	act := "gelu"
	switch mt {
	case "bert":
		n = bertMLM
		var err error
		if act, err = cfg.StringOr("hidden_act", "gelu"); err != nil {
			return nil, err
		}
	case "roberta", "xlm-roberta":
		n = robertaMLM // RobertaLMHead applies gelu whatever hidden_act says
	default:
		return nil, fmt.Errorf("%w: %s: a masked-LM head for model_type %q (supported: bert, roberta, xlm-roberta)", ErrUnsupported, cfg.Path, mt)
	}
	if spec.dim != 0 && spec.dim != vocab {
		return nil, fmt.Errorf("%w: SpladePooling word_embedding_dimension %d differs from vocab_size %d", ErrConfig, spec.dim, vocab)
	}
	a, err := arch.LookupActivation(cfg, "hidden_act", act)
	if err != nil {
		return nil, err
	}
	eps, err := cfg.FloatOr("layer_norm_eps", 1e-12)
	if err != nil {
		return nil, err
	}
	h := &mlmHead{act: a, vocab: vocab, spec: spec}
	if h.transform, err = arch.LoadDense(ck, n.dense, hidden, hidden, true); err != nil {
		return nil, err
	}
	if h.norm, err = arch.LoadNorm(ck, n.norm, arch.LayerNorm, hidden, eps, true); err != nil {
		return nil, err
	}
	dec, ok := ck.Lookup(n.decoder...)
	if !ok {
		return nil, fmt.Errorf("%w: %s: no masked-LM decoder (tried %v)", ErrWeights, ck.Path(), n.decoder)
	}
	w, err := ck.Float32(dec, vocab, hidden)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	bname, ok := ck.Lookup(n.bias, n.decoderBias)
	if !ok {
		return nil, fmt.Errorf("%w: %s: no masked-LM output bias (tried %s, %s)", ErrWeights, ck.Path(), n.bias, n.decoderBias)
	}
	bias, err := ck.Float32(bname, vocab)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	for v0 := 0; v0 < vocab; v0 += sparseVocabTile {
		v1 := min(v0+sparseVocabTile, vocab)
		h.tiles = append(h.tiles, kernels.NewDense(w[v0*hidden:v1*hidden], bias[v0:v1], v1-v0, hidden))
	}
	return h, nil
}

// score turns a pooled logit (max pooling) or a token's logit (sum pooling)
// into SPLADE's weight.
func (h *mlmHead) score(x float64) float64 {
	if x <= 0 {
		return 0
	}
	v := math.Log1p(x)
	if h.spec.activation == "log1p_relu" {
		v = math.Log1p(v)
	}
	return v
}

// SparseOptions selects which entries of a sparse vector are kept.
type SparseOptions struct {
	// TopK, when positive, keeps only the TopK largest values of each
	// vector (ties broken by the smaller index).
	TopK int
	// Threshold drops values at or below it; entries are kept when
	// value > Threshold (0 by default: every positive weight).
	Threshold float32
}

// SparseVectors holds sparse vectors laid end to end, like Batch: vector i
// has Indices[Starts[i]:Starts[i+1]], ascending, with Values at the same
// positions. Starts has one entry more than there are vectors once
// anything was added; the zero value is empty and ready to use, and Reset
// keeps its memory for reuse.
type SparseVectors struct {
	Indices []int32
	Values  []float32
	Starts  []int
}

// Reset empties v, keeping its memory.
func (v *SparseVectors) Reset() {
	v.Indices, v.Values = v.Indices[:0], v.Values[:0]
	v.Starts = append(v.Starts[:0], 0)
}

// Len returns the number of vectors.
func (v *SparseVectors) Len() int { return max(len(v.Starts)-1, 0) }

// Vector returns vector i's indices and values (views into v).
func (v *SparseVectors) Vector(i int) (indices []int32, values []float32) {
	a, b := v.Starts[i], v.Starts[i+1]
	return v.Indices[a:b], v.Values[a:b]
}

// spEntry is one positive score found during a sparse pass.
type spEntry struct {
	seq   int32 // within the group
	index int32
	value float32
}

// EmbedSparseBatch appends to dst one sparse vector per sequence of b, in
// order: SPLADE's max (or sum) over the sequence's tokens of
// log(1+relu(logit)) for every vocabulary token, keeping the entries that
// opt selects, with indices ascending. dst is owned by the caller, only
// appended to (call dst.Reset to reuse it) and may be read as soon as the
// call returns; b is only read. The vocabulary projection is tiled: its
// working memory is at most Info().Sparse.ScratchBytes whatever the batch,
// besides the batch's token embeddings (the encoder's output and the
// head's transform of it, tokens × hidden floats each). It fails with ErrUnsupported for a
// model that is not a sparse encoder. Safe for concurrent use.
func (m *Model) EmbedSparseBatch(ctx context.Context, b *Batch, opt SparseOptions, dst *SparseVectors) error {
	h := m.mlm
	if h == nil {
		return fmt.Errorf("%w: %s is not a sparse encoder (no MLMTransformer + SpladePooling modules)", ErrUnsupported, m.info.Dir)
	}
	if opt.TopK < 0 {
		return fmt.Errorf("%w: sparse top-k %d is negative", ErrInput, opt.TopK)
	}
	if err := checkBatch(b, 0); err != nil {
		return err
	}
	if len(dst.Starts) == 0 {
		dst.Starts = append(dst.Starts, 0)
	}
	if b.Len() == 0 {
		return nil
	}
	s := m.getScratch()
	defer m.scratch.Put(s)
	return m.embedSparse(ctx, s, b, opt, dst)
}

// embedSparse is EmbedSparseBatch with the scratch s, for a checked,
// non-empty batch of a sparse encoder.
func (m *Model) embedSparse(ctx context.Context, s *callScratch, b *Batch, opt SparseOptions, dst *SparseVectors) error {
	h := m.mlm
	n, H := b.Len(), m.info.Hidden
	T := len(b.IDs)
	x, err := m.hiddenStates(ctx, s, b, nil)
	if err != nil {
		return err
	}
	// The head's dense layers may use the workers when no other call
	// holds them.
	var pool *kernels.Pool
	if m.workers != nil && m.workersMu.TryLock() {
		pool = m.workers
		defer m.workersMu.Unlock()
	}
	s.headA = growF32(s.headA, T*H)
	h.transform.ForwardParallel(pool, s.headA, x, T, h.act)
	h.norm.Forward(x, s.headA, T)
	st := b.starts()
	// The tile buffers are made at their exact size (not growF32's
	// headroom), so that ScratchBytes is what they hold.
	if cap(s.logits) < sparseTokTile*sparseVocabTile {
		s.logits = make([]float32, sparseTokTile*sparseVocabTile)
	}
	if cap(s.spAcc) < sparseGroupSeqs*sparseVocabTile {
		s.spAcc = make([]float64, sparseGroupSeqs*sparseVocabTile)
	}
	if cap(s.spMax) < sparseGroupSeqs*sparseVocabTile {
		s.spMax = make([]float32, sparseGroupSeqs*sparseVocabTile)
	}
	maxEntries := sparseGroupSeqs * h.vocab
	sum := h.spec.pooling == "sum"
	for g0 := 0; g0 < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		// A group is up to sparseGroupSeqs sequences of at most
		// sparseTokTile tokens together, or one longer sequence.
		g1 := g0 + 1
		for g1 < n && g1-g0 < sparseGroupSeqs && st[g1+1]-st[g0] <= sparseTokTile {
			g1++
		}
		ns := g1 - g0
		s.spEntries = s.spEntries[:0]
		v0 := 0
		for _, tile := range h.tiles {
			vt := tile.Out
			acc := s.spAcc[:ns*vt]
			am := s.spMax[:ns*vt]
			if sum {
				clear(acc)
			} else {
				negInf := float32(math.Inf(-1))
				for i := range am {
					am[i] = negInf
				}
			}
			k := 0
			for r0 := st[g0]; r0 < st[g1]; r0 += sparseTokTile {
				rows := min(sparseTokTile, st[g1]-r0)
				lg := s.logits[:rows*vt]
				tile.ForwardParallel(pool, lg, x[r0*H:], rows, nil)
				for r := range rows {
					for st[g0+k+1] <= r0+r {
						k++
					}
					l := lg[r*vt : (r+1)*vt]
					if sum {
						a := acc[k*vt : (k+1)*vt]
						for j, v := range l {
							if v > 0 {
								a[j] += h.score(float64(v))
							}
						}
						continue
					}
					maxInto(am[k*vt:(k+1)*vt], l)
				}
			}
			for k := range ns {
				for j := range vt {
					var v float64
					if sum {
						v = acc[k*vt+j]
					} else if x := am[k*vt+j]; x > 0 {
						v = h.score(float64(x))
					} else {
						continue
					}
					if f := float32(v); f > opt.Threshold && f > 0 {
						if len(s.spEntries) == cap(s.spEntries) {
							s.spEntries = growEntries(s.spEntries, len(s.spEntries)+1, maxEntries)
						}
						s.spEntries = append(s.spEntries, spEntry{seq: int32(k), index: int32(v0 + j), value: f})
					}
				}
			}
			v0 += vt
		}
		s.appendSparse(dst, ns, opt.TopK, maxEntries)
		g0 = g1
	}
	return nil
}

// maxInto sets a[j] = max(a[j], l[j]). The logits are never NaN (the
// encoder refuses non-finite states), so the plain comparison is max; it
// is written without a branch on the data, which is random and would be
// mispredicted half the time.
func maxInto(a, l []float32) {
	l = l[:len(a)]
	for j, v := range l {
		a[j] = max(a[j], v)
	}
}

// growEntries returns es with room for need entries: its capacity doubled
// (at least 1024), at least need, and never more than limit, the most one
// group can hold, so that the buffer stays within ScratchBytes.
func growEntries(es []spEntry, need, limit int) []spEntry {
	c := min(max(2*cap(es), need, 1024), max(limit, need))
	out := make([]spEntry, len(es), c)
	copy(out, es)
	return out
}

// appendSparse appends the ns vectors of the group whose entries (in
// tile-major, then sequence, then index order) are in s.spEntries to dst,
// each cut to its topK largest values when topK > 0. limit is the most
// entries a group can have.
func (s *callScratch) appendSparse(dst *SparseVectors, ns, topK, limit int) {
	// Counting sort by sequence; stable, so each sequence keeps its
	// ascending indices.
	if cap(s.spCount) < sparseGroupSeqs+1 {
		s.spCount = make([]int, sparseGroupSeqs+1)
	}
	if cap(s.spPos) < sparseGroupSeqs+1 {
		s.spPos = make([]int, sparseGroupSeqs+1)
	}
	cnt := s.spCount[:ns+1]
	clear(cnt)
	for _, e := range s.spEntries {
		cnt[e.seq+1]++
	}
	for k := 1; k <= ns; k++ {
		cnt[k] += cnt[k-1]
	}
	n := len(s.spEntries)
	if cap(s.spSorted) < n {
		s.spSorted = growEntries(s.spSorted[:0], n, limit)
	}
	s.spSorted = s.spSorted[:n]
	pos := s.spPos[:ns]
	copy(pos, cnt[:ns])
	for _, e := range s.spEntries {
		s.spSorted[pos[e.seq]] = e
		pos[e.seq]++
	}
	for k := range ns {
		es := s.spSorted[cnt[k]:cnt[k+1]]
		if topK > 0 && len(es) > topK {
			slices.SortFunc(es, func(a, b spEntry) int {
				if a.value != b.value {
					if a.value > b.value {
						return -1
					}
					return 1
				}
				return int(a.index - b.index)
			})
			es = es[:topK]
			slices.SortFunc(es, func(a, b spEntry) int { return int(a.index - b.index) })
		}
		for _, e := range es {
			dst.Indices = append(dst.Indices, e.index)
			dst.Values = append(dst.Values, e.value)
		}
		dst.Starts = append(dst.Starts, len(dst.Indices))
	}
}

// EmbedSparse tokenizes texts with prompt prepended (see Embed), truncated
// at MaxSeqLen(), and appends their sparse vectors to dst in order (see
// EmbedSparseBatch). It batches the texts itself, at most about 16k tokens
// per forward pass.
func (m *Model) EmbedSparse(ctx context.Context, texts []string, prompt string, opt SparseOptions, dst *SparseVectors) error {
	return m.inChunks(len(texts), "texts", func(b *Batch, i int) error {
		_, err := m.AppendTo(b, texts[i], prompt, 0)
		return err
	}, func(b *Batch, _, _ int) error {
		return m.EmbedSparseBatch(ctx, b, opt, dst)
	})
}
