package pipeline

import "github.com/embedpipe/embedpipe/io/parquetio"

// inflightChunks is the number of chunks a run holds at once (read, being
// tokenized, encoded or written, or waiting for the ordered sink): the
// capacity of the semaphore of the stages.
func inflightChunks(workers int) int {
	return workers + tokenizerWorkers(workers) + 2
}

// tokenizerWorkers is the number of goroutines that tokenize chunks.
func tokenizerWorkers(workers int) int { return max(1, min(workers, 4)) }

// MemoryBound returns an upper bound, in bytes, on the memory Run holds
// beyond the model for a run described by cfg, whatever the size of the
// input (the terms are listed in the package documentation under Memory).
// It does not count garbage awaiting collection: the embed command sets a
// soft memory limit of the model plus 1.25 times this bound, anchored on the
// bound rather than on the moving live heap, so that peak RSS does not creep
// up with the length of the run.
func MemoryBound(m Model, cfg Config) int64 {
	// An invalid config fails Run before it holds anything; its bound is
	// still that of its defaulted fields, which WithDefaults fills first.
	c, _ := cfg.WithDefaults(m)
	info := m.Info()
	rows := int64(c.ChunkRows)
	chunkBytes := c.ChunkBytes
	if chunkBytes <= 0 {
		chunkBytes = DefaultChunkBytes
	}
	maxLen := int64(c.MaxLength)
	if maxLen <= 0 {
		maxLen = 512
	}
	const f32 = 4
	// Per chunk: the input record (Arrow builders grow by doubling, so up to
	// twice its bytes), the output record and part built from it, the token
	// ids, and the float32 embeddings twice (per unique text, then per row).
	perChunk := 3*chunkBytes + rows*maxLen*4
	switch c.OutputValue {
	case TokenEmbeddings:
		perChunk += 2 * rows * maxLen * int64(m.Hidden()) * f32
	case SparseEmbedding:
		// An index and a value per entry, per unique text and per row.
		perChunk += 2 * rows * int64(c.sparseEntries(m)) * 8
	default:
		perChunk += 2 * rows * int64(c.outDim(m)) * f32
	}
	if c.ChunkTokens > 0 {
		// Chunked texts are not truncated: a chunk's text bytes bound its
		// tokens (a token covers a byte or more, or shares a character of
		// up to 4 bytes with at most 3 others). Per token: its id twice
		// (the text's, and the chunk's or document's sequence), its offset
		// and its word flag; per text chunk (at most tokens/(N-M) plus one
		// a row): its vector twice and its share of chunk_text, which holds
		// the text N/(N-M) times over, in the builder and the part.
		step := int64(max(1, c.ChunkTokens-c.ChunkOverlap)) // an invalid overlap fails Run later
		textChunks := chunkBytes/step + rows
		perChunk += chunkBytes*(2*4+16+1) + 2*textChunks*int64(c.outDim(m))*f32 + 2*chunkBytes*int64(c.ChunkTokens)/step
	}
	chunks := int64(inflightChunks(c.Workers)) * perChunk
	// The Parquet writer gathers a row group, whose slices keep whole chunk
	// buffers alive (up to twice the bytes counted), and the reader decodes
	// a page at a time (a compressed and an uncompressed copy).
	io := 2*int64(parquetio.DefaultRowGroupBytes) + 2*parquetio.DefaultPageBytes
	// Per encoder worker: the activations of a batch of MaxBatchTokens
	// tokens (hidden state, Q, K, V, attention context, FFN intermediate) and
	// one head's attention scores of the longest sequence, with the scratch
	// buffers' 25% growth head room, plus the pooled output.
	h, inter := int64(info.Hidden), int64(info.Intermediate)
	if inter <= 0 {
		inter = 4 * h
	}
	perWorker := 5*f32*(int64(c.MaxBatchTokens)*(5*h+inter)+maxLen*maxLen)/4 + int64(c.BatchSize)*int64(m.Dim())*f32
	if c.OutputValue == TokenEmbeddings {
		perWorker += int64(c.MaxBatchTokens) * h * f32
	}
	if sp := info.Sparse; sp != nil && c.OutputValue == SparseEmbedding {
		// The tiled vocabulary projection and a batch's vectors.
		perWorker += int64(sp.ScratchBytes) + int64(c.BatchSize)*int64(c.sparseEntries(m))*8
	}
	workers := int64(c.Workers) * perWorker
	var memoTerm int64
	if c.OutputValue == SentenceEmbedding || c.OutputValue == Scores {
		memoTerm = memoBytes
	}
	return chunks + io + workers + memoTerm
}
