package pgsink

import (
	"context"
	"fmt"
	"math"
	"os"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/float16"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/internal/pgtest"
	"github.com/jackc/pgx/v5"
)

var server *pgtest.Server

// TestMain shares one server between the package's tests (each test gets
// its own database); a crash-test child process runs its load instead.
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(crashChild())
	}
	code := m.Run()
	if server != nil {
		server.Stop()
	}
	os.Exit(code)
}

// newDB returns a fresh database on the shared server, starting the server
// on first use, and skips t when PostgreSQL is not installed.
func newDB(t testing.TB) string {
	t.Helper()
	if server == nil {
		bin, err := pgtest.Find()
		if err != nil {
			t.Skip(err.Error())
		}
		if server, err = pgtest.StartServer(bin); err != nil {
			t.Fatal(err)
		}
	}
	return server.NewDatabase(t)
}

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// vecOf is the deterministic test embedding of row r: dim values in
// [-1, 1), distinct per row.
func vecOf(r, dim int) []float32 {
	v := make([]float32, dim)
	for j := range v {
		v[j] = float32(math.Sin(float64(r*7919+j*104729)*0.001)) * 0.999
	}
	return v
}

// makeRecord builds rows [lo, hi) with columns text, n (int64), score
// (float64), ok (bool), ts (timestamp), tags (list<string>) and an
// embedding of the given precision.
func makeRecord(lo, hi, dim int, precision string) arrow.Record {
	mem := memory.NewGoAllocator()
	ts := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	var elem arrow.DataType = arrow.PrimitiveTypes.Float32
	width := dim
	switch precision {
	case "float16":
		elem = arrow.FixedWidthTypes.Float16
	case "binary":
		elem, width = arrow.PrimitiveTypes.Int8, (dim+7)/8
	case "ubinary":
		elem, width = arrow.PrimitiveTypes.Uint8, (dim+7)/8
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "text", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "n", Type: arrow.PrimitiveTypes.Int64},
		{Name: "score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "ok", Type: arrow.FixedWidthTypes.Boolean},
		{Name: "ts", Type: ts},
		{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
		{Name: "embedding", Type: arrow.FixedSizeListOfNonNullable(int32(width), elem), Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for r := lo; r < hi; r++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("row %d: héllo", r))
		b.Field(1).(*array.Int64Builder).Append(int64(r) * 1000003)
		if r%5 == 0 {
			b.Field(2).AppendNull()
		} else {
			b.Field(2).(*array.Float64Builder).Append(float64(r) / 3)
		}
		b.Field(3).(*array.BooleanBuilder).Append(r%2 == 0)
		b.Field(4).(*array.TimestampBuilder).Append(arrow.Timestamp(base.Add(time.Duration(r) * time.Second).UnixMicro()))
		lb := b.Field(5).(*array.ListBuilder)
		lb.Append(true)
		lb.ValueBuilder().(*array.StringBuilder).Append(fmt.Sprintf("t%d", r%3))
		eb := b.Field(6).(*array.FixedSizeListBuilder)
		eb.Append(true)
		v := vecOf(r, dim)
		switch precision {
		case "float16":
			for _, x := range v {
				eb.ValueBuilder().(*array.Float16Builder).Append(float16.New(x))
			}
		case "binary", "ubinary":
			packed := packBits(v)
			for _, p := range packed {
				if precision == "binary" {
					eb.ValueBuilder().(*array.Int8Builder).Append(int8(int16(p) - 128))
				} else {
					eb.ValueBuilder().(*array.Uint8Builder).Append(p)
				}
			}
		default:
			eb.ValueBuilder().(*array.Float32Builder).AppendValues(v, nil)
		}
	}
	return b.NewRecord()
}

// packBits is numpy's packbits(v > 0): most significant bit first.
func packBits(v []float32) []byte {
	out := make([]byte, (len(v)+7)/8)
	for i, x := range v {
		if x > 0 {
			out[i/8] |= 0x80 >> (i % 8)
		}
	}
	return out
}

func keysOf(lo, hi int) []string {
	k := make([]string, hi-lo)
	for i := range k {
		k[i] = fmt.Sprintf("in.parquet:%d", lo+i)
	}
	return k
}
