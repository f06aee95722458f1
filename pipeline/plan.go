package pipeline

import (
	"errors"
	"fmt"
	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/io/fileio"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"unicode/utf8"
)

// Batch planning: a chunk's texts are tokenized, deduplicated, served from
// the memo and the cache where possible, and the rest cut into
// length-sorted batches by the embedding seam's token budget
// (embed.Config.Fits).

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
	failed []error // per unique sequence: why it could not be embedded
	// Chunked runs (Config.ChunkTokens): the text chunks of row i are
	// chunks[rowChunks[i]:rowChunks[i+1]]; rowErr holds why a row could
	// not be chunked. Late chunking encodes one sequence per document and
	// pools the spans vecSpans[vecLo[u]:vecLo[u+1]] of sequence u into the
	// rows vecLo[u]… of emb.
	chunks    []textChunk
	rowChunks []int32
	rowErr    map[int]error
	vecLo     []int32
	vecSpans  [][2]int32
	keys      []cacheKey // per unique sequence, when a cache is used
	stats     chunkStats
	// pending counts the batches not yet encoded.
	pending atomic.Int32
	// abandoned is set when an interruption left a batch of the job
	// unencoded: the writer drops the job instead of checkpointing it.
	abandoned atomic.Bool
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

// prepare tokenizes the chunk, deduplicates its texts, serves what it can
// from the cache, and cuts the rest into length-sorted token-budget batches.
func (fr *fileRun) prepare(job *chunkJob) ([]batchJob, error) {
	if fr.cfg.ChunkTokens > 0 {
		return fr.prepareChunks(job)
	}
	rec := job.c.Record
	n := int(rec.NumRows())
	tc, err := fileio.NewTextColumn(rec.Column(fr.col))
	if err != nil {
		return nil, fmt.Errorf("%s: column %q: %w", job.c.Where(fr.in.Path, job.c.FirstRow), fr.cfg.Column, err)
	}
	var dc *fileio.TextColumn
	if fr.pm != nil && fr.docCol >= 0 {
		d, err := fileio.NewTextColumn(rec.Column(fr.docCol))
		if err != nil {
			return nil, fmt.Errorf("%s: column %q: %w", job.c.Where(fr.in.Path, job.c.FirstRow), fr.cfg.DocumentColumn, err)
		}
		dc = &d
	}
	var pair encoder.Batch // a view of job.ids and job.types for AppendPairTo
	st := &job.stats
	st.Seq, st.FirstRow, st.Rows = job.c.Seq, job.c.FirstRow, int64(n)
	job.seqOf = make([]int32, n)
	job.state = make([]uint8, n)
	job.starts = append(job.starts[:0], 0)
	replaced := rowSet(job.c.ReplacedUTF8)
	bad := map[int]error{}
	for _, b := range job.c.BadRows {
		bad[b.Row] = b.Err
	}
	dedup := fr.cfg.OutputValue != TokenEmbeddings
	uniq := map[string]int32{}
	var lens []int
	var truncs []bool
	var pairErrs map[int32]error
	for i := 0; i < n; i++ {
		if berr, ok := bad[i]; ok {
			// A row the reader could not decode is a sequence of no
			// tokens that failed, so that the row-error policy treats it
			// as any other row that cannot be embedded.
			u := int32(len(job.starts) - 1)
			job.starts = append(job.starts, len(job.ids))
			lens, truncs = append(lens, 0), append(truncs, false)
			if fr.cache != nil || fr.memo != nil {
				job.keys = append(job.keys, textKey(""))
			}
			if pairErrs == nil {
				pairErrs = map[int32]error{}
			}
			pairErrs[u] = berr
			job.seqOf[i] = u
			continue
		}
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
		s = validText(s, replaced[i], &st.InvalidUTF8)
		key := s
		if dc != nil {
			doc = validText(doc, false, &st.InvalidUTF8)
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
			job.ids, trunc = fr.emb.TokenizeTo(job.ids, s)
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
	return fr.plan(job, lens, pairErrs), nil
}

// plan allocates the outputs of the unique sequences of job (lens[u]
// tokens each; seqErrs names those that fail before encoding), serves what
// it can from the memo and the cache, and cuts the rest into length-sorted
// token-budget batches.
func (fr *fileRun) plan(job *chunkJob, lens []int, seqErrs map[int32]error) []batchJob {
	st := &job.stats
	nu := len(lens)
	job.failed = make([]error, nu)
	switch fr.cfg.OutputValue {
	case TokenEmbeddings:
		job.tokEmb = make([]float32, len(job.ids)*fr.m.Hidden())
	case SparseEmbedding:
		job.spIdx, job.spVal = make([][]int32, nu), make([][]float32, nu)
	default:
		nvec := nu
		if job.vecLo != nil {
			nvec = int(job.vecLo[nu]) // late chunking: a vector per chunk
		}
		job.emb = make([]float32, nvec*fr.outDim)
	}
	var todo []int32
	for u := 0; u < nu; u++ {
		if perr := seqErrs[int32(u)]; perr != nil {
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
	ec := fr.emb.Config()
	for lo := 0; lo < len(todo); {
		hi, tokens := lo, 0
		for hi < len(todo) && ec.Fits(hi-lo, tokens, lens[todo[hi]]) {
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
	return batches
}

// validText returns s with invalid UTF-8 replaced by U+FFFD, and counts it
// in *invalid when it had some: replaced here, or already by the reader
// (replaced), which left U+FFFD in it.
func validText(s string, replaced bool, invalid *int64) string {
	if !utf8.ValidString(s) {
		*invalid++
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	if replaced && strings.ContainsRune(s, utf8.RuneError) {
		*invalid++
	}
	return s
}

// rowSet returns the set of the row indexes rows.
func rowSet(rows []int) map[int]bool {
	set := make(map[int]bool, len(rows))
	for _, i := range rows {
		set[i] = true
	}
	return set
}
