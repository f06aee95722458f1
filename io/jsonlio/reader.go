package jsonlio

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// InferLines is the number of leading lines the schema is inferred from.
const InferLines = 1000

// MaxLineBytes bounds one line, so a file without newlines cannot exhaust
// memory.
const MaxLineBytes = 64 << 20

// ReadOptions tune a Reader.
type ReadOptions struct {
	// ChunkRows caps the rows per chunk; <= 0 means fileio.DefaultChunkRows.
	ChunkRows int
	// KeepBadRows hands out lines that cannot be decoded (not a JSON object,
	// a value of another type than its column's, a key outside the schema)
	// as rows of nulls listed in the chunk's BadRows instead of failing the
	// read. Lines that clash with the ones before them are left out of the
	// schema's inference.
	KeepBadRows bool
}

type line struct {
	no   int64
	data []byte
	bad  error // why the line cannot be decoded, found during inference
}

// Reader reads a JSON Lines file. It implements fileio.Reader.
type Reader struct {
	path    string
	f       io.ReadCloser
	br      *bufio.Reader
	schema  *arrow.Schema
	root    *node // the inferred types, which later lines must fit
	keepBad bool
	chunk   int
	pending []line // lines read during inference, not yet decoded
	lineNo  int64  // lines read so far (1-based number of the last read)
	row     int64  // rows handed out
	seq     int
	eof     bool
	b       *array.RecordBuilder
}

// Open opens path and infers its schema.
func Open(path string, opts ReadOptions) (*Reader, error) {
	f, err := fileio.OpenText(path)
	if err != nil {
		return nil, err
	}
	r := &Reader{path: path, f: f, br: bufio.NewReaderSize(f, 1<<20), chunk: opts.ChunkRows, keepBad: opts.KeepBadRows}
	if r.chunk <= 0 {
		r.chunk = fileio.DefaultChunkRows
	}
	var inf inferrer
	for len(r.pending) < InferLines {
		l, err := r.readLine()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		obj, err := parseObject(l)
		if err != nil {
			if !r.keepBad {
				f.Close()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			l.bad = err
		} else if err := inf.add(obj, l.no); err != nil {
			if !r.keepBad {
				f.Close()
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			l.bad = fmt.Errorf("%w: %w", fileio.ErrCorrupt, err)
		}
		r.pending = append(r.pending, l)
	}
	r.root = &inf.root
	r.schema = inf.schema()
	if r.schema.NumFields() == 0 && len(r.pending) > 0 {
		f.Close()
		return nil, fmt.Errorf("%s: %w: the first %d lines hold no keys", path, fileio.ErrCorrupt, len(r.pending))
	}
	r.b = array.NewRecordBuilder(memory.DefaultAllocator, r.schema)
	return r, nil
}

// readLine returns the next non-blank line.
func (r *Reader) readLine() (line, error) {
	for {
		if r.eof {
			return line{}, io.EOF
		}
		var buf []byte
		for {
			frag, err := r.br.ReadSlice('\n')
			buf = append(buf, frag...)
			if len(buf) > MaxLineBytes {
				return line{}, fmt.Errorf("%s: line %d: %w: line longer than %d bytes", r.path, r.lineNo+1, fileio.ErrCorrupt, MaxLineBytes)
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if errors.Is(err, io.EOF) {
				r.eof = true
				break
			}
			if err != nil {
				return line{}, fmt.Errorf("%s: line %d: %w", r.path, r.lineNo+1, err)
			}
			break
		}
		if len(buf) == 0 && r.eof {
			return line{}, io.EOF
		}
		r.lineNo++
		if len(bytes.TrimSpace(buf)) == 0 {
			continue
		}
		return line{no: r.lineNo, data: buf}, nil
	}
}

// Schema returns the inferred schema.
func (r *Reader) Schema() *arrow.Schema { return r.schema }

// Next returns the next chunk, or io.EOF after the last.
func (r *Reader) Next(ctx context.Context) (fileio.Chunk, error) {
	if err := ctx.Err(); err != nil {
		return fileio.Chunk{}, err
	}
	var replaced []int
	var bad []fileio.BadRow
	n := 0
	for n < r.chunk {
		var l line
		if len(r.pending) > 0 {
			l, r.pending = r.pending[0], r.pending[1:]
		} else {
			var err error
			l, err = r.readLine()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.b.NewRecord().Release()
				return fileio.Chunk{}, err
			}
		}
		if err := r.decode(l); err != nil {
			var be *badLine
			if !errors.As(err, &be) {
				r.b.NewRecord().Release()
				return fileio.Chunk{}, err
			}
			for i := range r.b.Fields() {
				r.b.Field(i).AppendNull()
			}
			bad = append(bad, fileio.BadRow{Row: n, Err: be.err})
			n++
			continue
		}
		if !utf8.Valid(l.data) || hasLoneSurrogate(l.data) {
			replaced = append(replaced, n)
		}
		n++
	}
	if n == 0 {
		return fileio.Chunk{}, io.EOF
	}
	rec := r.b.NewRecord()
	c := fileio.Chunk{Record: rec, Seq: r.seq, RowGroup: -1, FirstRow: r.row, ReplacedUTF8: replaced, BadRows: bad}
	r.seq++
	r.row += int64(n)
	return c, nil
}

func (r *Reader) decode(l line) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: line %d: %w: %v", r.path, l.no, fileio.ErrCorrupt, p)
		}
	}()
	if l.bad != nil {
		return &badLine{l.bad}
	}
	reject := func(err error) error {
		if r.keepBad {
			return &badLine{err}
		}
		return fmt.Errorf("%s: %w", r.path, err)
	}
	// The record builder cannot take back the columns of a line it fails
	// half-way through, so a line is checked against the schema (its
	// types and keys at every depth) before it is appended.
	obj, err := parseObject(l)
	if err != nil {
		return reject(err)
	}
	if err := fits(r.root, obj, "", l.no); err != nil {
		return reject(fmt.Errorf("%w: %w", fileio.ErrCorrupt, err))
	}
	if err := r.b.UnmarshalJSON(l.data); err != nil {
		return fmt.Errorf("%s: line %d: %w: %v", r.path, l.no, fileio.ErrCorrupt, err)
	}
	return nil
}

// badLine is a decode error that leaves the builder as it was, so that the
// line can be handed out as a row of nulls.
type badLine struct{ err error }

func (b *badLine) Error() string { return b.err.Error() }

// Close releases the file.
func (r *Reader) Close() error {
	if r.b != nil {
		r.b.Release()
		r.b = nil
	}
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		return err
	}
	return nil
}

// parseObject decodes line l as a JSON object, keeping key order; the error
// names the line.
func parseObject(l line) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(l.data))
	dec.UseNumber()
	v, err := decodeValue(dec)
	obj, ok := v.(*object)
	if err != nil || !ok {
		return nil, fmt.Errorf("line %d: %w: not a JSON object: %v", l.no, fileio.ErrCorrupt, err)
	}
	return obj, nil
}

// hasLoneSurrogate reports whether the JSON text b holds a \u escape of a
// UTF-16 surrogate that is not part of a pair (such as "\udcff"): the JSON
// decoder turns it into U+FFFD, a replacement the row must be counted for
// like one of invalid UTF-8 bytes.
func hasLoneSurrogate(b []byte) bool {
	if !bytes.Contains(b, []byte(`\u`)) {
		return false
	}
	hex4 := func(i int) (rune, bool) {
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(v), err == nil
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if i+1 < len(b) && b[i+1] != 'u' {
			i++ // an escape of another character, "\\" included
			continue
		}
		r, ok := hex4(i)
		if !ok {
			continue
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if lo, ok := hex4(i + 6); ok && lo >= 0xDC00 && lo < 0xE000 {
				i += 11
				continue
			}
			return true
		case r >= 0xDC00 && r < 0xE000:
			return true
		}
		i += 5
	}
	return false
}
