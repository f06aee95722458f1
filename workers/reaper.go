package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ReaperConsumer is the durable consumer on the dead-letter stream through
// which workers handle the server's max-deliveries advisories, each once.
const ReaperConsumer = "embedpipe-reaper"

// maxDeliverAdvisory is the part of the server's
// io.nats.jetstream.advisory.v1.max_deliver event the reaper reads.
type maxDeliverAdvisory struct {
	Type       string `json:"type"`
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// Reap handles the tasks that reached MaxDeliver without any worker living
// to dead-letter them (a task that kills or hangs its worker every time):
// for each max-deliveries advisory it copies the task to the dead-letter
// stream with the reason, records the failure, fails the job and removes
// the task from the work queue. It runs until ctx is done; every worker
// that creates the layout runs it, and the shared durable consumer hands
// each advisory to one of them.
func Reap(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = js.CreateOrUpdateConsumer(ctx, DeadLetterStream, jetstream.ConsumerConfig{
			Durable:       ReaperConsumer,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       30 * time.Second,
			FilterSubject: maxDeliveriesAdvisory,
		})
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		batch, err := cons.Fetch(16, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
			continue
		}
		for m := range batch.Messages() {
			if err := reapOne(ctx, js, kv, m.Data()); err != nil {
				log.Warn("max-deliveries advisory not handled yet", "err", err)
				_ = m.NakWithDelay(time.Second)
				continue
			}
			_ = m.Ack()
		}
		cancel()
	}
	return nil
}

func reapOne(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, data []byte) error {
	var adv maxDeliverAdvisory
	if err := json.Unmarshal(data, &adv); err != nil || adv.Stream != TaskStream || adv.StreamSeq == 0 {
		return nil // not ours or unreadable: nothing to do
	}
	stream, err := js.Stream(ctx, TaskStream)
	if err != nil {
		return err
	}
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // already handled (acked, terminated or reaped)
	}
	if err != nil {
		return err
	}
	reason := fmt.Sprintf("delivered %d times and never acknowledged: its worker died or hung on every delivery", adv.Deliveries)
	task, terr := schemas.DecodeTask(raw.Data)
	subject := DeadLetterSubjectPrefix + "malformed"
	if terr == nil {
		subject = fmt.Sprintf("%s%s.%d", DeadLetterSubjectPrefix, task.JobID, task.Index)
	}
	dl := nats.NewMsg(subject)
	dl.Data = raw.Data
	dl.Header.Set(HeaderError, reason)
	dl.Header.Set(HeaderDeliveries, strconv.FormatUint(adv.Deliveries, 10))
	dl.Header.Set(HeaderSubject, raw.Subject)
	dl.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dlq.%d", adv.StreamSeq))
	if _, err := js.PublishMsg(ctx, dl); err != nil {
		return err
	}
	if terr == nil {
		// A task whose part was recorded but whose ack was lost did its
		// work: only a task without a successful result fails the job.
		e, err := kv.Get(ctx, taskKey(task.JobID, task.Index))
		succeeded := false
		if err == nil {
			if r, err := schemas.DecodeResult(e.Value()); err == nil && r.Error == "" {
				succeeded = true
			}
		}
		if !succeeded {
			res := schemas.Result{Schema: schemas.ResultV1, JobID: task.JobID, Index: task.Index, Input: task.Input.Path,
				RowGroupLo: task.RowGroupLo, RowGroupHi: task.RowGroupHi, Deliveries: int(adv.Deliveries),
				Error: reason, FinishedAt: time.Now().UTC()}
			if err := putJSON(ctx, kv, taskKey(task.JobID, task.Index), res); err != nil {
				return err
			}
			if _, err := updateStatus(ctx, kv, task.JobID, func(s *schemas.Status) bool {
				if s.State == schemas.StateFailed || s.State == schemas.StateCompleted {
					return false
				}
				s.State = schemas.StateFailed
				s.Reason = fmt.Sprintf("task %d (%s): %s", task.Index, task.Input.Path, reason)
				s.FinishedAt = time.Now().UTC()
				return true
			}); err != nil && !errors.Is(err, ErrJobNotFound) {
				return err
			}
		}
	}
	if err := stream.DeleteMsg(ctx, adv.StreamSeq); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return err
	}
	return nil
}
