package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/pipeline"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/embedpipe/embedpipe/workers"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// natsFlags are the connection and layout flags shared by the NATS
// commands. Secrets may also come from the environment
// (EMBEDPIPE_NATS_PASSWORD, EMBEDPIPE_NATS_TOKEN) so that they do not show
// in the process list; they are never logged.
type natsFlags struct {
	conn       workers.ConnOptions
	replicas   int
	ackWait    time.Duration
	maxDeliver int
}

func (n *natsFlags) register(fs *flag.FlagSet) {
	def := os.Getenv("NATS_URL")
	if def == "" {
		def = nats.DefaultURL
	}
	fs.StringVar(&n.conn.URL, "nats", def, "NATS server URL(s), comma separated ($NATS_URL)")
	fs.StringVar(&n.conn.User, "user", "", "NATS user")
	fs.StringVar(&n.conn.Password, "password", os.Getenv("EMBEDPIPE_NATS_PASSWORD"), "NATS password ($EMBEDPIPE_NATS_PASSWORD)")
	fs.StringVar(&n.conn.Token, "token", os.Getenv("EMBEDPIPE_NATS_TOKEN"), "NATS token ($EMBEDPIPE_NATS_TOKEN)")
	fs.StringVar(&n.conn.NKeyFile, "nkey", "", "file holding an nkey seed")
	fs.StringVar(&n.conn.Creds, "creds", "", "NATS credentials file (JWT and nkey seed)")
	fs.StringVar(&n.conn.TLSCA, "tls-ca", "", "CA certificate file to verify the server")
	fs.StringVar(&n.conn.TLSCert, "tls-cert", "", "client certificate file")
	fs.StringVar(&n.conn.TLSKey, "tls-key", "", "client key file")
	fs.IntVar(&n.replicas, "replicas", 1, "replicas of the streams and bucket (3 on a 3-node cluster)")
	fs.DurationVar(&n.ackWait, "ack-wait", 30*time.Second, "time a task may go without a heartbeat before another worker gets it")
	fs.IntVar(&n.maxDeliver, "max-deliver", 5, "tries of a task before it goes to the dead-letter stream")
}

func (n *natsFlags) layout() workers.Layout {
	return workers.Layout{Replicas: n.replicas, AckWait: n.ackWait, MaxDeliver: n.maxDeliver}
}

func (n *natsFlags) connect(name string) (*nats.Conn, jetstream.JetStream, error) {
	o := n.conn
	o.Name = name
	nc, err := workers.Connect(o)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// loadModel loads the model for the NATS commands with embed's split of
// the cores (pipeline.SplitThreads): threads kernel threads per encoder call
// (defaultThreads when 0) and GOMAXPROCS/threads concurrent encoder calls
// per task, the second result.
func loadModel(dir string, threads, defaultThreads int) (*encoder.Model, int, error) {
	calls, opts := modelOptions(threads, defaultThreads)
	m, err := encoder.Load(dir, opts...)
	if err != nil {
		return nil, 0, err
	}
	return m, calls, nil
}

// modelOptions returns loadModel's split of the cores and the options it
// loads with, which the workers' model cache loads every other model with.
func modelOptions(threads, defaultThreads int) (calls int, opts []encoder.Option) {
	if threads <= 0 {
		threads = defaultThreads
	}
	procs := runtime.GOMAXPROCS(0)
	calls, threads = pipeline.SplitThreads(procs, max(1, procs/max(1, threads)))
	return calls, []encoder.Option{encoder.WithThreads(threads), hubOption()}
}

// modelCache returns the cache of the models the workers of a process
// embed jobs with: emb, loaded from src, for jobs that name no model, the
// others loaded on demand with the options of modelOptions.
func modelCache(src string, emb *encoder.Model, resident bool, maxModels, threads, defaultThreads int, al *workers.AllowList, log *slog.Logger) (*workers.Models, error) {
	_, opts := modelOptions(threads, defaultThreads)
	return workers.NewModels(workers.ModelsConfig{Default: src, Loaded: emb, Resident: resident, Max: maxModels,
		Allow: al, Options: opts, Logger: log})
}

// checkMaxModels refuses a --max-models of worker or serve below 1.
func checkMaxModels(fs *cmdFlags, n int) error {
	if n < 1 {
		return fs.usageErrorf("--max-models %d: want at least 1 (the --model counts as one)", n)
	}
	return nil
}

// maxModelsHelp documents --max-models of worker and serve.
const maxModelsHelp = "models held in memory at once for jobs that name a hub model or a model directory under --allow-path, --model included (idle ones are freed least recently used first)"

// workerModel names the model a worker embeds with, for refusing tasks
// that name another one and for the manifest.
func workerModel(emb *encoder.Model) schemas.Model {
	info := emb.Info()
	dir := info.Dir
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return schemas.Model{Dir: dir, Hub: info.Hub, Revision: info.Revision, ContentHash: emb.ContentHash()}
}

// runWorker pulls embedding tasks from NATS JetStream until SIGTERM.
func runWorker(ctx context.Context, args []string) error {
	fs := newFlags("worker", "--model DIR --allow-path DIR [flags]",
		"embedpipe worker --nats nats://127.0.0.1:4222 --model ./all-MiniLM-L6-v2 --allow-path /data")
	var nf natsFlags
	nf.register(fs.FlagSet)
	model := fs.String("model", "", modelHelp+" (required)")
	var allow stringList
	fs.Var(&allow, "allow-path", "directory a task may read inputs from and write outputs under (repeatable; required)")
	concurrency := fs.Int("concurrency", 1, "tasks held at once (pull credits)")
	threads := fs.Int("threads", 0, "kernel threads per encoder call (default 1, with one concurrent call per core, as embed)")
	batch := fs.Int("batch-size", 0, "sequences per encoder batch (default: the pipeline's)")
	id := fs.String("id", "", "worker id in results and logs (default host-pid)")
	pin := fs.Bool("pin-model", false, "embed only with --model: refuse tasks naming another model and leave them for other workers")
	maxModels := fs.Int("max-models", workers.DefaultMaxModels, maxModelsHelp)
	create := fs.Bool("create-layout", true, "create the streams, consumer and bucket if missing (false: look them up, for narrow permissions)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	metricsAddr := fs.String("metrics", "", "serve /metrics, /health and /live on this address (e.g. 127.0.0.1:9090)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if *model == "" {
		return fs.usageErrorf("--model is required")
	}
	if err := checkMaxModels(fs, *maxModels); err != nil {
		return err
	}
	if len(allow) == 0 {
		return fs.usageErrorf("at least one --allow-path is required: workers only touch files under allowed roots")
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	al, err := workers.NewAllowList(allow...)
	if err != nil {
		return err
	}
	met, health, err := startMetrics(ctx, *metricsAddr, log)
	if err != nil {
		return err
	}
	emb, calls, err := loadModel(*model, *threads, 1)
	if err != nil {
		return err
	}
	nc, js, err := nf.connect("embedpipe-worker")
	if err != nil {
		return err
	}
	defer nc.Close()
	health.AddCheck("nats", natsUp(nc))
	health.SetReady(true)
	cfg := workers.WorkerConfig{ID: *id, Runner: &workers.PipelineRunner{Model: emb, BatchSize: *batch, Workers: calls, Logger: log},
		Allow: al, Layout: nf.layout(), Concurrency: *concurrency, Logger: log, NoCreate: !*create, Metrics: met}
	if *pin {
		cfg.Model = workerModel(emb)
		cfg.ModelHash = emb.ContentHash()
	} else {
		models, err := modelCache(*model, emb, false, *maxModels, *threads, 1, al, log)
		if err != nil {
			return err
		}
		defer models.Close()
		cfg.Models = models
	}
	log.Info("worker started", "nats", workers.Redact(nf.conn.URL), "model", *model, "allow", al.Roots())
	err = workers.NewWorker(js, cfg).Run(ctx)
	log.Info("worker stopped")
	return err
}
