package csvio

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/embedpipe/embedpipe/io/fileio"
)

// badRowFilter stands between the file and arrow's CSV reader, which ends
// the whole read at the first record it cannot parse. It parses the file
// record by record and writes each one back out, replacing a record that
// does not parse, or whose field count differs from the header's, with a
// record of empty fields (which the reader takes as nulls) and remembering
// why. Arrow's reader reads it in the caller's goroutine.
type badRowFilter struct {
	cr    *csv.Reader
	out   bytes.Buffer
	w     *csv.Writer
	comma rune
	// fields is the header's field count; -1 before the header is read.
	fields int
	row    int64 // data records written
	bad    []badRec
	err    error
}

type badRec struct {
	row int64
	err error
}

func newBadRowFilter(r io.Reader, comma rune) *badRowFilter {
	cr := recordReader(r, comma)
	cr.ReuseRecord = true
	f := &badRowFilter{cr: cr, comma: comma, fields: -1}
	f.w = csv.NewWriter(&f.out)
	f.w.Comma = comma
	return f
}

// Read implements io.Reader.
func (f *badRowFilter) Read(p []byte) (int, error) {
	for f.out.Len() == 0 {
		if f.err != nil {
			return 0, f.err
		}
		f.next()
	}
	return f.out.Read(p)
}

// next moves one record, or the reason the input ended, into the buffer.
func (f *badRowFilter) next() {
	rec, err := f.cr.Read()
	if errors.Is(err, io.EOF) {
		f.err = io.EOF
		return
	}
	var pe *csv.ParseError
	if err != nil && !errors.As(err, &pe) {
		f.err = err
		return
	}
	if f.fields < 0 {
		if err != nil {
			f.err = err // a header that does not parse fails the file
			return
		}
		f.fields = len(rec)
	} else {
		if err == nil && len(rec) != f.fields {
			line, _ := f.cr.FieldPos(0)
			err = fmt.Errorf("line %d: %d fields where the header has %d", line, len(rec), f.fields)
		}
		if err != nil {
			f.bad = append(f.bad, badRec{f.row, fmt.Errorf("%w: %v", fileio.ErrCorrupt, err)})
			f.row++
			// One empty field alone would be a blank line, which readers skip.
			if f.fields == 1 {
				f.out.WriteString("\"\"\n")
			} else {
				f.out.WriteString(strings.Repeat(string(f.comma), f.fields-1) + "\n")
			}
			return
		}
		f.row++
	}
	if werr := f.w.Write(rec); werr != nil {
		f.err = werr
		return
	}
	f.w.Flush()
}

// recordReader is encoding/csv's reader as the record-level passes of this
// package use it (the filter, CountRows, headerOnly): any field count, so
// that a bad record is seen rather than ending the read. comma 0 is ','.
func recordReader(r io.Reader, comma rune) *csv.Reader {
	cr := csv.NewReader(r)
	if comma != 0 {
		cr.Comma = comma
	}
	cr.FieldsPerRecord = -1
	return cr
}

// take returns the bad rows among the n data rows from first on, as rows of
// their chunk, and forgets them. It is nil-safe: a Reader without a filter
// has no bad rows.
func (f *badRowFilter) take(first, n int64) []fileio.BadRow {
	if f == nil {
		return nil
	}
	var out []fileio.BadRow
	for len(f.bad) > 0 && f.bad[0].row < first+n {
		b := f.bad[0]
		f.bad = f.bad[1:]
		if b.row >= first {
			out = append(out, fileio.BadRow{Row: int(b.row - first), Err: b.err})
		}
	}
	return out
}
