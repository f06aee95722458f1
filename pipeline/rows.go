package pipeline

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/io/sink"
)

// The row-error policy (writeChunk): a row the encoder rejected fails the
// run, is skipped or gets a null output, as Config.OnError says, and is
// listed in the chunk's RowErrors; and the output columns of each output
// value.

// scoreColumns builds the score and logit columns of the kept rows of a
// Scores chunk.
func (fr *fileRun) scoreColumns(job *chunkJob, keep, valid []bool) []arrow.Array {
	od := fr.outDim
	nl := od / 2
	sc, lg := make([]float32, len(valid)*nl), make([]float32, len(valid)*nl)
	for k, u := range job.outRows(keep, valid) {
		if u >= 0 {
			copy(sc[k*nl:(k+1)*nl], job.emb[u*od:u*od+nl])
			copy(lg[k*nl:(k+1)*nl], job.emb[u*od+nl:(u+1)*od])
		}
	}
	if nl > 1 {
		return []arrow.Array{sink.VectorColumn(embed.Float32, nl, len(valid), f32Bytes(sc), valid),
			sink.VectorColumn(embed.Float32, nl, len(valid), f32Bytes(lg), valid)}
	}
	return []arrow.Array{float32Array(sc, valid), float32Array(lg, valid)}
}

// outRows yields, for each output row k of the kept rows (keep) of a
// chunk, the sequence whose vector it gets, or -1 when its output is null
// (valid[k] false).
func (job *chunkJob) outRows(keep, valid []bool) iter.Seq2[int, int] {
	return func(yield func(k, u int) bool) {
		k := 0
		for i := range keep {
			if !keep[i] {
				continue
			}
			u := -1
			if valid[k] {
				u = int(job.seqOf[i])
			}
			if !yield(k, u) {
				return
			}
			k++
		}
	}
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
	for _, u := range job.outRows(keep, valid) {
		if u < 0 {
			b.AppendNull()
			continue
		}
		b.Append(true)
		ib.Append(true)
		ivals.AppendValues(job.spIdx[u], nil)
		vb.Append(true)
		vvals.AppendValues(job.spVal[u], nil)
	}
	return b.NewArray()
}

// writeChunk builds the chunk's output record, writes its checkpoint and
// returns the record, which the caller releases.
func (fr *fileRun) writeChunk(ctx context.Context, job *chunkJob) (arrow.Record, error) {
	if fr.cfg.ChunkTokens > 0 {
		out, err := fr.writeChunkRows(job)
		if err != nil {
			return nil, err
		}
		return fr.checkpoint(ctx, job, out)
	}
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
				return nil, fmt.Errorf("%s: %w: %v (use --on-error skip or null to go on)", job.c.Where(fr.in.Path, row), ErrRow, ferr)
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
		return nil, fmt.Errorf("%s: %w", job.c.WhereGroup(fr.in.Path), err)
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
		for k, u := range job.outRows(keep, valid) {
			if u >= 0 {
				copy(vals[k*od:(k+1)*od], job.emb[u*od:(u+1)*od])
			}
		}
		extra = []arrow.Array{sink.VectorColumn(embed.Float32, od, len(valid), f32Bytes(vals), valid)}
	}
	cols := append(slices.Clone(kept.Columns()), extra...)
	out := arrowRecord(fr.schema, cols, kept.NumRows())
	for _, a := range extra {
		a.Release()
	}
	return fr.checkpoint(ctx, job, out)
}

// checkpoint writes out, the output record of job, as its part and counts
// it; it returns out, or releases it on an error.
func (fr *fileRun) checkpoint(ctx context.Context, job *chunkJob, out arrow.Record) (arrow.Record, error) {
	st := &job.stats
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
