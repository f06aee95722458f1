package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go/jetstream"
)

func progressKey(job string, index int) string { return fmt.Sprintf("%s.running.%d", job, index) }

// taskCounts are a running task's counts, written by its TaskRunner and
// read by the worker's heartbeat.
type taskCounts struct {
	rows, tokens atomic.Int64
}

type countsKey struct{}

// withTaskCounts returns ctx carrying c, for the TaskRunner to report to.
func withTaskCounts(ctx context.Context, c *taskCounts) context.Context {
	return context.WithValue(ctx, countsKey{}, c)
}

// ReportTaskProgress records, for the task whose context is ctx, the rows
// read and tokens embedded so far; the worker publishes them at its next
// heartbeat for status to show. A TaskRunner calls it as often as it likes
// (it only stores two numbers); outside a worker's task it does nothing.
func ReportTaskProgress(ctx context.Context, rows, tokens int64) {
	if c, ok := ctx.Value(countsKey{}).(*taskCounts); ok {
		c.rows.Store(rows)
		c.tokens.Store(tokens)
	}
}

// taskProgress stores a running task's counts under its progress key: at
// each heartbeat when they moved (publish), removed when the task ends
// (end), after which publish does nothing.
type taskProgress struct {
	kv     jetstream.KeyValue
	key    string
	entry  schemas.TaskProgress // the fields that do not change
	log    *slog.Logger
	counts taskCounts

	mu        sync.Mutex
	published int64 // rows last stored; -1 before the first
	done      bool
}

func newTaskProgress(kv jetstream.KeyValue, t schemas.Task, worker string, log *slog.Logger) *taskProgress {
	return &taskProgress{kv: kv, key: progressKey(t.JobID, t.Index), log: log, published: -1,
		entry: schemas.TaskProgress{Schema: schemas.TaskProgressV1, JobID: t.JobID, Index: t.Index, Worker: worker,
			TotalRows: t.Rows, StartedAt: time.Now().UTC()}}
}

// publish stores the counts if they moved since the last time.
func (p *taskProgress) publish(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rows := p.counts.rows.Load()
	if p.done || rows == p.published {
		return
	}
	e := p.entry
	e.Rows, e.Tokens, e.UpdatedAt = rows, p.counts.tokens.Load(), time.Now().UTC()
	if err := putJSON(ctx, p.kv, p.key, e); err != nil {
		p.log.Debug("progress not stored", "err", err)
		return
	}
	p.published = rows
}

// end removes the stored entry, if any; later publishes do nothing.
func (p *taskProgress) end(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	if p.published < 0 {
		return
	}
	if err := p.kv.Delete(ctx, p.key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		p.log.Debug("progress entry not removed", "err", err)
	}
}

// runningTasks returns the progress the workers last stored for the tasks
// of job id that are running, by index: those without a result among rs.
func runningTasks(ctx context.Context, kv jetstream.KeyValue, id string, rs []schemas.Result) ([]schemas.TaskProgress, error) {
	ps, err := listValues(ctx, kv, id+".running.*", "running tasks of job "+id, "progress", schemas.DecodeTaskProgress,
		func(p schemas.TaskProgress) int { return p.Index })
	if err != nil {
		return nil, err
	}
	done := make(map[int]bool, len(rs))
	for _, r := range rs {
		done[r.Index] = true
	}
	var out []schemas.TaskProgress
	for _, p := range ps {
		if !done[p.Index] {
			out = append(out, p)
		}
	}
	return out, nil
}
