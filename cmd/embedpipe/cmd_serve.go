package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/embedpipe/embedpipe/encoder"
	"github.com/embedpipe/embedpipe/httpapi"
	"github.com/embedpipe/embedpipe/metrics"
	"github.com/embedpipe/embedpipe/workers"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// runServe runs the embed service and workers, with an embedded NATS server
// with JetStream unless --nats names an existing one, until SIGTERM.
func runServe(ctx context.Context, args []string) error {
	fs := newFlags("serve", "--model DIR (--store DIR | --nats URL) [flags]",
		"embedpipe serve --model ./all-MiniLM-L6-v2 --store ./nats-store",
		"embedpipe serve --model ./all-MiniLM-L6-v2 --nats nats://10.0.0.5:4222 --allow-path /data --workers 2")
	var nf natsFlags
	nf.register(fs.FlagSet)
	listen := fs.String("listen", "127.0.0.1:4222", "address of the embedded NATS server")
	store := fs.String("store", "", "JetStream store directory of the embedded server (required without --nats)")
	model := fs.String("model", "", modelHelp+" (required)")
	nWorkers := fs.Int("workers", 1, "job workers to run in this process (0: service only)")
	maxModels := fs.Int("max-models", workers.DefaultMaxModels, maxModelsHelp)
	var allow stringList
	fs.Var(&allow, "allow-path", "directory the workers may read and write under (repeatable; default: / for an embedded server on a loopback address, else required)")
	threads := fs.Int("threads", 0, "encoder threads (default: all cores)")
	batchTokens := fs.Int("batch-tokens", 8192, "token budget of one service batch")
	maxWait := fs.Duration("max-wait", 2*time.Millisecond, "how long a service batch waits for more requests")
	executors := fs.Int("executors", 1, "service batches encoded at once")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	httpAddr := fs.String("http", "", "serve the OpenAI (/v1/embeddings) and TEI (/embed, /embed_sparse, /rerank, /tokenize, /info) HTTP API, /metrics, /health and /live on this address (e.g. 127.0.0.1:8080)")
	sparseTopK := fs.Int("sparse-top-k", 0, "keep the K largest weights of each sparse vector of a SPLADE model (/embed_sparse, NATS embed; 0: every positive weight)")
	noNATS := fs.Bool("no-nats", false, "run the HTTP API only: no NATS server, service or workers")
	apiKey := fs.String("api-key", os.Getenv("EMBEDPIPE_API_KEY"), "require Authorization: Bearer KEY on the HTTP API (default $EMBEDPIPE_API_KEY)")
	tlsCert := fs.String("http-tls-cert", "", "TLS certificate file (PEM) for the HTTP API")
	tlsKey := fs.String("http-tls-key", "", "TLS private key file (PEM) for the HTTP API")
	maxClientBatch := fs.Int("max-client-batch-size", 2048, "most inputs in one HTTP request")
	maxInputTokens := fs.Int("max-input-tokens", 0, "tokens per input: truncation length (OpenAI) and limit (TEI with truncate false); default the model's max_seq_length")
	maxBody := fs.Int64("max-body-bytes", 16<<20, "largest HTTP request body")
	queue := fs.Int("queue", 4096, "requests (HTTP and NATS together) waiting for the encoder; beyond it HTTP answers 429, NATS 503")
	metricsAddr := fs.String("metrics", "", "serve /metrics, /health and /live on this address too (they are also on --http)")
	drain := fs.Duration("drain-timeout", 30*time.Second, "how long SIGTERM waits for HTTP requests in flight")
	insecure := fs.Bool("insecure-no-auth", false, "let the embedded NATS server listen on a non-loopback --listen address without --user/--password, --token or --nkey (anyone who reaches it can embed and, with --allow-path, read and write files)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	natsGiven := fs.given("nats")
	if *noNATS && *httpAddr == "" {
		return fs.usageErrorf("--no-nats needs --http: there would be nothing to serve")
	}
	if *sparseTopK < 0 {
		return fs.usageErrorf("--sparse-top-k %d is negative", *sparseTopK)
	}
	if err := checkMaxModels(fs, *maxModels); err != nil {
		return err
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return fs.usageErrorf("--http-tls-cert and --http-tls-key go together")
	}
	if natsGiven && (fs.given("store") || fs.given("listen")) {
		return fs.usageErrorf("--store and --listen configure the embedded NATS server; with --nats none is started")
	}
	if *model == "" {
		return fs.usageErrorf("--model is required")
	}
	if !natsGiven && !*noNATS {
		if *store == "" {
			return fs.usageErrorf("--store is required for the embedded NATS server (or give --nats URL of a running one)")
		}
		// Check the address before loading the model: the embedded
		// server only reports that it did not start, not why.
		if err := checkListen(*listen); err != nil {
			return err
		}
	}
	log, err := newLogger(*logLevel)
	if err != nil {
		return err
	}
	// Checked before the model loads and long before the server listens:
	// a server that other machines can reach must not be open even for a
	// moment.
	var serverAuth func(*server.Options)
	if !natsGiven && !*noNATS {
		var open bool
		if serverAuth, open, err = embeddedServerAuth(&nf.conn, *listen, *insecure); err != nil {
			return fs.usageErrorf("%v", err)
		}
		if open {
			log.Warn("INSECURE: the embedded NATS server listens on a non-loopback address WITHOUT AUTHENTICATION (--insecure-no-auth): anyone who reaches it can submit jobs and use the embed service", "listen", *listen)
		}
	}
	met, health, err := startMetrics(ctx, *metricsAddr, log)
	if err != nil {
		return err
	}
	if met == nil {
		met = metrics.New()
	}
	emb, calls, err := loadModel(*model, *threads, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	modelID := filepath.Base(*model)
	if h := emb.Info().Hub; h != "" {
		modelID = h
	}
	kind := emb.Info().Kind
	if *sparseTopK > 0 && kind != encoder.KindSparse {
		return fs.usageErrorf("--sparse-top-k applies to a sparse (SPLADE) model, and %s is a %s model", *model, kind)
	}
	// One batcher for every transport: HTTP and NATS requests share
	// batches and the queue bound; it batches pairs for a cross-encoder
	// and sparse vectors for a SPLADE model.
	batcher := workers.NewBatcher(emb, workers.BatcherConfig{BatchTokens: *batchTokens, MaxWait: *maxWait,
		Queue: *queue, Executors: *executors, Metrics: met})
	defer batcher.Close() // after the NATS service stops: drains what is queued
	var httpSrv *http.Server
	if *httpAddr != "" {
		api, err := httpapi.New(httpapi.Config{Model: emb, Batcher: batcher, ModelID: modelID, APIKey: *apiKey,
			MaxClientBatchSize: *maxClientBatch, MaxInputTokens: *maxInputTokens, MaxBodyBytes: *maxBody,
			SparseTopK: *sparseTopK, Metrics: met, Health: health, Logger: log})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return fmt.Errorf("--http %s: %w", *httpAddr, err)
		}
		httpSrv = &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		go func() {
			var err error
			if *tlsCert != "" {
				err = httpSrv.ServeTLS(ln, *tlsCert, *tlsKey)
			} else {
				err = httpSrv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("HTTP API stopped", "err", err)
			}
		}()
		scheme := "http"
		if *tlsCert != "" {
			scheme = "https"
		}
		log.Info("HTTP API ready", "url", scheme+"://"+ln.Addr().String(), "auth", *apiKey != "")
		endpoints := map[string]string{encoder.KindEmbedding: "/v1/embeddings, /embed", encoder.KindSparse: "/embed_sparse",
			encoder.KindCrossEncoder: "/rerank"}[kind]
		fmt.Fprintf(os.Stderr, "embedpipe serve: HTTP API at %s://%s (%s, /tokenize, /info, /metrics, /health)\n", scheme, ln.Addr(), endpoints)
	}
	health.SetReady(true)
	var wg sync.WaitGroup
	if !*noNATS {
		if !natsGiven {
			host, portS, err := net.SplitHostPort(*listen)
			if err != nil {
				return fmt.Errorf("--listen %q: %w", *listen, err)
			}
			port, err := strconv.Atoi(portS)
			if err != nil {
				return fmt.Errorf("--listen %q: %w", *listen, err)
			}
			abs, err := filepath.Abs(*store)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(abs, 0o755); err != nil {
				return err
			}
			opts := &server.Options{Host: host, Port: port, JetStream: true, StoreDir: abs, NoSigs: true, ServerName: "embedpipe"}
			serverAuth(opts)
			srv, err := server.NewServer(opts)
			if err != nil {
				return fmt.Errorf("embedded NATS server: %w", err)
			}
			srv.Start()
			defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
			if !srv.ReadyForConnections(10 * time.Second) {
				if err := checkListen(*listen); err != nil {
					return err
				}
				return fmt.Errorf("embedded NATS server on %s did not start within 10s (store %s)", *listen, abs)
			}
			nf.conn.URL = srv.ClientURL()
			log.Info("embedded NATS server with JetStream", "url", srv.ClientURL(), "store", abs)
		}
		nc, js, err := nf.connect("embedpipe-serve")
		if err != nil {
			return err
		}
		defer nc.Close()
		health.AddCheck("nats", natsUp(nc))
		scfg := workers.ServiceConfig{Encoder: emb, Model: modelID, Batcher: batcher, SparseTopK: *sparseTopK,
			BatchTokens: *batchTokens, MaxWait: *maxWait, Queue: *queue, Executors: *executors, Metrics: met, Logger: log}
		subject := workers.EmbedSubject
		if emb.Info().Kind == encoder.KindCrossEncoder {
			// A cross-encoder embeds nothing: it serves the rerank endpoint.
			scfg.Encoder, scfg.Reranker, subject = nil, emb, workers.RerankSubject
		}
		svc, err := workers.StartService(nc, scfg)
		if err != nil {
			return err
		}
		defer svc.Stop()
		log.Info(serviceReadyMsg(subject), "subject", subject, "id", svc.Info().ID)
		if *nWorkers > 0 {
			if len(allow) == 0 {
				// The laptop case: an embedded server that only local clients
				// can reach, used by the same user who runs serve. Anything
				// reachable from other machines must name its roots.
				if natsGiven || !isLoopbackHostPort(*listen) {
					return fmt.Errorf("--allow-path is required when the workers take jobs from a server other machines can reach")
				}
				allow = append(allow, "/")
				log.Warn("no --allow-path: the in-process workers may read and write any path this process can, for jobs from local clients of the loopback-only embedded server")
			}
			al, err := workers.NewAllowList(allow...)
			if err != nil {
				return err
			}
			if _, _, err := workers.EnsureLayout(ctx, js, nf.layout()); err != nil {
				return err
			}
			// The service keeps --model resident; the workers share it and
			// load the other models their jobs name.
			models, err := modelCache(*model, emb, true, *maxModels, *threads, runtime.GOMAXPROCS(0), al, log)
			if err != nil {
				return err
			}
			defer models.Close()
			for i := range *nWorkers {
				w := workers.NewWorker(js, workers.WorkerConfig{ID: fmt.Sprintf("serve-%d-%d", os.Getpid(), i),
					Runner: &workers.PipelineRunner{Model: emb, Workers: calls}, Allow: al, Layout: nf.layout(), Logger: log, Metrics: met, Models: models})
				wg.Add(1)
				go func() { defer wg.Done(); _ = w.Run(ctx) }()
			}
		}
		fmt.Fprintf(os.Stderr, "embedpipe serve: NATS at %s, embed subject %s; SIGTERM to stop\n", workers.Redact(nf.conn.URL), workers.EmbedSubject)
	}
	<-ctx.Done()
	// Graceful drain: report not ready, let HTTP requests in flight
	// finish (their batches are queued or running), then the deferred
	// stops end the NATS service and drain the batcher.
	health.SetReady(false)
	if httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *drain)
		if err := httpSrv.Shutdown(sctx); err != nil {
			log.Warn("HTTP drain incomplete", "err", err)
		}
		cancel()
	}
	wg.Wait()
	log.Info("serve stopped")
	return nil
}

// embeddedServerAuth returns what configures the authentication of the
// embedded NATS server from the credentials its clients are given
// (--user/--password, --token, or the public key of --nkey's seed), and
// whether the server will be open to other machines. It refuses a
// non-loopback listen address with no credentials the embedded server can
// enforce, unless insecure (--insecure-no-auth) says so. --creds and TLS
// client certificates configure clients only; the embedded server cannot
// check them, so they do not count.
func embeddedServerAuth(c *workers.ConnOptions, listen string, insecure bool) (apply func(*server.Options), open bool, err error) {
	if c.User != "" && c.Password == "" {
		return nil, false, fmt.Errorf("--user %q without --password", c.User)
	}
	var nkeyPub string
	if c.NKeyFile != "" {
		seed, err := os.ReadFile(c.NKeyFile)
		if err != nil {
			return nil, false, fmt.Errorf("--nkey: %w", err)
		}
		kp, err := nkeys.ParseDecoratedNKey(seed)
		if err != nil {
			return nil, false, fmt.Errorf("--nkey %s: %w", c.NKeyFile, err)
		}
		if nkeyPub, err = kp.PublicKey(); err != nil {
			return nil, false, fmt.Errorf("--nkey %s: %w", c.NKeyFile, err)
		}
		kp.Wipe()
	}
	apply = func(o *server.Options) {
		switch {
		case c.User != "":
			o.Username, o.Password = c.User, c.Password
		case c.Token != "":
			o.Authorization = c.Token
		case nkeyPub != "":
			o.Nkeys = []*server.NkeyUser{{Nkey: nkeyPub}}
		}
	}
	authed := c.User != "" || c.Token != "" || nkeyPub != ""
	if authed || isLoopbackHostPort(listen) {
		return apply, false, nil
	}
	if !insecure {
		return nil, false, fmt.Errorf("--listen %s is reachable from other machines: give the embedded NATS server credentials "+
			"(--user and --password, --token, or --nkey), or --insecure-no-auth to run it open "+
			"(--creds and TLS client certificates configure clients only and do not protect the embedded server)", listen)
	}
	return apply, true, nil
}

// checkListen reports why the embedded NATS server could not listen on
// addr (host:port), such as a port another process holds, with what to do
// about it; nil when addr can be listened on now.
func checkListen(addr string) error {
	host, portS, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: want host:port: %w", addr, err)
	}
	if _, err := strconv.Atoi(portS); err != nil {
		return fmt.Errorf("--listen %q: port %q is not a number", addr, portS)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, portS))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("embedded NATS server cannot listen on %s: the port is in use (another NATS server or embedpipe serve?); choose another with --listen HOST:PORT, or use the running server with --nats nats://%s", addr, addr)
		}
		return fmt.Errorf("embedded NATS server cannot listen on %s: %w", addr, err)
	}
	return l.Close()
}

// isLoopbackHostPort reports whether the host of addr (host:port) is a
// loopback address or "localhost".
func isLoopbackHostPort(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// serviceReadyMsg is the log line serve writes once its endpoint is up:
// "embed service ready", or "rerank service ready" for a cross-encoder.
func serviceReadyMsg(subject string) string {
	if subject == workers.RerankSubject {
		return "rerank service ready"
	}
	return "embed service ready"
}
