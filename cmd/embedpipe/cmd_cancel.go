package main

import (
	"context"
	"fmt"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/embedpipe/embedpipe/workers"
	"github.com/nats-io/nats.go/jetstream"
)

// runCancel cancels a submitted job: its tasks stop at their next batch and
// it gets no _SUCCESS.
func runCancel(ctx context.Context, args []string) error {
	fs := newFlags("cancel", "[flags] JOB",
		"embedpipe cancel 20260102-150405-1a2b3c4d --nats nats://127.0.0.1:4222")
	var nf natsFlags
	nf.register(fs.FlagSet)
	return jobCommand(ctx, fs, &nf, args, func(ctx context.Context, kv jetstream.KeyValue, id string) error {
		st, err := workers.Cancel(ctx, kv, id)
		if err != nil {
			return err
		}
		if st.State != schemas.StateCancelled {
			return fmt.Errorf("job %s is already %s", id, st.State)
		}
		fmt.Printf("job %s cancelled: running tasks stop at their next batch\n", id)
		return nil
	})
}
