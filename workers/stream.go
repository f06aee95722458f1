package workers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamConfig configures RunStream.
type StreamConfig struct {
	// Encoder embeds, through the embedding seam with Options; required.
	Encoder embed.Model
	// Options are the embedding options of every record (prompt,
	// truncate-dim, normalize, precision with ranges); Options.BatchSize
	// is set from Batch.
	Options embed.Options
	// Model names the model in the published records.
	Model string
	// From is the stream of text records (schemas.Record or raw text).
	From string
	// To is the stream the embedded records go to.
	To string
	// ToSubject is the subject to publish on; default: the To stream's
	// first subject, with wildcards replaced by "embedded".
	ToSubject string
	// Durable names the consumer on From; default "embedpipe-to-<To>".
	Durable string
	// Batch is the records per pull and encoder call; default 64.
	Batch int
	// AckWait of the consumer; default 30 s.
	AckWait time.Duration
	Logger  *slog.Logger
	// Store, when set, receives each embedded batch instead of the To
	// stream (To then only names the destination in logs and the default
	// Durable): ids are the records' ids as published records carry them,
	// vecs is len(recs)×dim, row-major, owned by RunStream and valid only
	// during the call. RunStream acks the batch only after Store returns
	// nil, so Store must make the batch durable, and be idempotent by id: a
	// redelivered batch is stored again with the same ids.
	Store func(ctx context.Context, ids []string, recs []schemas.Record, vecs []float32, dim int) error
}

// RunStream consumes text records from one stream and publishes their
// embeddings to another until ctx is done, at least once: a batch of source
// messages is acked only after every embedded record of it has been stored
// by the To stream. Each embedded record carries Nats-Msg-Id
// "<From>:<source sequence>", so the To stream drops the duplicates that a
// redelivery after a crash would otherwise add (within its duplicate
// window). Malformed records are terminated with the reason and copied to
// the dead-letter stream. It returns nil when ctx ends it, whenever that
// happens.
func RunStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	if cfg.Batch <= 0 {
		cfg.Batch = 64
	}
	if cfg.Encoder == nil {
		return fmt.Errorf("%w: StreamConfig.Encoder is required", ErrBadOptions)
	}
	o := cfg.Options
	o.BatchSize = cfg.Batch
	e, err := embed.New(cfg.Encoder, o)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadOptions, err)
	}
	if cfg.Store != nil && e.Config().Precision != embed.Float32 {
		return fmt.Errorf("%w: a Store takes float32 vectors, not precision %s", ErrBadOptions, e.Config().Precision)
	}
	if e.Config().Precision.NeedsRanges() && e.Config().Ranges == nil {
		return fmt.Errorf("%w: precision %s needs calibration ranges: a stream cannot compute them over its records", ErrBadOptions, e.Config().Precision)
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.Durable == "" {
		cfg.Durable = "embedpipe-to-" + cfg.To
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("from", cfg.From, "to", cfg.To)
	if cfg.Store == nil {
		to, err := js.Stream(ctx, cfg.To)
		if err != nil {
			return fmt.Errorf("workers: stream %s: %w", cfg.To, err)
		}
		if cfg.ToSubject == "" {
			subs := to.CachedInfo().Config.Subjects
			if len(subs) == 0 {
				return fmt.Errorf("workers: stream %s has no subjects: set the subject to publish on", cfg.To)
			}
			s := strings.ReplaceAll(subs[0], ">", "embedded")
			cfg.ToSubject = strings.ReplaceAll(s, "*", "embedded")
		}
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, cfg.From, jetstream.ConsumerConfig{
		Durable:       cfg.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxAckPending: cfg.Batch * 2,
		MaxDeliver:    -1,
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it began, as it stops later: cleanly
		}
		return fmt.Errorf("workers: consumer %s on %s: %w", cfg.Durable, cfg.From, err)
	}
	// Dead letters need the DLQ stream; create it if this server has none.
	// (An existing one, perhaps replicated by EnsureLayout, is left as is.)
	if _, err := js.Stream(ctx, DeadLetterStream); errors.Is(err, jetstream.ErrStreamNotFound) {
		_, _ = js.CreateStream(ctx, deadLetterStreamConfig(1))
	}
	dim := e.Dim()
	vecs := make([]float32, cfg.Batch*dim)
	msgs := make([]jetstream.Msg, 0, cfg.Batch)
	recs := make([]schemas.Record, 0, cfg.Batch)
	texts := make([]string, 0, cfg.Batch)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		batch, err := cons.Fetch(cfg.Batch, jetstream.FetchContext(fctx))
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			log.Debug("fetch failed", "err", err)
			time.Sleep(backoff)
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		msgs, recs, texts = msgs[:0], recs[:0], texts[:0]
		for m := range batch.Messages() {
			r, err := schemas.DecodeRecord(m.Data())
			if err != nil {
				reason := truncate(err.Error(), 500)
				dl := nats.NewMsg(DeadLetterSubjectPrefix + "stream." + cfg.From)
				dl.Data = m.Data()
				dl.Header.Set(HeaderError, reason)
				dl.Header.Set(HeaderSubject, m.Subject())
				_, _ = js.PublishMsg(ctx, dl)
				_ = m.TermWithReason(truncate(reason, 200))
				log.Warn("terminated malformed record", "subject", m.Subject(), "reason", reason)
				continue
			}
			msgs = append(msgs, m)
			recs = append(recs, r)
			texts = append(texts, r.Text)
		}
		cancel()
		if len(msgs) == 0 {
			continue
		}
		if err := embedAndPublish(ctx, js, cfg, e, msgs, recs, texts, vecs[:len(texts)*dim], dim); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("batch failed, handing it back", "err", err, "records", len(msgs))
			for _, m := range msgs {
				_ = m.NakWithDelay(time.Second)
			}
			continue
		}
		for _, m := range msgs {
			if err := m.Ack(); err != nil {
				log.Debug("ack failed; the record will be redelivered and deduplicated", "err", err)
			}
		}
	}
	return nil
}

func embedAndPublish(ctx context.Context, js jetstream.JetStream, cfg StreamConfig, e *embed.Embedder, msgs []jetstream.Msg, recs []schemas.Record, texts []string, vecs []float32, dim int) error {
	if _, err := e.Embed(ctx, vecs, texts); err != nil {
		return err
	}
	q, err := quantized(e, vecs, len(texts))
	if err != nil {
		return err
	}
	vals, w := q.values(len(texts)), q.width()
	seqs := make([]uint64, len(msgs))
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		if md, err := m.Metadata(); err == nil {
			seqs[i] = md.Sequence.Stream
		}
		ids[i] = recs[i].ID
		if ids[i] == "" {
			ids[i] = strconv.FormatUint(seqs[i], 10)
		}
	}
	if cfg.Store != nil {
		return cfg.Store(ctx, ids, recs, vecs, dim)
	}
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	for i := range msgs {
		seq, id := seqs[i], ids[i]
		body, err := json.Marshal(schemas.Embedded{Schema: schemas.EmbeddedV1, ID: id,
			Embedding: vals[i*w : (i+1)*w], Model: cfg.Model, Meta: recs[i].Meta})
		if err != nil {
			return err
		}
		out := nats.NewMsg(cfg.ToSubject)
		out.Data = body
		out.Header.Set(nats.MsgIdHdr, fmt.Sprintf("%s:%d", cfg.From, seq))
		f, err := js.PublishMsgAsync(out)
		if err != nil {
			return err
		}
		futs = append(futs, f)
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	for _, f := range futs {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("publishing to %s: %w", cfg.ToSubject, err)
		case <-timeout.C:
			return errors.New("publishing: no acknowledgement from the To stream within 30 s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
