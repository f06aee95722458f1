package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/embedpipe/embedpipe/workers"
)

// runStatus prints the progress of a submitted job.
func runStatus(ctx context.Context, args []string) error {
	fs := newFlags("status", "[flags] JOB",
		"embedpipe status 20260102-150405-1a2b3c4d --json")
	var nf natsFlags
	nf.register(fs.FlagSet)
	asJSON := fs.Bool("json", false, "print the status as JSON (embedpipe.status/v1)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fs.usageErrorf("want one job id, got %d arguments", fs.NArg())
	}
	id := fs.Arg(0)
	if !schemas.ValidID(id) {
		return fmt.Errorf("%q is not a job id", id)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nc, js, err := nf.connect("embedpipe-status")
	if err != nil {
		return err
	}
	defer nc.Close()
	kv, err := workers.OpenBucket(ctx, js)
	if err != nil {
		return err
	}
	st, rs, err := workers.Progress(ctx, kv, id)
	if err != nil {
		return err
	}
	if *asJSON {
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
	if st.Output != "" {
		fmt.Printf("output   %s\n", st.Output)
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
