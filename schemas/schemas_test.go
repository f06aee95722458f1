package schemas

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const validJob = `{"schema":"embedpipe.job/v1","id":"job-1","inputs":[{"path":"/data/a.parquet"}],
"column":"text","output":{"dir":"/out"},"model":{"dir":"/models/tiny-bert"},
"options":{"pooling":"mean","normalize":true,"precision":"float32","truncate_dim":32,"max_length":128}}`

func TestDecodeJob(t *testing.T) {
	j, err := DecodeJob([]byte(validJob))
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != "job-1" || FormatOf(j.Inputs[0]) != FormatParquet || j.Options.TruncateDim != 32 || j.Options.Normalize == nil || !*j.Options.Normalize {
		t.Fatalf("decoded %+v", j)
	}
	cases := []struct {
		name, edit, want string
		err              error
	}{
		{"version", `"embedpipe.job/v1"->"embedpipe.job/v2"`, "embedpipe.job/v2", ErrUnknownVersion},
		{"type", `"embedpipe.job/v1"->"embedpipe.task/v1"`, "embedpipe.task/v1", ErrUnknownVersion},
		{"no schema", `"schema":"embedpipe.job/v1",->`, "missing", ErrUnknownVersion},
		{"bad id", `"job-1"->"job.1"`, "id", ErrInvalid},
		{"no inputs", `[{"path":"/data/a.parquet"}]->[]`, "inputs is empty", ErrInvalid},
		{"format", `a.parquet"}->a.txt"}`, "cannot tell the format", ErrInvalid},
		{"column", `"column":"text"->"column":""`, "column is empty", ErrInvalid},
		{"unknown field", `"column":"text"->"column":"text","colour":"red"`, "colour", ErrInvalid},
		{"model both", `{"dir":"/models/tiny-bert"}->{"dir":"/m","hub":"x/y"}`, "only one", ErrInvalid},
		{"revision", `{"dir":"/models/tiny-bert"}->{"dir":"/m","revision":"main"}`, "revision needs hub", ErrInvalid},
		{"pooling", `"mean"->"median"`, "pooling", ErrInvalid},
		{"precision", `"float32"->"int3"`, "precision", ErrInvalid},
		{"truncate", `"truncate_dim":32->"truncate_dim":-1`, "truncate_dim", ErrInvalid},
		{"trailing", `}}->}}{}`, "after top-level value", ErrInvalid},
		{"not json", `{"schema"->{schema`, "", ErrInvalid},
	}
	for _, c := range cases {
		from, to, _ := strings.Cut(c.edit, "->")
		if !strings.Contains(validJob, from) {
			t.Fatalf("%s: %q not in the job", c.name, from)
		}
		msg := strings.Replace(validJob, from, to, 1)
		_, err := DecodeJob([]byte(msg))
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want %v naming %q", c.name, err, c.err, c.want)
		}
	}
	if _, err := DecodeJob(make([]byte, MaxMessageBytes+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized message: %v", err)
	}
}

func TestDecodeTaskRoundTrip(t *testing.T) {
	task := Task{Schema: TaskV1, JobID: "j", Index: 2, Tasks: 3, Input: Input{Path: "/a.jsonl"},
		Rows: 10, Column: "text", Output: Output{Dir: "/o"}, Part: "part-00002.parquet", Model: Model{Dir: "/m"}}
	b, _ := json.Marshal(task)
	got, err := DecodeTask(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, task) {
		t.Fatalf("round trip: %+v != %+v", got, task)
	}
	for _, part := range []string{"../x", "a/b", ".hidden", "", ".."} {
		bad := task
		bad.Part = part
		b, _ := json.Marshal(bad)
		if _, err := DecodeTask(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("part %q accepted: %v", part, err)
		}
	}
	bad := task
	bad.Index = 3
	b, _ = json.Marshal(bad)
	if _, err := DecodeTask(b); !errors.Is(err, ErrInvalid) {
		t.Errorf("index out of range accepted: %v", err)
	}
	// A task carries the chunking options; a bad mode or count is refused.
	chunked := task
	chunked.Options = Options{ChunkTokens: 200, ChunkOverlap: 40, ChunkMode: "late"}
	b, _ = json.Marshal(chunked)
	if got, err := DecodeTask(b); err != nil || got.Options != chunked.Options || !strings.Contains(string(b), `"chunk_tokens":200,"chunk_overlap":40,"chunk_mode":"late"`) {
		t.Fatalf("chunk options: %+v, %v (%s)", got.Options, err, b)
	}
	for _, o := range []Options{{ChunkTokens: 10, ChunkMode: "diagonal"}, {ChunkTokens: -1}, {ChunkTokens: 10, ChunkOverlap: -2}} {
		bad := task
		bad.Options = o
		b, _ := json.Marshal(bad)
		if _, err := DecodeTask(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("options %+v accepted: %v", o, err)
		}
	}
}

func TestDecodeRecordAndRequest(t *testing.T) {
	r, err := DecodeRecord([]byte("plain text"))
	if err != nil || r.Text != "plain text" {
		t.Fatalf("raw record: %+v %v", r, err)
	}
	r, err = DecodeRecord([]byte(`{"id":"7","text":"hi","meta":{"k":1}}`))
	if err != nil || r.ID != "7" || r.Text != "hi" || string(r.Meta) != `{"k":1}` {
		t.Fatalf("json record: %+v %v", r, err)
	}
	if _, err := DecodeRecord([]byte{0xff, 0xfe}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid UTF-8 accepted: %v", err)
	}
	q, err := DecodeEmbedRequest([]byte(`{"texts":["a","b"],"normalize":false}`), 10)
	if err != nil || len(q.Texts) != 2 || q.Normalize == nil || *q.Normalize {
		t.Fatalf("request: %+v %v", q, err)
	}
	for _, bad := range []string{`{"texts":[]}`, `{"texts":["a"],"format":"xml"}`, `{"texts":["a"],"schema":"x"}`, `{"texts":["a","b","c"]}`} {
		if _, err := DecodeEmbedRequest([]byte(bad), 2); err == nil {
			t.Errorf("request %s accepted", bad)
		}
	}
}

// jsonFields returns the JSON names of the fields of struct type t.
func jsonFields(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// TestJSONSchemaMatchesTypes keeps the JSON Schema documents in step with
// the Go types: the same property names, and a "schema" constant equal to
// the Go identifier.
func TestJSONSchemaMatchesTypes(t *testing.T) {
	types := map[string]struct {
		v      any
		schema string
	}{
		"job":                {Job{}, JobV1},
		"task":               {Task{}, TaskV1},
		"result":             {Result{}, ResultV1},
		"status":             {Status{}, StatusV1},
		"embed_request":      {EmbedRequest{}, EmbedRequestV1},
		"embed_reply":        {EmbedReply{}, EmbedReplyV1},
		"record":             {Record{}, RecordV1},
		"embedded":           {Embedded{}, EmbeddedV1},
		"rerank_request":     {RerankRequest{}, RerankRequestV1},
		"rerank_reply":       {RerankReply{}, RerankReplyV1},
		"sparse_embed_reply": {SparseEmbedReply{}, SparseEmbedReplyV1},
		"task_progress":      {TaskProgress{}, TaskProgressV1},
		"manifest":           {Manifest{}, ManifestV1},
		"provenance":         {Provenance{}, ProvenanceSchema},
	}
	for name, tv := range types {
		b, err := JSONSchema(name)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Properties map[string]struct {
				Const string `json:"const"`
			} `json:"properties"`
			Required             []string `json:"required"`
			AdditionalProperties *bool    `json:"additionalProperties"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var props []string
		for p := range doc.Properties {
			props = append(props, p)
		}
		sort.Strings(props)
		if want := jsonFields(reflect.TypeOf(tv.v)); !reflect.DeepEqual(props, want) {
			t.Errorf("%s: schema properties %v, Go fields %v", name, props, want)
		}
		if got := doc.Properties["schema"].Const; got != tv.schema {
			t.Errorf("%s: schema const %q, want %q", name, got, tv.schema)
		}
		if doc.AdditionalProperties == nil || *doc.AdditionalProperties {
			t.Errorf("%s: additionalProperties must be false", name)
		}
		for _, r := range doc.Required {
			if _, ok := doc.Properties[r]; !ok {
				t.Errorf("%s: required %q is not a property", name, r)
			}
		}
	}
	if _, err := JSONSchema("defs"); err != nil {
		t.Fatal(err)
	}
	if _, err := JSONSchema("nope"); err == nil {
		t.Fatal("unknown schema name accepted")
	}
}

// TestDecodeRerankRequest checks the rerank request decoder: a valid
// request, and refusals of no documents, too many, unknown fields and a
// wrong version.
func TestDecodeRerankRequest(t *testing.T) {
	r, err := DecodeRerankRequest([]byte(`{"query":"q","documents":["a","b"]}`), 10)
	if err != nil || r.Query != "q" || len(r.Documents) != 2 {
		t.Fatalf("valid request: %+v, %v", r, err)
	}
	for _, bad := range []string{`{"query":"q","documents":[]}`, `{"query":"q","documents":["a","b","c"]}`,
		`{"query":"q","documents":["a"],"top":1}`, `{"schema":"embedpipe.rerank_request/v9","query":"q","documents":["a"]}`, `{"query":`} {
		if _, err := DecodeRerankRequest([]byte(bad), 2); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// TestTooManyTextsIsTooLarge checks that a request over the text or
// document limit is ErrTooLarge (answered 413 by the service), not
// ErrInvalid (400).
func TestTooManyTextsIsTooLarge(t *testing.T) {
	if _, err := DecodeEmbedRequest([]byte(`{"texts":["a","b","c"]}`), 2); !errors.Is(err, ErrTooLarge) {
		t.Errorf("3 texts over a limit of 2: %v", err)
	}
	if _, err := DecodeRerankRequest([]byte(`{"query":"q","documents":["a","b","c"]}`), 2); !errors.Is(err, ErrTooLarge) {
		t.Errorf("3 documents over a limit of 2: %v", err)
	}
}
