package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// TokenizeConfig describes a tokenize run: the ids the model sees for each
// text, written as an input_ids list<int32> column after the input columns.
type TokenizeConfig struct {
	Input  Input
	Output string
	// Column is the text column (default "text").
	Column string
	// Prompt is prepended to every text.
	Prompt string
	// MaxLength truncates (special tokens included); 0 means no truncation,
	// negative means the model's MaxSeqLen.
	MaxLength int
	// ChunkRows is the rows per output batch (default fileio.DefaultChunkRows).
	ChunkRows int
}

// Tokenize writes the token ids of every row of cfg.Input to cfg.Output.
// Null texts give null ids; invalid UTF-8 is replaced and counted.
func Tokenize(ctx context.Context, m Model, cfg TokenizeConfig) (Summary, error) {
	start := time.Now()
	var sum Summary
	if cfg.Column == "" {
		cfg.Column = "text"
	}
	r, err := dataset.Open(cfg.Input.Path, dataset.ReadOptions{ChunkRows: cfg.ChunkRows, RowGroupLo: cfg.Input.RowGroupLo, RowGroupHi: cfg.Input.RowGroupHi, TextColumn: cfg.Column})
	if err != nil {
		return sum, err
	}
	defer r.Close()
	col, err := fileio.ColumnIndex(r.Schema(), cfg.Column, cfg.Input.Path)
	if err != nil {
		return sum, err
	}
	if r.Schema().HasField("input_ids") {
		return sum, fmt.Errorf("%w: %s already has a column \"input_ids\"", ErrConfig, cfg.Input.Path)
	}
	in := stripMetadata(r.Schema())
	schema := arrow.NewSchema(append(slices.Clone(in.Fields()),
		arrow.Field{Name: "input_ids", Type: arrow.ListOf(arrow.PrimitiveTypes.Int32), Nullable: true}), nil)
	w, err := dataset.Create(cfg.Output, schema)
	if err != nil {
		return sum, err
	}
	defer w.Abort()
	encode := m.TokenizeTo
	if cfg.MaxLength == 0 {
		// TokenizeTo caps lengths at the position table; without
		// truncation the model tokenizes the whole text.
		encode = func(dst []int32, text, prompt string, _ int) ([]int32, bool) {
			return m.TokenizeFullTo(dst, text, prompt), false
		}
	}
	maxLen := cfg.MaxLength
	if maxLen < 0 {
		maxLen = 0 // TokenizeTo: the model's MaxSeqLen
	}
	var ids []int32
	for {
		c, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sum, err
		}
		rec := c.Record
		tc, err := fileio.NewTextColumn(rec.Column(col))
		if err != nil {
			rec.Release()
			return sum, fmt.Errorf("%s: column %q: %w", cfg.Input.Path, cfg.Column, err)
		}
		lb := array.NewListBuilder(memory.DefaultAllocator, arrow.PrimitiveTypes.Int32)
		vb := lb.ValueBuilder().(*array.Int32Builder)
		n := int(rec.NumRows())
		for i := 0; i < n; i++ {
			s, ok := tc.Value(i)
			if !ok {
				lb.AppendNull()
				sum.Nulls++
				continue
			}
			s = validText(s, false, &sum.InvalidUTF8)
			var trunc bool
			ids, trunc = encode(ids[:0], s, cfg.Prompt, maxLen)
			if trunc {
				sum.Truncated++
			}
			sum.Tokens += int64(len(ids))
			lb.Append(true)
			vb.AppendValues(ids, nil)
		}
		arr := lb.NewArray()
		lb.Release()
		cols := append(slices.Clone(rec.Columns()), arr)
		out := array.NewRecord(schema, cols, rec.NumRows())
		err = w.Write(ctx, out)
		out.Release()
		arr.Release()
		rec.Release()
		if err != nil {
			return sum, err
		}
		sum.RowsIn += int64(n)
		sum.RowsOut += int64(n)
	}
	if err := w.Commit(); err != nil {
		return sum, err
	}
	sum.Files = 1
	sum.Outputs = []string{cfg.Output}
	sum.Finish(start)
	// Nothing is encoded: the rate is that of the tokens written.
	sum.TokensPerSec = float64(sum.Tokens) / max(sum.WallSeconds, 1e-9)
	return sum, nil
}
