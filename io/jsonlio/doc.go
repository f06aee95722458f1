// Package jsonlio reads and writes JSON Lines: one JSON object per line.
//
// The reader infers an Arrow schema from the first InferLines lines (string,
// bool, int64, float64, lists and structs, in first-seen key order; columns
// that are always null become strings) and then decodes every line with
// arrow's record builder. A key that first appears after the inference window,
// a value of another type than inferred, or a line that is not a JSON object
// is an error naming the file and line: rows are never dropped silently.
//
// JSON decoders replace invalid UTF-8 with U+FFFD while decoding, so the
// reader checks each raw line and reports, in Chunk.ReplacedUTF8, the rows
// whose line held invalid UTF-8, for the pipeline to count.
//
// The writer writes each row as an object with the schema's keys in order;
// fixed-size float32 lists (embeddings) are written as number arrays with the
// shortest decimal form that reads back to the same float32.
package jsonlio
