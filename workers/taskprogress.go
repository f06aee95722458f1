package workers

import (
	"context"
	"fmt"
	"sync/atomic"

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
