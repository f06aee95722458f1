package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/pgsink"
	"github.com/embedpipe/embedpipe/io/sink"
	"github.com/embedpipe/embedpipe/pipeline"
)

// pgFlags are the flags of a postgres:// output, shared by embed and
// submit: one parsing path (options) for both.
type pgFlags struct {
	table, idColumn, index, distance, indexMemory, workDir string
}

// register adds --table, --id-column, --create-index and --distance, and
// with withWorkDir embed's --work-dir.
func (f *pgFlags) register(fs *flag.FlagSet, withWorkDir bool) {
	fs.StringVar(&f.table, "table", "", "with --output postgres://…: the target table, created if missing (schema.table allowed)")
	fs.StringVar(&f.idColumn, "id-column", "", "with --output postgres://…: input column holding the row ids (default: a text id \"<input file name>:<row>\")")
	fs.StringVar(&f.index, "create-index", "none", "with --output postgres://…: hnsw, ivfflat or none; built after the load (sparse vectors: hnsw or none)")
	fs.StringVar(&f.distance, "distance", "", "with --output postgres://…: the index's distance: cosine (default), l2 or ip (what SPLADE vectors want); hamming (default) or jaccard for binary precisions")
	fs.StringVar(&f.indexMemory, "index-memory", "", "with --create-index: maintenance_work_mem of the index build, e.g. 1GB (default: the server's, usually 64MB; HNSW builds much faster when the graph fits)")
	if withWorkDir {
		fs.StringVar(&f.workDir, "work-dir", "", "with --output postgres://…: where the embedded rows wait for the load (default: the user cache directory); removed after a complete load")
	}
}

// pgFlagNames are the flags register adds, which apply only to a
// postgres:// output.
var pgFlagNames = []string{"table", "id-column", "create-index", "distance", "index-memory", "work-dir"}

// checkPGFlags refuses the Postgres flags for an output that is not a
// postgres:// URL, where they would be silently ignored.
func checkPGFlags(fs *cmdFlags, output string) error {
	if pgsink.IsURL(output) {
		return nil
	}
	for _, n := range pgFlagNames {
		if fs.given(n) {
			return fs.usageErrorf("--%s applies only to --output postgres://…", n)
		}
	}
	return nil
}

// options parses the flags into pgsink options for url, with the run's
// precision and embedding column.
func (f *pgFlags) options(url, precision, outColumn string) (pgsink.Options, error) {
	idx, err := pgsink.ParseIndex(f.index)
	if err != nil {
		return pgsink.Options{}, err
	}
	dist, err := pgsink.ParseDistance(f.distance)
	if err != nil {
		return pgsink.Options{}, err
	}
	if f.table == "" {
		return pgsink.Options{}, errors.New("--output postgres://… needs --table NAME")
	}
	if err := pgsink.CheckIndexMemory(f.indexMemory); err != nil {
		return pgsink.Options{}, err
	}
	if outColumn == "" {
		outColumn = "embedding"
	}
	return pgsink.Options{URL: url, Table: f.table, IDColumn: f.idColumn, EmbeddingColumn: outColumn,
		Precision: precision, Index: idx, Distance: dist, IndexMemory: f.indexMemory}, nil
}

// pgOutput runs embed into PostgreSQL. Each input is embedded by the
// pipeline into a Parquet file in the work directory (resumable through
// the pipeline's checkpoints), then loaded by pgsink in batches, each
// committed with its progress row: a run killed at any moment and started
// again with the same command embeds only what was not embedded and loads
// only the batches the table does not record.
type pgOutput struct {
	opts pgsink.Options
	work string
}

// loadChunkRows is the rows per load transaction.
const loadChunkRows = 2048

func newPGOutput(url string, f pgFlags, cfg *pipeline.Config, files []string) (*pgOutput, error) {
	opts, err := f.options(url, string(cfg.Precision), cfg.OutputColumn)
	if err != nil {
		return nil, err
	}
	if cfg.OutputValue != "" && cfg.OutputValue != pipeline.SentenceEmbedding && cfg.OutputValue != pipeline.SparseEmbedding {
		return nil, fmt.Errorf("--output postgres://… loads sentence embeddings or sparse vectors; --output-value %s has no table form", cfg.OutputValue)
	}
	if cfg.OnError == pipeline.OnErrorSkip && f.idColumn == "" {
		return nil, errors.New("--on-error skip with --output postgres://… needs --id-column: the default ids \"<file>:<row>\" would shift past a skipped row (or use --on-error null)")
	}
	p := &pgOutput{opts: opts}
	if cfg.ChunkTokens > 0 {
		p.opts.ChunkColumn = pipeline.ChunkIndexColumn // one row per chunk
	}
	p.work = f.workDir
	if p.work == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = os.TempDir()
		}
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00", pgsink.Redact(url), f.table)
		for _, in := range files {
			abs, _ := filepath.Abs(in)
			fmt.Fprintf(h, "%s\x00", abs)
		}
		p.work = filepath.Join(base, "embedpipe", "pgload", hex.EncodeToString(h.Sum(nil))[:16])
	}
	return p, nil
}

// run embeds and loads every input of cfg in turn.
func (p *pgOutput) run(ctx context.Context, m pipeline.Model, cfg pipeline.Config, stderr io.Writer, quiet bool) (pipeline.Summary, error) {
	start := time.Now()
	var total pipeline.Summary
	if m.Info().Kind == encoder.KindSparse {
		// A sparse encoder's vectors go to sparsevec(vocabulary); a vector
		// pgvector cannot hold is a row error of the run (--on-error), found
		// while embedding rather than when loading.
		p.opts.Precision, p.opts.Dim = pgsink.PrecisionSparse, m.Dim()
		cfg.SparseMaxEntries = pgsink.SparseEntryLimit(p.opts)
	}
	if err := pgsink.Check(ctx, p.opts); err != nil {
		return total, err
	}
	if err := os.MkdirAll(p.work, 0o755); err != nil {
		return total, err
	}
	inputs := cfg.Inputs
	for i, in := range inputs {
		out := filepath.Join(p.work, fmt.Sprintf("%03d-%s.parquet", i, strings.TrimSuffix(filepath.Base(in.Path), filepath.Ext(in.Path))))
		key, err := pgRunKey(in.Path, m, cfg)
		if err != nil {
			return total, err
		}
		marker := out + ".done"
		if b, err := os.ReadFile(marker); err != nil || string(b) != key {
			c := cfg
			c.Inputs, c.Output = []pipeline.Input{in}, out
			if cfg.Progress != nil {
				// Progress counts from 0 in each input's run: report the
				// running totals of the whole command.
				before := total
				c.Progress = func(s pipeline.Summary) {
					s.RowsIn += before.RowsIn
					s.Tokens += before.Tokens
					s.Resumed += before.Resumed
					s.TotalRows += before.TotalRows
					cfg.Progress(s)
				}
			}
			s, err := pipeline.Run(ctx, m, c)
			total.Merge(s)
			if err != nil {
				return total, err
			}
			if err := os.WriteFile(marker, []byte(key), 0o644); err != nil {
				return total, err
			}
		}
		if err := p.load(ctx, out, in.Path, key, stderr, quiet); err != nil {
			if ctx.Err() != nil {
				return total, fmt.Errorf("%w: loading %s into %s stopped; rerun the same command to continue", pipeline.ErrInterrupted, in.Path, p.opts.Table)
			}
			return total, err
		}
		total.Files++
		total.Outputs = append(total.Outputs, pgsink.Redact(p.opts.URL)+"#"+p.opts.Table)
	}
	total.Finish(start)
	return total, os.RemoveAll(p.work)
}

// load copies the embedded rows of out into the table, skipping the
// batches the progress table already records for key.
func (p *pgOutput) load(ctx context.Context, out, input, key string, stderr io.Writer, quiet bool) error {
	r, err := dataset.Open(out, dataset.ReadOptions{ChunkRows: loadChunkRows, ChunkBytes: -1})
	if err != nil {
		return err
	}
	defer r.Close()
	s, err := pgsink.Open(ctx, p.opts, r.Schema())
	if err != nil {
		return err
	}
	defer s.Close(context.Background())
	l, err := s.NewLoad(ctx, key, input)
	if err != nil {
		return err
	}
	defer l.Abort(ctx)
	start := time.Now()
	var rows, next int64
	chunked := r.Schema().HasField(pipeline.ChunkIndexColumn)
	for {
		c, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		b := sink.Batch{Record: c.Record, Seq: c.Seq, FirstRow: c.FirstRow}
		if chunked {
			if err := b.ChunkKeys(pipeline.ChunkIndexColumn, &next); err != nil {
				c.Record.Release()
				return fmt.Errorf("%s: %w", out, err)
			}
		}
		err = l.Write(ctx, b)
		rows += c.Record.NumRows()
		c.Record.Release()
		if err != nil {
			return err
		}
	}
	loadTime := time.Since(start)
	if err := l.Commit(ctx); err != nil {
		return err
	}
	res, rep := l.Stats()
	if !quiet {
		n := res.Inserted + res.Updated
		msg := fmt.Sprintf("postgres: %s: %d rows of %s: %d loaded in %.2fs (%d new, %d updated, %.0f rows/s), %d loaded by an earlier run", p.opts.Table, rows, input, n, loadTime.Seconds(), res.Inserted, res.Updated, float64(n)/max(loadTime.Seconds(), 1e-9), rows-n)
		if rep.Index != "" {
			msg += fmt.Sprintf("; %s index %s built in %.2fs", p.opts.Index, rep.Index, rep.IndexTime.Seconds())
		}
		fmt.Fprintln(stderr, msg)
	}
	return nil
}

// pgRunKey identifies one input's load: the input (name, size, mtime), the
// model and the options that change the vectors. The same command gives the
// same key; a changed input or option gives a new one, whose batches are
// written again (upserted by id).
func pgRunKey(path string, m pipeline.Model, cfg pipeline.Config) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	norm := "model"
	if cfg.Normalize != nil {
		norm = fmt.Sprint(*cfg.Normalize)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%d\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%d\x00%d\x00%s\x00%v\x00%s",
		filepath.Base(path), st.Size(), st.ModTime().UnixNano(), m.ContentHash(), cfg.Column, cfg.OutputColumn,
		cfg.Prompt, cfg.PromptName, cfg.Precision, cfg.TruncateDim, cfg.MaxLength, norm, cfg.Ranges, cfg.OnError)
	if cfg.SparseTopK > 0 || cfg.SparseMaxEntries > 0 {
		// Only sparse runs with a bound add these, so other runs keep
		// their keys.
		fmt.Fprintf(h, "\x00sparse=%d/%d", cfg.SparseTopK, cfg.SparseMaxEntries)
	}
	if cfg.ChunkTokens > 0 {
		// Only chunked runs add these, so other runs keep their keys.
		fmt.Fprintf(h, "\x00chunk=%d/%d/%s", cfg.ChunkTokens, cfg.ChunkOverlap, cfg.ChunkMode)
	}
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}
