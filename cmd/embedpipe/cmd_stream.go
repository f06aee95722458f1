package main

import (
	"context"

	"github.com/embedpipe/embedpipe/workers"
)

// runStream embeds the text records of one JetStream stream into another
// until SIGTERM, at least once, with de-duplicating message ids.
func runStream(ctx context.Context, args []string) error {
	fs := newFlags("stream", "--from STREAM --to STREAM --model DIR [flags]",
		"embedpipe stream --nats nats://127.0.0.1:4222 --from texts --to vectors --model ./all-MiniLM-L6-v2")
	var nf natsFlags
	nf.register(fs.FlagSet)
	from := fs.String("from", "", "stream of text records (required)")
	to := fs.String("to", "", "stream for the embedded records (required)")
	subject := fs.String("subject", "", "subject to publish on (default: the --to stream's first subject)")
	durable := fs.String("durable", "", "consumer name on --from (default embedpipe-to-<to>)")
	model := fs.String("model", "", modelHelp+" (required)")
	threads := fs.Int("threads", 0, "encoder threads (default: all cores)")
	batch := fs.Int("batch-size", 64, "records per pull and encoder call")
	promptName := fs.String("prompt-name", "", "model prompt to prepend to every text")
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
	emb, err := loadEmbedder(*model, *threads)
	if err != nil {
		return err
	}
	prompt, err := emb.Prompt(*promptName)
	if err != nil {
		return err
	}
	nc, js, err := nf.connect("embedpipe-stream")
	if err != nil {
		return err
	}
	defer nc.Close()
	log.Info("stream started", "nats", workers.Redact(nf.conn.URL), "from", *from, "to", *to)
	return workers.RunStream(ctx, js, workers.StreamConfig{Embedder: emb, Model: *model, From: *from, To: *to,
		ToSubject: *subject, Durable: *durable, Batch: *batch, Prompt: prompt, Logger: log})
}
