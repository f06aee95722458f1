package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/encoder/tokenizer"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/io/sink"
)

// Chunking for retrieval (Config.ChunkTokens): instead of truncating, each
// text is cut into chunks of at most N tokens and each chunk becomes an
// output row.
//
// The text's own tokens come with their byte offsets and word starts from
// the tokenizer (ChunkModel.TextTokens). A chunk is a run of tokens
// [lo, hi): it holds at most N of them; its boundaries lo and hi fall at
// word starts (never inside a word; a WordPiece "##" piece or a byte-level
// BPE token inside a pre-tokenized word is no word start), moving the end
// back from lo+N as far as needed; consecutive chunks share M tokens (the
// next chunk starts at hi-M, which must be a word start too: the chunker
// takes the longest chunk for which both are). The last chunk ends at the
// last token, so the chunks cover every token. Two cases bend a rule, and
// only when the text leaves no choice: when no end in (lo+M, lo+N] has a
// word start M tokens before it, the overlap is the word start nearest to M
// tokens back (more overlap preferred); and a single word longer than N
// tokens is split inside the word, at lo+N or the nearest token before it
// that does not split a character (byte-level BPE cuts characters into
// byte tokens; a chunk never starts or ends inside one where it can help
// it), with M tokens of overlap moved back likewise.
//
// A chunk's bytes are [offset of token lo's start, offset of token hi-1's
// end) of the original text: chunk_text is exactly those bytes. ChunkSplit
// embeds chunk_text alone (with the prompt and special tokens, as any
// text), so a chunk's vector equals the embedding of its chunk_text, and
// identical chunk texts are embedded once, served by the memo and the cache
// like texts. A chunk's text tokenized alone gives the chunk's tokens again
// (tested on the corpus for WordPiece and byte-level BPE), except where a
// word was split: a piece of a word may tokenize otherwise alone; it is
// truncated at MaxLength, and counted, like any text. Byte-level BPE
// offsets give a word's leading space to its first token ("Ġword"), so
// such a chunk_text begins with that space. ChunkLate encodes the whole document once (it must fit
// MaxLength with its special and prompt tokens; a longer one is a row
// error naming its length) and pools each chunk's span of contextual token
// vectors with the model's pooling (embed.Embedder.EmbedSpans), then
// truncates and normalizes as usual.
//
// A row's chunks are written together, in the chunk of input rows that
// holds it, so checkpoints and resume count input rows as ever. A null text
// gives one row with chunk_index 0 and null chunk_start, chunk_end,
// chunk_text and embedding. A text without tokens (empty, white space)
// gives one chunk covering it. A row that fails (a chunk the encoder
// rejects, a document too long for late chunking, a text the tokenizer
// cannot trace) follows OnError for all of its chunks: fail, skip them
// all, or write them with null embeddings.

// The chunk columns, added before the embedding column.
const (
	ChunkIndexColumn = "chunk_index"
	ChunkStartColumn = "chunk_start"
	ChunkEndColumn   = "chunk_end"
	ChunkTextColumn  = "chunk_text"
)

// chunkFields are the chunk columns of the output schema.
var chunkFields = []arrow.Field{
	{Name: ChunkIndexColumn, Type: arrow.PrimitiveTypes.Int32},
	{Name: ChunkStartColumn, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ChunkEndColumn, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: ChunkTextColumn, Type: arrow.BinaryTypes.String, Nullable: true},
}

// ChunkFields returns the chunk columns that a chunked run adds to the
// output schema before the embedding column (a copy), for checks made
// before any run, such as a table's shape at submit.
func ChunkFields() []arrow.Field { return append([]arrow.Field(nil), chunkFields...) }

// textChunk is one chunk of a row's text: bytes [start, end) of the text;
// seq is the unique sequence encoded for it (ChunkSplit: its text;
// ChunkLate: its document) and vec its row of chunkJob.emb.
type textChunk struct {
	start, end int32
	seq, vec   int32
}

// chunkSpans cuts a text of len(word) tokens, word[i] saying whether token
// i starts a word and cut[i] whether a chunk may begin at it at all (false
// for a token that shares a character with the previous one: byte-level
// BPE splits characters into byte tokens), into token ranges of at most n
// tokens sharing m tokens, by the rules of the comment above.
func chunkSpans(word, cut []bool, n, m int) [][2]int {
	t := len(word)
	var spans [][2]int
	for lo := 0; t > 0; {
		if lo+n >= t {
			return append(spans, [2]int{lo, t})
		}
		hi, next := -1, -1
		for j := lo + n; j > lo+m; j-- {
			if word[j] && word[j-m] {
				hi, next = j, j-m
				break
			}
		}
		if hi < 0 {
			for j := lo + n; j > lo; j-- {
				if word[j] {
					hi = j
					break
				}
			}
			if hi < 0 {
				// One word of more than n tokens: split it, between
				// characters where there is room.
				hi = lo + n
				for j := lo + n; j > lo; j-- {
					if cut[j] {
						hi = j
						break
					}
				}
				for j := hi - m; j > lo; j-- {
					if cut[j] {
						next = j
						break
					}
				}
				if next <= lo {
					next = hi
				}
			} else {
				// The overlap cannot be m tokens at word starts: the
				// word start nearest to m tokens back, more preferred.
				for j := hi - m; j > lo && next < 0; j-- {
					if word[j] {
						next = j
					}
				}
				for j := hi - m + 1; j <= hi && next < 0; j++ {
					if j > lo && word[j] {
						next = j
					}
				}
			}
		}
		spans = append(spans, [2]int{lo, hi})
		lo = next
	}
	return spans
}

// cuts returns, for each token of offs, whether a chunk may begin at it:
// the first token, and every token that starts where the previous one's
// bytes end or later (not inside a character split into byte tokens).
func cuts(offs []tokenizer.Offset) []bool {
	c := make([]bool, len(offs))
	for i := range offs {
		c[i] = i == 0 || offs[i].Start >= offs[i-1].Stop
	}
	return c
}

// prepareChunks is prepare for a chunked run: it tokenizes each text with
// offsets, cuts it into chunks, and plans the batches of the unique
// sequences to encode (chunk texts, or documents for late chunking).
func (fr *fileRun) prepareChunks(job *chunkJob) ([]batchJob, error) {
	rec := job.c.Record
	n := int(rec.NumRows())
	tc, err := fileio.NewTextColumn(rec.Column(fr.col))
	if err != nil {
		return nil, fmt.Errorf("%s: column %q: %w", job.c.Where(fr.in.Path, job.c.FirstRow), fr.cfg.Column, err)
	}
	cm := fr.m.(ChunkModel) // checked by checkChunks
	late := fr.cfg.ChunkMode == ChunkLate
	st := &job.stats
	st.Seq, st.FirstRow, st.Rows = job.c.Seq, job.c.FirstRow, int64(n)
	job.state = make([]uint8, n)
	job.rowChunks = make([]int32, 1, n+1)
	job.starts = append(job.starts[:0], 0)
	if late {
		job.vecLo = []int32{0}
	}
	replaced := rowSet(job.c.ReplacedUTF8)
	uniq := map[string]int32{}
	var lens []int
	var truncs []bool
	seqErrs := map[int32]error{}
	var empty []int32 // the special and prompt tokens alone (late chunking)
	if late {
		empty, _ = fr.emb.TokenizeTo(nil, "")
	}
	// addSeq appends the ids of key's text (tokenized by add) as a new
	// unique sequence, or finds the one it already has.
	addSeq := func(key string, add func() bool) (u int32, isNew bool) {
		if u, ok := uniq[key]; ok {
			st.Deduplicated++
			st.Tokens += int64(lens[u])
			if truncs[u] {
				st.Truncated++
			}
			return u, false
		}
		before := len(job.ids)
		trunc := add()
		u = int32(len(lens))
		job.starts = append(job.starts, len(job.ids))
		lens = append(lens, len(job.ids)-before)
		truncs = append(truncs, trunc)
		uniq[strings.Clone(key)] = u
		if fr.cache != nil || fr.memo != nil {
			job.keys = append(job.keys, textKey(key))
		}
		st.Tokens += int64(lens[u])
		if trunc {
			st.Truncated++
		}
		return u, true
	}
	for _, b := range job.c.BadRows {
		// A row the reader could not decode fails as a row that cannot be
		// chunked.
		if job.rowErr == nil {
			job.rowErr = map[int]error{}
		}
		job.rowErr[b.Row] = b.Err
	}
	for i := 0; i < n; i++ {
		if _, bad := job.rowErr[i]; bad {
			job.rowChunks = append(job.rowChunks, int32(len(job.chunks)))
			continue
		}
		s, ok := tc.Value(i)
		if !ok {
			job.state[i] = rowNull
			st.Nulls++
			job.rowChunks = append(job.rowChunks, int32(len(job.chunks)))
			continue
		}
		s = validText(s, replaced[i], &st.InvalidUTF8)
		tids, offs, word, err := cm.TextTokens(s)
		if err != nil {
			if job.rowErr == nil {
				job.rowErr = map[int]error{}
			}
			job.rowErr[i] = err
			job.rowChunks = append(job.rowChunks, int32(len(job.chunks)))
			continue
		}
		spans := chunkSpans(word, cuts(offs), fr.cfg.ChunkTokens, fr.cfg.ChunkOverlap)
		if late {
			u, isNew := addSeq(s, func() bool {
				var trunc bool
				job.ids, trunc = fr.emb.TokenizeTo(job.ids, s)
				return trunc
			})
			if isNew {
				ids := job.seq(u)
				base, err := lateBase(ids, tids, len(empty), truncs[u])
				if err != nil {
					seqErrs[u] = fmt.Errorf("%w (max length %d, %d special and prompt tokens)", err, fr.cfg.MaxLength, len(empty))
				}
				if len(spans) == 0 {
					job.vecSpans = append(job.vecSpans, [2]int32{0, int32(len(ids))})
				}
				for _, sp := range spans {
					job.vecSpans = append(job.vecSpans, [2]int32{int32(base + sp[0]), int32(base + sp[1])})
				}
				job.vecLo = append(job.vecLo, int32(len(job.vecSpans)))
			}
			if len(spans) == 0 {
				job.chunks = append(job.chunks, textChunk{start: 0, end: int32(len(s)), seq: u, vec: job.vecLo[u]})
			}
			for k, sp := range spans {
				job.chunks = append(job.chunks, textChunk{start: int32(offs[sp[0]].Start), end: int32(offs[sp[1]-1].Stop), seq: u, vec: job.vecLo[u] + int32(k)})
			}
		} else {
			if len(spans) == 0 {
				spans = [][2]int{{-1, -1}} // the whole text, which has no tokens
			}
			for _, sp := range spans {
				c := textChunk{start: 0, end: int32(len(s))}
				if sp[0] >= 0 {
					c.start, c.end = int32(offs[sp[0]].Start), int32(offs[sp[1]-1].Stop)
				}
				text := s[c.start:c.end]
				c.seq, _ = addSeq(text, func() bool {
					var trunc bool
					job.ids, trunc = fr.emb.TokenizeTo(job.ids, text)
					return trunc
				})
				c.vec = c.seq
				job.chunks = append(job.chunks, c)
			}
		}
		job.rowChunks = append(job.rowChunks, int32(len(job.chunks)))
	}
	return fr.plan(job, lens, seqErrs), nil
}

// errLateTooLong reports a document longer than late chunking can encode.
var errLateTooLong = errors.New("late chunking encodes the whole document at once")

// lateBase returns where a document's own tokens text start in its
// sequence ids, which must hold them whole, framed by nExtra special and
// prompt tokens.
func lateBase(ids, text []int32, nExtra int, truncated bool) (int, error) {
	if truncated || len(ids) != len(text)+nExtra {
		return 0, fmt.Errorf("%w: the document has %d tokens, more than fit (use --chunk-mode split, or a model of longer context)", errLateTooLong, len(text))
	}
	// The template's trailing special tokens are fewer than its leading
	// ones and the prompt's together for every template but a suffix-only
	// one (Qwen3's EOS), so the search runs from the far end.
	for p := nExtra; p >= 0; p-- {
		if slices.Equal(ids[p:p+len(text)], text) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w: its tokens with the prompt differ from its tokens alone, so the chunks cannot be placed", errLateTooLong)
}

// chunkSchemaFields returns the output fields for chunked runs: the
// input's, the chunk columns, then the embedding column.
func chunkSchemaFields(in []arrow.Field, emb arrow.Field) []arrow.Field {
	return append(append(slices.Clone(in), chunkFields...), emb)
}

// writeChunkRows builds the output record of a chunked run's chunk of
// input rows: one row per text chunk, the row-error policy applied to
// whole input rows.
func (fr *fileRun) writeChunkRows(job *chunkJob) (arrow.Record, error) {
	rec := job.c.Record
	n := int(rec.NumRows())
	st := &job.stats
	var src []int
	idx := array.NewInt32Builder(memory.DefaultAllocator)
	defer idx.Release()
	starts := array.NewInt32Builder(memory.DefaultAllocator)
	defer starts.Release()
	ends := array.NewInt32Builder(memory.DefaultAllocator)
	defer ends.Release()
	texts := array.NewStringBuilder(memory.DefaultAllocator)
	defer texts.Release()
	tc, err := fileio.NewTextColumn(rec.Column(fr.col))
	if err != nil {
		return nil, err
	}
	od := fr.outDim
	var vals []float32
	var valid []bool
	nullRow := func(i int) {
		src = append(src, i)
		idx.Append(0)
		starts.AppendNull()
		ends.AppendNull()
		texts.AppendNull()
		vals = append(vals, make([]float32, od)...)
		valid = append(valid, false)
	}
	for i := 0; i < n; i++ {
		if job.state[i] == rowNull {
			nullRow(i)
			continue
		}
		cs := job.chunks[job.rowChunks[i]:job.rowChunks[i+1]]
		ferr := job.rowErr[i]
		for _, c := range cs {
			if ferr == nil {
				ferr = job.failed[c.seq]
			}
		}
		ok := ferr == nil
		if !ok {
			row := job.c.FirstRow + int64(i)
			if fr.cfg.OnError == OnErrorFail {
				return nil, fmt.Errorf("%s: %w: %v (use --on-error skip or null to go on)", job.c.Where(fr.in.Path, row), ErrRow, ferr)
			}
			st.RowErrors = append(st.RowErrors, RowError{File: fr.in.Path, RowGroup: job.c.RowGroup, Row: row, Action: fr.cfg.OnError, Error: ferr.Error()})
			if fr.cfg.OnError == OnErrorSkip {
				st.Skipped++
				continue
			}
			st.Errors++
			if len(cs) == 0 {
				nullRow(i)
				continue
			}
		}
		s, _ := tc.Value(i)
		if !utf8.ValidString(s) {
			s = strings.ToValidUTF8(s, "\uFFFD") // as prepareChunks saw it
		}
		for k, c := range cs {
			src = append(src, i)
			idx.Append(int32(k))
			starts.Append(c.start)
			ends.Append(c.end)
			texts.Append(s[c.start:c.end])
			if ok {
				vals = append(vals, job.emb[int(c.vec)*od:int(c.vec+1)*od]...)
			} else {
				vals = append(vals, make([]float32, od)...)
			}
			valid = append(valid, ok)
		}
	}
	st.Chunks = int64(len(src))
	kept, err := takeRows(rec, src)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", job.c.WhereGroup(fr.in.Path), err)
	}
	defer kept.Release()
	extra := []arrow.Array{idx.NewArray(), starts.NewArray(), ends.NewArray(), texts.NewArray(),
		sink.VectorColumn(embed.Float32, od, len(valid), f32Bytes(vals), valid)}
	cols := append(slices.Clone(kept.Columns()), extra...)
	out := arrowRecord(fr.schema, cols, kept.NumRows())
	for _, a := range extra {
		a.Release()
	}
	return out, nil
}

// takeRows returns the rows src[0], src[1], … of rec (ascending, repeats
// allowed) as one record; the caller releases it.
func takeRows(rec arrow.Record, src []int) (arrow.Record, error) {
	// Runs of consecutive rows are sliced whole.
	var runs [][2]int64
	for k := 0; k < len(src); {
		j := k + 1
		for j < len(src) && src[j] == src[j-1]+1 {
			j++
		}
		runs = append(runs, [2]int64{int64(src[k]), int64(src[j-1]) + 1})
		k = j
	}
	return concatRuns(rec, runs)
}

// encodeSpans encodes the documents seqs of a late-chunking job once and
// writes each chunk's pooled span into its row of job.emb.
func (fr *fileRun) encodeSpans(ctx context.Context, ew *encodeScratch, job *chunkJob, seqs []int32) error {
	ew.spans = ew.spans[:0]
	for k, u := range seqs {
		for _, sp := range job.vecSpans[job.vecLo[u]:job.vecLo[u+1]] {
			ew.spans = append(ew.spans, encoder.Span{Seq: k, Lo: int(sp[0]), Hi: int(sp[1])})
		}
	}
	od := fr.outDim
	need := len(ew.spans) * od
	if cap(ew.dst) < need {
		ew.dst = make([]float32, need)
	}
	if err := fr.emb.EmbedSpans(ctx, ew.dst[:need], &ew.b, ew.spans); err != nil {
		return err
	}
	k := 0
	for _, u := range seqs {
		lo, hi := int(job.vecLo[u]), int(job.vecLo[u+1])
		copy(job.emb[lo*od:hi*od], ew.dst[k*od:(k+hi-lo)*od])
		k += hi - lo
	}
	return nil
}
