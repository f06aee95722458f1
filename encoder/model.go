package encoder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/embedpipe/embedpipe/encoder/arch"
	"github.com/embedpipe/embedpipe/encoder/hub"
	"github.com/embedpipe/embedpipe/encoder/kernels"
	"github.com/embedpipe/embedpipe/encoder/safetensors"
	"github.com/embedpipe/embedpipe/encoder/tokenizer"
)

// Option configures Load.
type Option func(*options)

type options struct {
	threads       int
	compute       Compute
	hub           *hub.Client
	noPrefixCache bool
}

// WithPrefixCache turns the KV prefix cache of causal models (Qwen3) on,
// the default, or off. With it on, when every sequence of a batch begins
// with the same ids — an instruction prompt — those ids are encoded once
// for the batch and only each sequence's remaining tokens are encoded
// against their keys and values. Results agree with the uncached path to
// float32 rounding (TestPrefixCache: max abs diff ≤ 1e-6). Other
// architectures attend both ways and ignore it.
func WithPrefixCache(on bool) Option {
	return func(o *options) { o.noPrefixCache = !on }
}

// WithThreads sets how many goroutines one EmbedBatch (or
// TokenEmbeddingsBatch) call may use; the default is 1. Values below 1 mean
// 1. Results do not depend on it.
func WithThreads(n int) Option {
	return func(o *options) { o.threads = max(n, 1) }
}

// WithHub sets the Hugging Face Hub client Load uses for a hub model id;
// the default is hub.FromEnv().
func WithHub(c *hub.Client) Option {
	return func(o *options) { o.hub = c }
}

// Model kinds (Info.Kind): what a model computes from a text or a pair.
const (
	// KindEmbedding models give one dense vector per text (EmbedBatch).
	KindEmbedding = "embedding"
	// KindSparse models (SPLADE) give one sparse vector over the
	// vocabulary per text (EmbedSparseBatch).
	KindSparse = "sparse"
	// KindCrossEncoder models give scores per (query, document) pair
	// (ScoreBatch).
	KindCrossEncoder = "cross-encoder"
)

// kindHint tells the caller of the wrong method which one to use.
var kindHint = map[string]string{
	KindSparse:       "use EmbedSparseBatch (embedpipe embed writes sparse vectors for it)",
	KindCrossEncoder: "use ScoreBatch (embedpipe score)",
}

// Info describes a loaded model.
type Info struct {
	Dir string `json:"dir"`
	// Hub and Revision name the Hugging Face Hub model ("org/name") and
	// the commit Dir is a snapshot of, for a model loaded by hub id.
	Hub      string `json:"hub,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Kind is KindEmbedding, KindSparse or KindCrossEncoder.
	Kind string `json:"kind"`
	// Arch is the transformers class of config.json's "architectures"
	// (BertModel…), or the model type when the config names none.
	Arch      string `json:"arch"`
	ModelType string `json:"model_type"`
	// Dim is the width of the embedding EmbedBatch writes (after the
	// Dense modules); Hidden that of the token embeddings. They differ when
	// several pooling modes are concatenated or a Dense module changes the
	// width. For a sparse encoder Dim is the vocabulary size, for a
	// cross-encoder the number of labels.
	Dim    int `json:"dim"`
	Hidden int `json:"hidden"`
	Layers int `json:"layers"`
	Heads  int `json:"heads"`
	// KVHeads is the number of key/value heads: fewer than Heads for
	// grouped-query attention.
	KVHeads      int    `json:"kv_heads"`
	Intermediate int    `json:"intermediate"`
	Vocab        int    `json:"vocab"`
	Activation   string `json:"activation"`
	Params       int64  `json:"params"`
	// DType lists the checkpoint's tensor dtypes ("F32", "BF16", "F16+F32").
	// Weights are converted to float32 at load either way.
	DType string `json:"dtype"`
	// Compute is the number format of the linear layers ("float32",
	// "int8", "bf16"); see WithCompute. "bf16" is an accuracy emulation
	// at float32 speed on every CPU (no AVX512_BF16 kernels in this build).
	Compute       string `json:"compute"`
	TokenizerKind string `json:"tokenizer_kind"`
	Pooling       string `json:"pooling"`
	// IncludePrompt is false when the Pooling module wants prompt tokens
	// left out of the pooled vector: they are still encoded, but pooling
	// skips the first PromptPoolSkip(prompt) tokens (Batch.PoolSkip), as
	// sentence-transformers does.
	IncludePrompt bool `json:"include_prompt"`
	Normalize     bool `json:"normalize"`
	// MaxSeqLen is the default truncation length (sentence_bert_config's
	// max_seq_length capped at MaxPositions).
	MaxSeqLen     int               `json:"max_seq_len"`
	MaxPositions  int               `json:"max_positions"`
	Prompts       map[string]string `json:"prompts,omitempty"`
	DefaultPrompt string            `json:"default_prompt,omitempty"`
	// Dense lists the Dense modules between Pooling and Normalize, in
	// order.
	Dense []DenseInfo `json:"dense,omitempty"`
	// Sparse describes a sparse encoder's head; nil for other kinds.
	Sparse *SparseInfo `json:"sparse,omitempty"`
	// CrossEncoder describes a cross-encoder's head; nil for other kinds.
	CrossEncoder *CrossEncoderInfo `json:"cross_encoder,omitempty"`
	// Notes records how Load interpreted an unusual directory.
	Notes []string `json:"notes,omitempty"`
}

// Model is a loaded embedding model. It is safe for concurrent use; its
// weights are read-only and shared by all callers.
type Model struct {
	info      Info
	enc       arch.Encoder
	tok       *tokenizer.Tokenizer
	pool      poolSpec
	normalize bool
	lowerCase bool
	maxSeqLen int
	maxPos    int
	threads   int
	typeVocab int // token types the encoder accepts (1 without a type embedding)
	// noPrefixCache is WithPrefixCache(false).
	noPrefixCache bool

	// Heads: Dense modules after pooling, a sparse encoder's masked-LM
	// head, a cross-encoder's classifier (nil when absent).
	dense []*denseModule
	mlm   *mlmHead
	cross *crossHead
	// workers split the dense layers of a batch too small to share out by
	// sequences (fewer sequences than threads); nil when threads is 1.
	// workersMu is held by the call using them; a call that finds it taken
	// runs on its own goroutine rather than queue behind the holder.
	workers   *kernels.Pool
	workersMu sync.Mutex

	scratch sync.Pool // *callScratch
	archS   sync.Pool // *arch.Scratch, for worker goroutines

	hashFiles []string
	hashOnce  sync.Once
	hash      string
}

// Load loads the model in directory dir, or, when no such directory
// exists and dir reads as a Hugging Face Hub reference "org/name[@revision]",
// the hub model (see LoadContext).
func Load(dir string, opts ...Option) (*Model, error) {
	return LoadContext(context.Background(), dir, opts...)
}

// LoadContext loads the model in directory src, or, when no such directory
// exists and src reads as a hub reference "org/name[@revision]", the
// snapshot of that model in the Hugging Face cache, downloading what the
// cache lacks with the client given WithHub (hub.FromEnv by default). ctx
// bounds the download.
func LoadContext(ctx context.Context, src string, opts ...Option) (*Model, error) {
	o := options{threads: 1}
	for _, f := range opts {
		f(&o)
	}
	if o.compute != ComputeFloat32 && o.compute != ComputeInt8 && o.compute != ComputeBF16 {
		return nil, fmt.Errorf("%w: %v", ErrCompute, o.compute)
	}
	dir := src
	var snap *hub.Snapshot
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if ref, rerr := hub.ParseRef(src); rerr == nil {
			c := o.hub
			if c == nil {
				c = hub.FromEnv()
			}
			s, herr := c.Snapshot(ctx, ref)
			if herr != nil {
				return nil, fmt.Errorf("%w: %s is no directory, and as a hub model: %w", ErrModelDir, src, herr)
			}
			snap, dir = &s, s.Dir
			st, err = os.Stat(dir)
		}
	}
	if errors.Is(err, fs.ErrNotExist) && snap == nil {
		return nil, fmt.Errorf("%w: %w", ErrModelDir, missingModelError(src))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModelDir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory", ErrModelDir, dir)
	}
	lay, err := readLayout(dir)
	if err != nil {
		return nil, err
	}
	tdir := lay.transformerDir
	if err := checkFiles(tdir); err != nil {
		return nil, err
	}
	cfg, err := arch.ReadConfig(filepath.Join(tdir, "config.json"))
	if err != nil {
		return nil, err
	}
	mt, err := cfg.ModelType()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(arch.Supported(), mt) {
		return nil, fmt.Errorf("%w: %s: model_type %q (supported: %s)", ErrUnsupported, cfg.Path, mt, strings.Join(arch.Supported(), ", "))
	}
	// checkFiles saw the tokenizer and checkpoint files, so errors from
	// here on are about their content and keep their packages' sentinels.
	tok, err := tokenizer.Load(tdir)
	if err != nil {
		return nil, err
	}
	ck, err := safetensors.Open(tdir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrWeights, err)
	}
	// Every tensor is converted to a float32 copy, so the mapped files can
	// be released as soon as the encoder is built.
	defer ck.Close()
	enc, err := arch.BuildCompute(cfg, ck, o.compute)
	if err != nil {
		return nil, err
	}
	d := enc.Describe()
	m := &Model{
		enc: enc, tok: tok, pool: lay.pooling, normalize: lay.normalize, lowerCase: lay.lowerCase,
		threads: o.threads, typeVocab: 1, noPrefixCache: o.noPrefixCache,
	}
	if te, ok := enc.(arch.TypedEncoder); ok {
		m.typeVocab = te.TypeVocab()
	}
	kind := KindEmbedding
	dim := d.Hidden * len(lay.pooling.modes)
	switch {
	case lay.splade != nil:
		kind, dim = KindSparse, d.VocabSize
		if m.mlm, err = loadMLMHead(cfg, ck, mt, d.Hidden, d.VocabSize, *lay.splade); err != nil {
			return nil, err
		}
	case isCrossEncoder(cfg, lay):
		kind = KindCrossEncoder
		if m.cross, err = loadCrossHead(cfg, ck, d.Hidden); err != nil {
			return nil, err
		}
		dim = len(m.cross.info.Labels)
		lay.notes = slices.DeleteFunc(lay.notes, func(n string) bool { return strings.HasPrefix(n, "no modules.json") })
		lay.notes = append(lay.notes, "cross-encoder: pairs are scored from the first token by the classification head")
	}
	for _, dd := range lay.denseDirs {
		dm, err := loadDense(dd, dim)
		if err != nil {
			return nil, err
		}
		m.dense = append(m.dense, dm)
		dim = dm.info.Out
		lay.files = append(lay.files, filepath.Join(dd, "config.json"), filepath.Join(dd, safetensors.SingleFileName))
	}
	if lay.pooling.dim != 0 && lay.pooling.dim != d.Hidden {
		return nil, fmt.Errorf("%w: %s: pooling word_embedding_dimension %d differs from hidden_size %d", ErrConfig,
			filepath.Join(lay.poolingDir, "config.json"), lay.pooling.dim, d.Hidden)
	}
	if tv := tok.VocabSize(); tv > d.VocabSize {
		lay.notes = append(lay.notes, fmt.Sprintf("tokenizer vocabulary (%d) is larger than the embedding table (%d): ids beyond it are rejected", tv, d.VocabSize))
	}
	maxPos := enc.MaxPositions()
	maxSeq := lay.maxSeqLen
	if maxSeq == 0 {
		maxSeq = maxPos
		lay.notes = append(lay.notes, "no max_seq_length: truncating at the position table size")
	}
	if maxPos > 0 && maxSeq > maxPos {
		lay.notes = append(lay.notes, fmt.Sprintf("max_seq_length %d capped at max_position_embeddings %d", maxSeq, maxPos))
		maxSeq = maxPos
	}
	if !lay.pooling.includePrompt {
		lay.notes = append(lay.notes, "include_prompt is false: prompt tokens are encoded but left out of the pooling")
	}
	m.maxSeqLen, m.maxPos = maxSeq, maxPos
	m.info = Info{
		Dir: dir, Kind: kind, Arch: cfg.Architecture(), ModelType: mt,
		Dim: dim, Hidden: d.Hidden,
		Layers: d.Layers, Heads: d.Heads, KVHeads: d.KVHeads, Intermediate: d.Intermediate, Vocab: d.VocabSize, Activation: d.Activation,
		Params: ck.NumParams(), DType: dtypes(ck), Compute: o.compute.String(), TokenizerKind: tok.Kind(),
		Pooling: lay.pooling.String(), IncludePrompt: lay.pooling.includePrompt, Normalize: lay.normalize,
		MaxSeqLen: maxSeq, MaxPositions: maxPos,
		Prompts: lay.prompts, DefaultPrompt: lay.defaultPrompt, Notes: lay.notes,
	}
	for _, dm := range m.dense {
		m.info.Dense = append(m.info.Dense, dm.info)
	}
	if m.mlm != nil {
		m.info.Pooling = "splade-" + m.mlm.spec.pooling
		m.info.Sparse = &SparseInfo{Vocab: d.VocabSize, Pooling: m.mlm.spec.pooling, Activation: m.mlm.spec.activation,
			ScratchBytes: sparseScratchBytes(d.VocabSize)}
	}
	if m.cross != nil {
		m.info.Pooling = "first token (classification head)"
		ci := m.cross.info
		m.info.CrossEncoder = &ci
	}
	if m.info.Arch == "" {
		m.info.Arch = mt
	}
	if snap != nil {
		m.info.Hub, m.info.Revision = snap.Ref.Repo, snap.Commit
	}
	m.hashFiles = hashFileList(tdir, lay.files, ck.Files())
	if o.threads > 1 {
		m.workers = kernels.NewPool(o.threads)
		// The workers hold no reference to the Model, so an unreachable
		// Model that was never closed still releases them.
		runtime.AddCleanup(m, func(p *kernels.Pool) { p.Close() }, m.workers)
	}
	return m, nil
}

// checkFiles reports every file of a transformer directory that Load needs
// and that is missing, in one error.
func checkFiles(dir string) error {
	exists := func(n string) bool {
		_, err := os.Stat(filepath.Join(dir, n))
		return err == nil
	}
	var missing []string
	if !exists("config.json") {
		missing = append(missing, "config.json")
	}
	if !exists(safetensors.SingleFileName) && !exists(safetensors.IndexFileName) {
		missing = append(missing, safetensors.SingleFileName+" (or "+safetensors.IndexFileName+")"+otherWeightsHint(dir))
	}
	if !exists("tokenizer.json") && !exists("vocab.txt") {
		missing = append(missing, "tokenizer.json (or vocab.txt)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s lacks %s", ErrModelDir, dir, strings.Join(missing, ", "))
	}
	return nil
}

func dtypes(ck *safetensors.Checkpoint) string {
	var names []string
	for dt := range ck.DTypes() {
		names = append(names, string(dt))
	}
	sort.Strings(names)
	return strings.Join(names, "+")
}

// Close releases the worker goroutines of a Model loaded WithThreads(n > 1).
// The Model stays usable; later calls run with one thread per batch share.
// Close is idempotent and returns nil.
func (m *Model) Close() error {
	m.workers.Close()
	return nil
}

// Info describes the model. The returned value's maps and slices are
// copies.
func (m *Model) Info() Info {
	i := m.info
	i.Prompts = maps.Clone(i.Prompts)
	i.Notes = slices.Clone(i.Notes)
	i.Dense = slices.Clone(i.Dense)
	if i.Sparse != nil {
		sp := *i.Sparse
		i.Sparse = &sp
	}
	if i.CrossEncoder != nil {
		ce := *i.CrossEncoder
		ce.Labels = slices.Clone(ce.Labels)
		i.CrossEncoder = &ce
	}
	return i
}

// Dim returns the width of the pooled embeddings EmbedBatch writes.
func (m *Model) Dim() int { return m.info.Dim }

// Hidden returns the width of the token embeddings TokenEmbeddingsBatch
// writes.
func (m *Model) Hidden() int { return m.info.Hidden }

// MaxSeqLen returns the default truncation length in tokens, special tokens
// included.
func (m *Model) MaxSeqLen() int { return m.maxSeqLen }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// Prompt returns the prompt text registered under name in
// config_sentence_transformers.json. The empty name gives the empty prompt.
func (m *Model) Prompt(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	p, ok := m.info.Prompts[name]
	if !ok {
		names := slices.Sorted(maps.Keys(m.info.Prompts))
		return "", fmt.Errorf("%w: %q (the model defines: %s)", ErrPrompt, name, strings.Join(names, ", "))
	}
	return p, nil
}

// WordEmbeddingTo appends to dst the static (input, context-free) embedding
// row of token id: the vector every occurrence of the token starts from
// before the transformer layers mix in its context.
func (m *Model) WordEmbeddingTo(dst []float32, id int32) ([]float32, error) {
	row := m.enc.WordEmbedding(id)
	if row == nil {
		return dst, fmt.Errorf("%w: token id %d outside the vocabulary [0, %d)", ErrInput, id, m.info.Vocab)
	}
	return append(dst, row...), nil
}

// DefaultPrompt returns the text of the model's default prompt
// (default_prompt_name), or "" when it has none.
func (m *Model) DefaultPrompt() string { return m.info.Prompts[m.info.DefaultPrompt] }

// TokenizeTo appends to dst the ids the model sees for text with prompt (a
// prompt text, not a name) prepended as sentence-transformers does, special
// tokens included, truncated to maxLen tokens. maxLen <= 0 means MaxSeqLen();
// larger values are capped at the position table size. For a model whose
// Info().IncludePrompt is false, a batch of such ids must carry
// PromptPoolSkip(prompt) in Batch.PoolSkip to leave the prompt out of the
// pooling.
func (m *Model) TokenizeTo(dst []int32, text, prompt string, maxLen int) (ids []int32, truncated bool) {
	return m.tokenize(dst, text, prompt, maxLen, false)
}

// TokenizeLeftTo is TokenizeTo truncating on the left (TEI's
// truncation_direction Left): the last tokens are kept, special tokens
// still added. A prompt, at the front, is cut first.
func (m *Model) TokenizeLeftTo(dst []int32, text, prompt string, maxLen int) (ids []int32, truncated bool) {
	return m.tokenize(dst, text, prompt, maxLen, true)
}

// tokenize is TokenizeTo, cutting on the left when left is set.
func (m *Model) tokenize(dst []int32, text, prompt string, maxLen int, left bool) (ids []int32, truncated bool) {
	text, maxLen = m.tokenizerInput(text, prompt, maxLen)
	if left {
		return m.tok.EncodeLeftTo(dst, text, maxLen)
	}
	return m.tok.EncodeTo(dst, text, maxLen)
}

// tokenizerInput returns what the tokenizer gets for text with prompt,
// and the truncation length maxLen means.
func (m *Model) tokenizerInput(text, prompt string, maxLen int) (string, int) {
	if maxLen <= 0 {
		maxLen = m.maxSeqLen
	}
	if m.maxPos > 0 && maxLen > m.maxPos {
		maxLen = m.maxPos
	}
	if prompt != "" {
		text = prompt + text
	}
	if m.lowerCase {
		// sentence_bert_config.json's do_lower_case lower-cases the input
		// before the tokenizer sees it.
		text = strings.ToLower(text)
	}
	return text, maxLen
}

// TokenOffsets returns the ids TokenizeTo gives and, for each, the bytes
// of text it comes from (tokenizer.Tokenizer.EncodeOffsets); known[i] is
// false for special tokens and the prompt's tokens. offs is nil when the
// tokenizer cannot trace its tokens back, or lower-casing (do_lower_case)
// changed the text's length.
func (m *Model) TokenOffsets(text, prompt string, maxLen int) (ids []int32, offs []tokenizer.Offset, known []bool) {
	in, maxLen := m.tokenizerInput(text, prompt, maxLen)
	if len(in) != len(prompt)+len(text) {
		ids, _ = m.tok.EncodeTo(nil, in, maxLen)
		return ids, nil, nil
	}
	ids, offs, known = m.tok.EncodeOffsets(in, maxLen)
	for i := range offs {
		if offs[i].Start < len(prompt) {
			known[i] = false
		}
		offs[i].Start -= len(prompt)
		offs[i].Stop -= len(prompt)
	}
	return ids, offs, known
}

// PromptPoolSkip returns how many leading tokens of a sequence tokenized
// with prompt the pooling must leave out: 0 unless the model's Pooling
// module says include_prompt false, and then sentence-transformers'
// prompt_length, the length of the prompt tokenized alone minus its final
// special token.
func (m *Model) PromptPoolSkip(prompt string) int {
	if prompt == "" || m.pool.includePrompt {
		return 0
	}
	ids, _ := m.TokenizeTo(nil, "", prompt, 0)
	return max(0, len(ids)-1)
}

// TokenizeFullTo appends to dst the ids of text with prompt prepended, as
// TokenizeTo but not truncated at all (the tokenize command with truncation
// off); such ids may be longer than the model can encode.
func (m *Model) TokenizeFullTo(dst []int32, text, prompt string) []int32 {
	text = prompt + text
	if m.lowerCase {
		text = strings.ToLower(text)
	}
	ids, _ := m.tok.EncodeTo(dst, text, 0)
	return ids
}

// IDToToken returns the vocabulary string of token id ("" when id is
// outside the vocabulary).
func (m *Model) IDToToken(id int32) string { return m.tok.IDToToken(id) }

// AppendTo tokenizes text (see TokenizeTo) straight into b as a new
// sequence. For a model whose pooling excludes prompt tokens it sets
// b.PoolSkip for prompt; every sequence of b must then share that prompt.
func (m *Model) AppendTo(b *Batch, text, prompt string, maxLen int) (truncated bool, err error) {
	if skip := m.PromptPoolSkip(prompt); skip != b.PoolSkip {
		if b.Len() > 0 {
			return false, fmt.Errorf("%w: one batch holds sequences of two prompts whose pooling skips differ (%d and %d tokens)", ErrInput, b.PoolSkip, skip)
		}
		b.PoolSkip = skip
	}
	if len(b.Starts) == 0 {
		b.Starts = append(b.Starts, 0)
	}
	b.IDs, truncated = m.TokenizeTo(b.IDs, text, prompt, maxLen)
	b.Starts = append(b.Starts, len(b.IDs))
	return truncated, nil
}

// hashFileList returns the sorted, de-duplicated list of files whose bytes
// define the model: the JSON files read, the checkpoint files and the
// tokenizer files present.
func hashFileList(tdir string, read, ckpt []string) []string {
	files := append(slices.Clone(read), ckpt...)
	files = append(files, filepath.Join(tdir, "config.json"))
	for _, n := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
		"merges.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model", "added_tokens.json",
		safetensors.IndexFileName} {
		p := filepath.Join(tdir, n)
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			files = append(files, p)
		}
	}
	for i, f := range files {
		files[i] = filepath.Clean(f)
	}
	slices.Sort(files)
	return slices.Compact(files)
}
