package pipeline_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/pipeline"
)

// ExampleRun embeds a small JSONL file into Parquet with the bundled
// tiny-bert model: the output keeps the input columns and adds a
// fixed_size_list<float32>[32] embedding column.
func ExampleRun() {
	dir, _ := os.MkdirTemp("", "embedpipe-example-")
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"id":1,"text":"Hello, world!"}
{"id":2,"text":null}
{"id":3,"text":"Hello, world!"}
`), 0o644)
	m, err := encoder.Load(filepath.Join("..", "testdata", "tiny-bert"))
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, err := pipeline.Run(context.Background(), m, pipeline.Config{
		Inputs: []pipeline.Input{{Path: in}},
		Output: filepath.Join(dir, "out.parquet"),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rows in %d, out %d, nulls %d, embedded %d, deduplicated %d\n",
		sum.RowsIn, sum.RowsOut, sum.Nulls, sum.Embedded, sum.Deduplicated)
	// Output: rows in 3, out 3, nulls 1, embedded 1, deduplicated 1
}
