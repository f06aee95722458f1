package workers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/embedpipe/embedpipe/schemas"
)

func TestPlan(t *testing.T) {
	dir := t.TempDir()
	texts := corpus(t)[:95]
	pq := writeCorpusParquet(t, dir, "a.parquet", texts, 10) // 10 row groups: 9×10 + 5
	jl := filepath.Join(dir, "b.jsonl")
	if err := os.WriteFile(jl, []byte("{\"text\":\"x\"}\n\n{\"text\":null}\n{\"other\":1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	job := schemas.Job{Schema: schemas.JobV1, ID: "p", Column: "text", Output: schemas.Output{Dir: "/o"},
		Inputs: []schemas.Input{{Path: pq}, {Path: jl}}}
	tasks, total, err := Plan(job, 25)
	if err != nil {
		t.Fatal(err)
	}
	// Row groups are grouped until a task holds at least 25 rows.
	want := [][3]int64{{0, 3, 30}, {3, 6, 30}, {6, 9, 30}, {9, 10, 5}, {0, 0, 3}}
	if len(tasks) != len(want) || total != 98 {
		t.Fatalf("%d tasks, %d rows: %+v", len(tasks), total, tasks)
	}
	for i, w := range want {
		tk := tasks[i]
		if int64(tk.RowGroupLo) != w[0] || int64(tk.RowGroupHi) != w[1] || tk.Rows != w[2] || tk.Index != i || tk.Tasks != 5 || tk.Part != PartName(i) {
			t.Errorf("task %d = %+v, want row groups [%d,%d) with %d rows", i, tk, w[0], w[1], w[2])
		}
		if err := tk.Validate(); err != nil {
			t.Errorf("task %d: %v", i, err)
		}
	}
	bad := filepath.Join(dir, "bad.jsonl")
	_ = os.WriteFile(bad, []byte("{\"text\":\"x\"}\n{\"text\":5}\n"), 0o644)
	job.Inputs = []schemas.Input{{Path: bad}}
	if _, _, err := Plan(job, 25); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad JSONL: %v", err)
	}
	job.Inputs = []schemas.Input{{Path: pq}}
	job.Column = "nope"
	if _, _, err := Plan(job, 25); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("missing column: %v", err)
	}
	job.Column = "id"
	if _, _, err := Plan(job, 25); !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), "BYTE_ARRAY") {
		t.Errorf("integer column: %v", err)
	}
	junk := filepath.Join(dir, "junk.parquet")
	_ = os.WriteFile(junk, []byte("PAR1 not really"), 0o644)
	job.Inputs, job.Column = []schemas.Input{{Path: junk}}, "text"
	if _, _, err := Plan(job, 25); !errors.Is(err, ErrBadInput) {
		t.Errorf("corrupt parquet: %v", err)
	}
}
