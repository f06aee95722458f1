package csvio

import (
	"encoding/csv"
	"errors"
	"io"

	"github.com/embedpipe/embedpipe/io/fileio"
)

// CountRows returns the data records of the CSV file at path (the header
// not counted), in one streaming pass (gzip'd files too), so that progress
// can show a total before the run starts. Records that do not parse count
// as one each, as a Reader keeping bad rows hands them out.
func CountRows(path string, comma rune) (int64, error) {
	f, err := fileio.OpenText(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	cr := recordReader(f, comma)
	cr.ReuseRecord = true
	var n int64
	for {
		_, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return max(0, n-1), nil
		}
		var pe *csv.ParseError
		if err != nil && !errors.As(err, &pe) {
			return 0, err
		}
		n++
	}
}
