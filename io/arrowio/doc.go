// Package arrowio reads and writes Arrow IPC data: the random-access file
// format (.arrow, .feather version 2) and the streaming format (.arrows).
//
// Record batches are re-sliced into chunks of at most ChunkRows rows so that
// memory per chunk is bounded whatever batch sizes the producer chose; the
// chunk's RowGroup is the index of the record batch it came from. Decoding
// errors, including panics in the decoder caused by corrupt bytes, come back
// as errors wrapping fileio.ErrCorrupt that name the file, batch and row.
package arrowio
