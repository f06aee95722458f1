package pipeline

import (
	"context"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/io/sink"
)

func arrowRecord(schema *arrow.Schema, cols []arrow.Array, n int64) arrow.Record {
	return array.NewRecord(schema, cols, n)
}

// tokenColumns builds the token_embeddings columns of the kept rows: per row
// the contextual vector of every real token and the token strings.
func (fr *fileRun) tokenColumns(job *chunkJob, keep, valid []bool) []arrow.Array {
	h := fr.m.Hidden()
	eb := array.NewListBuilder(memory.DefaultAllocator, sink.VectorType(embed.Float32, h))
	defer eb.Release()
	fb := eb.ValueBuilder().(*array.FixedSizeListBuilder)
	vb := fb.ValueBuilder().(*array.Float32Builder)
	sb := array.NewListBuilder(memory.DefaultAllocator, arrow.BinaryTypes.String)
	defer sb.Release()
	ssb := sb.ValueBuilder().(*array.StringBuilder)
	for _, u := range job.outRows(keep, valid) {
		if u < 0 {
			eb.AppendNull()
			sb.AppendNull()
			continue
		}
		eb.Append(true)
		sb.Append(true)
		for t := job.starts[u]; t < job.starts[u+1]; t++ {
			fb.Append(true)
			vb.AppendValues(job.tokEmb[t*h:(t+1)*h], nil)
			ssb.Append(fr.m.IDToToken(job.ids[t]))
		}
	}
	return []arrow.Array{eb.NewArray(), sb.NewArray()}
}

// finalSchema is the part schema with the embedding column in the output
// precision and, as metadata, the Config's and the provenance of the
// vectors (rg: the int8/uint8 ranges they are quantized with).
func (fr *fileRun) finalSchema(rg *embed.Ranges) *arrow.Schema {
	fields := slices.Clone(fr.schema.Fields())
	if fr.cfg.OutputValue == SentenceEmbedding {
		i := len(fields) - 1
		p := fr.cfg.Precision
		fields[i].Type = sink.VectorType(p, fr.outDim)
	}
	kv := fr.emb.Provenance(rg).Metadata()
	for k, v := range fr.cfg.Metadata {
		kv[k] = v
	}
	md := arrow.MetadataFrom(kv)
	return arrow.NewSchema(fields, &md)
}

// merge writes the parts, in chunk order, into the final output file,
// converting the embedding column to the output precision. int8/uint8
// without given ranges first scan every part for the per-dimension minimum
// and maximum, as quantize_embeddings does over the whole set.
func (fr *fileRun) merge(ctx context.Context, out string, nChunks int) error {
	rg := fr.emb.Config().Ranges
	if fr.cfg.Precision.NeedsRanges() && rg == nil {
		b := embed.NewBounds(fr.outDim)
		err := readParts(ctx, fr.ckDir, 0, nChunks, func(_ int, rec arrow.Record) error {
			vals, dim, valid, err := sink.Vectors(rec, fr.cfg.OutputColumn)
			if err != nil {
				return err
			}
			for r := 0; r < int(rec.NumRows()); r++ {
				if valid == nil || valid[r] {
					b.Add(vals[r*dim : (r+1)*dim])
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		r := b.Ranges()
		rg = &r
	}
	w, err := fr.newOutWriter(out, rg)
	if err != nil {
		return err
	}
	defer w.s.Abort(ctx)
	if err := fr.copyParts(ctx, w, 0, nChunks); err != nil {
		return err
	}
	return w.s.Commit(ctx)
}
