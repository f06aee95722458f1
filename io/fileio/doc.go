// Package fileio holds what every embedpipe file format shares: the Chunk
// that readers hand out, the Reader and Writer contracts, the sentinel errors,
// helpers that read a text column whatever its Arrow string encoding, and
// AtomicFile, which makes a final output file appear complete or not at all.
//
// A Chunk is a slice of consecutive rows of one input file, carried as an
// Arrow record (the in-memory row-batch form of the whole project) together
// with its position in the file (row group, first row, sequence number), so
// that errors can name the file, row group and row, and checkpoints can name
// a chunk that is the same on every run over the same file.
package fileio
