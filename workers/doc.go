// Package workers runs embedpipe on NATS JetStream: it splits jobs into
// tasks on a work-queue stream, runs the workers that pull and embed them,
// keeps job state in a key-value bucket, finishes each job with exactly one
// manifest.json and _SUCCESS, and serves embeddings over a NATS micro
// service and between streams.
package workers
