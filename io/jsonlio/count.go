package jsonlio

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/embedpipe/embedpipe/io/fileio"
)

// CountRows returns the rows a Reader of path will hand out: its lines
// that are not blank, counted in one streaming pass (gzip'd files too),
// so that progress can show a total before the run starts.
func CountRows(path string) (int64, error) {
	f, err := fileio.OpenText(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var n int64
	blank := true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(bytes.TrimSpace(chunk)) > 0 {
			blank = false
		}
		switch {
		case err == nil:
			if !blank {
				n++
			}
			blank = true
		case err == bufio.ErrBufferFull:
			// A long line: keep reading it.
		case err == io.EOF:
			if !blank {
				n++
			}
			return n, nil
		default:
			return n, fmt.Errorf("%s: %w", path, err)
		}
	}
}
