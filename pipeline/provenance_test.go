package pipeline

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/schemas"
)

// TestOutputsRecordProvenance embeds with truncate-dim 16 and int8 ranges
// computed over the run into Parquet and Arrow: each output's metadata
// names the model (directory and content hash) and the options, and the
// recorded ranges dequantize the stored codes back to the float32 run's
// vectors within one step.
func TestOutputsRecordProvenance(t *testing.T) {
	m := loadTinyBert(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte("{\"text\":\"river bank\"}\n{\"text\":\"bank account\"}\n{\"text\":\"a third text\"}\n"), 0o644)
	ref := filepath.Join(dir, "ref.parquet")
	if _, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: ref, TruncateDim: 16}); err != nil {
		t.Fatal(err)
	}
	want, _ := embeddings(t, readOutput(t, ref), "embedding")
	for _, ext := range []string{".parquet", ".arrow"} {
		out := filepath.Join(dir, "out"+ext)
		if _, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out, TruncateDim: 16, Precision: embed.Int8,
			Metadata: map[string]string{"team": "search"}}); err != nil {
			t.Fatal(err)
		}
		r, err := dataset.Open(out, dataset.ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		md := r.Schema().Metadata().ToMap()
		r.Close()
		p, ok, err := schemas.ParseProvenance(md)
		if err != nil || !ok {
			t.Fatalf("%s: provenance %v %v in %v", ext, ok, err, md)
		}
		if md["team"] != "search" {
			t.Errorf("%s: the Config's metadata is missing: %v", ext, md)
		}
		if p.Schema != schemas.ProvenanceSchema || p.Model.ContentHash != m.ContentHash() || p.Model.Dir != m.Info().Dir ||
			p.Model.Arch == "" || p.Pooling != m.Info().Pooling || p.TruncateDim != 16 || p.Dim != 16 || !p.Normalize ||
			p.Precision != string(embed.Int8) || p.MaxLength != m.MaxSeqLen() || p.Embedpipe == "" || p.Output != string(SentenceEmbedding) {
			t.Fatalf("%s: provenance %+v", ext, p)
		}
		if p.Ranges == nil || len(p.Ranges.Starts) != 16 || len(p.Ranges.Steps) != 16 {
			t.Fatalf("%s: ranges %+v", ext, p.Ranges)
		}
		tbl := readOutput(t, out)
		col := tbl.Column(tbl.Schema().FieldIndices("embedding")[0]).Data().Chunk(0).(*array.FixedSizeList)
		codes := col.ListValues().(*array.Int8).Int8Values()
		for row, w := range want {
			for j, v := range w {
				back := p.Ranges.Starts[j] + p.Ranges.Steps[j]*float32(int(codes[row*16+j])+128)
				if math.Abs(float64(back-v)) > float64(p.Ranges.Steps[j])*1.01 {
					t.Fatalf("%s row %d dim %d: recorded ranges give %g for %g (step %g)", ext, row, j, back, v, p.Ranges.Steps[j])
				}
			}
		}
	}
}
