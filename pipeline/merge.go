package pipeline

import (
	"context"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/float16"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/io/dataset"
)

func arrowRecord(schema *arrow.Schema, cols []arrow.Array, n int64) arrow.Record {
	return array.NewRecord(schema, cols, n)
}

// tokenColumns builds the token_embeddings columns of the kept rows: per row
// the contextual vector of every real token and the token strings.
func (fr *fileRun) tokenColumns(job *chunkJob, keep, valid []bool) []arrow.Array {
	h := fr.m.Hidden()
	tok := fr.m.Tokenizer()
	eb := array.NewListBuilder(memory.DefaultAllocator, embeddingType(arrow.PrimitiveTypes.Float32, h))
	defer eb.Release()
	fb := eb.ValueBuilder().(*array.FixedSizeListBuilder)
	vb := fb.ValueBuilder().(*array.Float32Builder)
	sb := array.NewListBuilder(memory.DefaultAllocator, arrow.BinaryTypes.String)
	defer sb.Release()
	ssb := sb.ValueBuilder().(*array.StringBuilder)
	k := 0
	for i := range keep {
		if !keep[i] {
			continue
		}
		if !valid[k] {
			eb.AppendNull()
			sb.AppendNull()
			k++
			continue
		}
		k++
		u := job.seqOf[i]
		eb.Append(true)
		sb.Append(true)
		for t := job.starts[u]; t < job.starts[u+1]; t++ {
			fb.Append(true)
			vb.AppendValues(job.tokEmb[t*h:(t+1)*h], nil)
			ssb.Append(tok.IDToToken(job.ids[t]))
		}
	}
	return []arrow.Array{eb.NewArray(), sb.NewArray()}
}

// finalSchema is the part schema with the embedding column in the output
// precision.
func (fr *fileRun) finalSchema(p precision) *arrow.Schema {
	fields := slices.Clone(fr.schema.Fields())
	if fr.cfg.OutputValue == SentenceEmbedding {
		i := len(fields) - 1
		fields[i].Type = embeddingType(p.elemType(), p.width(fr.outDim))
	}
	return arrow.NewSchema(fields, nil)
}

// merge writes the parts, in chunk order, into the final output file,
// converting the embedding column to the output precision. int8/uint8
// without given ranges first scan every part for the per-dimension minimum
// and maximum, as quantize_embeddings does over the whole set.
func (fr *fileRun) merge(ctx context.Context, out string, nChunks int) error {
	p, _ := parsePrecision(fr.cfg.Precision)
	od := fr.outDim
	var rg ranges
	if p.needsRanges() {
		lo, hi := fr.cfg.Ranges[0], fr.cfg.Ranges[1]
		if lo == nil {
			lo, hi = make([]float32, od), make([]float32, od)
			for i := range lo {
				lo[i], hi[i] = float32(math.Inf(1)), float32(math.Inf(-1))
			}
			seen := false
			err := readParts(ctx, fr.ckDir, 0, nChunks, func(_ int, rec arrow.Record) error {
				col := rec.Column(int(rec.NumCols()) - 1).(*array.FixedSizeList)
				vals := col.ListValues().(*array.Float32).Float32Values()
				for r := 0; r < col.Len(); r++ {
					if col.IsNull(r) {
						continue
					}
					seen = true
					s, _ := col.ValueOffsets(r)
					for d, v := range vals[s : s+int64(od)] {
						lo[d] = min(lo[d], v)
						hi[d] = max(hi[d], v)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			if !seen {
				clear(lo)
				clear(hi)
			}
		}
		rg = newRanges(lo, hi)
	}
	schema := fr.finalSchema(p)
	w, err := dataset.CreateWith(out, schema, dataset.WriteOptions{NoDictionary: []string{fr.cfg.Column}})
	if err != nil {
		return err
	}
	defer w.Abort()
	err = readParts(ctx, fr.ckDir, 0, nChunks, func(seq int, rec arrow.Record) error {
		cols := slices.Clone(rec.Columns())
		last := len(cols) - 1
		if fr.cfg.OutputValue == SentenceEmbedding && p != pFloat32 {
			conv := convert(cols[last].(*array.FixedSizeList), od, p, rg)
			defer conv.Release()
			cols[last] = conv
		}
		r2 := array.NewRecord(schema, cols, rec.NumRows())
		defer r2.Release()
		if err := w.Write(ctx, r2); err != nil {
			return fmt.Errorf("writing chunk %d: %w", seq, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return w.Commit()
}

// convert quantizes a float32 embedding column.
func convert(col *array.FixedSizeList, dim int, p precision, rg ranges) arrow.Array {
	n := col.Len()
	vals := col.ListValues().(*array.Float32).Float32Values()
	width := p.width(dim)
	esize := 1
	if p == pFloat16 {
		esize = 2
	}
	raw := make([]byte, n*width*esize)
	valid := make([]bool, n)
	for r := 0; r < n; r++ {
		valid[r] = col.IsValid(r)
		if !valid[r] {
			continue
		}
		s, _ := col.ValueOffsets(r)
		e := vals[s : s+int64(dim)]
		out := raw[r*width*esize : (r+1)*width*esize]
		switch p {
		case pFloat16:
			toFloat16(unsafe.Slice((*float16.Num)(unsafe.Pointer(&out[0])), width), e)
		case pInt8:
			quantizeInt8To(unsafe.Slice((*int8)(unsafe.Pointer(&out[0])), width), e, rg)
		case pUint8:
			quantizeUint8To(out, e, rg)
		case pBinary:
			packBitsTo(out, e, true)
		case pUbinary:
			packBitsTo(out, e, false)
		}
	}
	return fixedList(p.elemType(), width, n, raw, valid)
}
