package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/embedpipe/embedpipe/workers"
	"github.com/nats-io/nats.go/jetstream"
)

// runStatus prints the progress of a submitted job.
func runStatus(ctx context.Context, args []string) error {
	fs := newFlags("status", "[flags] JOB",
		"embedpipe status 20260102-150405-1a2b3c4d --json")
	var nf natsFlags
	nf.register(fs.FlagSet)
	asJSON := fs.Bool("json", false, "print the status as JSON (embedpipe.status/v1)")
	return jobCommand(ctx, fs, &nf, args, func(ctx context.Context, kv jetstream.KeyValue, id string) error {
		st, rs, err := workers.Progress(ctx, kv, id)
		if err != nil {
			return err
		}
		return printStatus(st, rs, *asJSON)
	})
}

// printStatus prints a job's status and its task results, as JSON when
// asJSON is set; it fails when the job failed.
func printStatus(st schemas.Status, rs []schemas.Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Printf("job      %s\nstate    %s\n", st.JobID, st.State)
	fmt.Printf("tasks    %d done, %d failed, %d total\n", st.Done, st.Failed, st.Tasks)
	pct := 0.0
	if st.TotalRows > 0 {
		pct = 100 * float64(st.Rows) / float64(st.TotalRows)
	}
	fmt.Printf("rows     %d of %d (%.1f%%)\n", st.Rows, st.TotalRows, pct)
	fmt.Printf("tokens   %d\n", st.Tokens)
	end := time.Now()
	if !st.FinishedAt.IsZero() {
		end = st.FinishedAt
	}
	if !st.CreatedAt.IsZero() {
		el := end.Sub(st.CreatedAt).Seconds()
		if el > 0 {
			fmt.Printf("elapsed  %.1fs\nrate     %.0f rows/s, %.0f tokens/s\n", el, float64(st.Rows)/el, float64(st.Tokens)/el)
		}
	}
	var busy float64
	for _, r := range rs {
		busy += r.Seconds
	}
	if busy > 0 {
		fmt.Printf("workers  %.1f task-seconds, %.0f rows/s per busy worker\n", busy, float64(st.Rows)/busy)
	}
	for _, wr := range perWorker(rs) {
		fmt.Printf("worker   %s: %d tasks, %d rows in %.1fs busy, %.0f rows/s, %.0f tokens/s\n",
			wr.id, wr.tasks, wr.rows, wr.seconds, float64(wr.rows)/max(wr.seconds, 1e-9), float64(wr.tokens)/max(wr.seconds, 1e-9))
	}
	for _, p := range st.Running {
		pct := ""
		if p.TotalRows > 0 {
			pct = fmt.Sprintf(" (%.1f%%)", 100*float64(p.Rows)/float64(p.TotalRows))
		}
		fmt.Printf("running  task %d on %s: %d of %d rows%s, %d tokens, for %.1fs (updated %.1fs ago)\n",
			p.Index, p.Worker, p.Rows, p.TotalRows, pct, p.Tokens, p.UpdatedAt.Sub(p.StartedAt).Seconds(), time.Since(p.UpdatedAt).Seconds())
	}
	if st.Output != "" {
		fmt.Printf("output   %s\n", st.Output)
	}
	if st.Index != "" {
		fmt.Printf("index    %s\n", st.Index)
	}
	if st.Reason != "" {
		fmt.Printf("reason   %s\n", st.Reason)
	}
	for _, r := range rs {
		if r.Error != "" {
			fmt.Printf("failed   task %d after %d deliveries: %s\n", r.Index, r.Deliveries, r.Error)
		}
	}
	if st.State == schemas.StateFailed {
		return fmt.Errorf("%w: %s", workers.ErrJobFailed, st.Reason)
	}
	return nil
}

// workerRate sums the finished tasks of one worker.
type workerRate struct {
	id           string
	tasks        int
	rows, tokens int64
	seconds      float64
}

// perWorker groups the successful results of a job by worker, sorted by
// worker id, for the per-worker rates status prints.
func perWorker(rs []schemas.Result) []workerRate {
	by := map[string]*workerRate{}
	for _, r := range rs {
		if r.Error != "" || r.Worker == "" {
			continue
		}
		w := by[r.Worker]
		if w == nil {
			w = &workerRate{id: r.Worker}
			by[r.Worker] = w
		}
		w.tasks++
		w.rows += r.Rows
		w.tokens += r.Tokens
		w.seconds += r.Seconds
	}
	out := make([]workerRate, 0, len(by))
	for _, w := range by {
		out = append(out, *w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// jobCommand runs a command on one submitted job (status, cancel): it
// parses args with fs (the NATS flags nf and the command's own registered
// on it), takes the job id, opens the jobs bucket as client
// "embedpipe-<command>" and calls run, all within 30 seconds.
func jobCommand(ctx context.Context, fs *cmdFlags, nf *natsFlags, args []string, run func(ctx context.Context, kv jetstream.KeyValue, id string) error) error {
	if err := fs.parse(args); err != nil {
		return err
	}
	id, err := jobArg(fs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, closeNATS, err := openJobs(ctx, nf, "embedpipe-"+fs.Name())
	if err != nil {
		return err
	}
	defer closeNATS()
	return run(ctx, kv, id)
}

// jobArg returns the one job id a job command (status, cancel) takes.
func jobArg(fs *cmdFlags) (string, error) {
	if fs.NArg() != 1 {
		return "", fs.usageErrorf("want one job id, got %d arguments", fs.NArg())
	}
	id := fs.Arg(0)
	if !schemas.ValidID(id) {
		return "", fmt.Errorf("%q is not a job id", id)
	}
	return id, nil
}

// openJobs connects to NATS as client name and opens the jobs bucket; the
// returned func closes the connection.
func openJobs(ctx context.Context, nf *natsFlags, name string) (jetstream.KeyValue, func(), error) {
	nc, js, err := nf.connect(name)
	if err != nil {
		return nil, nil, err
	}
	kv, err := workers.OpenBucket(ctx, js)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return kv, nc.Close, nil
}
