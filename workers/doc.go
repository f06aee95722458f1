// Package workers runs embedpipe on NATS JetStream: it splits jobs into
// tasks on a work-queue stream, runs the workers that pull and embed them,
// keeps job state in a key-value bucket, finishes each job with exactly one
// manifest.json and _SUCCESS, serves embeddings over a NATS micro service,
// and embeds records from one stream into another.
//
// # Seams
//
// Every vector goes through the embedding seam, package encoder/embed: a
// task's options become embed.Options once (EmbedOptions, which Submit also
// uses to refuse what the engine cannot honour, with the reason: a pooling
// override, job-wide int8/uint8 calibration), an embed request's once
// (RequestOptions), the stream's flags once; the service keeps one
// embed.Embedder per distinct set of options. Nothing here batches by
// tokens, truncates, normalizes or quantizes by itself, so a task, a
// request and a stream record with the same text and options carry the
// same bits (TestPathsGiveIdenticalVectors). Parts are written by the
// pipeline through the output seam, package io/sink. The dead-letter stream
// is defined once (deadLetterStreamConfig).
//
// # Layout
//
// Streams, consumers and buckets (created by EnsureLayout, idempotently, by
// submit and by workers unless they run with NoCreate):
//
//	EMBEDPIPE_TASKS     stream, work-queue retention, file storage, subjects
//	                    embedpipe.task.<job>.<index>; duplicate window 10 min
//	                    (tasks are published with Nats-Msg-Id <job>.<index>)
//	embedpipe-workers   durable pull consumer on EMBEDPIPE_TASKS shared by all
//	                    workers: explicit ack, AckWait, MaxDeliver,
//	                    MaxAckPending (the cluster-wide bound on tasks in flight)
//	EMBEDPIPE_DLQ       stream, limits retention (14 days), subjects
//	                    embedpipe.dlq.<job>.<index> (a task that failed
//	                    permanently or MaxDeliver times: the task body, headers
//	                    Embedpipe-Error, Embedpipe-Deliveries, Embedpipe-Subject),
//	                    embedpipe.dlq.malformed (undecodable task messages),
//	                    embedpipe.dlq.stream.<stream> (undecodable stream
//	                    records) and the server's advisories
//	                    $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.EMBEDPIPE_TASKS.>
//	                    (tasks whose worker died on every delivery)
//	EMBEDPIPE_JOBS      key-value bucket (stream KV_EMBEDPIPE_JOBS), history 1:
//	                    <job>.job        the job (schemas.Job), created once
//	                    <job>.status     schemas.Status, changed by compare-and-set
//	                    <job>.task.<i>   schemas.Result of task i
//	                    <job>.final      claimed with create by the finisher
//	embedpipe.embed     request subject of the "embed" endpoint of the micro
//	                    service "embedpipe" (queue group "embedpipe"; the
//	                    service also answers $SRV.PING|INFO|STATS.embedpipe)
//
// # Work queue
//
// Plan cuts a Parquet input into runs of consecutive row groups of at least
// rows-per-task rows, so that many workers share one big file; any other
// input is one task. Each task names its deterministic part file
// (part-<index>.parquet): a redelivered task overwrites its part instead of
// adding a duplicate.
//
// A Worker holds at most Concurrency tasks: each pull asks for exactly as
// many messages as it has free credits, and the consumer's MaxAckPending
// bounds the total. While a task runs the worker sends in-progress acks
// every AckWait/3, so a live worker keeps its task however long it takes
// and a killed one loses it after AckWait. The part is written atomically
// (temporary file, fsync, rename, directory fsync) by the pipeline, the
// task's Result is put in the bucket, and only then is the message acked
// (double ack, waiting for the server's confirmation). A crash at any point
// before the ack makes the server redeliver the task; the redo resumes
// from the pipeline's checkpoints next to the part and writes the same part.
//
// A task that fails is handed back with a growing delay; after MaxDeliver
// deliveries, or at once for permanent errors (ErrPermanent, ErrPathNotAllowed,
// corrupt input, missing column, bad options), it is copied to the
// dead-letter stream with the error, its Result records the error, the job
// is marked failed with the reason, and the message is terminated. A message
// that does not decode as a task is terminated with the reason and
// dead-lettered; the worker keeps running.
//
// The worker that records the last result finishes the job: it claims
// <job>.final with a create (a compare-and-set on "absent", so exactly one
// racing worker wins), checks every part's row count, writes manifest.json
// (parts, rows, tokens, sizes and SHA-256 checksums) and then _SUCCESS
// atomically, marks the job completed, and only then acks its own task. If
// it dies meanwhile its task is redelivered, and the next worker takes the
// claim over (compare-and-set on the claim's revision) once the claim is
// older than AckWait.
//
// # Postgres outputs
//
// A job whose schemas.Output names a Postgres table (submit --output
// postgres://… --table) has the same tasks, but no parts: a worker embeds a
// task's rows through the pipeline into a Parquet file in its runner's work
// directory (resumable as a part is) and loads them with pgsink.Sink.WriteTx
// in one transaction with the task's progress row in embedpipe_progress
// (run key TaskRunKey: the job id and a digest of the task message; seq the
// task index). A redelivered or re-run task finds its row (pgsink.TaskDone)
// and changes nothing. Rows are upserted by the --id-column or by
// "<input file>:<row>", the ids embed --output postgres://… gives the same
// file. The finisher checks that the table records every task with the rows
// of its result (pgsink.Recorded), builds the index once (pgsink.FinishTable,
// under the table's advisory lock) and puts what it built in Status.Index.
// The job record keeps the URL without its password (schemas refuses one):
// workers connect with PGPASSWORD or ~/.pgpass. CheckPostgres validates the
// server, pgvector and an existing table's shape before submit queues
// anything.
//
// # Files and paths
//
// A worker reads and writes only under its --allow-path roots (AllowList):
// a task path must be absolute, have no ".." element, and still lie under a
// root once every symbolic link is resolved, both for inputs and for the
// output directory (whose existing part is resolved before anything is
// created). Anything else fails the task permanently with ErrPathNotAllowed.
//
// # Models
//
// A task is embedded only with the model its job names. A worker with
// Models (worker and serve without --pin-model) acquires that model for the
// task from a bounded, reference-counted cache: a hub id at its revision
// (from the hub cache, downloading what it lacks), a directory under the
// --allow-path roots, or the worker's --model for a job that names none;
// an idle model is evicted least recently used first when another needs
// its slot, one that a running task holds never is. A model that does not
// load, or whose content hash differs from the job's, fails the task
// permanently with the reason; a model this worker cannot have (a
// directory outside its roots, a content hash it does not know, a hub
// model an offline cache lacks) is refused with ErrWrongModel and handed
// back for another worker, as is every model but its own on a worker
// without Models. Each part records the model it was embedded with in its
// metadata (ModelMetadataKey), and the finisher's manifest takes the model
// from the parts: a job whose parts disagree fails instead of completing.
//
// # Permissions
//
// A worker started with NoCreate (--create-layout=false) needs only:
//
//	publish:   $JS.API.CONSUMER.INFO.EMBEDPIPE_TASKS.embedpipe-workers
//	           $JS.API.CONSUMER.MSG.NEXT.EMBEDPIPE_TASKS.embedpipe-workers
//	           $JS.ACK.EMBEDPIPE_TASKS.embedpipe-workers.>
//	           $JS.API.STREAM.INFO.KV_EMBEDPIPE_JOBS
//	           $JS.API.DIRECT.GET.KV_EMBEDPIPE_JOBS.>
//	           $JS.API.STREAM.MSG.GET.KV_EMBEDPIPE_JOBS
//	           $JS.API.CONSUMER.CREATE.KV_EMBEDPIPE_JOBS.>   (watchers)
//	           $JS.API.CONSUMER.DELETE.KV_EMBEDPIPE_JOBS.>
//	           $KV.EMBEDPIPE_JOBS.>
//	           embedpipe.dlq.>
//	subscribe: _INBOX.>
//
// submit (and a worker that creates the layout) also needs
// $JS.API.STREAM.CREATE|UPDATE|INFO.<the three streams>,
// $JS.API.CONSUMER.CREATE|DURABLE.CREATE.EMBEDPIPE_TASKS.> and publish on
// embedpipe.task.>; status needs the bucket read permissions above. The
// embed service needs subscribe on embedpipe.embed and $SRV.>, and publish
// on _INBOX.> (its replies). Secrets (passwords, tokens, seeds) are never
// logged: URLs are logged through Redact.
//
// # Streaming
//
// RunStream pulls text records in batches with a durable consumer, embeds a
// batch with one encoder call, publishes one record per text with
// Nats-Msg-Id "<from stream>:<sequence>" and acks the batch only after every
// publish is acknowledged by the destination stream: at least once, with the
// duplicates of a redelivery dropped by the destination's duplicate window.
//
// # Embed service
//
// Service queues requests in a bounded queue (full: error 503) and batches
// them dynamically: a batch closes at BatchTokens estimated tokens or
// MaxWait after its first request. Requests with the same prompt share an
// encoder call; each reply holds its own texts' vectors in request order, as
// JSON (schemas.EmbedReply) or an Arrow IPC stream. Errors are NATS service
// errors with codes 400, 413, 500, 503 and 504.
//
// Every goroutine has an owner: Worker.Run waits for its task goroutines
// (each owning one heartbeat goroutine); Service.Stop waits for its
// batchers; RunStream runs on its caller's goroutine.
package workers
