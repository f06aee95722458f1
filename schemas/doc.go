// Package schemas defines the versioned messages embedpipe exchanges over
// NATS: jobs submitted by users, the tasks a job is split into, the result a
// worker records for each task, the status of a job, the requests and
// replies of the embed service, and the records of a streaming pipeline —
// and the documents embedpipe leaves beside its outputs: a job's Manifest
// (manifest.json), the Provenance of a set of vectors (in Parquet and Arrow
// metadata and in the manifest), and a running task's TaskProgress.
//
// Every message is JSON and carries a "schema" field naming its type and
// version (for example "embedpipe.job/v1"). The Decode functions reject
// unknown versions with ErrUnknownVersion, unknown fields and invalid values
// with ErrInvalid, and messages over MaxMessageBytes with ErrTooLarge; the
// error text names the offending field so that a worker can terminate a
// malformed message with a useful reason. The decoders never panic on any
// input (they are fuzzed).
//
// The JSON Schema documents in v1/ describe the same messages for producers
// written in other languages; they are embedded in the binary (see FS and
// JSONSchema) and a test keeps them in step with the Go types.
package schemas
