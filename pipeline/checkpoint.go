package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/embedpipe/embedpipe/io/arrowio"
	"github.com/embedpipe/embedpipe/io/fileio"
)

// A checkpoint directory sits next to an output file F as ".F.embedpipe/".
// It holds manifest.json, naming what the run reads and how, and one Arrow
// IPC file per finished chunk, part-<seq>.arrow, written atomically. A part's
// schema metadata carries the chunk's chunkStats. When every chunk has a part
// the parts are merged, in order, into F (atomically), then the directory is
// removed. A kill at any moment leaves only whole parts, so a rerun skips the
// chunks that have one and the final file holds every row exactly once.

const (
	manifestName = "manifest.json"
	statsKey     = "embedpipe.chunk_stats"
)

// manifest identifies a run: a checkpoint made under another manifest cannot
// be resumed.
type manifest struct {
	Version    int    `json:"version"`
	Input      string `json:"input"`
	InputSize  int64  `json:"input_size"`
	InputMTime int64  `json:"input_mtime_ns"`
	RowGroupLo int    `json:"row_group_lo"`
	RowGroupHi int    `json:"row_group_hi"`
	ChunkRows  int    `json:"chunk_rows"`
	ChunkBytes int64  `json:"chunk_bytes,omitempty"`
	Model      string `json:"model"`
	Options    string `json:"options"`
}

func checkpointDir(output string) string {
	dir, base := filepath.Split(output)
	return filepath.Join(dir, "."+base+".embedpipe")
}

func partPath(dir string, seq int) string {
	return filepath.Join(dir, fmt.Sprintf("part-%09d.arrow", seq))
}

// optionsKey hashes every option of a resolved config that changes the
// numbers or rows written.
func optionsKey(c *Config) string {
	h := sha256.New()
	fmt.Fprintf(h, "col=%q out=%q prompt=%q value=%s trunc=%d norm=%v maxlen=%d onerr=%s",
		c.Column, c.OutputColumn, c.Prompt, c.OutputValue, c.TruncateDim, *c.Normalize, c.MaxLength, c.OnError)
	if c.DocumentColumn != "" {
		// Only Scores runs have these, so embedding runs keep their keys.
		fmt.Fprintf(h, " doc=%q logit=%q", c.DocumentColumn, c.LogitColumn)
	}
	if c.SparseTopK > 0 {
		fmt.Fprintf(h, " topk=%d", c.SparseTopK)
	}
	if c.SparseMaxEntries > 0 {
		fmt.Fprintf(h, " maxentries=%d", c.SparseMaxEntries)
	}
	if c.ChunkTokens > 0 {
		fmt.Fprintf(h, " chunk=%d overlap=%d mode=%s", c.ChunkTokens, c.ChunkOverlap, c.ChunkMode)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// openCheckpoint prepares dir for a run described by want: it returns the
// stats of the chunks already done (by Seq), or an error wrapping
// ErrCheckpoint when dir holds another run's work and resume is set.
func openCheckpoint(dir string, want manifest, resume bool) (map[int]chunkStats, error) {
	if !resume {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
	}
	done := map[int]chunkStats{}
	data, err := os.ReadFile(filepath.Join(dir, manifestName))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// A directory without a manifest was never used: start clean.
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		// Not fsynced, like the parts: after an OS crash an unreadable
		// manifest means an unusable checkpoint, which is started afresh.
		js, _ := json.MarshalIndent(want, "", "  ")
		return done, fileio.WriteFileAtomicNoSync(filepath.Join(dir, manifestName), js)
	case err != nil:
		return nil, err
	}
	var got manifest
	if err := json.Unmarshal(data, &got); err != nil {
		// Damaged by an OS crash (it is written without fsync): start over.
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		return openCheckpoint(dir, want, resume)
	}
	if got != want {
		return nil, fmt.Errorf("%w: %s was made by a run with another input, model or options; rerun with --resume=false to start over", ErrCheckpoint, dir)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			os.Remove(filepath.Join(dir, name)) // a temp file of a killed run
			continue
		}
		if !strings.HasPrefix(name, "part-") || !strings.HasSuffix(name, ".arrow") {
			continue
		}
		seq, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "part-"), ".arrow"))
		if err != nil {
			continue
		}
		st, err := readPartStats(filepath.Join(dir, name))
		if err != nil {
			// A part is renamed into place only once complete, so this is
			// damage from outside: redo the chunk.
			os.Remove(filepath.Join(dir, name))
			continue
		}
		done[seq] = st
	}
	return done, nil
}

func readPartStats(path string) (chunkStats, error) {
	var st chunkStats
	f, err := os.Open(path)
	if err != nil {
		return st, err
	}
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil {
		return st, err
	}
	defer r.Close()
	md := r.Schema().Metadata()
	i := md.FindKey(statsKey)
	if i < 0 {
		return st, fmt.Errorf("%s: no chunk stats", path)
	}
	err = json.Unmarshal([]byte(md.Values()[i]), &st)
	return st, err
}

// writePart writes rec as the checkpoint of one chunk.
func writePart(ctx context.Context, dir string, rec arrow.Record, st chunkStats) error {
	js, err := json.Marshal(st)
	if err != nil {
		return err
	}
	md := arrow.NewMetadata([]string{statsKey}, []string{string(js)})
	schema := arrow.NewSchema(rec.Schema().Fields(), &md)
	// Parts are not fsynced: a rename survives a killed process, and after
	// an OS crash a part that does not read back is redone (openCheckpoint).
	w, err := arrowio.Create(partPath(dir, st.Seq), schema, arrowio.WriteOptions{NoSync: true})
	if err != nil {
		return err
	}
	defer w.Abort()
	r2 := withSchema(rec, schema)
	defer r2.Release()
	if err := w.Write(ctx, r2); err != nil {
		return err
	}
	return w.Commit()
}

// readParts calls fn with the record of every part from lo to hi-1, in
// order.
func readParts(ctx context.Context, dir string, lo, hi int, fn func(seq int, rec arrow.Record) error) error {
	for seq := lo; seq < hi; seq++ {
		r, err := arrowio.Open(partPath(dir, seq), arrowio.ReadOptions{ChunkRows: 1 << 30})
		if err != nil {
			return err
		}
		for {
			c, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				return err
			}
			err = fn(seq, c.Record)
			c.Record.Release()
			if err != nil {
				r.Close()
				return err
			}
		}
		r.Close()
	}
	return nil
}
