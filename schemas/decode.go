package schemas

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
	"unicode/utf8"
)

// versionOf reads only the "schema" field of a JSON object.
func versionOf(data []byte) (string, error) {
	var head struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if head.Schema == nil {
		return "", fmt.Errorf("%w: missing \"schema\" field", ErrUnknownVersion)
	}
	return *head.Schema, nil
}

// decodeStrict decodes one JSON object into v, rejecting unknown fields and
// trailing data.
func decodeStrict(data []byte, want string, v any) error {
	if err := checkSize(data); err != nil {
		return err
	}
	got, err := versionOf(data)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("%w: %q (want %q)", ErrUnknownVersion, got, want)
	}
	return decodeObject(data, want, v)
}

// checkSize refuses a message over MaxMessageBytes.
func checkSize(data []byte) error {
	if len(data) > MaxMessageBytes {
		return fmt.Errorf("%w: %d bytes (limit %d)", ErrTooLarge, len(data), MaxMessageBytes)
	}
	return nil
}

// decodeObject decodes one JSON object into v, rejecting unknown fields
// and trailing data; what names the message in its errors.
func decodeObject(data []byte, what string, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, what, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: %s: trailing data after the object", ErrInvalid, what)
	}
	return nil
}

// checkOptionalVersion checks the "schema" field of a message in which it
// is optional (got ""): when present it must be want.
func checkOptionalVersion(got, want string) error {
	if got != "" && got != want {
		return fmt.Errorf("%w: %q (want %q)", ErrUnknownVersion, got, want)
	}
	return nil
}

// decodeValid decodes a message of version want with decodeStrict and
// validates it.
func decodeValid[T any, P interface {
	*T
	Validate() error
}](data []byte, want string) (T, error) {
	var v T
	if err := decodeStrict(data, want, &v); err != nil {
		return *new(T), err
	}
	if err := P(&v).Validate(); err != nil {
		return *new(T), err
	}
	return v, nil
}

// DecodeJob decodes and validates a job message.
func DecodeJob(data []byte) (Job, error) {
	return decodeValid[Job](data, JobV1)
}

// DecodeTask decodes and validates a task message.
func DecodeTask(data []byte) (Task, error) {
	return decodeValid[Task](data, TaskV1)
}

// DecodeResult decodes and validates a result message.
func DecodeResult(data []byte) (Result, error) {
	return decodeValid[Result](data, ResultV1)
}

// DecodeStatus decodes and validates a status message.
func DecodeStatus(data []byte) (Status, error) {
	return decodeValid[Status](data, StatusV1)
}

// DecodeTaskProgress decodes a running task's progress.
func DecodeTaskProgress(data []byte) (TaskProgress, error) {
	var p TaskProgress
	if err := decodeStrict(data, TaskProgressV1, &p); err != nil {
		return TaskProgress{}, err
	}
	if p.Index < 0 || p.Rows < 0 || p.TotalRows < 0 || p.Tokens < 0 {
		return TaskProgress{}, fmt.Errorf("%w: task progress with negative counts", ErrInvalid)
	}
	return p, nil
}

// DecodeEmbedRequest decodes and validates a request to the embed endpoint.
// The "schema" field is optional here so that a request can be typed by
// hand (nats req embedpipe.embed '{"texts":["hi"]}'); when present it must
// be EmbedRequestV1.
func DecodeEmbedRequest(data []byte, maxTexts int) (EmbedRequest, error) {
	var r EmbedRequest
	if err := checkSize(data); err != nil {
		return EmbedRequest{}, err
	}
	if err := decodeObject(data, "embed request", &r); err != nil {
		return EmbedRequest{}, err
	}
	if err := checkOptionalVersion(r.Schema, EmbedRequestV1); err != nil {
		return EmbedRequest{}, err
	}
	if len(r.Texts) == 0 {
		return EmbedRequest{}, fmt.Errorf("%w: embed request: texts is empty", ErrInvalid)
	}
	if maxTexts > 0 && len(r.Texts) > maxTexts {
		return EmbedRequest{}, fmt.Errorf("%w: embed request: %d texts (limit %d)", ErrTooLarge, len(r.Texts), maxTexts)
	}
	if r.TruncateDim < 0 {
		return EmbedRequest{}, fmt.Errorf("%w: embed request: truncate_dim %d is negative", ErrInvalid, r.TruncateDim)
	}
	switch r.Format {
	case "", "json", "arrow":
	default:
		return EmbedRequest{}, fmt.Errorf("%w: embed request: format %q (want json or arrow)", ErrInvalid, r.Format)
	}
	switch r.Precision {
	case "", "float32", "float16", "int8", "uint8", "binary", "ubinary":
	default:
		return EmbedRequest{}, fmt.Errorf("%w: embed request: precision %q (want float32, float16, int8, uint8, binary or ubinary)", ErrInvalid, r.Precision)
	}
	if len(r.Ranges) > 0 && (len(r.Ranges) != 2 || len(r.Ranges[0]) != len(r.Ranges[1]) || len(r.Ranges[0]) == 0) {
		return EmbedRequest{}, fmt.Errorf("%w: embed request: ranges must be [[min…],[max…]] of one non-zero length", ErrInvalid)
	}
	return r, nil
}

// DecodeRerankRequest decodes and validates a request to the rerank
// endpoint. As with DecodeEmbedRequest the "schema" field is optional, and
// when present must be RerankRequestV1. maxDocuments > 0 bounds the
// documents.
func DecodeRerankRequest(data []byte, maxDocuments int) (RerankRequest, error) {
	var r RerankRequest
	if err := checkSize(data); err != nil {
		return RerankRequest{}, err
	}
	if err := decodeObject(data, "rerank request", &r); err != nil {
		return RerankRequest{}, err
	}
	if err := checkOptionalVersion(r.Schema, RerankRequestV1); err != nil {
		return RerankRequest{}, err
	}
	if len(r.Documents) == 0 {
		return RerankRequest{}, fmt.Errorf("%w: rerank request: documents is empty", ErrInvalid)
	}
	if maxDocuments > 0 && len(r.Documents) > maxDocuments {
		return RerankRequest{}, fmt.Errorf("%w: rerank request: %d documents (limit %d)", ErrTooLarge, len(r.Documents), maxDocuments)
	}
	return r, nil
}

// DecodeRecord decodes a streaming text record. A body that is not a JSON
// object is taken as the raw text itself, which must be valid UTF-8.
func DecodeRecord(data []byte) (Record, error) {
	if err := checkSize(data); err != nil {
		return Record{}, err
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if !utf8.Valid(data) {
			return Record{}, fmt.Errorf("%w: record: raw text is not valid UTF-8", ErrInvalid)
		}
		return Record{Text: string(data)}, nil
	}
	var r Record
	if err := decodeObject(data, "record", &r); err != nil {
		return Record{}, err
	}
	if err := checkOptionalVersion(r.Schema, RecordV1); err != nil {
		return Record{}, err
	}
	return r, nil
}

func invalid(kind, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalid, kind, fmt.Sprintf(format, args...))
}

// ValidID reports whether id can name a job: 1 to 64 ASCII letters, digits,
// '-' or '_', so that it is a single token of a NATS subject and a KV key.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// FormatOf returns the format of in: in.Format, or the one its extension
// implies, or "" when neither says.
func FormatOf(in Input) string {
	if in.Format != "" {
		return in.Format
	}
	switch strings.ToLower(path.Ext(in.Path)) {
	case ".parquet", ".pq":
		return FormatParquet
	case ".jsonl", ".ndjson":
		return FormatJSONL
	case ".arrow", ".arrows", ".ipc", ".feather":
		return FormatArrow
	case ".csv":
		return FormatCSV
	}
	return ""
}

func validPath(kind, field, p string) error {
	if p == "" {
		return invalid(kind, "%s is empty", field)
	}
	if len(p) > 4096 {
		return invalid(kind, "%s is longer than 4096 bytes", field)
	}
	if strings.IndexByte(p, 0) >= 0 || !utf8.ValidString(p) {
		return invalid(kind, "%s %q has a NUL byte or invalid UTF-8", field, p)
	}
	return nil
}

// validate checks that o names exactly one of a directory and a Postgres
// table, and that a Postgres URL carries no password.
func (o Output) validate(kind string) error {
	if o.Postgres == nil {
		return validPath(kind, "output.dir", o.Dir)
	}
	if o.Dir != "" {
		return invalid(kind, "output: set only one of dir and postgres")
	}
	p := o.Postgres
	if !strings.HasPrefix(p.URL, "postgres://") && !strings.HasPrefix(p.URL, "postgresql://") {
		return invalid(kind, "output.postgres.url must be a postgres:// URL")
	}
	u, err := url.Parse(p.URL)
	if err != nil {
		return invalid(kind, "output.postgres.url does not parse")
	}
	if _, has := u.User.Password(); has || u.Query().Has("password") {
		return invalid(kind, "output.postgres.url holds a password; job records keep none (workers read PGPASSWORD or ~/.pgpass)")
	}
	if len(p.URL) > 4096 || strings.IndexByte(p.URL, 0) >= 0 {
		return invalid(kind, "output.postgres.url is longer than 4096 bytes or has a NUL byte")
	}
	if p.Table == "" || len(p.Table) > 200 || strings.IndexByte(p.Table, 0) >= 0 || !utf8.ValidString(p.Table) {
		return invalid(kind, "output.postgres.table %q: want 1 to 200 bytes of UTF-8", p.Table)
	}
	switch p.Index {
	case "", "none", "hnsw", "ivfflat":
	default:
		return invalid(kind, "output.postgres.index %q (want none, hnsw or ivfflat)", p.Index)
	}
	switch p.Distance {
	case "", "cosine", "l2", "ip", "hamming", "jaccard":
	default:
		return invalid(kind, "output.postgres.distance %q (want cosine, l2, ip, hamming or jaccard)", p.Distance)
	}
	if !validMemory(p.IndexMemory) {
		return invalid(kind, "output.postgres.index_memory %q (want a size such as 512MB: kB, MB, GB or TB)", p.IndexMemory)
	}
	return nil
}

// validMemory reports whether s is empty or a PostgreSQL memory size of 1
// to 10 digits and a unit (kB, MB, GB, TB).
func validMemory(s string) bool {
	if s == "" {
		return true
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == 0 || i > 10 || s[0] == '0' {
		return false
	}
	switch s[i:] {
	case "kB", "MB", "GB", "TB":
		return true
	}
	return false
}

func (in Input) validate(kind, field string) error {
	if err := validPath(kind, field+".path", in.Path); err != nil {
		return err
	}
	switch in.Format {
	case "", FormatParquet, FormatJSONL, FormatArrow, FormatCSV:
	default:
		return invalid(kind, "%s.format %q (want parquet, jsonl, arrow or csv)", field, in.Format)
	}
	if FormatOf(in) == "" {
		return invalid(kind, "%s: cannot tell the format of %q: set format", field, in.Path)
	}
	return nil
}

func (m Model) validate(kind string) error {
	switch {
	case m.Dir == "" && m.Hub == "":
		// No model named: any worker's model will do (unless
		// content_hash pins one).
		return nil
	case m.Dir != "" && m.Hub != "":
		return invalid(kind, "model: set only one of dir and hub")
	case m.Revision != "" && m.Hub == "":
		return invalid(kind, "model: revision needs hub")
	}
	if m.Dir != "" {
		return validPath(kind, "model.dir", m.Dir)
	}
	return nil
}

func (o Options) validate(kind string) error {
	switch o.Pooling {
	case "", "mean", "cls", "max", "lasttoken":
	default:
		return invalid(kind, "options.pooling %q (want mean, cls, max or lasttoken)", o.Pooling)
	}
	switch o.Precision {
	case "", "float32", "float16", "int8", "uint8", "binary", "ubinary":
	default:
		return invalid(kind, "options.precision %q (want float32, float16, int8, uint8, binary or ubinary)", o.Precision)
	}
	if o.PromptName != "" && o.Prompt != "" {
		return invalid(kind, "options: set only one of prompt_name and prompt")
	}
	if o.TruncateDim < 0 || o.TruncateDim > 1<<16 {
		return invalid(kind, "options.truncate_dim %d out of range", o.TruncateDim)
	}
	if o.MaxLength < 0 || o.MaxLength > 1<<20 {
		return invalid(kind, "options.max_length %d out of range", o.MaxLength)
	}
	if o.BatchSize < 0 || o.BatchSize > 1<<16 {
		return invalid(kind, "options.batch_size %d out of range", o.BatchSize)
	}
	if o.ChunkTokens < 0 || o.ChunkTokens > 1<<20 || o.ChunkOverlap < 0 || o.ChunkOverlap > 1<<20 {
		return invalid(kind, "options.chunk_tokens %d or chunk_overlap %d out of range", o.ChunkTokens, o.ChunkOverlap)
	}
	switch o.ChunkMode {
	case "", "split", "late":
	default:
		return invalid(kind, "options.chunk_mode %q (want split or late)", o.ChunkMode)
	}
	return nil
}

// Validate reports whether j is a complete, valid job.
func (j Job) Validate() error {
	const kind = "job"
	if j.Schema != JobV1 {
		return fmt.Errorf("%w: %q (want %q)", ErrUnknownVersion, j.Schema, JobV1)
	}
	if !ValidID(j.ID) {
		return invalid(kind, "id %q: want 1 to 64 letters, digits, '-' or '_'", j.ID)
	}
	if len(j.Inputs) == 0 {
		return invalid(kind, "inputs is empty")
	}
	if len(j.Inputs) > 100000 {
		return invalid(kind, "%d inputs (limit 100000)", len(j.Inputs))
	}
	for i, in := range j.Inputs {
		if err := in.validate(kind, fmt.Sprintf("inputs[%d]", i)); err != nil {
			return err
		}
	}
	if j.Column == "" {
		return invalid(kind, "column is empty")
	}
	if err := j.Output.validate(kind); err != nil {
		return err
	}
	if err := j.Model.validate(kind); err != nil {
		return err
	}
	return j.Options.validate(kind)
}

// Validate reports whether t is a complete, valid task.
func (t Task) Validate() error {
	const kind = "task"
	if t.Schema != TaskV1 {
		return fmt.Errorf("%w: %q (want %q)", ErrUnknownVersion, t.Schema, TaskV1)
	}
	if !ValidID(t.JobID) {
		return invalid(kind, "job_id %q is not a valid id", t.JobID)
	}
	if t.Tasks <= 0 || t.Index < 0 || t.Index >= t.Tasks {
		return invalid(kind, "index %d of %d tasks", t.Index, t.Tasks)
	}
	if err := t.Input.validate(kind, "input"); err != nil {
		return err
	}
	if t.RowGroupLo < 0 || t.RowGroupHi < t.RowGroupLo {
		return invalid(kind, "row groups [%d, %d) out of order", t.RowGroupLo, t.RowGroupHi)
	}
	if t.Rows < 0 {
		return invalid(kind, "rows %d is negative", t.Rows)
	}
	if t.Column == "" {
		return invalid(kind, "column is empty")
	}
	if err := t.Output.validate(kind); err != nil {
		return err
	}
	if t.Part == "" || strings.ContainsAny(t.Part, "/\\") || t.Part == "." || t.Part == ".." || strings.HasPrefix(t.Part, ".") {
		return invalid(kind, "part %q must be a plain file name", t.Part)
	}
	if err := t.Model.validate(kind); err != nil {
		return err
	}
	return t.Options.validate(kind)
}

// Validate reports whether r is a valid result.
func (r Result) Validate() error {
	const kind = "result"
	if r.Schema != ResultV1 {
		return fmt.Errorf("%w: %q (want %q)", ErrUnknownVersion, r.Schema, ResultV1)
	}
	if !ValidID(r.JobID) {
		return invalid(kind, "job_id %q is not a valid id", r.JobID)
	}
	if r.Index < 0 || r.Rows < 0 || r.Tokens < 0 || r.Bytes < 0 {
		return invalid(kind, "negative index or count")
	}
	if r.Error == "" && r.Part == "" {
		return invalid(kind, "a successful result needs part")
	}
	return nil
}

// Validate reports whether s is a valid status.
func (s Status) Validate() error {
	const kind = "status"
	if s.Schema != StatusV1 {
		return fmt.Errorf("%w: %q (want %q)", ErrUnknownVersion, s.Schema, StatusV1)
	}
	if !ValidID(s.JobID) {
		return invalid(kind, "job_id %q is not a valid id", s.JobID)
	}
	switch s.State {
	case StatePending, StateRunning, StateCompleted, StateFailed, StateCancelled:
	default:
		return invalid(kind, "state %q", s.State)
	}
	if s.Tasks < 0 || s.Done < 0 || s.Failed < 0 || s.Done+s.Failed > s.Tasks {
		return invalid(kind, "counts: %d done + %d failed of %d tasks", s.Done, s.Failed, s.Tasks)
	}
	return nil
}
