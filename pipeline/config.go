package pipeline

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/tokenizer"
)

// Model is what the pipeline needs from an encoder; *encoder.Model satisfies
// it. All methods must be safe for concurrent use: the pipeline calls
// TokenizeTo from its tokenizer workers and EmbedBatch/TokenEmbeddingsBatch
// from its encoder workers at the same time. EmbedBatch only reads b and
// writes b.Len()×Dim() floats into dst, which the caller owns.
type Model interface {
	Info() encoder.Info
	Dim() int
	Hidden() int
	MaxSeqLen() int
	ContentHash() string
	Prompt(name string) (string, error)
	TokenizeTo(dst []int32, text, prompt string, maxLen int) (ids []int32, truncated bool)
	EmbedBatch(ctx context.Context, b *encoder.Batch, dst []float32) error
	TokenEmbeddingsBatch(ctx context.Context, b *encoder.Batch, dst []float32) error
	Tokenizer() *tokenizer.Tokenizer
}

var _ Model = (*encoder.Model)(nil)

// Input is one input file, optionally restricted to Parquet row groups
// [RowGroupLo, RowGroupHi) (both 0: the whole file).
type Input struct {
	Path                   string
	RowGroupLo, RowGroupHi int
}

// Output values.
const (
	SentenceEmbedding = "sentence_embedding"
	TokenEmbeddings   = "token_embeddings"
	// SparseEmbedding is the output of a sparse (SPLADE) encoder: one
	// struct<indices: list<int32>, values: list<float32>> per row, indices
	// ascending. It is the default output value of a sparse model.
	SparseEmbedding = "sparse_embedding"
	// Scores is the output of a cross-encoder run (Config.DocumentColumn):
	// a score column and a logit column per (query, document) row.
	Scores = "scores"
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

// OnError policies for rows that cannot be embedded.
const (
	OnErrorFail = "fail" // stop the run with an error naming the row
	OnErrorSkip = "skip" // leave the row out of the output, list it in Errors
	OnErrorNull = "null" // write a null embedding, list it in Errors
)

// Config describes one run. The zero value of every field but Inputs,
// Output and the model is a sensible default.
type Config struct {
	// Inputs are read in order. With one input, Output is a file; with
	// several, Output is a directory that receives one file per input, named
	// after the input (OutputName).
	Inputs []Input
	Output string
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
	// Prompt is prepended to every text; PromptName names one of the model's
	// prompts instead. Setting both is an error.
	Prompt, PromptName string
	// OutputValue is SentenceEmbedding (default) or TokenEmbeddings.
	OutputValue string
	// Precision is float32 (default), float16, int8, uint8, binary or
	// ubinary, as sentence-transformers' quantize_embeddings.
	Precision string
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
	// MaxLength truncates token sequences (0: the model's MaxSeqLen).
	MaxLength int
	// BatchSize caps sequences per encoder batch (default 64);
	// MaxBatchTokens caps real tokens per batch (default 8192).
	BatchSize, MaxBatchTokens int
	// Workers is the number of concurrent encoder calls (default
	// GOMAXPROCS/model threads, at least 1).
	Workers int
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
	OnError string
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
}

func (c *Config) setDefaults(m Model) error {
	if c.Column == "" {
		c.Column = "text"
	}
	if c.OutputValue == "" || c.OutputValue == SentenceEmbedding && m.Info().Kind == encoder.KindSparse {
		// A sparse encoder's sentence embedding is its sparse vector.
		c.OutputValue = SentenceEmbedding
		if m.Info().Kind == encoder.KindSparse {
			c.OutputValue = SparseEmbedding
		}
	}
	if c.OutputColumn == "" {
		c.OutputColumn = "embedding"
		if c.OutputValue == Scores {
			c.OutputColumn = "score"
		}
	}
	if c.OutputValue == Scores && c.LogitColumn == "" {
		c.LogitColumn = "logit"
	}
	if c.Precision == "" {
		c.Precision = "float32"
	}
	if c.OnError == "" {
		c.OnError = OnErrorFail
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 64
	}
	if c.MaxBatchTokens <= 0 {
		c.MaxBatchTokens = 8192
	}
	if c.Workers <= 0 {
		c.Workers = max(1, runtime.GOMAXPROCS(0))
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if len(c.Inputs) == 0 || c.Output == "" {
		return fmt.Errorf("%w: need at least one input and an output", ErrConfig)
	}
	switch c.OutputValue {
	case SentenceEmbedding, TokenEmbeddings:
		if c.DocumentColumn != "" {
			return fmt.Errorf("%w: a document column is for scoring pairs (output value %s)", ErrConfig, Scores)
		}
		if k := m.Info().Kind; k == encoder.KindSparse || k == encoder.KindCrossEncoder {
			return fmt.Errorf("%w: %s is a %s model, which embed cannot run (use score for a cross-encoder)", ErrConfig, m.Info().Dir, k)
		}
	case Scores:
		if err := c.checkScores(m); err != nil {
			return err
		}
	case SparseEmbedding:
		if _, ok := m.(SparseModel); !ok || m.Info().Kind != encoder.KindSparse {
			return fmt.Errorf("%w: %s is not a sparse encoder (kind %s)", ErrConfig, m.Info().Dir, m.Info().Kind)
		}
		if c.Precision != "float32" || c.TruncateDim != 0 || c.Normalize != nil || c.Ranges[0] != nil {
			return fmt.Errorf("%w: sparse vectors take none of precision, truncate-dim, normalize or ranges (--sparse-top-k keeps the largest weights)", ErrConfig)
		}
	default:
		return fmt.Errorf("%w: output value %q (want sentence_embedding, token_embeddings or sparse_embedding)", ErrConfig, c.OutputValue)
	}
	if c.SparseTopK < 0 || c.SparseTopK > 0 && c.OutputValue != SparseEmbedding {
		return fmt.Errorf("%w: sparse top-k %d applies to a sparse encoder's output only", ErrConfig, c.SparseTopK)
	}
	switch c.OnError {
	case OnErrorFail, OnErrorSkip, OnErrorNull:
	default:
		return fmt.Errorf("%w: on-error %q (want fail, skip or null)", ErrConfig, c.OnError)
	}
	if _, err := parsePrecision(c.Precision); err != nil {
		return err
	}
	if c.OutputValue == TokenEmbeddings && (c.Precision != "float32" || c.TruncateDim != 0) {
		return fmt.Errorf("%w: token_embeddings output supports neither --precision nor --truncate-dim", ErrConfig)
	}
	if c.TruncateDim < 0 || c.TruncateDim > m.Dim() {
		return fmt.Errorf("%w: truncate-dim %d outside [1, %d]", ErrConfig, c.TruncateDim, m.Dim())
	}
	if c.Prompt != "" && c.PromptName != "" {
		return fmt.Errorf("%w: give a prompt or a prompt name, not both", ErrConfig)
	}
	if c.PromptName != "" {
		p, err := m.Prompt(c.PromptName)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		c.Prompt, c.PromptName = p, ""
	}
	if c.MaxLength < 0 {
		return fmt.Errorf("%w: max-length %d", ErrConfig, c.MaxLength)
	}
	if (c.Ranges[0] == nil) != (c.Ranges[1] == nil) || len(c.Ranges[0]) != len(c.Ranges[1]) {
		return fmt.Errorf("%w: ranges need a minimum and a maximum row of the same length", ErrRanges)
	}
	if c.Ranges[0] != nil && len(c.Ranges[0]) != c.outDim(m) {
		return fmt.Errorf("%w: ranges have %d dimensions, the output has %d", ErrRanges, len(c.Ranges[0]), c.outDim(m))
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
	if c.Precision != "float32" || c.TruncateDim != 0 || c.Normalize != nil || c.Ranges[0] != nil {
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

// normalize reports whether embeddings are L2-normalized after truncation.
func (c *Config) normalize(m Model) bool {
	if c.Normalize != nil {
		return *c.Normalize
	}
	// A model with a Normalize module gives unit vectors; after truncation
	// sentence-transformers normalizes again only when asked, and embedpipe
	// keeps unit vectors unit: renormalize when truncating such a model.
	return m.Info().Normalize && c.TruncateDim > 0 && c.TruncateDim < m.Dim()
}
