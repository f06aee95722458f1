// Package sink is embedpipe's one output seam: where embedded rows go. A
// Sink takes Batches of rows, each an Arrow record holding the input's
// pass-through columns and the output columns (the embedding, and for some
// outputs token strings or sparse weights), and makes them durable on
// Commit. The file writers of io/parquetio, io/arrowio and io/jsonlio are
// Sinks through File; database sinks (io/pgsink) and sparse outputs
// implement the same interface, so the pipeline's ordered writer and its
// int8-range merge write through one code path whatever the destination.
//
// Vectors reads the flat row-major float32 values of an embedding column
// back out of a Batch for sinks that store vectors rather than records.
package sink
