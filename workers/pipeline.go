package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/pipeline"
	"github.com/embedpipe/embedpipe/schemas"
)

// PipelineRunner is the TaskRunner of the workers: it runs the task through
// pipeline.Run (one input restricted to the task's row groups, the part as
// the output file), so that a part holds the input's columns plus the
// embedding column, with every output option the embed command has. The
// pipeline's checkpoints live next to the part, so a task redelivered after
// its worker was killed resumes from the chunks already embedded.
type PipelineRunner struct {
	Model pipeline.Model
	// BatchSize and MaxBatchTokens bound an encoder batch (0: the
	// pipeline's defaults).
	BatchSize, MaxBatchTokens int
	// Workers is the number of concurrent encoder calls of one task (0:
	// the pipeline's default).
	Workers int
	// WorkDir holds the embedded rows of tasks whose output is a Postgres
	// table until they are loaded (default: the user cache directory's
	// embedpipe/pgtasks).
	WorkDir string
	// Logger receives the phases of Postgres tasks; nil discards them.
	Logger *slog.Logger
}

func (r *PipelineRunner) logger() *slog.Logger {
	if r.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Logger
}

// permanentPipeline reports the pipeline errors that no retry can fix.
func permanentPipeline(err error) bool {
	for _, e := range []error{pipeline.ErrConfig, pipeline.ErrRow, pipeline.ErrRanges, fileio.ErrCorrupt,
		fileio.ErrMissingColumn, fileio.ErrColumnType, fileio.ErrRowGroupRange, fileio.ErrUnsupportedFormat} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// chunkMode checks a job's chunking options with the pipeline's one rule,
// as far as it goes without the model, and returns the chunk mode.
func chunkMode(o schemas.Options) (pipeline.ChunkMode, error) {
	mode, err := pipeline.CheckChunkOptions(o.ChunkTokens, o.ChunkOverlap, o.ChunkMode)
	if err != nil {
		return "", fmt.Errorf("%w: options: %w", ErrBadOptions, err)
	}
	return mode, nil
}

// EmbedOptions converts a job's options into the embedding seam's: the one
// schemas.Options → embedding options function, used by Submit (which
// refuses a job whose options the engine cannot honour, with the reason) and
// by every task. Options that depend on the model (a prompt name, a
// truncate-dim wider than the model) are checked by embed.Resolve when the
// task runs.
func EmbedOptions(o schemas.Options) (embed.Options, error) {
	if o.Pooling != "" {
		return embed.Options{}, fmt.Errorf("%w: options.pooling %q: embedpipe pools as the model's Pooling module says and cannot override it; leave pooling unset", ErrBadOptions, o.Pooling)
	}
	p, err := embed.ParsePrecision(o.Precision)
	if err != nil {
		return embed.Options{}, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	if p.NeedsRanges() {
		return embed.Options{}, fmt.Errorf("%w: options.precision %s needs calibration ranges over the whole job, which tasks embedded apart cannot compute; use float32, float16, binary or ubinary", ErrBadOptions, p)
	}
	return embed.Options{Prompt: o.Prompt, PromptName: o.PromptName, Precision: p, TruncateDim: o.TruncateDim,
		Normalize: o.Normalize, MaxLength: o.MaxLength, BatchSize: o.BatchSize}, nil
}

// RunTask implements TaskRunner. A task whose output is a Postgres table
// ignores outDir: its rows wait in WorkDir and are loaded into the table.
func (r *PipelineRunner) RunTask(ctx context.Context, t schemas.Task, input, outDir string) (PartInfo, error) {
	if t.Output.Postgres != nil {
		return r.runPostgres(ctx, t, input)
	}
	out := filepath.Join(outDir, t.Part)
	sum, err := r.embedPart(ctx, t, input, out, 0)
	if err != nil {
		return PartInfo{}, err
	}
	shaSum, size, rows, err := checkPart(out)
	if err != nil {
		return PartInfo{}, err
	}
	want := sum.RowsOut
	if t.Options.ChunkTokens > 0 {
		want = sum.ChunksOut // one part row per chunk
	}
	if rows != want {
		return PartInfo{}, fmt.Errorf("workers: task %s/%d: part %s holds %d rows, the pipeline wrote %d", t.JobID, t.Index, out, rows, want)
	}
	return PartInfo{Name: t.Part, Rows: rows, Tokens: sum.Tokens, Bytes: size, SHA256: shaSum}, nil
}

// embedPart runs the task's rows through the pipeline into the Parquet file
// out, resuming from its checkpoints, and checks that every row of the task
// came out.
func (r *PipelineRunner) embedPart(ctx context.Context, t schemas.Task, input, out string, sparseMax int) (pipeline.Summary, error) {
	eo, err := EmbedOptions(t.Options)
	if err != nil {
		return pipeline.Summary{}, fmt.Errorf("%w: task %s/%d: %w", ErrPermanent, t.JobID, t.Index, err)
	}
	if eo.BatchSize == 0 {
		eo.BatchSize = r.BatchSize
	}
	mode, err := chunkMode(t.Options)
	if err != nil {
		return pipeline.Summary{}, fmt.Errorf("%w: task %s/%d: %w", ErrPermanent, t.JobID, t.Index, err)
	}
	cfg := pipeline.Config{
		SparseMaxEntries: sparseMax,
		ChunkTokens:      t.Options.ChunkTokens,
		ChunkOverlap:     t.Options.ChunkOverlap,
		ChunkMode:        mode,
		Inputs:           []pipeline.Input{{Path: input, RowGroupLo: t.RowGroupLo, RowGroupHi: t.RowGroupHi}},
		Output:           out,
		Column:           t.Column,
		OutputColumn:     t.Output.Column,
		Prompt:           eo.Prompt,
		PromptName:       eo.PromptName,
		Precision:        eo.Precision,
		TruncateDim:      eo.TruncateDim,
		Normalize:        eo.Normalize,
		MaxLength:        eo.MaxLength,
		BatchSize:        eo.BatchSize,
		MaxBatchTokens:   r.MaxBatchTokens,
		Workers:          r.Workers,
		Resume:           true,
		OnError:          pipeline.OnErrorFail,
		Metadata:         partMetadata(r.Model),
		Progress: func(s pipeline.Summary) {
			ReportTaskProgress(ctx, s.RowsIn, s.Tokens)
		},
	}
	sum, err := pipeline.Run(ctx, r.Model, cfg)
	if errors.Is(err, pipeline.ErrCheckpoint) {
		// Checkpoints of another run (another model or options) under the
		// same part name: start the task over.
		cfg.Resume = false
		sum, err = pipeline.Run(ctx, r.Model, cfg)
	}
	if err != nil {
		if permanentPipeline(err) {
			return sum, fmt.Errorf("%w: task %s/%d: %w", ErrPermanent, t.JobID, t.Index, err)
		}
		return sum, fmt.Errorf("workers: task %s/%d: %w", t.JobID, t.Index, err)
	}
	if t.Rows > 0 && sum.RowsIn != t.Rows {
		return sum, fmt.Errorf("%w: task %s/%d: %s has %d rows in row groups [%d,%d), the plan said %d (file changed since submit?)",
			ErrPermanent, t.JobID, t.Index, input, sum.RowsIn, t.RowGroupLo, t.RowGroupHi, t.Rows)
	}
	if sum.RowsOut != sum.RowsIn {
		return sum, fmt.Errorf("%w: task %s/%d: %d rows in, %d out", ErrPermanent, t.JobID, t.Index, sum.RowsIn, sum.RowsOut)
	}
	return sum, nil
}
