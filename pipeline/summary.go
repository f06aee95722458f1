package pipeline

import (
	"encoding/json"
	"time"
)

// Summary accounts for every row of a run: RowsIn == RowsOut + Skipped.
// Nulls and Errors (rows nulled by OnErrorNull) are among RowsOut. A
// chunked run (Config.ChunkTokens) counts input rows the same way and its
// output rows, one per chunk, in ChunksOut.
type Summary struct {
	Files        int   `json:"files"`
	RowsIn       int64 `json:"rows_in"`
	RowsOut      int64 `json:"rows_out"`
	Nulls        int64 `json:"nulls"`
	InvalidUTF8  int64 `json:"invalid_utf8"`
	Truncated    int64 `json:"truncated"`
	Skipped      int64 `json:"skipped"`
	Errors       int64 `json:"errors"`
	Resumed      int64 `json:"resumed_rows"`
	Embedded     int64 `json:"embedded"`
	Deduplicated int64 `json:"deduplicated"`
	CacheHits    int64 `json:"cache_hits"`
	Tokens       int64 `json:"tokens"`
	Batches      int64 `json:"batches"`
	// PaddedTokens is what an engine padding each batch to its longest
	// sequence would have computed; PaddingWaste = 1 - Tokens/PaddedTokens of
	// the encoded batches.
	PaddedTokens int64   `json:"padded_tokens"`
	PaddingWaste float64 `json:"padding_waste"`
	// EncodedTokens counts the tokens actually sent to the encoder (after
	// deduplication and cache hits).
	EncodedTokens int64 `json:"encoded_tokens"`
	// ResumedTokens counts the EncodedTokens of the chunks a resumed run
	// took from its checkpoint, which this run did not encode.
	ResumedTokens int64 `json:"resumed_encoded_tokens,omitempty"`
	// ChunksOut is the number of output rows of a chunked run, one per
	// chunk of the RowsOut input rows (0 when not chunking).
	ChunksOut   int64   `json:"chunks_out,omitempty"`
	WallSeconds float64 `json:"wall_seconds"`
	// TokensPerSec and RowsPerSec are the tokens this run encoded
	// (EncodedTokens less ResumedTokens: deduplicated rows, cache hits and
	// resumed chunks are not encoded) and the rows it read anew (RowsIn
	// less Resumed) per second of wall time.
	TokensPerSec float64 `json:"tokens_per_s"`
	RowsPerSec   float64 `json:"rows_per_s"`
	// TotalRows is the number of rows the inputs hold when known up front
	// (Parquet, Arrow IPC files), for progress bars; 0 when unknown.
	TotalRows int64    `json:"total_rows,omitempty"`
	Outputs   []string `json:"outputs"`
	// Stopped, set when the run ended early, names the input it stopped
	// in and why. After a failure the counts are those of the written
	// Outputs only; after an interruption they include the stopped file's
	// checkpointed rows, which a resumed run picks up.
	Stopped *Stop `json:"stopped,omitempty"`
}

// Stop says where a run that ended early stopped.
type Stop struct {
	// Input is the file being read; Output is the one it would have made
	// (not written).
	Input  string `json:"input"`
	Output string `json:"output"`
	// Error is the error that ended the run; it names the row group and
	// row when the failure lies in the data.
	Error string `json:"error"`
	// Interrupted is true for a run stopped by its context (SIGINT,
	// SIGTERM) rather than by a failure.
	Interrupted bool `json:"interrupted,omitempty"`
}

func (s *Summary) add(o chunkStats) {
	s.RowsIn += o.Rows
	s.RowsOut += o.Rows - o.Skipped
	s.Nulls += o.Nulls
	s.InvalidUTF8 += o.InvalidUTF8
	s.Truncated += o.Truncated
	s.Skipped += o.Skipped
	s.Errors += o.Errors
	s.Embedded += o.Embedded
	s.Deduplicated += o.Deduplicated
	s.CacheHits += o.CacheHits
	s.Tokens += o.Tokens
	s.Batches += o.Batches
	s.PaddedTokens += o.PaddedTokens
	s.EncodedTokens += o.EncodedTokens
	s.ChunksOut += o.Chunks
}

// Merge adds the counts of o, the summary of another file or run, to s;
// Finish then derives the rates.
func (s *Summary) Merge(o Summary) {
	s.RowsIn += o.RowsIn
	s.RowsOut += o.RowsOut
	s.Nulls += o.Nulls
	s.InvalidUTF8 += o.InvalidUTF8
	s.Truncated += o.Truncated
	s.Skipped += o.Skipped
	s.Errors += o.Errors
	s.Resumed += o.Resumed
	s.Embedded += o.Embedded
	s.Deduplicated += o.Deduplicated
	s.CacheHits += o.CacheHits
	s.Tokens += o.Tokens
	s.Batches += o.Batches
	s.PaddedTokens += o.PaddedTokens
	s.EncodedTokens += o.EncodedTokens
	s.ResumedTokens += o.ResumedTokens
	s.ChunksOut += o.ChunksOut
	s.TotalRows += o.TotalRows
}

// Finish sets the wall time since start and the rates and padding waste
// derived from the counts.
func (s *Summary) Finish(start time.Time) {
	s.WallSeconds = time.Since(start).Seconds()
	if s.PaddedTokens > 0 {
		s.PaddingWaste = 1 - float64(s.EncodedTokens)/float64(s.PaddedTokens)
	}
	if s.WallSeconds > 0 {
		s.TokensPerSec = float64(s.EncodedTokens-s.ResumedTokens) / s.WallSeconds
		s.RowsPerSec = float64(s.RowsIn-s.Resumed) / s.WallSeconds
	}
}

// chunkStats are the counts of one chunk, stored with its checkpoint so a
// resumed run reports the same totals as an uninterrupted one.
type chunkStats struct {
	Seq           int   `json:"seq"`
	FirstRow      int64 `json:"first_row"`
	Rows          int64 `json:"rows"`
	Nulls         int64 `json:"nulls"`
	InvalidUTF8   int64 `json:"invalid_utf8"`
	Truncated     int64 `json:"truncated"`
	Skipped       int64 `json:"skipped"`
	Errors        int64 `json:"errors"`
	Embedded      int64 `json:"embedded"`
	Deduplicated  int64 `json:"deduplicated"`
	CacheHits     int64 `json:"cache_hits"`
	Tokens        int64 `json:"tokens"`
	Batches       int64 `json:"batches"`
	PaddedTokens  int64 `json:"padded_tokens"`
	EncodedTokens int64 `json:"encoded_tokens"`
	// Chunks counts the output rows of a chunked run (Config.ChunkTokens).
	Chunks int64 `json:"chunks,omitempty"`
	// RowErrors lists the rows of the chunk that could not be embedded.
	RowErrors []RowError `json:"row_errors,omitempty"`
}

// RowError names one row that could not be embedded and why.
type RowError struct {
	File string `json:"file"`
	// RowGroup is the Parquet row group (or Arrow record batch) of the row;
	// -1, and left out of the JSON form, for formats without groups.
	RowGroup int     `json:"row_group"`
	Row      int64   `json:"row"`
	Action   OnError `json:"action"`
	Error    string  `json:"error"`
}

// rowErrorJSON is RowError's JSON form, which has no row group for formats
// without groups (JSONL, CSV).
type rowErrorJSON struct {
	File     string  `json:"file"`
	RowGroup *int    `json:"row_group,omitempty"`
	Row      int64   `json:"row"`
	Action   OnError `json:"action"`
	Error    string  `json:"error"`
}

// MarshalJSON leaves the row group out when the format has none.
func (e RowError) MarshalJSON() ([]byte, error) {
	j := rowErrorJSON{File: e.File, Row: e.Row, Action: e.Action, Error: e.Error}
	if e.RowGroup >= 0 {
		j.RowGroup = &e.RowGroup
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (e *RowError) UnmarshalJSON(b []byte) error {
	var j rowErrorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = RowError{File: j.File, RowGroup: -1, Row: j.Row, Action: j.Action, Error: j.Error}
	if j.RowGroup != nil {
		e.RowGroup = *j.RowGroup
	}
	return nil
}
