package pgsink

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/embedpipe/embedpipe/io/sink"
)

// Load is an output Sink of the pipeline's seam.
var _ sink.Sink = (*Load)(nil)

// Load is one run's stream of batches into a Sink: the output of one input,
// cut into batches numbered from 0 in row order. Each Write is committed
// with its progress row, so a run killed at any moment and started again
// with the same run key writes only the batches that are missing.
//
// A Load is a sink.Sink: one goroutine at a time; Commit or Abort ends it.
type Load struct {
	s      *Sink
	runKey string
	input  string
	done   map[int]int64
	res    Result
	report Report
}

// NewLoad starts (or continues) the load of run runKey, whose rows come
// from input: without Options.IDColumn the row ids are "<base name of
// input>:<row>" with the 0-based input row. It reads which batches of the
// run are already in the table.
func (s *Sink) NewLoad(ctx context.Context, runKey, input string) (*Load, error) {
	if runKey == "" {
		return nil, fmt.Errorf("%w: a load needs a run key", ErrOptions)
	}
	done, err := s.Done(ctx, runKey)
	if err != nil {
		return nil, err
	}
	return &Load{s: s, runKey: runKey, input: filepath.Base(input), done: done}, nil
}

// Done reports whether batch seq of the run is already loaded.
func (l *Load) Done(seq int) bool {
	_, ok := l.done[seq]
	return ok
}

// Write loads batch b.Seq, whose first row is input row b.FirstRow; without
// Options.IDColumn each row's id is "<file>:" + b.Key(i), so the rows must
// be consecutive input rows (no row left out), or the chunks of such rows
// with b.Rows and b.Chunks set. A batch already loaded is skipped. The caller keeps ownership of
// b.Record. Unlike a file Sink, each Write is durable when it returns.
func (l *Load) Write(ctx context.Context, sb sink.Batch) error {
	rec, seq, firstRow := sb.Record, sb.Seq, sb.FirstRow
	if l.Done(seq) {
		l.res.Skipped = true
		return nil
	}
	b := Batch{RunKey: l.runKey, Seq: seq, Record: rec, Where: fmt.Sprintf("%s, rows %d to %d", l.input, firstRow, firstRow+rec.NumRows()-1)}
	if l.s.o.IDColumn == "" {
		b.Keys = make([]string, rec.NumRows())
		for i := range b.Keys {
			b.Keys[i] = l.input + ":" + sb.Key(i) // <file>:<row>[:<chunk>]
		}
	}
	res, err := l.s.Write(ctx, b)
	if err != nil {
		return err
	}
	l.done[seq] = rec.NumRows()
	l.res.Inserted += res.Inserted
	l.res.Updated += res.Updated
	return nil
}

// Commit ends the load: every batch written is already durable; Commit
// builds the index asked for and returns.
func (l *Load) Commit(ctx context.Context) error {
	rep, err := l.s.Finish(ctx)
	l.report = rep
	return err
}

// Abort ends the load without building the index. Batches already written
// stay committed, recorded in the progress table, so that the next run
// with the same key continues after them.
func (l *Load) Abort(context.Context) error { return nil }

// Stats returns the rows inserted and updated so far, and the index report
// after Commit.
func (l *Load) Stats() (Result, Report) { return l.res, l.report }
