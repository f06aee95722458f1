package pipeline

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// orderedSink writes finished chunks into the final output in chunk order
// while the run goes on, so the output is complete as soon as the last chunk
// is. Chunks done by an earlier run are copied from their parts when their
// turn comes. Only the part writer goroutine calls add and drop; runFile
// calls finish or abort after the stages have stopped.
type orderedSink struct {
	fr      *fileRun
	w       fileio.Writer
	schema  *arrow.Schema
	p       precision
	rg      ranges
	next    int
	pending map[int]arrow.Record
	done    map[int]chunkStats
}

func (fr *fileRun) newOrderedSink(out string, done map[int]chunkStats) (*orderedSink, error) {
	p, _ := parsePrecision(fr.cfg.Precision)
	s := &orderedSink{fr: fr, p: p, pending: map[int]arrow.Record{}, done: done}
	if p.needsRanges() {
		s.rg = newRanges(fr.cfg.Ranges[0], fr.cfg.Ranges[1])
	}
	s.schema = fr.finalSchema(p)
	var err error
	if s.w, err = dataset.CreateWith(out, s.schema, dataset.WriteOptions{NoDictionary: []string{fr.cfg.Column}}); err != nil {
		return nil, err
	}
	return s, nil
}

// add takes rec (chunk seq, owned by the sink from now on) and writes every
// chunk whose turn has come. It returns how many of the chunks handed to add
// were written (and released).
func (s *orderedSink) add(ctx context.Context, seq int, rec arrow.Record) (int, error) {
	s.pending[seq] = rec
	written := 0
	for {
		if _, ok := s.done[s.next]; ok {
			if err := s.copyPart(ctx, s.next); err != nil {
				return written, err
			}
			s.next++
			continue
		}
		r, ok := s.pending[s.next]
		if !ok {
			return written, nil
		}
		delete(s.pending, s.next)
		err := s.write(ctx, r)
		r.Release()
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
	for k, r := range s.pending {
		r.Release()
		delete(s.pending, k)
	}
	return n
}

func (s *orderedSink) write(ctx context.Context, rec arrow.Record) error {
	cols := slices.Clone(rec.Columns())
	if s.fr.cfg.OutputValue == SentenceEmbedding && s.p != pFloat32 {
		last := len(cols) - 1
		conv := convert(cols[last].(*array.FixedSizeList), s.fr.outDim, s.p, s.rg)
		defer conv.Release()
		cols[last] = conv
	}
	r := array.NewRecord(s.schema, cols, rec.NumRows())
	defer r.Release()
	return s.w.Write(ctx, r)
}

func (s *orderedSink) copyPart(ctx context.Context, seq int) error {
	return readParts(ctx, s.fr.ckDir, seq, seq+1, func(_ int, rec arrow.Record) error {
		return s.write(ctx, rec)
	})
}

// finish writes what remains (chunks of earlier runs after the last new
// one) and commits the output.
func (s *orderedSink) finish(ctx context.Context, nChunks int) error {
	for ; s.next < nChunks; s.next++ {
		if _, ok := s.done[s.next]; !ok {
			return fmt.Errorf("%w: chunk %d of %s was never written", ErrCheckpoint, s.next, s.fr.in.Path)
		}
		if err := s.copyPart(ctx, s.next); err != nil {
			return err
		}
	}
	if len(s.pending) > 0 {
		return fmt.Errorf("%w: %d chunks of %s finished after the last one", ErrCheckpoint, len(s.pending), s.fr.in.Path)
	}
	return s.w.Commit()
}

// abort discards the output unless finish committed it.
func (s *orderedSink) abort() { s.w.Abort() }
