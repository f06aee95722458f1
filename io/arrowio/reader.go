package arrowio

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// ReadOptions tune a Reader.
type ReadOptions struct {
	// ChunkRows caps the rows per chunk; <= 0 means fileio.DefaultChunkRows.
	ChunkRows int
	// Stream selects the IPC streaming format instead of the file format.
	Stream bool
}

// Reader reads an Arrow IPC file or stream. It implements fileio.Reader.
type Reader struct {
	path   string
	f      *os.File
	fr     *ipc.FileReader
	sr     *ipc.Reader
	schema *arrow.Schema
	chunk  int64

	batch    int          // index of the current record batch
	cur      arrow.Record // current batch, owned by the Reader
	off      int64        // rows of cur handed out
	fileRow  int64        // file row index of cur's first row
	seq      int
	finished bool
}

// Open opens path for reading.
func Open(path string, opts ReadOptions) (r *Reader, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("%s: %w: %v", path, fileio.ErrCorrupt, p)
		}
	}()
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if opts.Stream {
		err = VerifyStream(bufio.NewReader(f), st.Size())
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
	} else {
		err = VerifyFile(f, st.Size())
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w: %v", path, fileio.ErrCorrupt, err)
	}
	mem := ipc.WithAllocator(newCappedAllocator(st.Size()))
	r = &Reader{path: path, f: f, chunk: int64(opts.ChunkRows), batch: -1}
	if r.chunk <= 0 {
		r.chunk = fileio.DefaultChunkRows
	}
	if opts.Stream {
		r.sr, err = ipc.NewReader(f, mem)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w: %v", path, fileio.ErrCorrupt, err)
		}
		r.schema = r.sr.Schema()
	} else {
		r.fr, err = ipc.NewFileReader(f, mem)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w: %v", path, fileio.ErrCorrupt, err)
		}
		r.schema = r.fr.Schema()
	}
	return r, nil
}

// Schema returns the schema of the data.
func (r *Reader) Schema() *arrow.Schema { return r.schema }

func (r *Reader) nextBatch() error {
	if r.cur != nil {
		r.fileRow += r.cur.NumRows()
		r.cur.Release()
		r.cur = nil
	}
	r.batch++
	r.off = 0
	if r.fr != nil {
		if r.batch >= r.fr.NumRecords() {
			return io.EOF
		}
		rec, err := r.fr.RecordAt(r.batch)
		if err != nil {
			return err
		}
		if err := checkArrays(rec); err != nil {
			rec.Release()
			return err
		}
		r.cur = rec
		return nil
	}
	if !r.sr.Next() {
		if err := r.sr.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	if err := checkArrays(r.sr.Record()); err != nil {
		return err
	}
	r.cur = r.sr.Record()
	r.cur.Retain()
	return nil
}

// Next returns the next chunk, or io.EOF after the last.
func (r *Reader) Next(ctx context.Context) (c fileio.Chunk, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: record batch %d, row %d: %w: %v", r.path, r.batch, r.fileRow+r.off, fileio.ErrCorrupt, p)
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return fileio.Chunk{}, err
		}
		if r.finished {
			return fileio.Chunk{}, io.EOF
		}
		if r.cur == nil || r.off >= r.cur.NumRows() {
			if err := r.nextBatch(); err != nil {
				if errors.Is(err, io.EOF) {
					r.finished = true
					return fileio.Chunk{}, io.EOF
				}
				return fileio.Chunk{}, fmt.Errorf("%s: record batch %d, row %d: %w: %v", r.path, r.batch, r.fileRow, fileio.ErrCorrupt, err)
			}
			continue
		}
		hi := min(r.off+r.chunk, r.cur.NumRows())
		rec := r.cur.NewSlice(r.off, hi)
		c := fileio.Chunk{Record: rec, Seq: r.seq, RowGroup: r.batch, FirstRow: r.fileRow + r.off}
		r.seq++
		r.off = hi
		return c, nil
	}
}

// Close releases the file.
func (r *Reader) Close() error {
	if r.cur != nil {
		r.cur.Release()
		r.cur = nil
	}
	if r.fr != nil {
		r.fr.Close()
		r.fr = nil
	}
	if r.sr != nil {
		r.sr.Release()
		r.sr = nil
	}
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		return err
	}
	return nil
}
