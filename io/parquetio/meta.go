package parquetio

import (
	"fmt"
	"os"

	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/parquet-go/parquet-go"
)

// RowGroupInfo describes one row group of a Parquet file.
type RowGroupInfo struct {
	// Index is the 0-based row group index.
	Index int
	// FirstRow is the file row index of the group's first row.
	FirstRow int64
	// NumRows is the number of rows in the group.
	NumRows int64
	// CompressedBytes is the sum of the compressed sizes of its column chunks.
	CompressedBytes int64
}

// RowGroups reads only the footer of the Parquet file at path and describes
// its row groups, so a job can be split into row-group range tasks without
// decoding any data.
func RowGroups(path string) ([]RowGroupInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, fileio.ErrCorrupt, err)
	}
	md := pf.Metadata()
	out := make([]RowGroupInfo, len(md.RowGroups))
	var first int64
	for i, rg := range md.RowGroups {
		var cb int64
		for _, c := range rg.Columns {
			cb += c.MetaData.TotalCompressedSize
		}
		out[i] = RowGroupInfo{Index: i, FirstRow: first, NumRows: rg.NumRows, CompressedBytes: cb}
		first += rg.NumRows
	}
	return out, nil
}
