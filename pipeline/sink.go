package pipeline

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/sink"
)

// outWriter writes part records (float32 embeddings) to the run's Sink in
// the output precision. The ordered writer and the int8-range merge both
// write through it, so there is one convert-and-write path.
type outWriter struct {
	fr     *fileRun
	s      sink.Sink
	schema *arrow.Schema
	rg     *embed.Ranges
	seq    int
}

// newOutWriter opens the output file as a Sink. rg are the calibration
// ranges of int8/uint8 output.
func (fr *fileRun) newOutWriter(out string, rg *embed.Ranges) (*outWriter, error) {
	schema := fr.finalSchema(rg)
	fw, err := dataset.CreateWith(out, schema, dataset.WriteOptions{NoDictionary: []string{fr.cfg.Column}})
	if err != nil {
		return nil, err
	}
	return &outWriter{fr: fr, s: sink.File(fw), schema: schema, rg: rg}, nil
}

// write converts rec, a part record of the chunk starting at input row
// firstRow, and writes it. rec stays the caller's.
func (w *outWriter) write(ctx context.Context, rec arrow.Record, firstRow int64) error {
	cols := slices.Clone(rec.Columns())
	if w.fr.cfg.OutputValue == SentenceEmbedding && w.fr.cfg.Precision != embed.Float32 {
		last := len(cols) - 1
		conv, err := w.fr.convert(cols[last].(*array.FixedSizeList), w.rg)
		if err != nil {
			return err
		}
		defer conv.Release()
		cols[last] = conv
	}
	r := array.NewRecord(w.schema, cols, rec.NumRows())
	defer r.Release()
	err := w.s.Write(ctx, sink.Batch{Record: r, Seq: w.seq, FirstRow: firstRow})
	w.seq++
	return err
}

// convert quantizes a float32 embedding column with the seam's quantizer.
func (fr *fileRun) convert(col *array.FixedSizeList, rg *embed.Ranges) (arrow.Array, error) {
	vals, dim, valid, err := sink.ColumnVectors(col)
	if err != nil {
		return nil, err
	}
	n, p := len(vals)/max(dim, 1), fr.cfg.Precision
	if valid == nil {
		valid = make([]bool, n)
		for i := range valid {
			valid[i] = true
		}
	}
	raw := make([]byte, n*p.RowBytes(dim))
	if err := fr.emb.QuantizeTo(raw, vals, n, rg); err != nil {
		return nil, err
	}
	return sink.VectorColumn(p, dim, n, raw, valid), nil
}

// firstRow returns the input row of the first row of chunk seq.
func (fr *fileRun) firstRow(seq int) int64 {
	if s, ok := fr.done[seq]; ok {
		return s.FirstRow
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	return fr.written[seq].FirstRow
}

// copyParts writes the parts of chunks lo..hi-1 through w.
func (fr *fileRun) copyParts(ctx context.Context, w *outWriter, lo, hi int) error {
	return readParts(ctx, fr.ckDir, lo, hi, func(seq int, rec arrow.Record) error {
		if err := w.write(ctx, rec, fr.firstRow(seq)); err != nil {
			return fmt.Errorf("writing chunk %d: %w", seq, err)
		}
		return nil
	})
}

// orderedSink writes finished chunks into the final output in chunk order
// while the run goes on, so the output is complete as soon as the last chunk
// is. Chunks done by an earlier run are copied from their parts when their
// turn comes. Only the part writer goroutine calls add and drop; runFile
// calls finish or abort after the stages have stopped.
type orderedSink struct {
	fr      *fileRun
	w       *outWriter
	next    int
	pending map[int]pendingChunk
}

type pendingChunk struct {
	rec      arrow.Record
	firstRow int64
}

func (fr *fileRun) newOrderedSink(_ context.Context, out string) (*orderedSink, error) {
	w, err := fr.newOutWriter(out, fr.emb.Config().Ranges)
	if err != nil {
		return nil, err
	}
	return &orderedSink{fr: fr, w: w, pending: map[int]pendingChunk{}}, nil
}

// add takes rec (chunk seq, owned by the sink from now on) and writes every
// chunk whose turn has come. It returns how many of the chunks handed to add
// were written (and released).
func (s *orderedSink) add(ctx context.Context, seq int, firstRow int64, rec arrow.Record) (int, error) {
	s.pending[seq] = pendingChunk{rec, firstRow}
	written := 0
	for {
		if _, ok := s.fr.done[s.next]; ok {
			if err := s.fr.copyParts(ctx, s.w, s.next, s.next+1); err != nil {
				return written, err
			}
			s.next++
			continue
		}
		p, ok := s.pending[s.next]
		if !ok {
			return written, nil
		}
		delete(s.pending, s.next)
		err := s.w.write(ctx, p.rec, p.firstRow)
		p.rec.Release()
		written++
		if err != nil {
			return written, err
		}
		s.next++
	}
}

// drop releases the chunks still waiting (after an error or an interrupt)
// and returns how many there were.
func (s *orderedSink) drop() int {
	n := len(s.pending)
	for k, p := range s.pending {
		p.rec.Release()
		delete(s.pending, k)
	}
	return n
}

// finish writes what remains (chunks of earlier runs after the last new
// one) and commits the output.
func (s *orderedSink) finish(ctx context.Context, nChunks int) error {
	for ; s.next < nChunks; s.next++ {
		if _, ok := s.fr.done[s.next]; !ok {
			return fmt.Errorf("%w: chunk %d of %s was never written", ErrCheckpoint, s.next, s.fr.in.Path)
		}
		if err := s.fr.copyParts(ctx, s.w, s.next, s.next+1); err != nil {
			return err
		}
	}
	if len(s.pending) > 0 {
		return fmt.Errorf("%w: %d chunks of %s finished after the last one", ErrCheckpoint, len(s.pending), s.fr.in.Path)
	}
	return s.w.s.Commit(ctx)
}

// abort discards the output unless finish committed it.
func (s *orderedSink) abort(ctx context.Context) { _ = s.w.s.Abort(ctx) }
