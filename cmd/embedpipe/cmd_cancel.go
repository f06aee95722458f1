package main

import (
	"context"
	"fmt"
	"time"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/embedpipe/embedpipe/workers"
)

// runCancel cancels a submitted job: its tasks stop at their next batch and
// it gets no _SUCCESS.
func runCancel(ctx context.Context, args []string) error {
	fs := newFlags("cancel", "[flags] JOB",
		"embedpipe cancel 20260102-150405-1a2b3c4d --nats nats://127.0.0.1:4222")
	var nf natsFlags
	nf.register(fs.FlagSet)
	if err := fs.parse(args); err != nil {
		return err
	}
	id, err := jobArg(fs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, closeNATS, err := openJobs(ctx, &nf, "embedpipe-cancel")
	if err != nil {
		return err
	}
	defer closeNATS()
	st, err := workers.Cancel(ctx, kv, id)
	if err != nil {
		return err
	}
	if st.State != schemas.StateCancelled {
		return fmt.Errorf("job %s is already %s", id, st.State)
	}
	fmt.Printf("job %s cancelled: running tasks stop at their next batch\n", id)
	return nil
}
