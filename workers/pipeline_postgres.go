package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/embedpipe/embedpipe/encoder"
	"io"
	"os"
	"path/filepath"

	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/parquetio"
	"github.com/embedpipe/embedpipe/io/pgsink"
	"github.com/embedpipe/embedpipe/io/sink"
	"github.com/embedpipe/embedpipe/pipeline"
	"github.com/embedpipe/embedpipe/schemas"
)

// pgLoadRows is the rows per COPY of a task's load (all of them in the
// task's one transaction), as embed's loads.
const pgLoadRows = 2048

// PostgresOptions returns the pgsink options of a job or task whose output
// is a Postgres table: its URL (without a password: pgx takes it from
// PGPASSWORD or ~/.pgpass), table, id column, index and distance, with the
// precision and embedding column of the job.
func PostgresOptions(out schemas.Output, o schemas.Options) (pgsink.Options, error) {
	p := out.Postgres
	if p == nil {
		return pgsink.Options{}, fmt.Errorf("%w: the output is not a Postgres table", ErrBadOptions)
	}
	idx, err := pgsink.ParseIndex(p.Index)
	if err != nil {
		return pgsink.Options{}, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	dist, err := pgsink.ParseDistance(p.Distance)
	if err != nil {
		return pgsink.Options{}, fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	col := out.Column
	if col == "" {
		col = "embedding"
	}
	po := pgsink.Options{URL: p.URL, Table: p.Table, IDColumn: p.IDColumn, EmbeddingColumn: col,
		Precision: o.Precision, Index: idx, Distance: dist, IndexMemory: p.IndexMemory}
	if o.ChunkTokens > 0 {
		// One row per chunk, keyed as embed keys them: (id column,
		// chunk_index), or the default "<file>:<row>:<chunk>".
		po.ChunkColumn = pipeline.ChunkIndexColumn
	}
	return po, nil
}

// OutputName names a job's output in its status and logs: the directory,
// or the Postgres URL (without a password) and table as url#table.
func OutputName(out schemas.Output) string {
	if out.Postgres != nil {
		return pgsink.Redact(out.Postgres.URL) + "#" + out.Postgres.Table
	}
	return out.Dir
}

// JobRunKeyPrefix starts the progress-table run keys of every task of job
// id.
func JobRunKeyPrefix(id string) string { return "job:" + id + ":" }

// TaskRunKey is the run key of task t in the progress table: the job id
// and a digest of the task message, so that a redelivery (the same
// message) finds its record and a job submitted again under a reused id
// with other inputs or options does not. The task index is the seq.
func TaskRunKey(t schemas.Task) string {
	b, _ := json.Marshal(t)
	h := sha256.Sum256(b)
	return JobRunKeyPrefix(t.JobID) + hex.EncodeToString(h[:8])
}

// permanentPostgres reports the pgsink errors that no retry can fix.
func permanentPostgres(err error) bool {
	for _, e := range []error{pgsink.ErrOptions, pgsink.ErrExtension, pgsink.ErrTableShape, pgsink.ErrPrecision,
		pgsink.ErrDimension, pgsink.ErrColumnType, pgsink.ErrRow} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (r *PipelineRunner) pgError(t schemas.Task, err error) error {
	if permanentPostgres(err) {
		return fmt.Errorf("%w: task %s/%d: %w", ErrPermanent, t.JobID, t.Index, err)
	}
	return fmt.Errorf("workers: task %s/%d: %w", t.JobID, t.Index, err)
}

// workDir is where the embedded rows of a Postgres task wait for the load.
func (r *PipelineRunner) workDir() string {
	if r.WorkDir != "" {
		return r.WorkDir
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "embedpipe", "pgtasks")
}

// runPostgres runs a task whose output is a Postgres table: the rows are
// embedded by the pipeline into a Parquet file in the work directory
// (resumable through its checkpoints, like a part), then loaded in one
// transaction with the task's progress row. A task whose progress row is
// there already (its load committed, then its worker died before the ack)
// is not embedded again: it changes nothing.
func (r *PipelineRunner) runPostgres(ctx context.Context, t schemas.Task, input string) (PartInfo, error) {
	po, err := PostgresOptions(t.Output, t.Options)
	if err != nil {
		return PartInfo{}, fmt.Errorf("%w: task %s/%d: %w", ErrPermanent, t.JobID, t.Index, err)
	}
	key := TaskRunKey(t)
	log := r.logger().With("job", t.JobID, "task", t.Index)
	if rows, done, err := pgsink.TaskDone(ctx, po, key, t.Index); err != nil {
		return PartInfo{}, r.pgError(t, err)
	} else if done {
		log.Info("task already loaded", "table", po.Table, "rows", rows)
		return PartInfo{Name: t.Part, Rows: rows}, nil
	}
	dir := filepath.Join(r.workDir(), t.JobID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return PartInfo{}, fmt.Errorf("workers: task %s/%d: work directory: %w", t.JobID, t.Index, err)
	}
	out := filepath.Join(dir, t.Part)
	sparseMax := 0
	if r.Model.Info().Kind == encoder.KindSparse {
		// A sparse encoder's vectors go to sparsevec(vocabulary), and a
		// vector over pgvector's entry limit is a row error of the run,
		// as embed --output postgres:// does it.
		po.Precision, po.Dim = pgsink.PrecisionSparse, r.Model.Dim()
		sparseMax = pgsink.SparseEntryLimit(po)
	}
	sum, err := r.embedPart(ctx, t, input, out, sparseMax)
	if err != nil {
		return PartInfo{}, err
	}
	first, err := taskFirstRow(t, input)
	if err != nil {
		return PartInfo{}, err
	}
	rd, err := dataset.Open(out, dataset.ReadOptions{ChunkRows: pgLoadRows, ChunkBytes: -1})
	if err != nil {
		return PartInfo{}, fmt.Errorf("workers: task %s/%d: %w", t.JobID, t.Index, err)
	}
	defer rd.Close()
	s, err := pgsink.Open(ctx, po, rd.Schema())
	if err != nil {
		return PartInfo{}, r.pgError(t, err)
	}
	defer s.Close(context.Background())
	name := filepath.Base(t.Input.Path)
	want := sum.RowsOut
	chunked := rd.Schema().HasField(pipeline.ChunkIndexColumn)
	if chunked {
		want = sum.ChunksOut // one table row per chunk
	}
	log.Info("task loading", "table", po.Table, "rows", want)
	next := first // the input row of the next chunk 0, as sink.Batch.ChunkKeys counts
	res, err := s.WriteTx(ctx, key, t.Index, func(yield func(pgsink.Batch) error) error {
		for {
			c, err := rd.Next(ctx)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			n := c.Record.NumRows()
			if n == 0 {
				c.Record.Release()
				continue
			}
			sb := sink.Batch{Record: c.Record, FirstRow: first + c.FirstRow}
			if chunked {
				if err := sb.ChunkKeys(pipeline.ChunkIndexColumn, &next); err != nil {
					c.Record.Release()
					return fmt.Errorf("%w: task %s/%d: %s: %w", ErrPermanent, t.JobID, t.Index, out, err)
				}
			}
			b := pgsink.Batch{Record: c.Record, Where: fmt.Sprintf("task %d: %s rows %s to %s", t.Index, name, sb.Key(0), sb.Key(int(n)-1))}
			if po.IDColumn == "" {
				b.Keys = make([]string, n)
				for i := range b.Keys {
					b.Keys[i] = name + ":" + sb.Key(i) // <file>:<row>[:<chunk>], as embed's
				}
			}
			err = yield(b)
			c.Record.Release()
			if err != nil {
				return err
			}
		}
	})
	if err != nil {
		return PartInfo{}, r.pgError(t, err)
	}
	rows := res.Inserted + res.Updated
	if res.Skipped {
		// Another delivery of the task committed while this one embedded.
		if rows, _, err = pgsink.TaskDone(ctx, po, key, t.Index); err != nil {
			return PartInfo{}, r.pgError(t, err)
		}
	} else if rows != want {
		return PartInfo{}, fmt.Errorf("%w: task %s/%d: %d rows embedded, %d loaded", ErrPermanent, t.JobID, t.Index, want, rows)
	}
	log.Info("task loaded", "table", po.Table, "rows", rows, "new", res.Inserted, "updated", res.Updated, "skipped", res.Skipped)
	_ = os.Remove(out)
	return PartInfo{Name: t.Part, Rows: rows, Tokens: sum.Tokens}, nil
}

// taskFirstRow is the 0-based input row of the task's first row: the rows
// of the Parquet row groups before it (0 for a whole file), so that the
// default ids "<input file>:<row>" are those embed gives the same input.
func taskFirstRow(t schemas.Task, input string) (int64, error) {
	if t.RowGroupLo == 0 {
		return 0, nil
	}
	rgs, err := parquetio.RowGroups(input)
	if err != nil {
		return 0, fmt.Errorf("workers: task %s/%d: %w", t.JobID, t.Index, err)
	}
	if t.RowGroupLo > len(rgs) {
		return 0, fmt.Errorf("%w: task %s/%d: %s has %d row groups, the task starts at %d", ErrPermanent, t.JobID, t.Index, input, len(rgs), t.RowGroupLo)
	}
	var n int64
	for _, rg := range rgs[:t.RowGroupLo] {
		n += rg.NumRows
	}
	return n, nil
}
