package schemas

import (
	"errors"
	"strings"
	"testing"
)

// TestPostgresOutput checks a job whose output is a Postgres table: one
// without a password decodes; a password in the URL (user info or
// parameter), both dir and postgres, a URL of another scheme, a bad index,
// distance or index memory are refused with the field.
func TestPostgresOutput(t *testing.T) {
	base := `{"schema":"embedpipe.job/v1","id":"pg-1","inputs":[{"path":"/data/a.parquet"}],"column":"text","model":{},` +
		`"output":{"postgres":{"url":"postgres://loader@db:5432/app?sslmode=require","table":"docs","id_column":"id","index":"hnsw","distance":"cosine","index_memory":"1GB"}}}`
	j, err := DecodeJob([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if p := j.Output.Postgres; p == nil || p.Table != "docs" || p.IndexMemory != "1GB" || j.Output.Dir != "" {
		t.Fatalf("decoded output %+v", j.Output)
	}
	for _, c := range []struct{ name, from, to, want string }{
		{"password", "loader@db", "loader:s3cret@db", "holds a password"},
		{"password parameter", "sslmode=require", "sslmode=require&password=s3cret", "holds a password"},
		{"both", `"output":{`, `"output":{"dir":"/out",`, "only one of dir and postgres"},
		{"scheme", "postgres://loader", "mysql://loader", "postgres:// URL"},
		{"no table", `"table":"docs"`, `"table":""`, "output.postgres.table"},
		{"index", `"hnsw"`, `"btree"`, "output.postgres.index"},
		{"distance", `"cosine"`, `"manhattan"`, "output.postgres.distance"},
		{"index memory", `"1GB"`, `"1 GB"`, "output.postgres.index_memory"},
	} {
		_, err := DecodeJob([]byte(strings.Replace(base, c.from, c.to, 1)))
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: %v; want ErrInvalid saying %q", c.name, err, c.want)
		}
	}
}
