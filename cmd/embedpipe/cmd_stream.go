package main

import (
	"context"
	"fmt"
	"regexp"
	"runtime"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/encoder/embed"
	"github.com/embedpipe/embedpipe/io/pgsink"
	"github.com/embedpipe/embedpipe/workers"
)

// runStream embeds the text records of one JetStream stream into another
// until SIGTERM, at least once, with de-duplicating message ids.
func runStream(ctx context.Context, args []string) error {
	fs := newFlags("stream", "--from STREAM --to STREAM|postgres://… --model DIR [flags]",
		"embedpipe stream --nats nats://127.0.0.1:4222 --from texts --to vectors --model ./all-MiniLM-L6-v2",
		"embedpipe stream --from texts --to 'postgres://app@db/app?sslmode=require' --table docs --create-index hnsw --model ./all-MiniLM-L6-v2")
	var nf natsFlags
	nf.register(fs.FlagSet)
	from := fs.String("from", "", "stream of text records (required)")
	to := fs.String("to", "", "stream for the embedded records, or a PostgreSQL URL postgres://… to upsert them into --table (required)")
	table := fs.String("table", "", "with --to postgres://…: the table (id, text, meta jsonb, embedding), created if missing")
	index := fs.String("create-index", "none", "with --to postgres://…: hnsw, ivfflat or none, created at start and maintained by pgvector")
	distance := fs.String("distance", "", "with --to postgres://…: the index's distance: cosine (default), l2 or ip")
	subject := fs.String("subject", "", "subject to publish on (default: the --to stream's first subject)")
	durable := fs.String("durable", "", "consumer name on --from (default embedpipe-to-<to>)")
	model := fs.String("model", "", modelHelp+" (required)")
	threads := fs.Int("threads", 0, "kernel threads per encoder call (default: all cores)")
	batch := fs.Int("batch-size", 64, "records per pull and encoder call")
	// The embedding options, as embed's flags and the service's request
	// fields, resolved once by the embedding seam.
	var o embed.Options
	fs.StringVar(&o.PromptName, "prompt-name", "", "model prompt to prepend to every text")
	fs.StringVar(&o.Prompt, "prompt", "", "prompt text prepended to every text")
	fs.IntVar(&o.TruncateDim, "truncate-dim", 0, "keep the first N dimensions, then normalize")
	normalize := fs.String("normalize", "", "true or false: override L2 normalization after truncation (default: the model's)")
	fs.IntVar(&o.MaxLength, "max-length", 0, "truncate texts to N tokens (default 0: the model's max_seq_length)")
	fs.TextVar(&o.Precision, "precision", embed.Float32, "float32, float16, int8, uint8, binary or ubinary (int8/uint8 need --ranges); published as numbers")
	rangesPath := fs.String("ranges", "", "int8/uint8 calibration ranges, JSON [[min…],[max…]]")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if *from == "" || *to == "" || *model == "" {
		return fs.usageErrorf("--from, --to and --model are required")
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	if o.Normalize, err = optionalBool("normalize", *normalize); err != nil {
		return fs.usageErrorf("%v", err)
	}
	if o.Ranges, err = readRanges(*rangesPath); err != nil {
		return err
	}
	emb, _, err := loadModel(*model, *threads, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	if kind := emb.Info().Kind; kind != encoder.KindEmbedding {
		// The bridge publishes and stores dense vectors only; without this
		// every batch of a sparse model would fail and be redelivered.
		return fmt.Errorf("stream embeds with dense embedding models; %s is a %s model (for sparse vectors use embed --output postgres://… or the NATS embed service of serve)", *model, kind)
	}
	o.BatchSize = *batch
	e, err := embed.New(emb, o)
	if err != nil {
		return err
	}
	nc, js, err := nf.connect("embedpipe-stream")
	if err != nil {
		return err
	}
	defer nc.Close()
	cfg := workers.StreamConfig{Encoder: emb, Options: o, Model: *model, From: *from, To: *to,
		ToSubject: *subject, Durable: *durable, Batch: *batch, Logger: log}
	if pgsink.IsURL(*to) {
		if *table == "" {
			return fs.usageErrorf("--to postgres://… needs --table NAME")
		}
		idx, err := pgsink.ParseIndex(*index)
		if err != nil {
			return err
		}
		dist, err := pgsink.ParseDistance(*distance)
		if err != nil {
			return err
		}
		w, err := pgsink.NewStreamWriter(ctx, pgsink.Options{URL: *to, Table: *table, Index: idx, Distance: dist}, e.Dim())
		if err != nil {
			return err
		}
		defer w.Close(context.Background())
		cfg.Store, cfg.To = w.Store, pgsink.Redact(*to)+"#"+*table
		if cfg.Durable == "" {
			cfg.Durable = "embedpipe-to-pg-" + regexp.MustCompile(`[^A-Za-z0-9_-]`).ReplaceAllString(*table, "_")
		}
	}
	log.Info("stream started", "nats", workers.Redact(nf.conn.URL), "from", *from, "to", cfg.To)
	return workers.RunStream(ctx, js, cfg)
}
