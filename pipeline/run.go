package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/fileio"
)

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
	if err := cfg.setDefaults(m); err != nil {
		return sum, err
	}
	outs := make([]string, len(cfg.Inputs))
	if len(cfg.Inputs) == 1 {
		outs[0] = cfg.Output
	} else {
		if err := os.MkdirAll(cfg.Output, 0o755); err != nil {
			return sum, err
		}
		seen := map[string]string{}
		for i, in := range cfg.Inputs {
			name := OutputName(in.Path)
			if in.RowGroupLo != 0 || in.RowGroupHi != 0 {
				ext := filepath.Ext(name)
				name = fmt.Sprintf("%s.rg%d-%d%s", strings.TrimSuffix(name, ext), in.RowGroupLo, in.RowGroupHi, ext)
			}
			if prev, dup := seen[name]; dup {
				return sum, fmt.Errorf("%w: inputs %s and %s would both write %s", ErrConfig, prev, in.Path, name)
			}
			seen[name] = in.Path
			outs[i] = filepath.Join(cfg.Output, name)
		}
	}
	prog := &progress{cfg: &cfg, start: start}
	for _, in := range cfg.Inputs {
		prog.total += countRows(in)
	}
	stopProg := prog.run()
	var rowErrs []RowError
	var err error
	for i, in := range cfg.Inputs {
		var fs Summary
		var errs []RowError
		fs, errs, err = runFile(ctx, m, &cfg, in, outs[i], prog)
		sum.merge(fs)
		rowErrs = append(rowErrs, errs...)
		if err != nil {
			break
		}
		sum.Files++
		sum.Outputs = append(sum.Outputs, outs[i])
	}
	stopProg()
	sum.TotalRows = prog.total
	sum.finish(start)
	if cfg.ErrorsPath != "" && (err == nil || len(rowErrs) > 0) {
		if werr := writeRowErrors(cfg.ErrorsPath, rowErrs); werr != nil && err == nil {
			err = werr
		}
	}
	return sum, err
}

func (s *Summary) merge(o Summary) {
	s.RowsIn += o.RowsIn
	s.RowsOut += o.RowsOut
	s.Nulls += o.Nulls
	s.InvalidUTF8 += o.InvalidUTF8
	s.Truncated += o.Truncated
	s.Skipped += o.Skipped
	s.Errors += o.Errors
	s.Resumed += o.Resumed
	s.Embedded += o.Embedded
	s.Deduplicated += o.Deduplicated
	s.CacheHits += o.CacheHits
	s.Tokens += o.Tokens
	s.Batches += o.Batches
	s.PaddedTokens += o.PaddedTokens
	s.EncodedTokens += o.EncodedTokens
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

// countRows returns the rows of in when its format says so cheaply.
func countRows(in Input) int64 {
	f, err := dataset.FormatOf(in.Path)
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

// chunkJob is one chunk on its way through the stages. The tokenizer worker
// that prepares it owns it until it hands out its batches; encoder workers
// then write disjoint rows of emb and tokEmb; the worker that finishes the
// last batch hands it to the writer, which owns it from then on.
type chunkJob struct {
	c      fileio.Chunk
	ids    []int32 // the unique sequences, end to end
	types  []int32 // their token types (Scores runs only)
	starts []int   // len(unique)+1
	seqOf  []int32 // per row: its unique sequence, or -1
	state  []uint8 // per row: rowOK, rowNull, rowFailed
	emb    []float32
	tokEmb []float32
	// spIdx and spVal hold each unique sequence's sparse vector
	// (SparseEmbedding runs).
	spIdx  [][]int32
	spVal  [][]float32
	failed []error    // per unique sequence: why it could not be embedded
	keys   []cacheKey // per unique sequence, when a cache is used
	stats  chunkStats
	// pending counts the batches not yet encoded.
	pending atomic.Int32
}

const (
	rowOK uint8 = iota
	rowNull
	rowFailed
)

func (j *chunkJob) seq(u int32) []int32 { return j.ids[j.starts[u]:j.starts[u+1]] }

// batchJob is a run of unique sequences of one chunk encoded together.
type batchJob struct {
	job  *chunkJob
	seqs []int32
}

// fileRun holds the shared state of the stages of one input file.
type fileRun struct {
	m       Model
	pm      PairModel   // Scores runs
	sm      SparseModel // SparseEmbedding runs
	cfg     *Config
	in      Input
	col     int
	docCol  int // Scores runs: the document column
	outDim  int
	norm    bool
	ckDir   string
	schema  *arrow.Schema // of the parts
	prompt  string
	cache   *cache
	memo    *memo
	prog    *progress
	mu      sync.Mutex
	written map[int]chunkStats
}

func runFile(ctx context.Context, m Model, cfg *Config, in Input, out string, prog *progress) (Summary, []RowError, error) {
	var sum Summary
	st, err := os.Stat(in.Path)
	if err != nil {
		return sum, nil, err
	}
	chunkRows := cfg.ChunkRows
	if chunkRows <= 0 {
		chunkRows = DefaultChunkRows
	}
	chunkBytes := cfg.ChunkBytes
	if chunkBytes == 0 {
		chunkBytes = DefaultChunkBytes
	}
	chunkBytes = max(0, chunkBytes)
	abs, _ := filepath.Abs(in.Path)
	man := manifest{Version: 1, Input: abs, InputSize: st.Size(), InputMTime: st.ModTime().UnixNano(),
		RowGroupLo: in.RowGroupLo, RowGroupHi: in.RowGroupHi, ChunkRows: chunkRows, ChunkBytes: chunkBytes,
		Model: m.ContentHash(), Options: optionsKey(cfg, m)}
	r, err := dataset.Open(in.Path, dataset.ReadOptions{ChunkRows: chunkRows, ChunkBytes: chunkBytes, RowGroupLo: in.RowGroupLo, RowGroupHi: in.RowGroupHi, TextColumn: cfg.Column, MoreTextColumns: moreText(cfg)})
	if err != nil {
		return sum, nil, err
	}
	defer r.Close()
	col, err := fileio.ColumnIndex(r.Schema(), cfg.Column, in.Path)
	if err != nil {
		return sum, nil, err
	}
	if t := r.Schema().Field(col).Type; !fileio.IsTextType(t) {
		return sum, nil, fmt.Errorf("%s: column %q: %w: %s (want a string type)", in.Path, cfg.Column, fileio.ErrColumnType, t)
	}
	if r.Schema().HasField(cfg.OutputColumn) {
		return sum, nil, fmt.Errorf("%w: %s already has a column %q; choose another --output-column", ErrConfig, in.Path, cfg.OutputColumn)
	}
	docCol := -1
	if cfg.OutputValue == Scores {
		if docCol, err = fileio.ColumnIndex(r.Schema(), cfg.DocumentColumn, in.Path); err != nil {
			return sum, nil, err
		}
		if t := r.Schema().Field(docCol).Type; !fileio.IsTextType(t) {
			return sum, nil, fmt.Errorf("%s: column %q: %w: %s (want a string type)", in.Path, cfg.DocumentColumn, fileio.ErrColumnType, t)
		}
		if r.Schema().HasField(cfg.LogitColumn) {
			return sum, nil, fmt.Errorf("%w: %s already has a column %q; choose another --logit-column", ErrConfig, in.Path, cfg.LogitColumn)
		}
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
	fr := &fileRun{m: m, cfg: cfg, in: in, col: col, docCol: docCol, outDim: cfg.outDim(m), norm: cfg.normalize(m),
		ckDir: ckDir, prompt: cfg.Prompt, prog: prog, written: map[int]chunkStats{}}
	fr.pm, _ = m.(PairModel)
	fr.sm, _ = m.(SparseModel)
	fr.schema = fr.partSchema(stripMetadata(r.Schema()))
	if cfg.OutputValue == SentenceEmbedding || cfg.OutputValue == Scores {
		fr.memo = newMemo(fr.outDim)
	}
	if cfg.CacheDir != "" && cfg.OutputValue == SentenceEmbedding {
		fr.cache, err = openCache(cfg.CacheDir, m.ContentHash(), optionsKey(cfg, m), fr.outDim)
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
	if p, _ := parsePrecision(cfg.Precision); !p.needsRanges() || cfg.Ranges[0] != nil {
		if sink, err = fr.newOrderedSink(out, done); err != nil {
			return sum, nil, err
		}
		defer sink.abort()
	}
	nChunks, interrupted, err := fr.stages(ctx, r, done, sink)
	for _, s := range done {
		sum.add(s)
		sum.Resumed += s.Rows
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
			arrow.Field{Name: fr.cfg.OutputColumn, Type: arrow.ListOf(embeddingType(arrow.PrimitiveTypes.Float32, fr.m.Hidden())), Nullable: true},
			arrow.Field{Name: fr.tokensColumn(), Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true})
	} else {
		fields = append(fields, arrow.Field{Name: fr.cfg.OutputColumn, Type: embeddingType(arrow.PrimitiveTypes.Float32, fr.outDim), Nullable: true})
	}
	return arrow.NewSchema(fields, nil)
}

// scoreType is the type of the score and logit columns: float32 for a
// one-label cross-encoder, a fixed-size list of the labels otherwise.
func (fr *fileRun) scoreType() arrow.DataType {
	if nl := fr.outDim / 2; nl > 1 {
		return embeddingType(arrow.PrimitiveTypes.Float32, nl)
	}
	return arrow.PrimitiveTypes.Float32
}

// tokensColumn names the token-string column of token_embeddings output.
func (fr *fileRun) tokensColumn() string { return fr.cfg.OutputColumn + "_tokens" }

// stages runs reader → tokenizer workers → encoder workers → part writer
// and returns the number of chunks of the input.
func (fr *fileRun) stages(ctx context.Context, r fileio.Reader, done map[int]chunkStats, sink *orderedSink) (nChunks int, interrupted bool, err error) {
	// Work already read is finished even after ctx is done, so the run
	// context is detached from ctx; it is cancelled only on errors.
	runCtx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	workers := fr.cfg.Workers
	tokWorkers := tokenizerWorkers(workers)
	inflight := inflightChunks(workers)
	sem := make(chan struct{}, inflight)
	tokCh := make(chan *chunkJob, tokWorkers)
	encCh := make(chan batchJob, 2*workers)
	writeCh := make(chan *chunkJob, inflight)

	fail := func(err error) { cancel(err) }
	var readerWG, tokWG, encWG, writeWG sync.WaitGroup

	readerWG.Add(1)
	go func() { // reader: owned by stages, stops at EOF, on ctx or on error
		defer readerWG.Done()
		defer close(tokCh)
		for {
			if ctx.Err() != nil {
				interrupted = true
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				interrupted = true
				return
			case <-runCtx.Done():
				return
			}
			c, err := r.Next(runCtx)
			if errors.Is(err, io.EOF) {
				<-sem
				return
			}
			if err != nil {
				<-sem
				fail(err)
				return
			}
			nChunks = c.Seq + 1
			if _, ok := done[c.Seq]; ok {
				c.Record.Release()
				<-sem
				continue
			}
			select {
			case tokCh <- &chunkJob{c: c}:
			case <-runCtx.Done():
				c.Record.Release()
				<-sem
				return
			}
		}
	}()

	for w := 0; w < tokWorkers; w++ {
		tokWG.Add(1)
		go func() { // tokenizer worker: stops when tokCh closes
			defer tokWG.Done()
			for job := range tokCh {
				if runCtx.Err() != nil {
					job.c.Record.Release()
					<-sem
					continue
				}
				batches, err := fr.prepare(job)
				if err != nil {
					job.c.Record.Release()
					<-sem
					fail(err)
					continue
				}
				if len(batches) == 0 {
					writeCh <- job // never blocks: capacity covers all in flight
					continue
				}
				job.pending.Store(int32(len(batches)))
				for _, b := range batches {
					select {
					case encCh <- b:
					case <-runCtx.Done():
					}
				}
			}
		}()
	}

	for w := 0; w < workers; w++ {
		encWG.Add(1)
		go func() { // encoder worker: stops when encCh closes
			defer encWG.Done()
			var ew encodeScratch
			for b := range encCh {
				if runCtx.Err() != nil {
					continue
				}
				if err := fr.encode(runCtx, &ew, b); err != nil {
					fail(err)
					continue
				}
				if b.job.pending.Add(-1) == 0 {
					writeCh <- b.job
				}
			}
		}()
	}

	writeWG.Add(1)
	go func() { // part writer: stops when writeCh closes
		defer writeWG.Done()
		for job := range writeCh {
			var out arrow.Record
			if runCtx.Err() == nil {
				var err error
				if out, err = fr.writeChunk(runCtx, job); err != nil {
					fail(err)
				}
			}
			job.c.Record.Release()
			if out == nil || sink == nil {
				if out != nil {
					out.Release()
				}
				<-sem
				continue
			}
			// The sink keeps chunks that finish out of order until their
			// turn; each keeps its semaphore slot until written, which
			// bounds that buffer.
			n, err := sink.add(runCtx, job.stats.Seq, out)
			if err != nil {
				fail(err)
			}
			for ; n > 0; n-- {
				<-sem
			}
		}
		if sink != nil {
			for n := sink.drop(); n > 0; n-- {
				<-sem
			}
		}
	}()

	readerWG.Wait()
	tokWG.Wait()
	close(encCh)
	encWG.Wait()
	close(writeCh)
	writeWG.Wait()
	if err := context.Cause(runCtx); err != nil {
		return nChunks, interrupted, err
	}
	return nChunks, interrupted, nil
}

// prepare tokenizes the chunk, deduplicates its texts, serves what it can
// from the cache, and cuts the rest into length-sorted token-budget batches.
func (fr *fileRun) prepare(job *chunkJob) ([]batchJob, error) {
	rec := job.c.Record
	n := int(rec.NumRows())
	tc, err := fileio.NewTextColumn(rec.Column(fr.col))
	if err != nil {
		return nil, fmt.Errorf("%s: row group %d, row %d: column %q: %w", fr.in.Path, job.c.RowGroup, job.c.FirstRow, fr.cfg.Column, err)
	}
	var dc *fileio.TextColumn
	if fr.pm != nil && fr.docCol >= 0 {
		d, err := fileio.NewTextColumn(rec.Column(fr.docCol))
		if err != nil {
			return nil, fmt.Errorf("%s: row group %d, row %d: column %q: %w", fr.in.Path, job.c.RowGroup, job.c.FirstRow, fr.cfg.DocumentColumn, err)
		}
		dc = &d
	}
	var pair encoder.Batch // a view of job.ids and job.types for AppendPairTo
	st := &job.stats
	st.Seq, st.FirstRow, st.Rows = job.c.Seq, job.c.FirstRow, int64(n)
	job.seqOf = make([]int32, n)
	job.state = make([]uint8, n)
	job.starts = append(job.starts[:0], 0)
	replaced := map[int]bool{}
	for _, i := range job.c.ReplacedUTF8 {
		replaced[i] = true
	}
	dedup := fr.cfg.OutputValue != TokenEmbeddings
	uniq := map[string]int32{}
	var lens []int
	var truncs []bool
	var pairErrs map[int32]error
	for i := 0; i < n; i++ {
		s, ok := tc.Value(i)
		var doc string
		if ok && dc != nil {
			doc, ok = dc.Value(i)
		}
		if !ok {
			job.seqOf[i] = -1
			job.state[i] = rowNull
			st.Nulls++
			continue
		}
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD")
			st.InvalidUTF8++
		} else if replaced[i] && strings.ContainsRune(s, utf8.RuneError) {
			st.InvalidUTF8++
		}
		key := s
		if dc != nil {
			if !utf8.ValidString(doc) {
				doc = strings.ToValidUTF8(doc, "\uFFFD")
				st.InvalidUTF8++
			}
			// The length prefix keeps (a, bc) and (ab, c) apart.
			key = strconv.Itoa(len(s)) + ":" + s + doc
		}
		if dedup {
			if u, ok := uniq[key]; ok {
				job.seqOf[i] = u
				st.Deduplicated++
				st.Tokens += int64(lens[u])
				if truncs[u] {
					st.Truncated++
				}
				continue
			}
		}
		before := len(job.ids)
		var trunc bool
		u := int32(len(job.starts) - 1)
		if dc != nil {
			pair.IDs, pair.Types, pair.Starts = job.ids, job.types, pair.Starts[:0]
			var perr error
			if trunc, perr = fr.pm.AppendPairTo(&pair, s, doc, fr.cfg.MaxLength); perr != nil {
				if pairErrs == nil {
					pairErrs = map[int32]error{}
				}
				pairErrs[u] = perr
			}
			job.ids, job.types = pair.IDs, pair.Types
		} else {
			job.ids, trunc = fr.m.TokenizeTo(job.ids, s, fr.prompt, fr.cfg.MaxLength)
		}
		job.starts = append(job.starts, len(job.ids))
		l := len(job.ids) - before
		lens = append(lens, l)
		truncs = append(truncs, trunc)
		if dedup {
			uniq[strings.Clone(key)] = u
		}
		if fr.cache != nil || fr.memo != nil {
			job.keys = append(job.keys, textKey(key))
		}
		job.seqOf[i] = u
		st.Tokens += int64(l)
		if trunc {
			st.Truncated++
		}
	}
	nu := len(lens)
	job.failed = make([]error, nu)
	switch fr.cfg.OutputValue {
	case TokenEmbeddings:
		job.tokEmb = make([]float32, len(job.ids)*fr.m.Hidden())
	case SparseEmbedding:
		job.spIdx, job.spVal = make([][]int32, nu), make([][]float32, nu)
	default:
		job.emb = make([]float32, nu*fr.outDim)
	}
	var todo []int32
	for u := 0; u < nu; u++ {
		if perr := pairErrs[int32(u)]; perr != nil {
			job.failed[u] = perr
			continue
		}
		if lens[u] == 0 {
			job.failed[u] = errors.New("the text gives no tokens")
			continue
		}
		if fr.memo != nil && fr.memo.get(job.emb[u*fr.outDim:(u+1)*fr.outDim], job.keys[u]) {
			st.Deduplicated++
			continue
		}
		if fr.cache != nil && fr.cache.get(job.emb[u*fr.outDim:(u+1)*fr.outDim], fr.cacheKeyOf(job, int32(u))) {
			st.CacheHits++
			if fr.memo != nil {
				fr.memo.put(job.keys[u], job.emb[u*fr.outDim:(u+1)*fr.outDim])
			}
			continue
		}
		todo = append(todo, int32(u))
	}
	// Longest first: the costliest batches start early, and neighbours in
	// length share a batch, which is what keeps padding waste low for
	// engines that pad.
	slices.SortStableFunc(todo, func(a, b int32) int { return lens[b] - lens[a] })
	var batches []batchJob
	for lo := 0; lo < len(todo); {
		hi, tokens := lo, 0
		for hi < len(todo) && hi-lo < fr.cfg.BatchSize && (hi == lo || tokens+lens[todo[hi]] <= fr.cfg.MaxBatchTokens) {
			tokens += lens[todo[hi]]
			hi++
		}
		batches = append(batches, batchJob{job: job, seqs: todo[lo:hi]})
		st.Batches++
		st.EncodedTokens += int64(tokens)
		st.PaddedTokens += int64(lens[todo[lo]] * (hi - lo))
		st.Embedded += int64(hi - lo)
		lo = hi
	}
	return batches, nil
}

// encodeScratch is the per-worker memory of the encoder stage.
type encodeScratch struct {
	b   encoder.Batch
	dst []float32
	sv  encoder.SparseVectors
}

// encode runs one batch. A batch the encoder rejects is retried one
// sequence at a time so that only the offending rows fail.
func (fr *fileRun) encode(ctx context.Context, ew *encodeScratch, b batchJob) error {
	job := b.job
	if err := fr.encodeSeqs(ctx, ew, job, b.seqs); err == nil {
		return nil
	} else if ctx.Err() != nil {
		return err
	}
	for _, u := range b.seqs {
		if err := fr.encodeSeqs(ctx, ew, job, []int32{u}); err != nil {
			if ctx.Err() != nil {
				return err
			}
			job.failed[u] = err
		}
	}
	return nil
}

func (fr *fileRun) encodeSeqs(ctx context.Context, ew *encodeScratch, job *chunkJob, seqs []int32) error {
	ew.b.Reset()
	for _, u := range seqs {
		ew.b.Add(job.seq(u))
		if job.types != nil {
			ew.b.Types = append(ew.b.Types[:len(ew.b.IDs)-len(job.seq(u))], job.types[job.starts[u]:job.starts[u+1]]...)
		}
	}
	switch fr.cfg.OutputValue {
	case Scores:
		return fr.scoreSeqs(ctx, ew, job, seqs)
	case SparseEmbedding:
		ew.sv.Reset()
		if err := fr.sm.EmbedSparseBatch(ctx, &ew.b, encoder.SparseOptions{TopK: fr.cfg.SparseTopK}, &ew.sv); err != nil {
			return err
		}
		for k, u := range seqs {
			idx, val := ew.sv.Vector(k)
			job.spIdx[u], job.spVal[u] = slices.Clone(idx), slices.Clone(val)
		}
		return nil
	}
	if fr.cfg.OutputValue == TokenEmbeddings {
		h := fr.m.Hidden()
		need := len(ew.b.IDs) * h
		if cap(ew.dst) < need {
			ew.dst = make([]float32, need)
		}
		if err := fr.m.TokenEmbeddingsBatch(ctx, &ew.b, ew.dst[:need]); err != nil {
			return err
		}
		for k, u := range seqs {
			copy(job.tokEmb[job.starts[u]*h:job.starts[u+1]*h], ew.dst[ew.b.Starts[k]*h:ew.b.Starts[k+1]*h])
		}
		return nil
	}
	dim := fr.m.Dim()
	need := len(seqs) * dim
	if cap(ew.dst) < need {
		ew.dst = make([]float32, need)
	}
	if err := fr.m.EmbedBatch(ctx, &ew.b, ew.dst[:need]); err != nil {
		return err
	}
	od := fr.outDim
	for k, u := range seqs {
		out := job.emb[int(u)*od : int(u+1)*od]
		copy(out, ew.dst[k*dim:k*dim+od])
		if fr.norm {
			normalizeTo(out)
		}
		if fr.cache != nil {
			fr.cache.put(fr.cacheKeyOf(job, u), out)
		}
		if fr.memo != nil {
			fr.memo.put(job.keys[u], out)
		}
	}
	return nil
}

// scoreSeqs scores the pairs of ew.b (the unique sequences seqs of job)
// into job.emb: per sequence its scores, then its logits.
func (fr *fileRun) scoreSeqs(ctx context.Context, ew *encodeScratch, job *chunkJob, seqs []int32) error {
	n, od := len(seqs), fr.outDim
	nl := od / 2
	if cap(ew.dst) < n*od {
		ew.dst = make([]float32, n*od)
	}
	scores, logits := ew.dst[:n*nl], ew.dst[n*nl:n*od]
	if err := fr.pm.ScoreBatch(ctx, &ew.b, logits, scores); err != nil {
		return err
	}
	for k, u := range seqs {
		out := job.emb[int(u)*od : int(u+1)*od]
		copy(out[:nl], scores[k*nl:(k+1)*nl])
		copy(out[nl:], logits[k*nl:(k+1)*nl])
		if fr.cache != nil {
			fr.cache.put(fr.cacheKeyOf(job, u), out)
		}
		if fr.memo != nil {
			fr.memo.put(job.keys[u], out)
		}
	}
	return nil
}

// normalizeTo scales v to unit L2 norm in float32 as torch.nn.functional.
// normalize does (the norm clamped below at 1e-12).
func normalizeTo(v []float32) {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	n := float32(math.Sqrt(s))
	if n < 1e-12 {
		n = 1e-12
	}
	for i := range v {
		v[i] /= n
	}
}

// scoreColumns builds the score and logit columns of the kept rows of a
// Scores chunk.
func (fr *fileRun) scoreColumns(job *chunkJob, keep, valid []bool) []arrow.Array {
	od := fr.outDim
	nl := od / 2
	sc, lg := make([]float32, len(valid)*nl), make([]float32, len(valid)*nl)
	k := 0
	for i := range keep {
		if !keep[i] {
			continue
		}
		if valid[k] {
			u := int(job.seqOf[i])
			copy(sc[k*nl:(k+1)*nl], job.emb[u*od:u*od+nl])
			copy(lg[k*nl:(k+1)*nl], job.emb[u*od+nl:(u+1)*od])
		}
		k++
	}
	if nl > 1 {
		return []arrow.Array{fixedList(arrow.PrimitiveTypes.Float32, nl, len(valid), f32Bytes(sc), valid),
			fixedList(arrow.PrimitiveTypes.Float32, nl, len(valid), f32Bytes(lg), valid)}
	}
	return []arrow.Array{float32Array(sc, valid), float32Array(lg, valid)}
}

// sparseType is the Arrow type of a sparse vector column.
var sparseType = arrow.StructOf(
	arrow.Field{Name: "indices", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32)},
	arrow.Field{Name: "values", Type: arrow.ListOf(arrow.PrimitiveTypes.Float32)},
)

// sparseColumn builds the sparse vector column of the kept rows of a
// SparseEmbedding chunk.
func (fr *fileRun) sparseColumn(job *chunkJob, keep, valid []bool) arrow.Array {
	b := array.NewStructBuilder(memory.DefaultAllocator, sparseType)
	defer b.Release()
	ib, vb := b.FieldBuilder(0).(*array.ListBuilder), b.FieldBuilder(1).(*array.ListBuilder)
	ivals, vvals := ib.ValueBuilder().(*array.Int32Builder), vb.ValueBuilder().(*array.Float32Builder)
	k := 0
	for i := range keep {
		if !keep[i] {
			continue
		}
		if !valid[k] {
			b.AppendNull()
			k++
			continue
		}
		u := job.seqOf[i]
		b.Append(true)
		ib.Append(true)
		ivals.AppendValues(job.spIdx[u], nil)
		vb.Append(true)
		vvals.AppendValues(job.spVal[u], nil)
		k++
	}
	return b.NewArray()
}

// writeChunk builds the chunk's output record, writes its checkpoint and
// returns the record, which the caller releases.
func (fr *fileRun) writeChunk(ctx context.Context, job *chunkJob) (arrow.Record, error) {
	rec := job.c.Record
	n := int(rec.NumRows())
	st := &job.stats
	keep := make([]bool, n)
	valid := make([]bool, 0, n)
	for i := 0; i < n; i++ {
		keep[i] = true
		if job.state[i] == rowNull {
			valid = append(valid, false)
			continue
		}
		u := job.seqOf[i]
		if ferr := job.failed[u]; ferr != nil {
			row := job.c.FirstRow + int64(i)
			if fr.cfg.OnError == OnErrorFail {
				return nil, fmt.Errorf("%s: row group %d, row %d: %w: %v (use --on-error skip or null to go on)", fr.in.Path, job.c.RowGroup, row, ErrRow, ferr)
			}
			st.RowErrors = append(st.RowErrors, RowError{File: fr.in.Path, RowGroup: job.c.RowGroup, Row: row, Action: fr.cfg.OnError, Error: ferr.Error()})
			if fr.cfg.OnError == OnErrorSkip {
				keep[i] = false
				st.Skipped++
				continue
			}
			st.Errors++
			valid = append(valid, false)
			continue
		}
		valid = append(valid, true)
	}
	kept, err := keepRows(rec, keep)
	if err != nil {
		return nil, fmt.Errorf("%s: row group %d: %w", fr.in.Path, job.c.RowGroup, err)
	}
	defer kept.Release()
	var extra []arrow.Array
	switch fr.cfg.OutputValue {
	case TokenEmbeddings:
		extra = fr.tokenColumns(job, keep, valid)
	case Scores:
		extra = fr.scoreColumns(job, keep, valid)
	case SparseEmbedding:
		extra = []arrow.Array{fr.sparseColumn(job, keep, valid)}
	default:
		od := fr.outDim
		vals := make([]float32, len(valid)*od)
		k := 0
		for i := 0; i < n; i++ {
			if !keep[i] {
				continue
			}
			if valid[k] {
				u := int(job.seqOf[i])
				copy(vals[k*od:(k+1)*od], job.emb[u*od:(u+1)*od])
			}
			k++
		}
		extra = []arrow.Array{fixedList(arrow.PrimitiveTypes.Float32, od, len(valid), f32Bytes(vals), valid)}
	}
	cols := append(slices.Clone(kept.Columns()), extra...)
	out := arrowRecord(fr.schema, cols, kept.NumRows())
	for _, a := range extra {
		a.Release()
	}
	if err := writePart(ctx, fr.ckDir, out, *st); err != nil {
		out.Release()
		return nil, err
	}
	fr.mu.Lock()
	fr.written[st.Seq] = *st
	fr.mu.Unlock()
	fr.prog.addChunk(*st, false)
	return out, nil
}
