package schemas

import (
	"encoding/json"
	"time"
)

// Schema identifiers of the version 1 messages.
const (
	JobV1           = "embedpipe.job/v1"
	TaskV1          = "embedpipe.task/v1"
	ResultV1        = "embedpipe.result/v1"
	StatusV1        = "embedpipe.status/v1"
	EmbedRequestV1  = "embedpipe.embed_request/v1"
	EmbedReplyV1    = "embedpipe.embed_reply/v1"
	RecordV1        = "embedpipe.record/v1"
	EmbeddedV1      = "embedpipe.embedded/v1"
	RerankRequestV1 = "embedpipe.rerank_request/v1"
	RerankReplyV1   = "embedpipe.rerank_reply/v1"
	// SparseEmbedReplyV1 is the embed endpoint's reply for a sparse
	// (SPLADE) model.
	SparseEmbedReplyV1 = "embedpipe.sparse_embed_reply/v1"
)

// MaxMessageBytes bounds every message the decoders accept, so that a lying
// or hostile producer cannot make a worker allocate without limit.
const MaxMessageBytes = 8 << 20

// Input formats.
const (
	FormatParquet = "parquet"
	FormatJSONL   = "jsonl"
	FormatArrow   = "arrow"
	FormatCSV     = "csv"
)

// Job is a user's request to embed one text column of one or more files.
type Job struct {
	Schema    string    `json:"schema"`
	ID        string    `json:"id"`
	Inputs    []Input   `json:"inputs"`
	Column    string    `json:"column"`
	Output    Output    `json:"output"`
	Model     Model     `json:"model"`
	Options   Options   `json:"options"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Input is one input file of a job. Format is one of the Format constants;
// an empty Format is inferred from the file name's extension.
type Input struct {
	Path   string `json:"path"`
	Format string `json:"format,omitempty"`
}

// Output says where a job writes its parts, manifest.json and _SUCCESS, and
// the name of the embedding column in the parts; or, with Postgres set
// instead of Dir, the table the workers load.
type Output struct {
	Dir      string          `json:"dir,omitempty"`
	Column   string          `json:"column,omitempty"`
	Postgres *PostgresOutput `json:"postgres,omitempty"`
}

// PostgresOutput is a pgvector table that the workers load: each task's
// rows are upserted by id in one transaction together with the task's
// progress row. URL is a postgres:// URL without a password (Validate
// refuses one): a job record is readable by everyone with access to the
// jobs bucket, so the workers take the password from PGPASSWORD or
// ~/.pgpass. Index, Distance and IndexMemory are as embed's
// --create-index, --distance and --index-memory; the index is built once,
// after the last task.
type PostgresOutput struct {
	URL      string `json:"url"`
	Table    string `json:"table"`
	IDColumn string `json:"id_column,omitempty"`
	Index    string `json:"index,omitempty"`
	Distance string `json:"distance,omitempty"`
	// IndexMemory is the maintenance_work_mem of the index build (a
	// PostgreSQL size such as 1GB); empty: the server's.
	IndexMemory string `json:"index_memory,omitempty"`
}

// Model names the encoder: a local directory (Dir) or a Hugging Face hub id
// (Hub, with an optional Revision). At most one of Dir and Hub is set; a job
// naming neither runs with whatever model the workers were started with. A
// worker embeds only with the model it was started with and refuses tasks
// naming another one (ContentHash, when set, pins the exact weights).
type Model struct {
	Dir         string `json:"dir,omitempty"`
	Hub         string `json:"hub,omitempty"`
	Revision    string `json:"revision,omitempty"`
	ContentHash string `json:"content_hash,omitempty"`
}

// Options are the embedding options of a job. Zero values mean the model's
// defaults.
type Options struct {
	Pooling     string `json:"pooling,omitempty"`
	Normalize   *bool  `json:"normalize,omitempty"`
	PromptName  string `json:"prompt_name,omitempty"`
	Prompt      string `json:"prompt,omitempty"`
	Precision   string `json:"precision,omitempty"`
	TruncateDim int    `json:"truncate_dim,omitempty"`
	MaxLength   int    `json:"max_length,omitempty"`
	BatchSize   int    `json:"batch_size,omitempty"`
	// ChunkTokens, ChunkOverlap and ChunkMode ("split" or "late") are
	// pipeline.Config's chunking options (embed --chunk-tokens,
	// --chunk-overlap, --chunk-mode): one output row per chunk of each text.
	ChunkTokens  int    `json:"chunk_tokens,omitempty"`
	ChunkOverlap int    `json:"chunk_overlap,omitempty"`
	ChunkMode    string `json:"chunk_mode,omitempty"`
}

// Task is one unit of work of a job: the row groups [RowGroupLo, RowGroupHi)
// of one Parquet input, or a whole file of another format. A task carries
// everything a worker needs, so that no worker has to look the job up, and
// Part is its deterministic output file name: a redelivered task overwrites
// the same part instead of adding a duplicate.
type Task struct {
	Schema     string  `json:"schema"`
	JobID      string  `json:"job_id"`
	Index      int     `json:"index"`
	Tasks      int     `json:"tasks"`
	Input      Input   `json:"input"`
	RowGroupLo int     `json:"row_group_lo"`
	RowGroupHi int     `json:"row_group_hi"`
	Rows       int64   `json:"rows"`
	Column     string  `json:"column"`
	Output     Output  `json:"output"`
	Part       string  `json:"part"`
	Model      Model   `json:"model"`
	Options    Options `json:"options"`
}

// Result is what a worker records for a task after its part is durable, or
// the error that made it give the task up.
type Result struct {
	Schema     string    `json:"schema"`
	JobID      string    `json:"job_id"`
	Index      int       `json:"index"`
	Part       string    `json:"part,omitempty"`
	Input      string    `json:"input,omitempty"`
	RowGroupLo int       `json:"row_group_lo,omitempty"`
	RowGroupHi int       `json:"row_group_hi,omitempty"`
	Rows       int64     `json:"rows"`
	Tokens     int64     `json:"tokens"`
	Bytes      int64     `json:"bytes,omitempty"`
	SHA256     string    `json:"sha256,omitempty"`
	Worker     string    `json:"worker,omitempty"`
	Deliveries int       `json:"deliveries,omitempty"`
	Seconds    float64   `json:"seconds"`
	Error      string    `json:"error,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Job states.
const (
	StatePending   = "pending"
	StateRunning   = "running"
	StateCompleted = "completed"
	StateFailed    = "failed"
	// StateCancelled is a job stopped by "embedpipe cancel": its tasks stop
	// at their next batch, and it never gets a _SUCCESS marker.
	StateCancelled = "cancelled"
)

// Status is the state of a job as stored in the jobs bucket and printed by
// "embedpipe status".
type Status struct {
	Schema    string `json:"schema"`
	JobID     string `json:"job_id"`
	State     string `json:"state"`
	Tasks     int    `json:"tasks"`
	Done      int    `json:"done"`
	Failed    int    `json:"failed"`
	Rows      int64  `json:"rows"`
	TotalRows int64  `json:"total_rows"`
	Tokens    int64  `json:"tokens"`
	Reason    string `json:"reason,omitempty"`
	Output    string `json:"output,omitempty"`
	// Index says which vector index the worker that finished a Postgres
	// job built and how long it took.
	Index      string    `json:"index,omitempty"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Running lists how far the tasks without a result have got, as their
	// workers last reported (workers.Progress fills it; it is not stored
	// with the status).
	Running []TaskProgress `json:"running,omitempty"`
}

// TaskProgressV1 is the schema of TaskProgress.
const TaskProgressV1 = "embedpipe.task_progress/v1"

// TaskProgress is how far a running task has got: its worker stores it at
// each heartbeat while the task runs and removes it when the task's result
// is recorded. Rows and Tokens count the task's rows read and tokens
// embedded so far, resumed chunks included; TotalRows is the task's rows
// by the plan.
type TaskProgress struct {
	Schema    string    `json:"schema"`
	JobID     string    `json:"job_id"`
	Index     int       `json:"index"`
	Worker    string    `json:"worker"`
	Rows      int64     `json:"rows"`
	TotalRows int64     `json:"total_rows"`
	Tokens    int64     `json:"tokens"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// EmbedRequest is a request to the embed endpoint of the service. Format is
// "json" (the default) or "arrow" for an Arrow IPC stream reply. Precision
// quantizes as sentence-transformers' quantize_embeddings; int8 and uint8
// need Ranges, the per-dimension [[min…],[max…]] of the truncated output.
// A JSON reply carries quantized values as numbers (the int8/uint8 codes,
// the packed bytes of binary/ubinary); an Arrow reply in their own type.
type EmbedRequest struct {
	Schema      string      `json:"schema,omitempty"`
	Texts       []string    `json:"texts"`
	PromptName  string      `json:"prompt_name,omitempty"`
	Prompt      string      `json:"prompt,omitempty"`
	Normalize   *bool       `json:"normalize,omitempty"`
	TruncateDim int         `json:"truncate_dim,omitempty"`
	Precision   string      `json:"precision,omitempty"`
	Ranges      [][]float32 `json:"ranges,omitempty"`
	Format      string      `json:"format,omitempty"`
}

// EmbedReply is the JSON reply of the embed endpoint: one vector per request
// text, in request order.
type EmbedReply struct {
	Schema     string      `json:"schema"`
	Model      string      `json:"model,omitempty"`
	Dim        int         `json:"dim"`
	Embeddings [][]float32 `json:"embeddings"`
	Tokens     int         `json:"tokens,omitempty"`
}

// SparseVector is one sparse vector: the vocabulary entries Indices,
// ascending, with their weights Values at the same positions (the JSONL
// form embedpipe embed writes for a sparse model).
type SparseVector struct {
	Indices []int32   `json:"indices"`
	Values  []float32 `json:"values"`
}

// SparseEmbedReply is the JSON reply of the embed endpoint of a sparse
// (SPLADE) model: one sparse vector over a vocabulary of Dim entries per
// request text, in request order.
type SparseEmbedReply struct {
	Schema     string         `json:"schema"`
	Model      string         `json:"model,omitempty"`
	Dim        int            `json:"dim"`
	Embeddings []SparseVector `json:"embeddings"`
	Tokens     int            `json:"tokens,omitempty"`
}

// RerankRequest is a request to the rerank endpoint of the service: the
// documents are scored against the query by a cross-encoder.
type RerankRequest struct {
	Schema    string   `json:"schema,omitempty"`
	Query     string   `json:"query"`
	Documents []string `json:"documents"`
}

// RerankReply is the reply of the rerank endpoint. Scores (after the
// model's activation) and Logits are in request order; Order lists the
// document indices by descending score, ties in request order.
type RerankReply struct {
	Schema string    `json:"schema"`
	Model  string    `json:"model,omitempty"`
	Scores []float32 `json:"scores"`
	Logits []float32 `json:"logits"`
	Order  []int     `json:"order"`
	Tokens int       `json:"tokens,omitempty"`
}

// Record is one text record consumed by "embedpipe stream". A message whose
// body is not a JSON object with a "text" field is taken as raw UTF-8 text.
type Record struct {
	Schema string          `json:"schema,omitempty"`
	ID     string          `json:"id,omitempty"`
	Text   string          `json:"text"`
	Meta   json.RawMessage `json:"meta,omitempty"`
}

// Embedded is the record "embedpipe stream" publishes for each Record.
type Embedded struct {
	Schema    string          `json:"schema"`
	ID        string          `json:"id"`
	Embedding []float32       `json:"embedding"`
	Model     string          `json:"model,omitempty"`
	Meta      json.RawMessage `json:"meta,omitempty"`
}

// ManifestV1 is the schema of Manifest.
const ManifestV1 = "embedpipe.manifest/v1"

// Manifest is the manifest.json a finished job leaves beside its parts.
type Manifest struct {
	Schema string `json:"schema"`
	JobID  string `json:"job_id"`
	// Model is the model the parts were embedded with, as each part
	// records it in its metadata (workers.ModelMetadataKey): the hub id and
	// commit or the directory, and the content hash.
	Model Model `json:"model"`
	// Provenance is the model and options the vectors were made with, as
	// the first part records it (ProvenanceKey), so that a query
	// side can reproduce them.
	Provenance  *Provenance    `json:"provenance,omitempty"`
	Column      string         `json:"column"`
	Output      string         `json:"output_column"`
	Rows        int64          `json:"rows"`
	Tokens      int64          `json:"tokens"`
	Parts       []ManifestPart `json:"parts"`
	CompletedAt time.Time      `json:"completed_at"`
}

// ManifestPart is one part of a Manifest.
type ManifestPart struct {
	Name       string `json:"name"`
	Input      string `json:"input"`
	RowGroupLo int    `json:"row_group_lo"`
	RowGroupHi int    `json:"row_group_hi"`
	Rows       int64  `json:"rows"`
	Bytes      int64  `json:"bytes"`
	SHA256     string `json:"sha256"`
}
