package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnErrorMalformedRows runs JSONL and CSV inputs holding rows their
// readers cannot decode through each row-error policy: fail names the file
// and line, skip leaves the rows out and null writes null embeddings, both
// listing each in the errors file; the good rows' vectors are those of a
// run without the bad rows, and every input row is accounted for.
func TestOnErrorMalformedRows(t *testing.T) {
	m := loadTinyBert(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name, data, clean string
		badRows           []int64
		reason            string
	}{
		{"jsonl", "{\"text\":\"river bank\"}\n{\"text\":5}\nnot json\n{\"text\":\"bank account\"}\n",
			"{\"text\":\"river bank\"}\n{\"text\":\"bank account\"}\n", []int64{1, 2}, "line 2: column \"text\" holds an INT64 after a STRING"},
		{"csv", "text,id\nriver bank,1\nstray\"quote,2\nbank account,3\ntoo,many,4\n",
			"text,id\nriver bank,1\nbank account,3\n", []int64{1, 3}, "line 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(dir, "in."+tc.name)
			clean := filepath.Join(dir, "clean."+tc.name)
			os.WriteFile(in, []byte(tc.data), 0o644)
			os.WriteFile(clean, []byte(tc.clean), 0o644)
			ref := filepath.Join(dir, tc.name+"-ref.parquet")
			if _, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: clean}}, Output: ref}); err != nil {
				t.Fatal(err)
			}
			want, _ := embeddings(t, readOutput(t, ref), "embedding")

			out := filepath.Join(dir, tc.name+".parquet")
			_, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out})
			if !errors.Is(err, ErrRow) || !strings.Contains(err.Error(), in) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("on-error fail: %v, want a row error naming %s and %q", err, in, tc.reason)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a failed run wrote %s", out)
			}

			errsPath := filepath.Join(dir, tc.name+"-errors.jsonl")
			sum, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out, OnError: OnErrorSkip, ErrorsPath: errsPath, Resume: false})
			if err != nil {
				t.Fatal(err)
			}
			if sum.RowsIn != 4 || sum.RowsOut != 2 || sum.Skipped != 2 {
				t.Fatalf("skip summary %+v", sum)
			}
			got, _ := embeddings(t, readOutput(t, out), "embedding")
			if len(got) != 2 || !equalVec(got[0], want[0]) || !equalVec(got[1], want[1]) {
				t.Fatal("skip: the good rows' vectors differ from a run without the bad rows")
			}
			f, _ := os.Open(errsPath)
			var rows []int64
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var e map[string]any
				if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
					t.Fatal(err)
				}
				if _, ok := e["row_group"]; ok {
					t.Errorf("errors file names a row group for a %s file: %s", tc.name, sc.Text())
				}
				rows = append(rows, int64(e["row"].(float64)))
			}
			f.Close()
			if len(rows) != len(tc.badRows) || rows[0] != tc.badRows[0] || rows[1] != tc.badRows[1] {
				t.Fatalf("errors file rows %v, want %v", rows, tc.badRows)
			}

			sum, err = Run(context.Background(), m, Config{Inputs: []Input{{Path: in}}, Output: out, OnError: OnErrorNull, Resume: false})
			if err != nil {
				t.Fatal(err)
			}
			if sum.RowsOut != 4 || sum.Errors != 2 {
				t.Fatalf("null summary %+v", sum)
			}
			tbl := readOutput(t, out)
			got, _ = embeddings(t, tbl, "embedding")
			for i, v := range got {
				isBad := int64(i) == tc.badRows[0] || int64(i) == tc.badRows[1]
				if (v == nil) != isBad {
					t.Fatalf("null: row %d embedding nil=%v", i, v == nil)
				}
			}
			if !equalVec(got[0], want[0]) {
				t.Fatal("null: row 0's vector differs")
			}
		})
	}
}

func equalVec(a, b []float32) bool {
	if len(a) != len(b) || a == nil {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestDirectoryRunChecksInputsFirst runs a directory whose second file
// lacks the text column: the run fails naming that file before writing the
// first file's output.
func TestDirectoryRunChecksInputsFirst(t *testing.T) {
	m := loadTinyBert(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	os.WriteFile(a, []byte("{\"text\":\"hello\"}\n"), 0o644)
	os.WriteFile(b, []byte("{\"body\":\"hello\"}\n"), 0o644)
	out := filepath.Join(dir, "out")
	_, err := Run(context.Background(), m, Config{Inputs: []Input{{Path: a}, {Path: b}}, Output: out})
	if err == nil || !strings.Contains(err.Error(), b) || !strings.Contains(err.Error(), `"text"`) {
		t.Fatalf("err = %v, want a missing-column error naming %s", err, b)
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("the run wrote %d entries into %s before failing", len(ents), out)
	}
}
