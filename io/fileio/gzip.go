package fileio

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"
)

// IsGzip reports whether path names a gzip-compressed file (".gz").
func IsGzip(path string) bool {
	return strings.HasSuffix(strings.ToLower(path), ".gz")
}

// OpenText opens path for sequential reading, decompressing it when its
// name ends in ".gz", so that the line-oriented readers (JSONL, CSV) take
// gzip'd inputs as they are. Closing the result closes the file.
func OpenText(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !IsGzip(path) {
		return f, nil
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w: not a gzip file: %v", path, ErrCorrupt, err)
	}
	return &gzipFile{Reader: z, f: f, path: path}, nil
}

// gzipFile is a gzip stream over an open file; it names the file in
// decompression errors.
type gzipFile struct {
	*gzip.Reader
	f    *os.File
	path string
}

func (g *gzipFile) Read(p []byte) (int, error) {
	n, err := g.Reader.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("%s: %w: gzip: %v", g.path, ErrCorrupt, err)
	}
	return n, err
}

func (g *gzipFile) Close() error {
	g.Reader.Close()
	return g.f.Close()
}
