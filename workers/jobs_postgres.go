package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/pgsink"
	"github.com/embedpipe/embedpipe/pipeline"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// CheckPostgres validates the Postgres table that job's output names
// before the job is submitted, so that a job that cannot load fails at
// once with the reason rather than after its tasks were embedded: the
// server must be reachable with url (the job's URL, which may carry the
// password that the job record leaves out), the database must have
// pgvector, and an existing table must have the shape the job writes
// (pgsink.CheckTable on each input's columns). Errors wrap pgsink's
// sentinels.
func CheckPostgres(ctx context.Context, job schemas.Job, url string) error {
	po, err := PostgresOptions(job.Output, job.Options)
	if err != nil {
		return err
	}
	if url != "" {
		po.URL = url
	}
	for _, in := range job.Inputs {
		r, err := dataset.Open(in.Path, dataset.ReadOptions{TextColumn: job.Column})
		if err != nil {
			return fmt.Errorf("input %s: %w", in.Path, err)
		}
		schema := r.Schema()
		r.Close()
		if job.Options.ChunkTokens > 0 {
			schema = arrow.NewSchema(append(schema.Fields(), pipeline.ChunkFields()...), nil)
		}
		if err := pgsink.CheckTable(ctx, po, schema); err != nil {
			return fmt.Errorf("input %s: %w", in.Path, err)
		}
	}
	return nil
}

// finishPostgres ends a job whose output is a Postgres table, once every
// task has its result: the table's progress rows must record each task of
// the job with the rows its result says (the rows and the record of a task
// commit together), then the index the job asks for is built, once, by
// this worker (pgsink.FinishTable, under the table's advisory lock), and
// the job is marked completed with what was built in its status. An error
// means "try again later", as maybeFinish says; a disagreement between the
// table and the results fails the job with the reason.
func (w *Worker) finishPostgres(ctx context.Context, kv jetstream.KeyValue, job schemas.Job, rs []schemas.Result) error {
	po, err := PostgresOptions(job.Output, job.Options)
	if err != nil {
		return err
	}
	n, rows, err := pgsink.Recorded(ctx, po, JobRunKeyPrefix(job.ID))
	if err != nil {
		return err
	}
	var want, tokens int64
	for _, r := range rs {
		want += r.Rows
		tokens += r.Tokens
	}
	failJob := func(reason string) error { return w.failJob(ctx, kv, job.ID, reason) }
	if n != len(rs) || rows != want {
		return failJob(fmt.Sprintf("table %s records %d tasks of the job with %d rows; the job's %d task results say %d rows", po.Table, n, rows, len(rs), want))
	}
	rep, err := pgsink.FinishTable(ctx, po)
	if err != nil {
		// An index the table cannot have fails the job with the reason;
		// retrying would never finish it.
		for _, perm := range []error{pgsink.ErrDimension, pgsink.ErrTableShape, pgsink.ErrOptions, pgsink.ErrPrecision} {
			if errors.Is(err, perm) {
				return failJob("building the index: " + err.Error())
			}
		}
		return err
	}
	index := ""
	switch {
	case rep.Index == "":
	case rep.Existed:
		index = fmt.Sprintf("%s index %s (already there)", po.Index, rep.Index)
	default:
		index = fmt.Sprintf("%s index %s built in %.2fs", po.Index, rep.Index, rep.IndexTime.Seconds())
	}
	finished := time.Now().UTC()
	_, err = updateStatus(ctx, kv, job.ID, func(s *schemas.Status) bool {
		if s.State == schemas.StateCompleted {
			return false
		}
		s.State = schemas.StateCompleted
		s.Done, s.Failed, s.Rows, s.Tokens = len(rs), 0, rows, tokens
		s.Index, s.FinishedAt = index, finished
		return true
	})
	if err == nil {
		w.log.Info("job completed", "job", job.ID, "table", po.Table, "rows", rows, "tasks", n, "index", index)
	}
	return err
}
