package pgsink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// benchRecord is rows of 384-dim embeddings with a short text column, the
// all-MiniLM-L6-v2 output shape.
func benchRecord(rows int) arrow.Record {
	const dim = 384
	b := array.NewRecordBuilder(memory.NewGoAllocator(), arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String},
		{Name: "embedding", Type: arrow.FixedSizeListOfNonNullable(dim, arrow.PrimitiveTypes.Float32)},
	}, nil))
	defer b.Release()
	eb := b.Field(1).(*array.FixedSizeListBuilder)
	vb := eb.ValueBuilder().(*array.Float32Builder)
	for r := 0; r < rows; r++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("a short passage of text number %d", r))
		eb.Append(true)
		vb.AppendValues(vecOf(r, dim), nil)
	}
	return b.NewRecord()
}

// BenchmarkWrite384 loads 384-dim rows in 2048-row transactions (binary
// COPY, straight into the table while no id was there before, with the
// progress row) and reports rows/s; the sub-benchmark
// hnsw then builds an HNSW index over what was loaded and reports its time,
// with the server's maintenance_work_mem (64 MB) and with 512 MB.
func BenchmarkWrite384(b *testing.B) {
	const batch = 2048
	for _, c := range []struct {
		idx Index
		mem string
	}{{IndexNone, ""}, {IndexHNSW, ""}, {IndexHNSW, "512MB"}} {
		idx := c.idx
		name := string(idx)
		if c.mem != "" {
			name += "-" + c.mem
		}
		b.Run(name, func(b *testing.B) {
			url := newDB(b)
			ctx := context.Background()
			rec := benchRecord(batch)
			defer rec.Release()
			s, err := Open(ctx, Options{URL: url, Table: "bench", Index: idx, IndexMemory: c.mem}, rec.Schema())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close(ctx)
			keys := make([]string, batch)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				for k := range keys {
					keys[k] = fmt.Sprintf("bench:%d", i*batch+k)
				}
				if _, err := s.Write(ctx, Batch{RunKey: "bench", Seq: i, Record: rec, Keys: keys}); err != nil {
					b.Fatal(err)
				}
			}
			load := time.Since(start)
			b.ReportMetric(float64(b.N*batch)/load.Seconds(), "rows/s")
			rep, err := s.Finish(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if idx != IndexNone {
				b.ReportMetric(rep.IndexTime.Seconds(), "index-s")
				b.ReportMetric(float64(b.N*batch)/(load+rep.IndexTime).Seconds(), "rows/s-with-index")
			}
		})
	}
}
