package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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

// ExampleRun_chunks cuts a text into chunks of at most 6 tokens sharing 2
// instead of truncating it: one output row per chunk, with its byte
// offsets into the text and its text.
func ExampleRun_chunks() {
	dir, _ := os.MkdirTemp("", "embedpipe-example-")
	defer os.RemoveAll(dir)
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(`{"text":"The bank of the river was muddy, and the fish were biting."}
`), 0o644)
	m, err := encoder.Load(filepath.Join("..", "testdata", "tiny-bert"))
	if err != nil {
		fmt.Println(err)
		return
	}
	out := filepath.Join(dir, "out.jsonl")
	sum, err := pipeline.Run(context.Background(), m, pipeline.Config{
		Inputs: []pipeline.Input{{Path: in}}, Output: out,
		ChunkTokens: 6, ChunkOverlap: 2,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rows in %d, out %d, chunks %d\n", sum.RowsIn, sum.RowsOut, sum.ChunksOut)
	data, _ := os.ReadFile(out)
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var row struct {
			Index int    `json:"chunk_index"`
			Start int    `json:"chunk_start"`
			End   int    `json:"chunk_end"`
			Text  string `json:"chunk_text"`
		}
		json.Unmarshal([]byte(line), &row)
		fmt.Printf("%d [%d, %d) %q\n", row.Index, row.Start, row.End, row.Text)
	}
	// Output:
	// rows in 1, out 1, chunks 3
	// 0 [0, 25) "The bank of the river was"
	// 1 [16, 40) "river was muddy, and the"
	// 2 [33, 58) "and the fish were biting."
}
