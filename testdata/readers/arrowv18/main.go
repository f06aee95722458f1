// Command arrowv18 reads the embedding column of a Parquet file with
// arrow-go v18's pqarrow.ReadTable and prints its rows as a JSON array of
// arrays, null for a null row. io/parquetio's TestNullEmbeddingsArrowGoV18
// runs it to check that embedpipe's Parquet outputs read back in v18 as in
// v17 (the project itself depends on v17 only). It is test-only.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: arrowv18 FILE.parquet")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "arrowv18:", err)
		os.Exit(1)
	}
}

func run(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		return err
	}
	defer tbl.Release()
	idx := tbl.Schema().FieldIndices("embedding")
	if len(idx) != 1 {
		return fmt.Errorf("%s: no embedding column in %s", path, tbl.Schema())
	}
	rows := []any{}
	for _, c := range tbl.Column(idx[0]).Data().Chunks() {
		l, ok := c.(array.ListLike)
		if !ok {
			return fmt.Errorf("%s: embedding column is %s, want a list", path, c.DataType())
		}
		vals, ok := l.ListValues().(*array.Float32)
		if !ok {
			return fmt.Errorf("%s: embedding values are %s, want float32", path, l.ListValues().DataType())
		}
		for i := 0; i < l.Len(); i++ {
			if l.IsNull(i) {
				rows = append(rows, nil)
				continue
			}
			lo, hi := l.ValueOffsets(i)
			rows = append(rows, vals.Float32Values()[lo:hi])
		}
	}
	return json.NewEncoder(os.Stdout).Encode(rows)
}
