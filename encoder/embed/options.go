package embed

import (
	"context"
	"fmt"

	"github.com/embedpipe/embedpipe/encoder"
)

// Defaults of the batching options, used by flags and code alike.
const (
	// DefaultBatchSize caps the sequences of one encoder batch.
	DefaultBatchSize = 64
	// DefaultMaxBatchTokens caps the real tokens of one encoder batch.
	DefaultMaxBatchTokens = 8192
)

// Output is what an embedding run produces per text, named as
// sentence-transformers' output_value. The zero value "" means
// SentenceEmbedding.
type Output string

// The outputs.
const (
	// SentenceEmbedding is one pooled vector per text (the default).
	SentenceEmbedding Output = "sentence_embedding"
	// TokenEmbeddings is the contextual vector of every token, before
	// pooling.
	TokenEmbeddings Output = "token_embeddings"
	// SparseEmbedding is a sparse (SPLADE) encoder's vocabulary-sized
	// sparse vector; the Embedder only tokenizes for it.
	SparseEmbedding Output = "sparse_embedding"
	// Scores is a cross-encoder's scores of (query, document) pairs; the
	// Embedder only carries its resolved options.
	Scores Output = "scores"
)

// ParseOutput reads an output name; "" is SentenceEmbedding.
func ParseOutput(s string) (Output, error) {
	return ParseName("output value", s, SentenceEmbedding, SentenceEmbedding, TokenEmbeddings, SparseEmbedding, Scores)
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseOutput.
func (o *Output) UnmarshalText(b []byte) error { return UnmarshalName(o, b, ParseOutput) }

// MarshalText implements encoding.TextMarshaler.
func (o Output) MarshalText() ([]byte, error) {
	v, err := ParseOutput(string(o))
	return []byte(v), err
}

// Model is what the seam needs of an encoder; *encoder.Model satisfies it.
// Every method must be safe for concurrent use. EmbedBatch and
// TokenEmbeddingsBatch only read b and write into dst, which the caller
// owns.
type Model interface {
	Info() encoder.Info
	Dim() int
	Hidden() int
	MaxSeqLen() int
	ContentHash() string
	Prompt(name string) (string, error)
	PromptPoolSkip(prompt string) int
	TokenizeTo(dst []int32, text, prompt string, maxLen int) (ids []int32, truncated bool)
	TokenizeLeftTo(dst []int32, text, prompt string, maxLen int) (ids []int32, truncated bool)
	EmbedBatch(ctx context.Context, b *encoder.Batch, dst []float32) error
	TokenEmbeddingsBatch(ctx context.Context, b *encoder.Batch, dst []float32) error
}

var _ Model = (*encoder.Model)(nil)

// Options are embedding options as a user gives them (flags, a job's
// options, a request); zero values mean the model's or the package's
// defaults. Resolve checks them against a model.
type Options struct {
	// Output is SentenceEmbedding (default "") or TokenEmbeddings.
	Output Output
	// Prompt is prepended to every text; PromptName names one of the
	// model's prompts instead. Setting both is an error.
	Prompt, PromptName string
	// MaxLength truncates token sequences, special tokens included (0: the
	// model's max_seq_length; larger values are capped at its position
	// table).
	MaxLength int
	// TruncateDim keeps the first N dimensions (0: all): Matryoshka
	// truncation.
	TruncateDim int
	// Normalize overrides L2 normalization of the (truncated) vector; nil
	// keeps the model's choice (see Config.Normalize).
	Normalize *bool
	// Unnormalized leaves out the model's own Normalize module, as TEI's
	// normalize=false: the vectors as the pooling and the Dense modules
	// give them (sentence-transformers' normalize_embeddings=False keeps
	// the module; Normalize false alone does too). Normalize true with it
	// is an error.
	Unnormalized bool
	// TruncateLeft cuts texts longer than MaxLength on the left, keeping
	// their last tokens (special tokens kept), as TEI's
	// truncation_direction Left; the default keeps the first tokens.
	TruncateLeft bool
	// Precision of the output, as quantize_embeddings (default Float32).
	Precision Precision
	// Ranges are the int8/uint8 calibration ranges: Ranges[0] the
	// per-dimension minimum, Ranges[1] the maximum. Nil: computed over a
	// whole run by callers that can (the file pipeline), refused by those
	// that cannot.
	Ranges [2][]float32
	// BatchSize and MaxBatchTokens bound one encoder batch (defaults
	// DefaultBatchSize and DefaultMaxBatchTokens).
	BatchSize, MaxBatchTokens int
}

// Config is a resolved set of options for one model: every field holds the
// value used, no zero means "default".
type Config struct {
	// Output and Precision are never "" here.
	Output Output
	// Prompt is the prompt text prepended to every text.
	Prompt string
	// PoolSkip is the number of leading prompt tokens the pooling leaves
	// out (include_prompt false), 0 otherwise.
	PoolSkip int
	// MaxLength is the truncation length in tokens, special tokens
	// included, at most the model's position table.
	MaxLength int
	// ModelDim is the width of the model's pooled vector; Dim that of the
	// vector written (ModelDim unless truncated). For TokenEmbeddings
	// both are the model's hidden size.
	ModelDim, Dim int
	// Normalize is whether the Dim-wide vector is L2-normalized after
	// truncation: the explicit option, or else true exactly when a model
	// with a Normalize module is truncated (sentence-transformers
	// normalizes again only when asked; embedpipe keeps unit vectors unit).
	// It is false with Unnormalized unless given.
	Normalize bool
	// Unnormalized is whether the model's Normalize module is left out:
	// the option, for a model that has one (encoder.Batch.Unnormalized).
	Unnormalized bool
	// TruncateLeft is whether TokenizeTo keeps the last tokens.
	TruncateLeft bool
	Precision    Precision
	// Ranges holds the given calibration ranges; nil when none were given.
	Ranges *Ranges
	// BatchSize and MaxBatchTokens bound one encoder batch.
	BatchSize, MaxBatchTokens int
}

// Resolve applies the defaults to o and checks it against m.
func Resolve(m Model, o Options) (Config, error) {
	if m == nil {
		return Config{}, fmt.Errorf("%w: no model", ErrOptions)
	}
	c := Config{BatchSize: o.BatchSize, MaxBatchTokens: o.MaxBatchTokens}
	var err error
	if c.Output, err = ParseOutput(string(o.Output)); err != nil {
		return c, err
	}
	if c.Precision, err = ParsePrecision(string(o.Precision)); err != nil {
		return c, err
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxBatchTokens <= 0 {
		c.MaxBatchTokens = DefaultMaxBatchTokens
	}
	if o.Prompt != "" && o.PromptName != "" {
		return c, fmt.Errorf("%w: give a prompt or a prompt name, not both", ErrOptions)
	}
	c.Prompt = o.Prompt
	if o.PromptName != "" {
		p, err := m.Prompt(o.PromptName)
		if err != nil {
			return c, fmt.Errorf("%w: %w", ErrOptions, err)
		}
		c.Prompt = p
	}
	c.PoolSkip = m.PromptPoolSkip(c.Prompt)
	c.TruncateLeft = o.TruncateLeft
	if o.MaxLength < 0 {
		return c, fmt.Errorf("%w: max length %d", ErrOptions, o.MaxLength)
	}
	info := m.Info()
	c.MaxLength = o.MaxLength
	if c.MaxLength == 0 {
		c.MaxLength = m.MaxSeqLen()
	}
	if info.MaxPositions > 0 && c.MaxLength > info.MaxPositions {
		c.MaxLength = info.MaxPositions
	}
	if c.PoolSkip > 0 && c.PoolSkip >= c.MaxLength {
		return c, fmt.Errorf("%w: the prompt has %d tokens that the pooling excludes (include_prompt false), the max length is %d: nothing would be left to pool", ErrOptions, c.PoolSkip, c.MaxLength)
	}
	switch c.Output {
	case TokenEmbeddings:
		if c.Precision != Float32 || o.TruncateDim != 0 || o.Normalize != nil || o.Unnormalized {
			return c, fmt.Errorf("%w: token_embeddings output supports neither precision, truncate-dim nor normalize", ErrOptions)
		}
		c.ModelDim, c.Dim = m.Hidden(), m.Hidden()
		return c, nil
	case SparseEmbedding, Scores:
		if c.Precision != Float32 || o.TruncateDim != 0 || o.Normalize != nil || o.Unnormalized || o.Ranges[0] != nil {
			return c, fmt.Errorf("%w: %s output takes none of precision, truncate-dim, normalize or ranges", ErrOptions, c.Output)
		}
		return c, nil
	}
	c.ModelDim, c.Dim = m.Dim(), m.Dim()
	if o.TruncateDim < 0 || o.TruncateDim > m.Dim() {
		return c, fmt.Errorf("%w: truncate-dim %d outside [1, %d]", ErrOptions, o.TruncateDim, m.Dim())
	}
	if o.TruncateDim > 0 {
		c.Dim = o.TruncateDim
	}
	c.Unnormalized = o.Unnormalized && info.Normalize
	switch {
	case o.Unnormalized && o.Normalize != nil && *o.Normalize:
		return c, fmt.Errorf("%w: unnormalized vectors cannot be normalized too", ErrOptions)
	case o.Normalize != nil:
		c.Normalize = *o.Normalize
	case o.Unnormalized:
		c.Normalize = false
	default:
		c.Normalize = info.Normalize && c.Dim < c.ModelDim
	}
	if (o.Ranges[0] == nil) != (o.Ranges[1] == nil) {
		return c, fmt.Errorf("%w: ranges need a minimum and a maximum row", ErrRanges)
	}
	if o.Ranges[0] != nil {
		if !c.Precision.NeedsRanges() {
			return c, fmt.Errorf("%w: ranges are for int8 and uint8, the precision is %s", ErrRanges, c.Precision)
		}
		r, err := NewRanges(o.Ranges[0], o.Ranges[1])
		if err != nil {
			return c, err
		}
		if r.Dim() != c.Dim {
			return c, fmt.Errorf("%w: ranges have %d dimensions, the output has %d", ErrRanges, r.Dim(), c.Dim)
		}
		c.Ranges = &r
	}
	return c, nil
}

// Fits reports whether a batch of seqs sequences and tokens tokens may take
// one more sequence of next tokens: an empty batch takes any sequence, a
// batch is full at BatchSize sequences or when the next one would pass
// MaxBatchTokens. Every path cuts its batches by this rule.
func (c *Config) Fits(seqs, tokens, next int) bool {
	return seqs == 0 || (seqs < c.BatchSize && tokens+next <= c.MaxBatchTokens)
}
