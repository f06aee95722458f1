package workers

import (
	"context"
	"fmt"
	"sort"
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

// runningTasks returns the progress the workers last stored for the tasks
// of job id that are running, by index: those without a result among rs.
func runningTasks(ctx context.Context, kv jetstream.KeyValue, id string, rs []schemas.Result) ([]schemas.TaskProgress, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	w, err := kv.Watch(ctx, id+".running.*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("workers: listing running tasks of job %s: %w", id, err)
	}
	defer w.Stop()
	done := make(map[int]bool, len(rs))
	for _, r := range rs {
		done[r.Index] = true
	}
	var out []schemas.TaskProgress
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("workers: listing running tasks of job %s: watcher closed", id)
			}
			if e == nil {
				sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
				return out, nil
			}
			p, err := schemas.DecodeTaskProgress(e.Value())
			if err != nil {
				return nil, fmt.Errorf("workers: progress %s: %w", e.Key(), err)
			}
			if !done[p.Index] {
				out = append(out, p)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
