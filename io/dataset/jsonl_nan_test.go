package dataset

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// TestJSONLWritesNonFiniteAsNull writes NaN and ±Inf in top-level, nested
// and list float columns to JSONL, which has no such numbers (a mutated
// input with a NaN in a struct failed the run): each becomes null and every
// line is valid JSON with the finite values intact.
func TestJSONLWritesNonFiniteAsNull(t *testing.T) {
	st := arrow.StructOf(arrow.Field{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "f", Type: arrow.PrimitiveTypes.Float64},
		{Name: "s", Type: st},
		{Name: "l", Type: arrow.ListOf(arrow.PrimitiveTypes.Float64)},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	vals := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1.5}
	for _, v := range vals {
		b.Field(0).(*array.Float64Builder).Append(v)
		sb := b.Field(1).(*array.StructBuilder)
		sb.Append(true)
		sb.FieldBuilder(0).(*array.Float64Builder).Append(v)
		lb := b.Field(2).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.Float64Builder).AppendValues([]float64{2, v}, nil)
	}
	rec := b.NewRecord()
	defer rec.Release()
	path := filepath.Join(t.TempDir(), "o.jsonl")
	w, err := Create(path, schema)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != len(vals) {
		t.Fatalf("%d lines", len(lines))
	}
	for i, line := range lines {
		var got struct {
			F *float64
			S struct{ Score *float64 }
			L []*float64
		}
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		finite := i == 3
		if (got.F != nil) != finite || (got.S.Score != nil) != finite || len(got.L) != 2 || got.L[0] == nil || *got.L[0] != 2 || (got.L[1] != nil) != finite {
			t.Fatalf("line %d: %s", i, line)
		}
		if finite && (*got.F != 1.5 || *got.S.Score != 1.5 || *got.L[1] != 1.5) {
			t.Fatalf("line %d: finite values changed: %s", i, line)
		}
	}
}
