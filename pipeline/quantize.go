package pipeline

import (
	"encoding/json"
	"fmt"
	"os"
)

// ReadRanges reads a calibration ranges file: JSON [[min…],[max…]] (the
// layout of the ranges array sentence-transformers takes, 2×dim). The
// quantization itself is the embedding seam's (embed.Precision.QuantizeTo).
func ReadRanges(path string) ([2][]float32, error) {
	var out [2][]float32
	data, err := os.ReadFile(path)
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrRanges, err)
	}
	var rows [][]float32
	if err := json.Unmarshal(data, &rows); err != nil {
		return out, fmt.Errorf("%w: %s: %v", ErrRanges, path, err)
	}
	if len(rows) != 2 || len(rows[0]) != len(rows[1]) || len(rows[0]) == 0 {
		return out, fmt.Errorf("%w: %s: want a 2×dim array [[min…],[max…]]", ErrRanges, path)
	}
	return [2][]float32{rows[0], rows[1]}, nil
}
