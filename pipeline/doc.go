// Package pipeline embeds the text column of data files in a streaming,
// checkpointed run:
//
//	reader → tokenizer workers → length-sorted token-budget batches
//	       → encoder workers → part writer → (at the end) ordered merge
//
// # API
//
// One call embeds one or more input files:
//
//	sum, err := pipeline.Run(ctx, model, pipeline.Config{
//		Inputs: []pipeline.Input{{Path: "big.parquet", RowGroupLo: 4, RowGroupHi: 8}},
//		Output: "out/big.rg4-8.parquet",
//		Column: "text", OutputColumn: "embedding",
//		Precision: "float32", BatchSize: 64, MaxBatchTokens: 8192,
//		Resume: true, OnError: pipeline.OnErrorFail,
//	})
//
// model is anything that satisfies Model (an *encoder.Model). Run blocks
// until the output file is committed (or an error, or ctx is done); the
// Summary accounts for every row: RowsIn == RowsOut + Skipped. A NATS worker
// runs one task per call, with one Input restricted to a row-group range
// [RowGroupLo, RowGroupHi) (see parquetio.RowGroups to plan the ranges) and
// its own Output path; the output file appears atomically, so acknowledging
// the task after Run returns nil is safe. Tokenize is the same flow for the
// tokenize command.
//
// # Seams
//
// Run resolves the Config once (WithDefaults: every default, the prompt
// text, the max length, the normalization choice, and the reason for any
// option the model cannot honour) and hands every dense vector to the
// embedding seam, package encoder/embed: the batches are cut by its token
// budget (embed.Config.Fits), and pooling (prompt tokens left out when the
// model's pooling says include_prompt false), truncation, normalization and
// quantization are its. The output goes through the output seam, package
// io/sink: the ordered writer and the int8/uint8 merge share one
// convert-and-write path (outWriter) onto a sink.Sink. The code is split by
// concern: run.go orchestrates, stages.go runs the goroutines, plan.go plans
// batches, encode.go encodes, rows.go applies the row-error policy.
//
// # Stages and ownership
//
// Each input file is read in chunks (DefaultChunkRows rows, fewer when the
// rows are wide: a Parquet chunk holds at most DefaultChunkBytes of
// uncompressed input as estimated from the footer; never spanning two
// Parquet row groups). A chunk is also the length-sorting
// window: its texts are tokenized, identical texts are embedded once, cached
// texts are served from Config.CacheDir, and the rest are sorted by length
// and cut into batches of at most BatchSize sequences and MaxBatchTokens
// real tokens. The encoder runs on unpadded concatenated sequences, so
// padding costs nothing here; Summary.PaddingWaste reports what an engine
// padding each batch to its longest sequence would have wasted.
//
// Queues are bounded channels and a semaphore caps the chunks in flight, so
// memory is the model plus a per-chunk and per-batch term, whatever the
// input size (see Memory). Every
// goroutine is started and waited for by Run: the reader stops at EOF, on an
// error or when ctx is done; the workers stop when their input channel
// closes; a stage error cancels an internal context that every blocking send
// watches.
//
// # Memory
//
// MemoryBound computes what a run holds beyond the model, W being
// Config.Workers:
//
//	chunks   (W + min(W,4) + 2) × (3·ChunkBytes + ChunkRows·MaxLen·4 + 2·ChunkRows·Dim·4)
//	         (token_embeddings: 2·ChunkRows·MaxLen·Hidden·4 instead of the last term)
//	io       2·parquetio.DefaultRowGroupBytes + 2·parquetio.DefaultPageBytes
//	encoder  W × (1.25·4·(MaxBatchTokens·(5·Hidden + Intermediate) + MaxLen²) + BatchSize·Dim·4)
//	memo     16 MiB (sentence embeddings)
//
// The input record counts twice its bytes (Arrow builders grow by
// doubling), the output record once; the writer's row group keeps slices
// of chunk buffers; the encoder term is the activations of a full batch
// and one head's attention scores. With the defaults this is 174 MiB for
// tiny-bert and 437 MiB for minilm-l6-shape with 2 workers (token_embeddings
// 255 MiB and 2.7 GiB: that bound assumes every row at MaxLen tokens).
// Input pages count at DefaultPageBytes: a foreign file with larger pages,
// or dictionary-encoded wide columns (which decode to more than the footer
// says), costs more. The embed command sets the Go runtime's soft memory
// limit to the model's memory plus 1.25 × MemoryBound (--memory-limit; a
// GOMEMLIMIT in the environment wins): under the collector's default
// pacing alone, peak RSS creeps up with the length of the run (fragmentation,
// freed pages returned lazily, the largest live heap seen), with the limit
// it stays put.
//
// Chunked runs (Config.ChunkTokens) do not truncate: a chunk of input rows
// holds every token of its texts (with their offsets) and a vector per text
// chunk, bounded through the chunk's bytes (DefaultChunkBytes for Parquet;
// formats chunked by rows only hold what their rows hold), the chunk_text
// column N/(N-M) times the text. A small N-M multiplies the output.
//
// # Chunking
//
// Config.ChunkTokens cuts each text into chunks and writes one output row
// per chunk (see chunk.go for the rules: word-start boundaries, M shared
// tokens, coverage; the columns; the split and late modes and the row
// policy).
//
// # Checkpoints and resume
//
// A finished chunk is written atomically as an Arrow IPC part file in
// ".<output>.embedpipe/" next to the output, with the chunk's counts in its
// schema metadata. When every chunk has a part the parts are merged in order
// into the output (atomically, converting to the output precision; int8 and
// uint8 ranges are computed over all parts first), and the directory is
// removed. When ctx is done (SIGINT/SIGTERM in the CLI) Run stops reading,
// lets the chunks in flight finish and checkpoint, and returns an error
// wrapping ErrInterrupted. After a SIGKILL at any moment a rerun with Resume
// skips the chunks that have parts; the manifest in the directory makes a
// rerun with another model, input or options fail with ErrCheckpoint rather
// than mix outputs.
//
// # Bad input
//
// Empty and whitespace texts are embedded normally; a null text gives a null
// embedding; invalid UTF-8 is replaced by U+FFFD and counted; truncated
// texts are counted. A row the encoder rejects (for example a text that
// yields no tokens with a tokenizer that adds no special tokens) follows
// Config.OnError: fail the run naming file, row group and row, skip the row,
// or write a null; skipped and nulled rows are listed in Config.ErrorsPath.
//
// # Output options
//
// TruncateDim keeps the first N dimensions and then normalizes (for models
// that normalize, or when Normalize is set), as sentence-transformers does
// with truncate_dim and normalize_embeddings. Precision converts as
// sentence-transformers' quantize_embeddings: float16; int8/uint8 with
// ranges from Config.Ranges or the min/max over the whole run; binary and
// ubinary packing e > 0 bits most significant first.
//
// # Measurements
//
// Peak RSS and end-to-end over encoder-only ratios, with how they were
// measured, are kept in bench/pipeline.md (BenchmarkPeakRSS and
// BenchmarkCorpus in bench_test.go reproduce them).
package pipeline
