package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/io/csvio"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/io/jsonlio"
	"github.com/embedpipe/embedpipe/io/sink"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// This file holds the orchestration of a run: resolving the config, one
// input file after another, checkpoints, the final output. The stages are in
// stages.go, batch planning in plan.go, encoding in encode.go and the
// row-error policy in rows.go.

// DefaultChunkRows is the chunk size Run uses when Config.ChunkRows is 0:
// small enough that tokenizing the first chunk and writing the last one (the
// pipeline's fill and drain, when encoders wait) take little time, large
// enough for length sorting to keep batches homogeneous.
const DefaultChunkRows = 512

// DefaultChunkBytes is the byte cap of a chunk when Config.ChunkBytes is 0:
// the chunks in flight then hold a bounded number of bytes whatever the
// width of the rows (see the package documentation for the memory bound).
const DefaultChunkBytes = 4 << 20

// OutputName returns the file name Run gives, in an output directory, to the
// output of input path: the input's base name, with .parquet replacing .csv
// (CSV cannot hold embeddings).
func OutputName(path string) string {
	base := filepath.Base(path)
	if fileio.IsGzip(base) {
		base = base[:len(base)-3] // outputs are not gzip'd
	}
	if f, err := dataset.FormatOf(base); err == nil && f == dataset.CSV {
		return strings.TrimSuffix(base, filepath.Ext(base)) + ".parquet"
	}
	return base
}

// Run embeds cfg.Inputs with m into cfg.Output and returns the run's summary.
//
// It blocks until every row is written, an error occurs, or ctx is done.
// When ctx is done Run stops reading, finishes and checkpoints the chunks
// already in flight, and returns an error wrapping ErrInterrupted; calling
// Run again with the same Config (Resume true) continues where it stopped.
// The summary is valid (partial) whatever the error.
func Run(ctx context.Context, m Model, cfg Config) (Summary, error) {
	start := time.Now()
	var sum Summary
	cfg, emb, err := cfg.resolve(m)
	if err != nil {
		return sum, err
	}
	if len(cfg.Inputs) == 0 || cfg.Output == "" {
		return sum, fmt.Errorf("%w: need at least one input and an output", ErrConfig)
	}
	outs, err := OutputPaths(cfg)
	if err != nil {
		return sum, err
	}
	if len(cfg.Inputs) > 1 {
		if err := checkInputs(&cfg); err != nil {
			return sum, err
		}
		if err := os.MkdirAll(cfg.Output, 0o755); err != nil {
			return sum, err
		}
	}
	prog := &progress{cfg: &cfg, start: start}
	for _, in := range cfg.Inputs {
		prog.total += countRows(in)
	}
	stopProg := prog.run()
	var rowErrs []RowError
	for i, in := range cfg.Inputs {
		var fs Summary
		var errs []RowError
		fs, errs, err = runFile(ctx, m, emb, &cfg, in, outs[i], prog)
		rowErrs = append(rowErrs, errs...)
		if err != nil && !errors.Is(err, ErrInterrupted) {
			// Nothing of a failed file is written, and how many of its
			// chunks finished before the failure depends on timing: its
			// counts would say rows went out that did not, and differ
			// from run to run. The summary counts the written files only
			// and says where the run stopped.
			sum.Stopped = &Stop{Input: in.Path, Output: outs[i], Error: err.Error()}
			break
		}
		sum.Merge(fs)
		if err != nil {
			sum.Stopped = &Stop{Input: in.Path, Output: outs[i], Error: err.Error(), Interrupted: true}
			break
		}
		sum.Files++
		sum.Outputs = append(sum.Outputs, outs[i])
	}
	stopProg()
	sum.TotalRows = prog.total
	sum.Finish(start)
	if cfg.ErrorsPath != "" && (err == nil || len(rowErrs) > 0) {
		if werr := writeRowErrors(cfg.ErrorsPath, rowErrs); werr != nil && err == nil {
			err = werr
		}
	}
	return sum, err
}

func writeRowErrors(path string, errs []RowError) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range errs {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return fileio.WriteFileAtomic(path, buf.Bytes())
}

// openInput opens the input file in for reading in the run's chunking.
func openInput(cfg *Config, in Input) (fileio.Reader, error) {
	return dataset.Open(in.Path, dataset.ReadOptions{ChunkRows: cfg.ChunkRows, ChunkBytes: max(0, cfg.ChunkBytes), RowGroupLo: in.RowGroupLo, RowGroupHi: in.RowGroupHi,
		TextColumn: cfg.Column, MoreTextColumns: moreText(cfg), KeepBadRows: true})
}

// checkSchema checks that the schema of the input at path holds the columns
// the run reads, as text, and none of those it adds, and returns the
// indices of the text column and of the document column (-1 unless the run
// scores pairs).
func checkSchema(cfg *Config, path string, schema *arrow.Schema) (col, docCol int, err error) {
	text := func(name string) (int, error) {
		i, err := fileio.ColumnIndex(schema, name, path)
		if err != nil {
			return -1, err
		}
		if t := schema.Field(i).Type; !fileio.IsTextType(t) {
			return -1, fmt.Errorf("%s: column %q: %w: %s (want a string type)", path, name, fileio.ErrColumnType, t)
		}
		return i, nil
	}
	if col, err = text(cfg.Column); err != nil {
		return -1, -1, err
	}
	if schema.HasField(cfg.OutputColumn) {
		return -1, -1, fmt.Errorf("%w: %s already has a column %q; choose another --output-column", ErrConfig, path, cfg.OutputColumn)
	}
	if cfg.ChunkTokens > 0 {
		for _, f := range chunkFields {
			if schema.HasField(f.Name) || f.Name == cfg.OutputColumn {
				return -1, -1, fmt.Errorf("%w: %s already has a column %q, which chunking adds (rename it, or choose another --output-column)", ErrConfig, path, f.Name)
			}
		}
	}
	docCol = -1
	if cfg.OutputValue == Scores {
		if docCol, err = text(cfg.DocumentColumn); err != nil {
			return -1, -1, err
		}
		if schema.HasField(cfg.LogitColumn) {
			return -1, -1, fmt.Errorf("%w: %s already has a column %q; choose another --logit-column", ErrConfig, path, cfg.LogitColumn)
		}
	}
	return col, docCol, nil
}

// checkInputs opens every input of a run of several files and checks its
// columns before the first output is written, so that a directory holding
// one unusable file fails at once instead of after the others were
// embedded.
func checkInputs(cfg *Config) error {
	for _, in := range cfg.Inputs {
		r, err := openInput(cfg, in)
		if err != nil {
			return err
		}
		_, _, err = checkSchema(cfg, in.Path, r.Schema())
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// countRows returns the rows of in when its format says so cheaply.
func countRows(in Input) int64 {
	f, err := dataset.FormatOf(in.Path)
	if err == nil && f == dataset.JSONL {
		n, _ := jsonlio.CountRows(in.Path)
		return n
	}
	if err == nil && f == dataset.CSV {
		n, _ := csvio.CountRows(in.Path, 0)
		return n
	}
	if err != nil || f != dataset.Parquet {
		return 0
	}
	r, err := dataset.Open(in.Path, dataset.ReadOptions{RowGroupLo: in.RowGroupLo, RowGroupHi: in.RowGroupHi})
	if err != nil {
		return 0
	}
	defer r.Close()
	if n, ok := r.(interface{ NumRows() int64 }); ok {
		return n.NumRows()
	}
	return 0
}

// fileRun holds the shared state of the stages of one input file.
type fileRun struct {
	m       Model
	pm      PairModel   // Scores runs
	sm      SparseModel // SparseEmbedding runs
	emb     *embed.Embedder
	cfg     *Config // resolved
	in      Input
	col     int
	docCol  int // Scores runs: the document column
	outDim  int
	ckDir   string
	schema  *arrow.Schema      // of the parts
	done    map[int]chunkStats // chunks checkpointed by earlier runs
	cache   *cache
	memo    *memo
	prog    *progress
	mu      sync.Mutex
	written map[int]chunkStats
}

func runFile(ctx context.Context, m Model, emb *embed.Embedder, cfg *Config, in Input, out string, prog *progress) (Summary, []RowError, error) {
	var sum Summary
	st, err := os.Stat(in.Path)
	if err != nil {
		return sum, nil, err
	}
	chunkRows, chunkBytes := cfg.ChunkRows, max(0, cfg.ChunkBytes) // 0: no byte cap
	abs, _ := filepath.Abs(in.Path)
	man := manifest{Version: 1, Input: abs, InputSize: st.Size(), InputMTime: st.ModTime().UnixNano(),
		RowGroupLo: in.RowGroupLo, RowGroupHi: in.RowGroupHi, ChunkRows: chunkRows, ChunkBytes: chunkBytes,
		Model: m.ContentHash(), Options: optionsKey(cfg)}
	r, err := openInput(cfg, in)
	if err != nil {
		return sum, nil, err
	}
	defer r.Close()
	col, docCol, err := checkSchema(cfg, in.Path, r.Schema())
	if err != nil {
		return sum, nil, err
	}
	// Writers of this output and its checkpoint killed mid-write (SIGKILL,
	// OOM) left their temporaries; live writers' are locked and stay.
	if _, err := fileio.RemoveStaleTemps(out); err != nil {
		return sum, nil, err
	}
	ckDir := checkpointDir(out)
	done, err := openCheckpoint(ckDir, man, cfg.Resume)
	if err != nil {
		return sum, nil, err
	}
	if _, err := fileio.RemoveStaleTempsIn(ckDir, nil); err != nil {
		return sum, nil, err
	}
	fr := &fileRun{m: m, emb: emb, cfg: cfg, in: in, col: col, docCol: docCol, outDim: cfg.outDim(m),
		ckDir: ckDir, done: done, prog: prog, written: map[int]chunkStats{}}
	fr.pm, _ = m.(PairModel)
	fr.sm, _ = m.(SparseModel)
	fr.schema = fr.partSchema(stripMetadata(r.Schema()))
	// Late chunking gives a document several vectors, which the memo and
	// the cache (one vector per text) do not hold.
	late := cfg.ChunkMode == ChunkLate
	if cfg.OutputValue == SentenceEmbedding && !late || cfg.OutputValue == Scores {
		fr.memo = newMemo(fr.outDim)
	}
	if cfg.CacheDir != "" && cfg.OutputValue == SentenceEmbedding && !late {
		fr.cache, err = openCache(cfg.CacheDir, m.ContentHash(), optionsKey(cfg), fr.outDim)
		if err != nil {
			return sum, nil, err
		}
		defer fr.cache.Close()
	}
	for _, s := range done {
		prog.addChunk(s, true)
	}
	// The output is written while chunks finish, in order, unless int8/uint8
	// ranges must first be computed over the whole run.
	var sink *orderedSink
	if !cfg.Precision.NeedsRanges() || cfg.Ranges[0] != nil {
		if sink, err = fr.newOrderedSink(ctx, out); err != nil {
			return sum, nil, err
		}
		defer sink.abort(ctx)
	}
	nChunks, interrupted, err := fr.stages(ctx, r, done, sink)
	for _, s := range done {
		sum.add(s)
		sum.Resumed += s.Rows
		sum.ResumedTokens += s.EncodedTokens
	}
	for _, s := range fr.written {
		sum.add(s)
	}
	rowErrs := collectRowErrors(done, fr.written)
	if err != nil {
		return sum, rowErrs, err
	}
	if interrupted {
		return sum, rowErrs, &interruptedError{fmt.Sprintf("interrupted: %d rows of %s are checkpointed in %s; rerun the same command to resume (--resume=false starts over)",
			sum.RowsIn, in.Path, ckDir)}
	}
	for seq := 0; seq < nChunks; seq++ {
		_, a := done[seq]
		_, b := fr.written[seq]
		if !a && !b {
			return sum, rowErrs, fmt.Errorf("%w: chunk %d of %s has no checkpoint", ErrCheckpoint, seq, in.Path)
		}
	}
	if sink != nil {
		err = sink.finish(ctx, nChunks)
	} else {
		err = fr.merge(ctx, out, nChunks)
	}
	if err != nil && ctx.Err() != nil {
		return sum, rowErrs, &interruptedError{fmt.Sprintf("interrupted while writing %s: every chunk of %s is checkpointed in %s; rerun the same command to resume (--resume=false starts over)",
			out, in.Path, ckDir)}
	}
	if err != nil {
		return sum, rowErrs, err
	}
	if err := os.RemoveAll(ckDir); err != nil {
		return sum, rowErrs, err
	}
	return sum, rowErrs, nil
}

// moreText names the text columns a run reads besides Column.
func moreText(cfg *Config) []string {
	if cfg.DocumentColumn != "" {
		return []string{cfg.DocumentColumn}
	}
	return nil
}

func collectRowErrors(sets ...map[int]chunkStats) []RowError {
	var seqs []int
	all := map[int]chunkStats{}
	for _, s := range sets {
		for k, v := range s {
			all[k] = v
			seqs = append(seqs, k)
		}
	}
	slices.Sort(seqs)
	var out []RowError
	for _, k := range seqs {
		out = append(out, all[k].RowErrors...)
	}
	return out
}

// partSchema is the input schema plus the output columns in float32.
func (fr *fileRun) partSchema(in *arrow.Schema) *arrow.Schema {
	fields := slices.Clone(in.Fields())
	if fr.cfg.OutputValue == Scores {
		t := fr.scoreType()
		return arrow.NewSchema(append(fields,
			arrow.Field{Name: fr.cfg.OutputColumn, Type: t, Nullable: true},
			arrow.Field{Name: fr.cfg.LogitColumn, Type: t, Nullable: true}), nil)
	}
	if fr.cfg.OutputValue == SparseEmbedding {
		return arrow.NewSchema(append(fields, arrow.Field{Name: fr.cfg.OutputColumn, Type: sparseType, Nullable: true}), nil)
	}
	if fr.cfg.OutputValue == TokenEmbeddings {
		fields = append(fields,
			arrow.Field{Name: fr.cfg.OutputColumn, Type: arrow.ListOf(sink.VectorType(embed.Float32, fr.m.Hidden())), Nullable: true},
			arrow.Field{Name: fr.tokensColumn(), Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true})
	} else if fr.cfg.ChunkTokens > 0 {
		fields = chunkSchemaFields(fields, arrow.Field{Name: fr.cfg.OutputColumn, Type: sink.VectorType(embed.Float32, fr.outDim), Nullable: true})
	} else {
		fields = append(fields, arrow.Field{Name: fr.cfg.OutputColumn, Type: sink.VectorType(embed.Float32, fr.outDim), Nullable: true})
	}
	return arrow.NewSchema(fields, nil)
}

// scoreType is the type of the score and logit columns: float32 for a
// one-label cross-encoder, a fixed-size list of the labels otherwise.
func (fr *fileRun) scoreType() arrow.DataType {
	if nl := fr.outDim / 2; nl > 1 {
		return sink.VectorType(embed.Float32, nl)
	}
	return arrow.PrimitiveTypes.Float32
}

// tokensColumn names the token-string column of token_embeddings output.
func (fr *fileRun) tokensColumn() string { return fr.cfg.OutputColumn + "_tokens" }
