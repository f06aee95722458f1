package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/encoder/tokenizer"
)

// Model is what the pipeline needs from an encoder; *encoder.Model satisfies
// it. All methods must be safe for concurrent use: the pipeline tokenizes
// from its tokenizer workers and encodes from its encoder workers at the
// same time (see embed.Model for the ownership of batches and buffers).
// Dense vectors go through the embedding seam (package encoder/embed).
type Model interface {
	embed.Model
	// IDToToken returns the string of token id, for the token strings of
	// token_embeddings output.
	IDToToken(id int32) string
	// TokenizeFullTo appends the ids of prompt+text like TokenizeTo, but
	// without truncation, for Tokenize with truncation off.
	TokenizeFullTo(dst []int32, text, prompt string) []int32
}

var _ Model = (*encoder.Model)(nil)

// Input is one input file, optionally restricted to Parquet row groups
// [RowGroupLo, RowGroupHi) (both 0: the whole file).
type Input struct {
	Path                   string
	RowGroupLo, RowGroupHi int
}

// Output values, as embed's.
const (
	SentenceEmbedding = embed.SentenceEmbedding
	TokenEmbeddings   = embed.TokenEmbeddings
	// SparseEmbedding is the output of a sparse (SPLADE) encoder: one
	// struct<indices: list<int32>, values: list<float32>> per row, indices
	// ascending. It is the default output value of a sparse model.
	SparseEmbedding = embed.SparseEmbedding
	// Scores is the output of a cross-encoder run (Config.DocumentColumn):
	// a score column and a logit column per (query, document) row.
	Scores = embed.Scores
)

// PairModel is what a Scores run needs from a cross-encoder besides Model;
// *encoder.Model satisfies it. AppendPairTo appends one tokenized pair
// (ids and token types) to b; ScoreBatch writes NumLabels() logits and
// scores per sequence of b into the caller's buffers.
type PairModel interface {
	Model
	NumLabels() int
	AppendPairTo(b *encoder.Batch, query, document string, maxLen int) (truncated bool, err error)
	ScoreBatch(ctx context.Context, b *encoder.Batch, logits, scores []float32) error
}

var _ PairModel = (*encoder.Model)(nil)

// SparseModel is what a SparseEmbedding run needs from a sparse encoder
// besides Model; *encoder.Model satisfies it. EmbedSparseBatch appends one
// sparse vector per sequence of b to dst, which the caller owns.
type SparseModel interface {
	Model
	EmbedSparseBatch(ctx context.Context, b *encoder.Batch, opt encoder.SparseOptions, dst *encoder.SparseVectors) error
}

var _ SparseModel = (*encoder.Model)(nil)

// OnError is the policy for rows that cannot be embedded. The zero value ""
// means OnErrorFail.
type OnError string

// The OnError policies.
const (
	OnErrorFail OnError = "fail" // stop the run with an error naming the row
	OnErrorSkip OnError = "skip" // leave the row out of the output, list it in Errors
	OnErrorNull OnError = "null" // write a null embedding, list it in Errors
)

// ParseOnError reads a policy name; "" is OnErrorFail.
func ParseOnError(s string) (OnError, error) {
	p, err := embed.ParseName("on-error", s, OnErrorFail, OnErrorFail, OnErrorSkip, OnErrorNull)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return p, nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseOnError, for
// flag.TextVar.
func (p *OnError) UnmarshalText(b []byte) error { return embed.UnmarshalName(p, b, ParseOnError) }

// MarshalText implements encoding.TextMarshaler.
func (p OnError) MarshalText() ([]byte, error) {
	v, err := ParseOnError(string(p))
	return []byte(v), err
}

// ChunkMode is how a chunked run (Config.ChunkTokens) embeds its chunks.
// The zero value "" means ChunkSplit.
type ChunkMode string

// The chunk modes.
const (
	// ChunkSplit embeds each chunk's text on its own: a chunk's vector is
	// the embedding of its chunk_text.
	ChunkSplit ChunkMode = "split"
	// ChunkLate runs each whole document once through the encoder and
	// pools each chunk's span of contextual token vectors with the
	// model's pooling ("late chunking"): the document must fit the
	// model's max length.
	ChunkLate ChunkMode = "late"
)

// ParseChunkMode reads a chunk mode name; "" is ChunkSplit.
func ParseChunkMode(s string) (ChunkMode, error) {
	p, err := embed.ParseName("chunk mode", s, ChunkSplit, ChunkSplit, ChunkLate)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return p, nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseChunkMode,
// for flag.TextVar.
func (p *ChunkMode) UnmarshalText(b []byte) error {
	return embed.UnmarshalName(p, b, ParseChunkMode)
}

// MarshalText implements encoding.TextMarshaler.
func (p ChunkMode) MarshalText() ([]byte, error) {
	v, err := ParseChunkMode(string(p))
	return []byte(v), err
}

// ChunkModel is what a chunked run needs of a model besides Model;
// *encoder.Model satisfies it. TextTokens returns the tokens of a text
// alone (no prompt, no special tokens, no truncation) with the bytes of the
// text each comes from and whether each begins a word; its error says why
// a tokenizer has no offsets.
type ChunkModel interface {
	Model
	TextTokens(text string) (ids []int32, offs []tokenizer.Offset, wordStart []bool, err error)
}

var _ ChunkModel = (*encoder.Model)(nil)

// Defaults of Config, used by the command-line flags and by WithDefaults
// alike.
const (
	DefaultColumn         = "text"
	DefaultOutputColumn   = "embedding"
	DefaultBatchSize      = embed.DefaultBatchSize
	DefaultMaxBatchTokens = embed.DefaultMaxBatchTokens
	DefaultProgressEvery  = time.Second
)

// SplitThreads divides procs cores between concurrent encoder calls: the
// workers (default: procs, one thread each) and the kernel threads each call
// may use (procs/workers, at least 1). The embed, worker and serve commands
// all split this way.
func SplitThreads(procs, workers int) (nWorkers, threads int) {
	procs = max(1, procs)
	if workers <= 0 {
		workers = procs
	}
	return workers, max(1, procs/workers)
}

// Config describes one run. The zero value of every field but Inputs,
// Output and the model is a sensible default.
type Config struct {
	// Inputs are read in order. With one input, Output is a file; with
	// several, Output is a directory that receives one file per input, named
	// after the input (OutputName).
	Inputs []Input
	Output string
	// OutputFormat, when set, is the format of every output of a
	// directory run ("parquet", "arrow", "arrows" or "jsonl"): the file
	// names take its extension instead of the inputs' (see OutputPaths).
	OutputFormat string
	// Column is the text column (default "text"); OutputColumn the added
	// embedding column (default "embedding").
	Column, OutputColumn string
	// DocumentColumn, with OutputValue Scores, names the documents scored
	// against the queries of Column by a cross-encoder (a PairModel):
	// OutputColumn (default "score") receives the score after the model's
	// activation and LogitColumn (default "logit") the raw logit, float32
	// for a one-label model, fixed_size_list<float32>[labels] otherwise. A
	// row whose query or document is null gets null scores.
	DocumentColumn, LogitColumn string
	// SparseTopK, with OutputValue SparseEmbedding, keeps only the K
	// largest weights of each sparse vector (0: every positive weight).
	SparseTopK int
	// SparseMaxEntries, with OutputValue SparseEmbedding, makes a vector of
	// more non-zero entries a row error, handled by OnError, for outputs
	// that cannot hold it (pgvector's sparsevec: 16,000, or 1,000 in an
	// HNSW index); 0: no bound.
	SparseMaxEntries int
	// Prompt is prepended to every text; PromptName names one of the model's
	// prompts instead. Setting both is an error. On a model whose pooling
	// excludes prompt tokens (include_prompt false) the prompt is encoded
	// but left out of the pooling.
	Prompt, PromptName string
	// OutputValue is SentenceEmbedding (default), TokenEmbeddings,
	// SparseEmbedding (the default of a sparse model) or Scores.
	OutputValue embed.Output
	// Precision is float32 (default), float16, int8, uint8, binary or
	// ubinary, as sentence-transformers' quantize_embeddings.
	Precision embed.Precision
	// Ranges are the int8/uint8 calibration ranges: Ranges[0] the per-dim
	// minimum, Ranges[1] the maximum. When nil they are computed over every
	// embedding of the run.
	Ranges [2][]float32
	// TruncateDim keeps the first N dimensions (0: all), before normalizing.
	TruncateDim int
	// Normalize overrides L2 normalization of the (truncated) embedding; nil
	// keeps the model's choice. A model with a Normalize module always
	// yields unit vectors before truncation: false cannot undo that.
	Normalize *bool
	// MaxLength truncates token sequences, special tokens included (0: the
	// model's max_seq_length), as everywhere in embedpipe.
	MaxLength int
	// BatchSize caps sequences per encoder batch (default 64);
	// MaxBatchTokens caps real tokens per batch (default 8192).
	BatchSize, MaxBatchTokens int
	// Workers is the number of concurrent encoder calls (default
	// GOMAXPROCS/model threads, at least 1).
	Workers int
	// ChunkTokens, when positive, cuts each text into chunks of at most
	// ChunkTokens tokens (special and prompt tokens not counted) instead of
	// truncating it, and writes one output row per chunk: the row's input
	// columns, then chunk_index (int32, from 0), chunk_start and chunk_end
	// (int32 UTF-8 byte offsets into the text, from the tokenizer's
	// offsets), chunk_text (the text's bytes [chunk_start, chunk_end)) and
	// the chunk's embedding. Chunks start at word starts (a word longer
	// than ChunkTokens is split); ChunkOverlap tokens are shared by
	// consecutive chunks. It must leave room for the model's special and
	// prompt tokens within MaxLength. See chunk.go. (ChunkRows and
	// ChunkBytes below are the input windows, not text chunks.)
	ChunkTokens int
	// ChunkOverlap is the number of tokens consecutive chunks share, less
	// than ChunkTokens (default 0).
	ChunkOverlap int
	// ChunkMode is ChunkSplit (default) or ChunkLate.
	ChunkMode ChunkMode
	// ChunkRows is the checkpoint and length-sorting window size in rows
	// (default DefaultChunkRows).
	ChunkRows int
	// ChunkBytes caps a chunk's uncompressed input bytes as estimated from
	// the Parquet footer, so that wide rows (large pass-through columns)
	// make chunks of fewer rows (default DefaultChunkBytes; negative: no
	// cap). Other formats are chunked by rows only.
	ChunkBytes int64
	// Resume continues from the checkpoints next to Output; false deletes
	// them and starts over.
	Resume bool
	// OnError is OnErrorFail (default), OnErrorSkip or OnErrorNull.
	OnError OnError
	// ErrorsPath, when set, receives one JSON line per row that could not be
	// embedded or was nulled (file, row group, row, error).
	ErrorsPath string
	// CacheDir, when set, keeps embeddings keyed by model, options and text
	// across runs.
	CacheDir string
	// Progress, when non-nil, is called about once a second and at the end
	// with the running totals. It runs on the pipeline's own goroutine and
	// must not block.
	Progress func(Summary)
	// ProgressEvery overrides the progress period (default 1s).
	ProgressEvery time.Duration
	// Metadata, when set, is stored as the output's schema metadata: the
	// key-value metadata of a Parquet file, the schema metadata of an
	// Arrow file (JSONL has no place for it). The workers record the model
	// a part was embedded with here.
	Metadata map[string]string
}

// EmbedOptions returns the embedding options of c, for embed.Resolve.
func (c *Config) EmbedOptions() embed.Options {
	return embed.Options{Output: c.OutputValue, Prompt: c.Prompt, PromptName: c.PromptName, MaxLength: c.MaxLength,
		TruncateDim: c.TruncateDim, Normalize: c.Normalize, Precision: c.Precision, Ranges: c.Ranges,
		BatchSize: c.BatchSize, MaxBatchTokens: c.MaxBatchTokens}
}

// WithDefaults returns c fully resolved against m: every default filled in
// (columns, batch bounds, workers, chunk rows and bytes, progress period),
// the prompt name replaced by its text, MaxLength by the length used,
// Normalize by the choice made, and every option checked, with the reason
// for any the model cannot honour. It does not look at Inputs and Output.
func (c Config) WithDefaults(m Model) (Config, error) {
	r, _, err := c.resolve(m)
	return r, err
}

// resolve is WithDefaults that also returns the run's Embedder, the
// embedding seam every dense output goes through.
func (c Config) resolve(m Model) (Config, *embed.Embedder, error) {
	kind := m.Info().Kind
	if c.Column == "" {
		c.Column = DefaultColumn
	}
	if c.OutputValue == "" || c.OutputValue == SentenceEmbedding && kind == encoder.KindSparse {
		// A sparse encoder's sentence embedding is its sparse vector.
		c.OutputValue = SentenceEmbedding
		if kind == encoder.KindSparse {
			c.OutputValue = SparseEmbedding
		}
	}
	if c.OutputColumn == "" {
		c.OutputColumn = DefaultOutputColumn
		if c.OutputValue == Scores {
			c.OutputColumn = "score"
		}
	}
	if c.OutputValue == Scores && c.LogitColumn == "" {
		c.LogitColumn = "logit"
	}
	if c.Workers <= 0 {
		c.Workers = max(1, runtime.GOMAXPROCS(0))
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = DefaultProgressEvery
	}
	if c.ChunkRows <= 0 {
		c.ChunkRows = DefaultChunkRows
	}
	if c.ChunkBytes == 0 {
		c.ChunkBytes = DefaultChunkBytes
	}
	c.ChunkBytes = max(-1, c.ChunkBytes)
	// The batch bounds and length are resolved by embed.New below too;
	// filling them first keeps MemoryBound meaningful for a config that
	// fails validation.
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.MaxBatchTokens <= 0 {
		c.MaxBatchTokens = DefaultMaxBatchTokens
	}
	if c.MaxLength == 0 {
		c.MaxLength = m.MaxSeqLen()
	}
	var err error
	if c.OnError, err = ParseOnError(string(c.OnError)); err != nil {
		return c, nil, err
	}
	if c.Precision, err = embed.ParsePrecision(string(c.Precision)); err != nil {
		return c, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	switch c.OutputValue {
	case SentenceEmbedding, TokenEmbeddings:
		if c.DocumentColumn != "" {
			return c, nil, fmt.Errorf("%w: a document column is for scoring pairs (output value %s)", ErrConfig, Scores)
		}
		if kind == encoder.KindSparse || kind == encoder.KindCrossEncoder {
			return c, nil, fmt.Errorf("%w: %s is a %s model, which embed cannot run (use score for a cross-encoder)", ErrConfig, m.Info().Dir, kind)
		}
	case Scores:
		if err := c.checkScores(m); err != nil {
			return c, nil, err
		}
	case SparseEmbedding:
		if _, ok := m.(SparseModel); !ok || kind != encoder.KindSparse {
			return c, nil, fmt.Errorf("%w: %s is not a sparse encoder (kind %s)", ErrConfig, m.Info().Dir, kind)
		}
		if c.Precision != embed.Float32 || c.TruncateDim != 0 || c.Normalize != nil || c.Ranges[0] != nil {
			return c, nil, fmt.Errorf("%w: sparse vectors take none of precision, truncate-dim, normalize or ranges (--sparse-top-k keeps the largest weights)", ErrConfig)
		}
	default:
		return c, nil, fmt.Errorf("%w: output value %q (want sentence_embedding, token_embeddings or sparse_embedding)", ErrConfig, c.OutputValue)
	}
	if c.SparseTopK < 0 || c.SparseTopK > 0 && c.OutputValue != SparseEmbedding {
		return c, nil, fmt.Errorf("%w: sparse top-k %d applies to a sparse encoder's output only", ErrConfig, c.SparseTopK)
	}
	if c.SparseMaxEntries < 0 || c.SparseMaxEntries > 0 && c.OutputValue != SparseEmbedding {
		return c, nil, fmt.Errorf("%w: a bound of %d sparse entries applies to a sparse encoder's output only", ErrConfig, c.SparseMaxEntries)
	}
	e, err := embed.New(m, c.EmbedOptions())
	if err != nil {
		return c, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	ec := e.Config()
	if err := c.checkChunks(m, e); err != nil {
		return c, nil, err
	}
	c.Prompt, c.PromptName, c.MaxLength = ec.Prompt, "", ec.MaxLength
	c.BatchSize, c.MaxBatchTokens = ec.BatchSize, ec.MaxBatchTokens
	norm := ec.Normalize
	c.Normalize = &norm
	return c, e, nil
}

// CheckChunkOptions checks chunking options as far as they can be without
// a model — tokens ≥ 0, 0 ≤ overlap < tokens, a known mode, no overlap or
// mode without tokens — and returns the mode (ChunkSplit by default; ""
// when not chunking). Run checks the rest against the model; a NATS job
// is checked with it at submit.
func CheckChunkOptions(tokens, overlap int, mode string) (ChunkMode, error) {
	if tokens == 0 {
		// The split mode is the flags' default, and means nothing alone.
		if overlap != 0 || mode != "" && mode != string(ChunkSplit) {
			return "", fmt.Errorf("%w: a chunk overlap or mode needs chunk tokens (--chunk-tokens N)", ErrConfig)
		}
		return "", nil
	}
	m, err := ParseChunkMode(mode)
	if err != nil {
		return "", err
	}
	if tokens < 0 {
		return "", fmt.Errorf("%w: chunk tokens %d (want a positive number of tokens)", ErrConfig, tokens)
	}
	if overlap < 0 || overlap >= tokens {
		return "", fmt.Errorf("%w: chunk overlap %d must be at least 0 and less than the chunk tokens %d", ErrConfig, overlap, tokens)
	}
	return m, nil
}

// checkChunks validates and defaults the chunking options against the
// model and the resolved embedding options of e.
func (c *Config) checkChunks(m Model, e *embed.Embedder) error {
	mode, err := CheckChunkOptions(c.ChunkTokens, c.ChunkOverlap, string(c.ChunkMode))
	if err != nil || c.ChunkTokens == 0 {
		return err
	}
	c.ChunkMode = mode
	if c.OutputValue != SentenceEmbedding {
		return fmt.Errorf("%w: chunking writes sentence embeddings, not %s", ErrConfig, c.OutputValue)
	}
	cm, ok := m.(ChunkModel)
	if !ok {
		return fmt.Errorf("%w: chunking needs the tokenizer's offsets, which this model does not give", ErrConfig)
	}
	if _, _, _, err := cm.TextTokens("chunk offsets"); err != nil {
		return fmt.Errorf("%w: chunking needs the tokenizer's offsets: %w", ErrConfig, err)
	}
	ec := e.Config()
	empty, _ := e.TokenizeTo(nil, "")
	extra := len(empty) // what the template and the prompt add
	if room := ec.MaxLength - extra; c.ChunkTokens > room {
		return fmt.Errorf("%w: chunk tokens %d do not fit the max length %d less the %d special and prompt tokens every sequence carries: at most %d", ErrConfig, c.ChunkTokens, ec.MaxLength, extra, room)
	}
	if c.ChunkMode == ChunkLate {
		if _, ok := m.(embed.SpanModel); !ok {
			return fmt.Errorf("%w: late chunking needs a model that pools token spans", ErrConfig)
		}
		if ec.TruncateLeft {
			return fmt.Errorf("%w: late chunking encodes whole documents: it takes no truncation side", ErrConfig)
		}
	}
	return nil
}

// checkScores validates the options of a Scores run.
func (c *Config) checkScores(m Model) error {
	pm, ok := m.(PairModel)
	if !ok || pm.NumLabels() == 0 {
		return fmt.Errorf("%w: %s is not a cross-encoder (kind %s): scoring needs a ForSequenceClassification model", ErrConfig, m.Info().Dir, m.Info().Kind)
	}
	if c.DocumentColumn == "" || c.DocumentColumn == c.Column {
		return fmt.Errorf("%w: scoring needs a document column other than the query column %q", ErrConfig, c.Column)
	}
	if c.LogitColumn == c.OutputColumn {
		return fmt.Errorf("%w: score and logit columns are both %q", ErrConfig, c.OutputColumn)
	}
	if c.Precision != embed.Float32 || c.TruncateDim != 0 || c.Normalize != nil || c.Ranges[0] != nil {
		return fmt.Errorf("%w: scores take none of precision, truncate-dim, normalize or ranges", ErrConfig)
	}
	if c.Prompt != "" || c.PromptName != "" {
		return fmt.Errorf("%w: scores take no prompt", ErrConfig)
	}
	return nil
}

// outDim is the embedding width written; for Scores, the scores then the
// logits of one pair.
func (c *Config) outDim(m Model) int {
	if c.OutputValue == SparseEmbedding {
		return 0 // variable: see sparseEntries
	}
	if c.OutputValue == Scores {
		if pm, ok := m.(PairModel); ok {
			return 2 * pm.NumLabels()
		}
	}
	if c.TruncateDim > 0 {
		return c.TruncateDim
	}
	return m.Dim()
}

// sparseEntries bounds the entries of one sparse vector: the top-k, or
// else the vocabulary.
func (c *Config) sparseEntries(m Model) int {
	if c.SparseTopK > 0 {
		return min(c.SparseTopK, m.Dim())
	}
	return m.Dim()
}
