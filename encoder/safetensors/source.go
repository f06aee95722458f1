package safetensors

import (
	"fmt"
	"io"
	"math"
	"os"
)

// mapFile maps a file; tests replace it to exercise the reading fallback.
var mapFile = mmapFile

// source is one opened checkpoint file and the bytes its tensors slice.
type source struct {
	path  string
	data  []byte
	unmap func() error // nil when data is an ordinary heap slice
}

// openSource maps (or, failing that, reads) the regular file at path.
func openSource(path string) (*source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrIO)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", path, err, ErrIO)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file: %w", path, ErrIO)
	}
	size := st.Size()
	if size < 0 || size > math.MaxInt {
		return nil, fmt.Errorf("%s: size %d does not fit in memory: %w", path, size, ErrIO)
	}
	if size > 0 {
		if data, unmap, err := mapFile(f, int(size)); err == nil {
			return &source{path: path, data: data, unmap: unmap}, nil
		}
		// Fall through: some file systems and platforms cannot map files,
		// and reading is always correct, just slower and not shared.
	}
	// The allocation is bounded by the size of the file on disk, never by
	// anything its header claims.
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", path, err, ErrIO)
	}
	return &source{path: path, data: data}, nil
}

// close releases the mapping, if any.
func (s *source) close() error {
	s.data = nil
	if s.unmap == nil {
		return nil
	}
	u := s.unmap
	s.unmap = nil
	if err := u(); err != nil {
		return fmt.Errorf("%s: unmap: %w: %w", s.path, err, ErrIO)
	}
	return nil
}
