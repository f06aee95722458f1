package explain

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/arch"
)

// DefaultMaxTokens is the longest text, special tokens included, Run
// accepts unless Options.MaxTokens says otherwise: beyond it the attention
// pictures stop being readable.
const DefaultMaxTokens = 64

// MaxTokensLimit is the largest Options.MaxTokens allowed.
const MaxTokensLimit = 256

// MaxTexts is the largest number of texts one Run explains.
const MaxTexts = 16

// TopAttended is how many keys Result lists per query and head.
const TopAttended = 3

// Options selects what Run shows.
type Options struct {
	// Layers and Heads are the layer and head indices (from 0) the
	// attention pictures show; nil shows all. explain.json holds all of
	// them either way.
	Layers, Heads []int
	// MaxTokens refuses texts longer than this many tokens (0:
	// DefaultMaxTokens).
	MaxTokens int
}

// Result is everything Run found, the content of explain.json.
type Result struct {
	Model ModelInfo `json:"model"`
	// Layers describes the attention mask and feed-forward kind of every
	// layer.
	Layers []LayerInfo `json:"layers"`
	// ShownLayers and ShownHeads are the indices the attention pictures
	// show.
	ShownLayers []int `json:"shown_layers"`
	ShownHeads  []int `json:"shown_heads"`
	// KVHeadOf gives, per query head, the key/value head it reads: fewer
	// distinct values than heads under grouped-query attention.
	KVHeadOf []int `json:"kv_head_of"`
	// Stages names the token states of Text.StaticCosine: the output of
	// the embeddings, then of each layer.
	Stages []string `json:"stages"`
	Texts  []Text   `json:"texts"`
	// Similarity is the cosine matrix of the texts' pooled embeddings.
	Similarity [][]float64 `json:"similarity"`
	// Shared lists the tokens two texts have in common (by id) and how
	// similar their two occurrences are at every stage.
	Shared []SharedToken `json:"shared_tokens"`
	PCA    PCA           `json:"pca"`
	Notes  []string      `json:"notes,omitempty"`
}

// ModelInfo is the part of encoder.Info that explains the pictures.
type ModelInfo struct {
	Dir       string `json:"dir"`
	Arch      string `json:"arch"`
	ModelType string `json:"model_type"`
	Layers    int    `json:"layers"`
	Heads     int    `json:"heads"`
	KVHeads   int    `json:"kv_heads"`
	Hidden    int    `json:"hidden"`
	Dim       int    `json:"dim"`
	Pooling   string `json:"pooling"`
	Normalize bool   `json:"normalize"`
}

// LayerInfo is the attention mask and feed-forward kind of one layer.
type LayerInfo struct {
	Layer int `json:"layer"`
	// Mask is "full", "causal", "window" or "causal+window".
	Mask string `json:"mask"`
	// Window is the sliding-window width when Mask has one.
	Window int `json:"window,omitempty"`
	// MoE is true for a mixture-of-experts feed-forward block.
	MoE bool `json:"moe,omitempty"`

	mask arch.Mask
}

// Text is one explained text.
type Text struct {
	Text string `json:"text"`
	// Tokens are the tokens as the tokenizer cut them, one per input id.
	Tokens   []string `json:"tokens"`
	InputIDs []int32  `json:"input_ids"`
	// Attention is [layer][head][query][key] probabilities.
	Attention [][][][]float32 `json:"attention"`
	// Embedding is the pooled embedding, the one embed writes.
	Embedding []float32 `json:"embedding"`
	// StaticCosine is [token][stage]: the cosine between the token's static
	// (input) embedding and its state at each of Result.Stages.
	StaticCosine [][]float64 `json:"static_cosine"`
	// Top is [layer][head][query]: the TopAttended keys each query
	// attends to most.
	Top [][][][]Attended `json:"top_attended"`
	// Routes holds the expert routing of each mixture-of-experts layer.
	Routes []Routes `json:"routes,omitempty"`

	states [][]float32 // [stage] n×hidden
}

// Attended is one key and the weight a query gives it.
type Attended struct {
	Key    int     `json:"key"`
	Token  string  `json:"token"`
	Weight float32 `json:"weight"`
}

// Routes is the routing of one mixture-of-experts layer for one text.
type Routes struct {
	Layer int `json:"layer"`
	// Experts and Weights are [token][k].
	Experts [][]int32   `json:"experts"`
	Weights [][]float32 `json:"weights"`
}

// SharedToken is a token that occurs in texts A and B.
type SharedToken struct {
	Token string `json:"token"`
	ID    int32  `json:"id"`
	// TextA and TextB are text indices (from 0), PosA and PosB the
	// token's position in each.
	TextA int `json:"text_a"`
	PosA  int `json:"pos_a"`
	TextB int `json:"text_b"`
	PosB  int `json:"pos_b"`
	// Static is the cosine of the two static embeddings: 1, the same row.
	Static float64 `json:"static_cosine"`
	// ByStage is the cosine of the two occurrences' states at each stage.
	ByStage []float64 `json:"cosine_by_stage"`
}

// PCA is a two-dimensional map of every token's final state, all texts
// together.
type PCA struct {
	// Explained is the share of the variance of each of the two axes.
	Explained [2]float64 `json:"explained_variance"`
	Points    []Point    `json:"points"`
}

// Point is one token of the PCA map.
type Point struct {
	Text  int     `json:"text"`
	Index int     `json:"token_index"`
	Token string  `json:"token"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
}

// recorder is the Observer of one Run: it keeps copies of what the forward
// pass shows, per sequence.
type recorder struct {
	starts []int
	hidden int
	states [][]float32          // [stage] all tokens
	attn   map[[3]int][]float32 // layer, seq, head
	masks  map[int]arch.Mask    // layer
	kv     map[int]int          // head
	moe    map[int]routeRec     // layer
}

type routeRec struct {
	experts []int32
	weights []float32
	k       int
}

func (r *recorder) States(stage int, x []float32, starts []int, hidden int) {
	for len(r.states) <= stage {
		r.states = append(r.states, nil)
	}
	r.states[stage] = slices.Clone(x[:starts[len(starts)-1]*hidden])
	r.starts, r.hidden = slices.Clone(starts), hidden
}

func (r *recorder) Attention(layer, seq, head, kvHead int, mask arch.Mask, probs []float32, n int) {
	r.attn[[3]int{layer, seq, head}] = slices.Clone(probs[:n*n])
	r.masks[layer] = mask
	r.kv[head] = kvHead
}

func (r *recorder) Routes(layer int, experts []int32, weights []float32, k int) {
	r.moe[layer] = routeRec{slices.Clone(experts), slices.Clone(weights), k}
}

// Run encodes texts with m in one observed forward pass and computes
// everything the pictures show. The pooled embeddings are those
// EmbedBatch writes for the same texts.
func Run(ctx context.Context, m *encoder.Model, texts []string, opt Options) (*Result, error) {
	info := m.Info()
	if len(texts) == 0 {
		return nil, fmt.Errorf("%w: no text to explain", ErrInput)
	}
	if len(texts) > MaxTexts {
		return nil, fmt.Errorf("%w: %d texts, at most %d are explained at once", ErrInput, len(texts), MaxTexts)
	}
	maxTok := opt.MaxTokens
	if maxTok == 0 {
		maxTok = DefaultMaxTokens
	}
	if maxTok < 2 || maxTok > MaxTokensLimit {
		return nil, fmt.Errorf("%w: max tokens %d outside [2, %d]", ErrInput, maxTok, MaxTokensLimit)
	}
	layers, err := pick("layer", opt.Layers, info.Layers)
	if err != nil {
		return nil, err
	}
	heads, err := pick("head", opt.Heads, info.Heads)
	if err != nil {
		return nil, err
	}
	var b encoder.Batch
	res := &Result{
		Model: ModelInfo{Dir: info.Dir, Arch: info.Arch, ModelType: info.ModelType, Layers: info.Layers,
			Heads: info.Heads, KVHeads: info.KVHeads, Hidden: info.Hidden, Dim: info.Dim, Pooling: info.Pooling,
			Normalize: info.Normalize},
		ShownLayers: layers, ShownHeads: heads,
	}
	tok := m.Tokenizer()
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			return nil, fmt.Errorf("%w: text %d is empty", ErrInput, i+1)
		}
		// Tokenized once without truncation to tell the user how long the
		// text really is.
		ids, _ := m.TokenizeTo(nil, t, "", info.MaxPositions)
		if len(ids) > maxTok {
			return nil, fmt.Errorf("%w: text %d has %d tokens, more than the limit of %d (--max-tokens, at most %d): shorten it", ErrTooLong, i+1, len(ids), maxTok, MaxTokensLimit)
		}
		if _, err := m.AppendTo(&b, t, "", 0); err != nil {
			return nil, fmt.Errorf("text %d: %w", i+1, err)
		}
		seq := b.IDs[b.Starts[i]:b.Starts[i+1]]
		if len(seq) < len(ids) {
			res.Notes = append(res.Notes, fmt.Sprintf("text %d truncated to the model's max_seq_length of %d tokens", i+1, len(seq)))
		}
		tx := Text{Text: t, InputIDs: slices.Clone(seq)}
		for _, id := range seq {
			tx.Tokens = append(tx.Tokens, tok.IDToToken(id))
		}
		res.Texts = append(res.Texts, tx)
	}
	rec := &recorder{attn: map[[3]int][]float32{}, masks: map[int]arch.Mask{}, kv: map[int]int{}, moe: map[int]routeRec{}}
	emb := make([]float32, len(texts)*info.Dim)
	if err := m.EmbedBatchObserved(ctx, &b, rec, emb); err != nil {
		return nil, err
	}
	if len(rec.states) != info.Layers+1 {
		return nil, fmt.Errorf("explain: the forward pass reported %d stages for %d layers", len(rec.states), info.Layers)
	}
	res.Stages = append(res.Stages, "embeddings")
	for l := 0; l < info.Layers; l++ {
		res.Stages = append(res.Stages, fmt.Sprintf("layer %d", l))
	}
	for l := 0; l < info.Layers; l++ {
		mk := rec.masks[l]
		li := LayerInfo{Layer: l, Mask: "full", Window: mk.Window, mask: mk}
		switch {
		case mk.Causal && mk.Window > 0:
			li.Mask = "causal+window"
		case mk.Causal:
			li.Mask = "causal"
		case mk.Window > 0:
			li.Mask = "window"
		}
		_, li.MoE = rec.moe[l]
		res.Layers = append(res.Layers, li)
	}
	for h := 0; h < info.Heads; h++ {
		res.KVHeadOf = append(res.KVHeadOf, rec.kv[h])
	}
	H := info.Hidden
	for i := range res.Texts {
		tx := &res.Texts[i]
		o, n := b.Starts[i], b.Starts[i+1]-b.Starts[i]
		tx.Embedding = emb[i*info.Dim : (i+1)*info.Dim]
		for _, st := range rec.states {
			tx.states = append(tx.states, st[o*H:(o+n)*H])
		}
		tx.Attention = make([][][][]float32, info.Layers)
		tx.Top = make([][][][]Attended, info.Layers)
		for l := range tx.Attention {
			tx.Attention[l] = make([][][]float32, info.Heads)
			tx.Top[l] = make([][][]Attended, info.Heads)
			for h := range tx.Attention[l] {
				p := rec.attn[[3]int{l, i, h}]
				if p == nil {
					return nil, fmt.Errorf("explain: layer %d head %d of text %d was not observed", l, h, i+1)
				}
				rows := make([][]float32, n)
				tops := make([][]Attended, n)
				for q := range rows {
					rows[q] = p[q*n : q*n+n]
					tops[q] = top(rows[q], tx.Tokens)
				}
				tx.Attention[l][h] = rows
				tx.Top[l][h] = tops
			}
		}
		tx.StaticCosine = make([][]float64, n)
		for t := 0; t < n; t++ {
			static, err := m.WordEmbeddingTo(nil, tx.InputIDs[t])
			if err != nil {
				return nil, fmt.Errorf("text %d token %d: %w", i+1, t, err)
			}
			row := make([]float64, len(tx.states))
			for s, st := range tx.states {
				row[s] = cosine(static, st[t*H:t*H+H])
			}
			tx.StaticCosine[t] = row
		}
		for l := 0; l < info.Layers; l++ {
			r, ok := rec.moe[l]
			if !ok {
				continue
			}
			rt := Routes{Layer: l}
			for t := o; t < o+n; t++ {
				rt.Experts = append(rt.Experts, r.experts[t*r.k:t*r.k+r.k])
				rt.Weights = append(rt.Weights, r.weights[t*r.k:t*r.k+r.k])
			}
			tx.Routes = append(tx.Routes, rt)
		}
	}
	res.Similarity = make([][]float64, len(texts))
	for i := range res.Similarity {
		res.Similarity[i] = make([]float64, len(texts))
		for j := range res.Similarity[i] {
			res.Similarity[i][j] = cosine(res.Texts[i].Embedding, res.Texts[j].Embedding)
		}
	}
	res.Shared = shared(res.Texts, H)
	if res.PCA, err = pca(res.Texts, H); err != nil {
		return nil, err
	}
	return res, nil
}

// pick validates the indices of what (layer or head) asked for, or returns
// them all for nil.
func pick(what string, asked []int, n int) ([]int, error) {
	if len(asked) == 0 {
		all := make([]int, n)
		for i := range all {
			all[i] = i
		}
		return all, nil
	}
	out := slices.Clone(asked)
	slices.Sort(out)
	out = slices.Compact(out)
	for _, v := range out {
		if v < 0 || v >= n {
			return nil, fmt.Errorf("%w: %s %d does not exist (the model has %d: 0..%d)", ErrInput, what, v, n, n-1)
		}
	}
	return out, nil
}

// top returns the TopAttended keys of one attention row, heaviest first,
// ties by position.
func top(row []float32, tokens []string) []Attended {
	idx := make([]int, len(row))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
	var out []Attended
	for _, k := range idx[:min(TopAttended, len(idx))] {
		if row[k] == 0 {
			break
		}
		out = append(out, Attended{Key: k, Token: tokens[k], Weight: row[k]})
	}
	return out
}

// cosine is the cosine similarity of a and b in float64, 0 when either is
// zero.
func cosine(a, b []float32) float64 {
	var ab, aa, bb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		ab += x * y
		aa += x * x
		bb += y * y
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / math.Sqrt(aa*bb)
}

// wordLike reports whether a token carries a word: not a special token
// ([CLS], <s>, <|endoftext|>) and not punctuation alone.
func wordLike(tok string) bool {
	if strings.HasPrefix(tok, "[") && strings.HasSuffix(tok, "]") && len(tok) > 2 {
		return false
	}
	if strings.HasPrefix(tok, "<") && strings.HasSuffix(tok, ">") && len(tok) > 2 {
		return false
	}
	return strings.IndexFunc(tok, func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }) >= 0
}

// shared finds, for every pair of texts, the word tokens they share (the
// first occurrence in each) and compares their states stage by stage.
func shared(texts []Text, H int) []SharedToken {
	var out []SharedToken
	for a := range texts {
		for b := a + 1; b < len(texts); b++ {
			ta, tb := &texts[a], &texts[b]
			seen := map[int32]bool{}
			for pa, id := range ta.InputIDs {
				if seen[id] || !wordLike(ta.Tokens[pa]) {
					continue
				}
				pb := slices.Index(tb.InputIDs, id)
				if pb < 0 {
					continue
				}
				seen[id] = true
				st := SharedToken{Token: ta.Tokens[pa], ID: id, TextA: a, PosA: pa, TextB: b, PosB: pb, Static: 1}
				for s := range ta.states {
					st.ByStage = append(st.ByStage, cosine(ta.states[s][pa*H:pa*H+H], tb.states[s][pb*H:pb*H+H]))
				}
				out = append(out, st)
			}
		}
	}
	return out
}
