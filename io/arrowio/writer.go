package arrowio

import (
	"context"
	"fmt"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// WriteOptions tune a Writer.
type WriteOptions struct {
	// Stream selects the IPC streaming format instead of the file format.
	Stream bool
	// Zstd compresses record batch bodies with zstd.
	Zstd bool
	// NoSync skips fsync on Commit (see fileio.AtomicFile.NoSync).
	NoSync bool
}

// Writer writes an Arrow IPC file or stream atomically. It implements
// fileio.Writer.
type Writer struct {
	af     *fileio.AtomicFile
	fw     *ipc.FileWriter
	sw     *ipc.Writer
	schema *arrow.Schema
	closed bool
}

// Create starts writing path with the given schema.
func Create(path string, schema *arrow.Schema, opts WriteOptions) (*Writer, error) {
	af, err := fileio.CreateAtomic(path)
	if err != nil {
		return nil, err
	}
	af.NoSync = opts.NoSync
	o := []ipc.Option{ipc.WithSchema(schema)}
	if opts.Zstd {
		o = append(o, ipc.WithZstd())
	}
	w := &Writer{af: af, schema: schema}
	if opts.Stream {
		w.sw = ipc.NewWriter(af, o...)
	} else {
		w.fw, err = ipc.NewFileWriter(af, o...)
		if err != nil {
			af.Abort()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return w, nil
}

// Write appends rec.
func (w *Writer) Write(ctx context.Context, rec arrow.Record) error {
	if err := fileio.CheckWrite(ctx, w.af.Final(), rec, w.schema); err != nil {
		return err
	}
	var err error
	if w.fw != nil {
		err = w.fw.Write(rec)
	} else {
		err = w.sw.Write(rec)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", w.af.Final(), err)
	}
	return nil
}

func (w *Writer) close() error {
	if w.fw != nil {
		return w.fw.Close()
	}
	return w.sw.Close()
}

// Commit finishes the file and moves it into place.
func (w *Writer) Commit() error {
	if w.closed {
		return nil
	}
	w.closed = true
	return w.af.CommitAfter(w.close)
}

// Abort discards the file.
func (w *Writer) Abort() error {
	if !w.closed {
		w.closed = true
		w.close()
	}
	return w.af.Abort()
}
