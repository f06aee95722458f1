package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrJobExists reports a submit with a job id already in the jobs bucket.
var ErrJobExists = errors.New("workers: job id already exists")

// DefaultRowsPerTask is the target number of rows in one task of a Parquet
// input: row groups are grouped until a task holds at least this many.
const DefaultRowsPerTask = 4096

// PartName returns the deterministic part file name of task index i.
func PartName(i int) string { return fmt.Sprintf("part-%05d.parquet", i) }

// Plan splits job into tasks: consecutive row groups of each Parquet input
// until a task holds at least rowsPerTask rows (so that many workers share
// one big file), and one task per input of another format. It reads only
// the inputs' metadata (and counts JSONL rows). It returns the tasks and the
// total number of rows known before the tasks run (Arrow and CSV inputs
// count as 0 until then).
func Plan(job schemas.Job, rowsPerTask int64) ([]schemas.Task, int64, error) {
	if rowsPerTask <= 0 {
		rowsPerTask = DefaultRowsPerTask
	}
	var tasks []schemas.Task
	var total int64
	add := func(in schemas.Input, lo, hi int, rows int64) {
		tasks = append(tasks, schemas.Task{
			Schema: schemas.TaskV1, JobID: job.ID, Index: len(tasks), Input: in,
			RowGroupLo: lo, RowGroupHi: hi, Rows: rows, Column: job.Column,
			Output: job.Output, Part: PartName(len(tasks)), Model: job.Model, Options: job.Options,
		})
		total += rows
	}
	for _, in := range job.Inputs {
		in.Format = schemas.FormatOf(in)
		switch in.Format {
		case schemas.FormatParquet:
			rgs, err := ParquetRowGroups(in.Path, job.Column)
			if err != nil {
				return nil, 0, err
			}
			if len(rgs) == 0 {
				add(in, 0, 0, 0)
				continue
			}
			lo, rows := 0, int64(0)
			for i, n := range rgs {
				rows += n
				if rows >= rowsPerTask || i == len(rgs)-1 {
					add(in, lo, i+1, rows)
					lo, rows = i+1, 0
				}
			}
		case schemas.FormatJSONL:
			rows, err := countJSONLRows(in.Path, job.Column)
			if err != nil {
				return nil, 0, err
			}
			add(in, 0, 0, rows)
		case schemas.FormatArrow, schemas.FormatCSV:
			// The pipeline reads these whole; the row count is known
			// only once the task has run.
			add(in, 0, 0, 0)
		default:
			return nil, 0, fmt.Errorf("%w: %s: format %q is not supported by workers", ErrBadInput, in.Path, in.Format)
		}
	}
	for i := range tasks {
		tasks[i].Tasks = len(tasks)
	}
	return tasks, total, nil
}

// Submit plans job, records it and its status in the jobs bucket and
// publishes its tasks on the task stream. A job whose output is a Postgres
// table should be checked with CheckPostgres first. Publishing is idempotent per task
// (Nats-Msg-Id "<job>.<index>"), so a submit retried after an error within
// the stream's duplicate window adds no duplicate task.
func Submit(ctx context.Context, js jetstream.JetStream, job schemas.Job, l Layout, rowsPerTask int64) (schemas.Status, error) {
	if job.Schema == "" {
		job.Schema = schemas.JobV1
	}
	if job.CreatedAt.IsZero() {
		job.CreatedAt = time.Now().UTC()
	}
	if err := job.Validate(); err != nil {
		return schemas.Status{}, err
	}
	if _, err := EmbedOptions(job.Options); err != nil {
		return schemas.Status{}, err
	}
	if _, err := chunkMode(job.Options); err != nil {
		return schemas.Status{}, err
	}
	if job.Output.Postgres != nil {
		// A bad index or distance is refused here; the server and the
		// table are checked by CheckPostgres, which needs a connection.
		if _, err := PostgresOptions(job.Output, job.Options); err != nil {
			return schemas.Status{}, err
		}
	}
	tasks, total, err := Plan(job, rowsPerTask)
	if err != nil {
		return schemas.Status{}, err
	}
	_, kv, err := EnsureLayout(ctx, js, l)
	if err != nil {
		return schemas.Status{}, err
	}
	jb, _ := json.Marshal(job)
	if _, err := kv.Create(ctx, jobKey(job.ID), jb); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return schemas.Status{}, fmt.Errorf("%w: %s", ErrJobExists, job.ID)
		}
		return schemas.Status{}, fmt.Errorf("workers: recording job %s: %w", job.ID, err)
	}
	st := schemas.Status{Schema: schemas.StatusV1, JobID: job.ID, State: schemas.StatePending,
		Tasks: len(tasks), TotalRows: total, Output: OutputName(job.Output), CreatedAt: job.CreatedAt}
	if err := putJSON(ctx, kv, statusKey(job.ID), st); err != nil {
		return schemas.Status{}, err
	}
	for _, t := range tasks {
		b, _ := json.Marshal(t)
		if _, err := js.Publish(ctx, taskSubject(job.ID, t.Index), b, jetstream.WithMsgID(fmt.Sprintf("%s.%d", job.ID, t.Index))); err != nil {
			return schemas.Status{}, fmt.Errorf("workers: publishing task %d of job %s: %w", t.Index, job.ID, err)
		}
	}
	st, err = updateStatus(ctx, kv, job.ID, func(s *schemas.Status) bool {
		if s.State != schemas.StatePending {
			return false
		}
		s.State = schemas.StateRunning
		return true
	})
	return st, err
}

func putJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, key, b); err != nil {
		return fmt.Errorf("workers: writing %s: %w", key, err)
	}
	return nil
}

// getStatus reads the status of job id and its revision.
func getStatus(ctx context.Context, kv jetstream.KeyValue, id string) (schemas.Status, uint64, error) {
	e, err := kv.Get(ctx, statusKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return schemas.Status{}, 0, fmt.Errorf("%w: %s", ErrJobNotFound, id)
	}
	if err != nil {
		return schemas.Status{}, 0, fmt.Errorf("workers: reading status of job %s: %w", id, err)
	}
	st, err := schemas.DecodeStatus(e.Value())
	if err != nil {
		return schemas.Status{}, 0, fmt.Errorf("workers: status of job %s: %w", id, err)
	}
	return st, e.Revision(), nil
}

// updateStatus applies change to the status of job id with compare-and-set,
// retrying when another writer got there first. change returns false to
// leave the status as it is.
func updateStatus(ctx context.Context, kv jetstream.KeyValue, id string, change func(*schemas.Status) bool) (schemas.Status, error) {
	for attempt := 0; ; attempt++ {
		st, rev, err := getStatus(ctx, kv, id)
		if err != nil {
			return st, err
		}
		if !change(&st) {
			return st, nil
		}
		b, _ := json.Marshal(st)
		_, err = kv.Update(ctx, statusKey(id), b, rev)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) || attempt > 50 {
			return st, fmt.Errorf("workers: updating status of job %s: %w", id, err)
		}
	}
}

// Results returns the recorded results of the tasks of job id, by index.
func Results(ctx context.Context, kv jetstream.KeyValue, id string) ([]schemas.Result, error) {
	return listValues(ctx, kv, id+".task.*", "results of job "+id, "result", schemas.DecodeResult,
		func(r schemas.Result) int { return r.Index })
}

// listValues returns the values of the keys of kv that match pattern,
// decoded by decode and sorted by the task index that index gives. what
// names the listing in its errors, item one value.
func listValues[T any](ctx context.Context, kv jetstream.KeyValue, pattern, what, item string,
	decode func([]byte) (T, error), index func(T) int) ([]T, error) {
	// A bounded context: a reply lost in a fail-over costs one call, which
	// the caller repeats, rather than the caller's whole deadline.
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	w, err := kv.Watch(ctx, pattern, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("workers: listing %s: %w", what, err)
	}
	defer w.Stop()
	var out []T
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("workers: listing %s: watcher closed", what)
			}
			if e == nil {
				sort.Slice(out, func(i, j int) bool { return index(out[i]) < index(out[j]) })
				return out, nil
			}
			v, err := decode(e.Value())
			if err != nil {
				return nil, fmt.Errorf("workers: %s %s: %w", item, e.Key(), err)
			}
			out = append(out, v)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Progress returns the status of job id with the counts brought up to date
// from its task results.
func Progress(ctx context.Context, kv jetstream.KeyValue, id string) (schemas.Status, []schemas.Result, error) {
	st, _, err := getStatus(ctx, kv, id)
	if err != nil {
		return st, nil, err
	}
	rs, err := Results(ctx, kv, id)
	if err != nil {
		return st, nil, err
	}
	st.Done, st.Failed, st.Rows, st.Tokens = 0, 0, 0, 0
	for _, r := range rs {
		if r.Error != "" {
			st.Failed++
			continue
		}
		st.Done++
		st.Rows += r.Rows
		st.Tokens += r.Tokens
	}
	if st.State != schemas.StateCompleted && st.State != schemas.StateFailed && st.State != schemas.StateCancelled {
		if st.Running, err = runningTasks(ctx, kv, id, rs); err != nil {
			return st, rs, err
		}
	}
	return st, rs, nil
}

// Wait blocks until job id completes or fails, or ctx is done. It returns
// the final status, and an error wrapping ErrJobFailed with the recorded
// reason when the job failed. It polls the status key, each read with its
// own short timeout, so that a reply lost while the cluster fails over (a
// leader election, a server restart) costs one poll, not the whole wait.
// Cancel marks job id cancelled: workers take none of its tasks from now
// on, running tasks stop at their next batch (their workers poll the status
// at each heartbeat), and no _SUCCESS is written. A job already completed
// or failed keeps its state; Cancel returns its status either way.
func Cancel(ctx context.Context, kv jetstream.KeyValue, id string) (schemas.Status, error) {
	return updateStatus(ctx, kv, id, func(s *schemas.Status) bool {
		switch s.State {
		case schemas.StateCompleted, schemas.StateFailed, schemas.StateCancelled:
			return false
		}
		s.State = schemas.StateCancelled
		s.Reason = "cancelled"
		s.FinishedAt = time.Now().UTC()
		return true
	})
}

func Wait(ctx context.Context, kv jetstream.KeyValue, id string) (schemas.Status, error) {
	var last error
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		e, err := kv.Get(rctx, statusKey(id))
		cancel()
		switch {
		case err == nil:
			st, derr := schemas.DecodeStatus(e.Value())
			if derr != nil {
				return st, fmt.Errorf("workers: status of job %s: %w", id, derr)
			}
			switch st.State {
			case schemas.StateCompleted:
				return st, nil
			case schemas.StateFailed:
				return st, fmt.Errorf("%w: %s: %s", ErrJobFailed, id, st.Reason)
			case schemas.StateCancelled:
				return st, fmt.Errorf("%w: %s", ErrJobCancelled, id)
			}
		case errors.Is(err, jetstream.ErrKeyNotFound):
			return schemas.Status{}, fmt.Errorf("%w: %s", ErrJobNotFound, id)
		default:
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return schemas.Status{}, fmt.Errorf("workers: waiting for job %s: %w (last error: %v)", id, ctx.Err(), last)
			}
			return schemas.Status{}, fmt.Errorf("workers: waiting for job %s: %w", id, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}
