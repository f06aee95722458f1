package workers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/io/parquetio"
	"os"

	"github.com/embedpipe/embedpipe/schemas"
)

// PartInfo describes a part file once it is durable.
type PartInfo struct {
	Name   string
	Rows   int64
	Tokens int64
	Bytes  int64
	SHA256 string
}

// TaskRunner runs one task: it reads the task's rows from the resolved input
// path, embeds them and writes the part as outDir/t.Part atomically (a
// reader sees the old part or the whole new one, never a partial one). Run
// blocks until the part is durable on disk or ctx is done. Errors wrapping
// ErrPermanent are not worth retrying.
type TaskRunner interface {
	RunTask(ctx context.Context, t schemas.Task, input, outDir string) (PartInfo, error)
}

func badInput(path, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s: %s", ErrPermanent, ErrBadInput, path, fmt.Sprintf(format, args...))
}

// ParquetRowGroups returns the row counts of the row groups of a Parquet
// file, after checking that it has a string column named column. It reads
// only the footer, with io/parquetio.
func ParquetRowGroups(path, column string) ([]int64, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("workers: input %w", err)
	}
	r, err := parquetio.Open(path, parquetio.ReadOptions{})
	if err != nil {
		return nil, badInput(path, "not a readable Parquet file: %v", err)
	}
	defer r.Close()
	col, err := fileio.ColumnIndex(r.Schema(), column, path)
	if err != nil {
		return nil, badInput(path, "no column %q", column)
	}
	if t := r.Schema().Field(col).Type; !fileio.IsTextType(t) {
		return nil, badInput(path, "column %q has type %s, want a string (BYTE_ARRAY)", column, t)
	}
	rgs, err := parquetio.RowGroups(path)
	if err != nil {
		return nil, badInput(path, "not a readable Parquet file: %v", err)
	}
	rows := make([]int64, len(rgs))
	for i, rg := range rgs {
		rows[i] = rg.NumRows
	}
	return rows, nil
}

// countJSONLRows counts the rows of a JSONL file, checking that each line
// is a JSON object whose column, when present, is a string or null.
func countJSONLRows(path, column string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("workers: input %w", err)
	}
	defer f.Close()
	var rows int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), schemas.MaxMessageBytes)
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(b, &obj); err != nil {
			return 0, badInput(path, "line %d: %v", line, err)
		}
		rows++
		raw, ok := obj[column]
		if !ok || string(raw) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, badInput(path, "line %d: field %q is not a string", line, column)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, badInput(path, "after line %d: %v", line, err)
	}
	return rows, nil
}
