package encoder

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/embedpipe/embedpipe/encoder/arch"
	"github.com/embedpipe/embedpipe/encoder/kernels"
	"github.com/embedpipe/embedpipe/encoder/safetensors"
)

// CrossEncoderInfo describes the head of a cross-encoder (a
// ForSequenceClassification model scoring sentence pairs).
type CrossEncoderInfo struct {
	// Labels are the names of the logits, in order (id2label).
	Labels []string `json:"labels"`
	// Activation is what turns a logit into a score: Identity, Sigmoid,
	// Tanh, ReLU or GELU.
	Activation string `json:"activation"`
	// ActivationSource says where Activation came from: the config key,
	// or the sentence-transformers default for the label count.
	ActivationSource string `json:"activation_source"`
}

// crossHead is a sequence-classification head over the first token: BERT's
// pooler (dense + tanh) then the classifier, or RoBERTa's classifier.dense
// (+ tanh) then classifier.out_proj.
type crossHead struct {
	pooler *kernels.Dense
	out    *kernels.Dense
	act    headAct
	info   CrossEncoderInfo
}

// isCrossEncoder reports whether a directory's config and layout describe
// a cross-encoder.
func isCrossEncoder(cfg *arch.Config, lay *stLayout) bool {
	if lay.stType == "CrossEncoder" {
		return true
	}
	a := cfg.Architecture()
	return !lay.hasModules && len(a) > len("ForSequenceClassification") && a[len(a)-len("ForSequenceClassification"):] == "ForSequenceClassification"
}

// loadCrossHead loads the classification head of a cross-encoder and its
// score activation (sentence_transformers.activation_fn, else the older
// sbert_ce_default_activation_function, else Sigmoid for one label and
// Identity otherwise, as sentence-transformers' CrossEncoder does).
func loadCrossHead(cfg *arch.Config, ck *safetensors.Checkpoint, hidden int) (*crossHead, error) {
	labels, err := readLabels(cfg)
	if err != nil {
		return nil, err
	}
	nl := len(labels)
	h := &crossHead{info: CrossEncoderInfo{Labels: labels}}
	if _, ok := ck.Lookup("classifier.out_proj.weight"); ok {
		if h.pooler, err = arch.LoadDense(ck, "classifier.dense", hidden, hidden, true); err != nil {
			return nil, err
		}
		if h.out, err = arch.LoadDense(ck, "classifier.out_proj", nl, hidden, true); err != nil {
			return nil, err
		}
	} else {
		p, ok := ck.Lookup("bert.pooler.dense.weight", "pooler.dense.weight")
		if !ok {
			return nil, fmt.Errorf("%w: %s: no pooler (bert.pooler.dense.weight) for the classification head", ErrWeights, ck.Path())
		}
		if h.pooler, err = arch.LoadDense(ck, p[:len(p)-len(".weight")], hidden, hidden, true); err != nil {
			return nil, err
		}
		if h.out, err = arch.LoadDense(ck, "classifier", nl, hidden, true); err != nil {
			return nil, err
		}
	}
	var st struct {
		ActivationFn *string `json:"activation_fn"`
	}
	if err := cfg.Decode("sentence_transformers", &st); err != nil {
		return nil, err
	}
	name, src := "", ""
	switch legacy, err := cfg.StringOr("sbert_ce_default_activation_function", ""); {
	case err != nil:
		return nil, err
	case st.ActivationFn != nil:
		name, src = *st.ActivationFn, "sentence_transformers.activation_fn"
	case legacy != "":
		name, src = legacy, "sbert_ce_default_activation_function"
	case nl == 1:
		name, src = "Sigmoid", "default for one label"
	default:
		name, src = "Identity", "default for several labels"
	}
	if h.act, err = lookupHeadAct(cfg.Path, src, name); err != nil {
		return nil, err
	}
	h.info.Activation, h.info.ActivationSource = h.act.name, src
	return h, nil
}

// readLabels returns the label names of id2label in id order, or
// LABEL_0… for num_labels (default 2, as transformers has it).
func readLabels(cfg *arch.Config) ([]string, error) {
	var id2 map[string]string
	if err := cfg.Decode("id2label", &id2); err != nil {
		return nil, err
	}
	if len(id2) > 0 {
		labels := make([]string, len(id2))
		keys := make([]int, 0, len(id2))
		for k := range id2 {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(id2) {
				return nil, fmt.Errorf("%w: %s: id2label key %q is not an id in [0, %d)", ErrConfig, cfg.Path, k, len(id2))
			}
			keys = append(keys, i)
		}
		sort.Ints(keys)
		for _, i := range keys {
			labels[i] = id2[strconv.Itoa(i)]
		}
		return labels, nil
	}
	n, err := cfg.IntOr("num_labels", 2, 1, 1<<16)
	if err != nil {
		return nil, err
	}
	labels := make([]string, n)
	for i := range labels {
		labels[i] = "LABEL_" + strconv.Itoa(i)
	}
	return labels, nil
}

// NumLabels returns the number of logits a cross-encoder gives per pair, 0
// for other models.
func (m *Model) NumLabels() int {
	if m.cross == nil {
		return 0
	}
	return len(m.cross.info.Labels)
}

// AppendPairTo tokenizes the pair (query, document) as Hugging Face does for
// a cross-encoder — [CLS] query [SEP] document [SEP], token types 0 then 1
// for BERT — truncated to maxLen tokens by the longest_first strategy
// (maxLen <= 0 means MaxSeqLen(); larger values are capped at the position
// table size), and appends it to b as one sequence with its token types.
// It fails when the tokenizer has no pair layout.
func (m *Model) AppendPairTo(b *Batch, query, document string, maxLen int) (truncated bool, err error) {
	if maxLen <= 0 {
		maxLen = m.maxSeqLen
	}
	if m.maxPos > 0 && maxLen > m.maxPos {
		maxLen = m.maxPos
	}
	if m.lowerCase {
		// sentence_bert_config.json's do_lower_case, as in TokenizeTo.
		query, document = strings.ToLower(query), strings.ToLower(document)
	}
	if len(b.Starts) == 0 {
		b.Starts = append(b.Starts, 0)
	}
	for len(b.Types) < len(b.IDs) {
		b.Types = append(b.Types, 0)
	}
	n := len(b.IDs)
	ids, types, truncated, err := m.tok.EncodePairTo(b.IDs, b.Types, query, document, maxLen)
	if err != nil {
		return false, fmt.Errorf("%s: %w", m.info.Dir, err)
	}
	if m.typeVocab <= 1 {
		// A model with a single token type (RoBERTa) is fed no token
		// types, as its tokenizer's model inputs have none.
		clear(types[n:])
	}
	b.IDs, b.Types = ids, types
	b.Starts = append(b.Starts, len(b.IDs))
	return truncated, nil
}

// ScoreBatch scores every sequence of b (built with AppendPairTo) with the
// cross-encoder: logits receives NumLabels() raw logits per pair and scores
// the same after the model's activation (Info().CrossEncoder.Activation),
// both row-major, b.Len()×NumLabels(); either may be nil when not wanted.
// Buffers are the caller's and only written. It fails with ErrUnsupported
// for a model that is not a cross-encoder. Safe for concurrent use.
func (m *Model) ScoreBatch(ctx context.Context, b *Batch, logits, scores []float32) error {
	h := m.cross
	if h == nil {
		return fmt.Errorf("%w: %s is not a cross-encoder (no ForSequenceClassification head)", ErrUnsupported, m.info.Dir)
	}
	if err := checkBatch(b, 0); err != nil {
		return err
	}
	n, nl, H := b.Len(), len(h.info.Labels), m.info.Hidden
	for _, d := range [][]float32{logits, scores} {
		if d != nil && len(d) < n*nl {
			return fmt.Errorf("%w: destination holds %d floats, need %d pairs × %d labels", ErrInput, len(d), n, nl)
		}
	}
	return m.withHidden(ctx, b, func(s *callScratch) error { return h.score(s, b, logits, scores, n, nl, H) })
}

// score runs the classification head over the first-token hidden states
// in s of the n pairs of b.
func (h *crossHead) score(s *callScratch, b *Batch, logits, scores []float32, n, nl, H int) error {
	st := b.starts()
	s.headA = growF32(s.headA, n*H)
	for i := range n {
		copy(s.headA[i*H:(i+1)*H], s.hidden[st[i]*H:(st[i]+1)*H])
	}
	s.headB = growF32(s.headB, n*H)
	h.pooler.ForwardParallel(nil, s.headB, s.headA, n, tanhF32)
	out := logits
	if out == nil {
		s.headA = growF32(s.headA, n*nl)
		out = s.headA
	}
	h.out.Forward(out, s.headB, n)
	for i := range n {
		if !finite(out[i*nl : (i+1)*nl]) {
			return fmt.Errorf("%w: logits of pair %d of the batch", ErrNonFinite, i)
		}
	}
	if scores != nil {
		copy(scores[:n*nl], out[:n*nl])
		if h.act.f != nil {
			h.act.f(scores[:n*nl])
		}
	}
	return nil
}

// Score scores the pairs (queries[i], documents[i]) with the cross-encoder,
// truncated at MaxSeqLen(), into logits and scores (len(queries) ×
// NumLabels() each, either may be nil; see ScoreBatch). It batches the
// pairs itself, at most about 16k tokens per forward pass.
func (m *Model) Score(ctx context.Context, queries, documents []string, logits, scores []float32) error {
	if len(queries) != len(documents) {
		return fmt.Errorf("%w: %d queries but %d documents", ErrInput, len(queries), len(documents))
	}
	nl := m.NumLabels()
	return m.inChunks(len(queries), "pairs", func(b *Batch, i int) error {
		if _, err := m.AppendPairTo(b, queries[i], documents[i], 0); err != nil {
			return fmt.Errorf("pair %d: %w", i, err)
		}
		return nil
	}, func(b *Batch, first, end int) error {
		var l, sc []float32
		if logits != nil {
			l = logits[first*nl : end*nl]
		}
		if scores != nil {
			sc = scores[first*nl : end*nl]
		}
		return m.ScoreBatch(ctx, b, l, sc)
	})
}

// Rerank scores each of documents against query (see Score) into scores
// (len(documents) × NumLabels(), after the activation) and returns the
// document indices ordered by descending first-label score, ties in input
// order.
func (m *Model) Rerank(ctx context.Context, query string, documents []string, scores []float32) ([]int, error) {
	nl := m.NumLabels()
	if nl == 0 {
		return nil, fmt.Errorf("%w: %s is not a cross-encoder", ErrUnsupported, m.info.Dir)
	}
	if len(scores) < len(documents)*nl {
		return nil, fmt.Errorf("%w: destination holds %d floats, need %d documents × %d labels", ErrInput, len(scores), len(documents), nl)
	}
	queries := make([]string, len(documents))
	for i := range queries {
		queries[i] = query
	}
	if err := m.Score(ctx, queries, documents, nil, scores); err != nil {
		return nil, err
	}
	order := make([]int, len(documents))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]*nl] > scores[order[b]*nl] })
	return order, nil
}
