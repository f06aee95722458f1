package workers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The JetStream layout embedpipe uses. Subjects are tokenised so that
// permissions can be granted per job or per kind of message.
const (
	// TaskStream is the work-queue stream of tasks; a message is removed
	// once a worker acknowledges it.
	TaskStream = "EMBEDPIPE_TASKS"
	// TaskSubjectPrefix is followed by "<job>.<index>".
	TaskSubjectPrefix = "embedpipe.task."
	// WorkerConsumer is the durable pull consumer every worker shares.
	WorkerConsumer = "embedpipe-workers"
	// DeadLetterStream keeps tasks that failed MaxDeliver times or
	// permanently, with the error in the Embedpipe-Error header, and the
	// server's max-deliveries advisories for tasks whose worker died.
	DeadLetterStream = "EMBEDPIPE_DLQ"
	// DeadLetterSubjectPrefix is followed by "<job>.<index>" or
	// "malformed".
	DeadLetterSubjectPrefix = "embedpipe.dlq."
	// JobsBucket is the key-value bucket of job state. Keys:
	// "<job>.job" (the job), "<job>.status" (its Status), "<job>.task.<i>"
	// (the Result of task i) and "<job>.final" (claimed once by the worker
	// that writes manifest.json and _SUCCESS).
	JobsBucket = "EMBEDPIPE_JOBS"
	// EmbedSubject is the subject of the embed endpoint of the service.
	EmbedSubject = "embedpipe.embed"
	// ServiceName is the NATS micro service name.
	ServiceName = "embedpipe"

	// Headers on dead-letter messages.
	HeaderError      = "Embedpipe-Error"
	HeaderDeliveries = "Embedpipe-Deliveries"
	HeaderSubject    = "Embedpipe-Subject"
)

// maxDeliveriesAdvisory is the subject on which the server announces a
// task that reached MaxDeliver without an ack (its worker kept dying).
const maxDeliveriesAdvisory = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + TaskStream + ".>"

// Layout tunes the streams, bucket and consumer that EnsureLayout creates.
type Layout struct {
	// Replicas is the stream and bucket replication factor: 1 for one
	// server, 3 for the docker-compose cluster.
	Replicas int
	// AckWait is how long a task may go without an ack or a heartbeat
	// before the server gives it to another worker.
	AckWait time.Duration
	// MaxDeliver bounds the tries of one task.
	MaxDeliver int
	// MaxAckPending bounds the tasks in flight across all workers.
	MaxAckPending int
}

func (l Layout) withDefaults() Layout {
	if l.Replicas <= 0 {
		l.Replicas = 1
	}
	if l.AckWait <= 0 {
		l.AckWait = 30 * time.Second
	}
	if l.MaxDeliver <= 0 {
		l.MaxDeliver = 5
	}
	if l.MaxAckPending <= 0 {
		l.MaxAckPending = 256
	}
	return l
}

// deadLetterStreamConfig is the one definition of the dead-letter stream,
// used by EnsureLayout and by the stream bridge (which creates it on a
// server that has none, with one replica).
func deadLetterStreamConfig(replicas int) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "embedpipe tasks and records that failed, with the error",
		Subjects:    []string{DeadLetterSubjectPrefix + ">", maxDeliveriesAdvisory},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    max(1, replicas),
		MaxAge:      14 * 24 * time.Hour,
	}
}

// EnsureLayout creates (or updates) the task and dead-letter streams, the
// jobs bucket and the shared worker consumer. It is idempotent, so both
// submit and every worker call it.
func EnsureLayout(ctx context.Context, js jetstream.JetStream, l Layout) (jetstream.Consumer, jetstream.KeyValue, error) {
	l = l.withDefaults()
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        TaskStream,
		Description: "embedpipe tasks (work queue)",
		Subjects:    []string{TaskSubjectPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    l.Replicas,
		Duplicates:  10 * time.Minute,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("workers: creating stream %s: %w", TaskStream, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, deadLetterStreamConfig(l.Replicas))
	if err != nil {
		return nil, nil, fmt.Errorf("workers: creating stream %s: %w", DeadLetterStream, err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      JobsBucket,
		Description: "embedpipe job, task and status records",
		Storage:     jetstream.FileStorage,
		Replicas:    l.Replicas,
		History:     1,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("workers: creating bucket %s: %w", JobsBucket, err)
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, TaskStream, jetstream.ConsumerConfig{
		Durable:       WorkerConsumer,
		Description:   "embedpipe workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       l.AckWait,
		MaxDeliver:    l.MaxDeliver,
		MaxAckPending: l.MaxAckPending,
		FilterSubject: TaskSubjectPrefix + ">",
	})
	if err != nil {
		return nil, nil, fmt.Errorf("workers: creating consumer %s: %w", WorkerConsumer, err)
	}
	return cons, kv, nil
}

// OpenBucket returns the jobs bucket, which submit must have created. Each
// try has its own short timeout and failed tries are repeated until ctx is
// done, so that a reply lost during a fail-over does not stall the caller.
func OpenBucket(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err := js.KeyValue(rctx, JobsBucket)
		cancel()
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			return nil, fmt.Errorf("%w: bucket %s does not exist (nothing was submitted)", ErrJobNotFound, JobsBucket)
		}
		if err == nil {
			return kv, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("workers: opening bucket %s: %w", JobsBucket, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func taskSubject(job string, index int) string {
	return fmt.Sprintf("%s%s.%d", TaskSubjectPrefix, job, index)
}

func jobKey(job string) string             { return job + ".job" }
func statusKey(job string) string          { return job + ".status" }
func taskKey(job string, index int) string { return fmt.Sprintf("%s.task.%d", job, index) }
func finalKey(job string) string           { return job + ".final" }

// lookupLayout finds the worker consumer and the jobs bucket without
// creating anything (and without the stream info request, which needs its
// own permission).
func lookupLayout(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, jetstream.KeyValue, error) {
	cons, err := js.Consumer(ctx, TaskStream, WorkerConsumer)
	if err != nil {
		return nil, nil, fmt.Errorf("workers: consumer %s on %s: %w", WorkerConsumer, TaskStream, err)
	}
	kv, err := js.KeyValue(ctx, JobsBucket)
	if err != nil {
		return nil, nil, fmt.Errorf("workers: bucket %s: %w", JobsBucket, err)
	}
	return cons, kv, nil
}
