package pipeline

import (
	"context"
	"fmt"
	"slices"

	"github.com/embedpipe/embedpipe/encoder"
)

// encodeScratch is the per-worker memory of the encoder stage.
type encodeScratch struct {
	b   encoder.Batch
	dst []float32
	sv  encoder.SparseVectors
	// spans are the chunk spans of a late-chunking batch.
	spans []encoder.Span
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
			if lim := fr.cfg.SparseMaxEntries; lim > 0 && len(idx) > lim {
				job.failed[u] = fmt.Errorf("the sparse vector has %d non-zero entries, more than the output holds (%d; --sparse-top-k %d keeps the largest)", len(idx), lim, lim)
				continue
			}
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
		if err := fr.emb.TokenEmbeddingsTo(ctx, ew.dst[:need], &ew.b); err != nil {
			return err
		}
		for k, u := range seqs {
			copy(job.tokEmb[job.starts[u]*h:job.starts[u+1]*h], ew.dst[ew.b.Starts[k]*h:ew.b.Starts[k+1]*h])
		}
		return nil
	}
	if job.vecLo != nil {
		return fr.encodeSpans(ctx, ew, job, seqs)
	}
	// The seam pools, truncates and normalizes; the rows are copied to
	// their unique-sequence slots.
	od := fr.outDim
	need := len(seqs) * od
	if cap(ew.dst) < need {
		ew.dst = make([]float32, need)
	}
	if err := fr.emb.EmbedIDs(ctx, ew.dst[:need], &ew.b); err != nil {
		return err
	}
	for k, u := range seqs {
		out := job.emb[int(u)*od : int(u+1)*od]
		copy(out, ew.dst[k*od:(k+1)*od])
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
