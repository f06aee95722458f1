package main

import (
	"errors"
	"io"

	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/embedpipe/embedpipe/io/dataset"
	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/io/pgsink"
	"github.com/nats-io/nats.go/jetstream"
	"os"
	"path/filepath"
	"time"

	"github.com/embedpipe/embedpipe/encoder/hub"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/embedpipe/embedpipe/workers"
)

// jobModel names the model of a job from --model and --model-hash: a
// directory that exists here by its absolute path, a hub reference by its
// id and revision, anything else as given (a directory on the workers'
// machines).
func jobModel(model, hash string) schemas.Model {
	m := schemas.Model{ContentHash: hash}
	if model == "" {
		return m
	}
	if st, err := os.Stat(model); err == nil && st.IsDir() {
		if abs, err := filepath.Abs(model); err == nil {
			model = abs
		}
	} else if ref, err := hub.ParseRef(model); err == nil {
		m.Hub, m.Revision = ref.Repo, ref.Revision
		return m
	}
	m.Dir = model
	return m
}

// runSubmit splits a job into tasks on the task stream, prints the job id
// and, with --wait, waits for the job to end.
func runSubmit(ctx context.Context, args []string) error {
	fs := newFlags("submit", "--input FILE [--input FILE …] --output DIR|postgres://… [flags]",
		"embedpipe submit --nats nats://127.0.0.1:4222 --input /data/docs.parquet --output /data/vectors --wait",
		"PGPASSWORD=… embedpipe submit --input /data/docs.parquet --output postgres://loader@db:5432/app --table docs --create-index hnsw --wait")
	var nf natsFlags
	nf.register(fs.FlagSet)
	var inputs stringList
	fs.Var(&inputs, "input", "input file: .parquet, .jsonl (repeatable)")
	output := fs.String("output", "", "output directory for the parts, manifest.json and _SUCCESS, or a postgres:// URL whose --table the workers load (the job keeps no password: workers read PGPASSWORD or ~/.pgpass)")
	column := fs.String("column", "text", "text column")
	outColumn := fs.String("output-column", "embedding", "embedding column of the parts")
	jobID := fs.String("job", "", "job id (default: generated)")
	model := fs.String("model", "", "model of the job: a directory the workers can read (under their --allow-path) or a Hugging Face Hub id org/name[@revision] (default: the workers' model)")
	hash := fs.String("model-hash", "", "pin the job to this model content hash (see inspect --hash)")
	promptName := fs.String("prompt-name", "", "name of the model prompt to prepend")
	truncDim := fs.Int("truncate-dim", 0, "keep the first N dimensions (renormalized)")
	maxLen := fs.Int("max-length", 0, "truncate texts at N tokens (default: the model's)")
	precision := fs.String("precision", "", "float32 (default), float16, binary or ubinary (a Postgres table holds them as vector, halfvec or bit)")
	chunkTokens := fs.Int("chunk-tokens", 0, "cut each text into chunks of at most N tokens, one part row per chunk (as embed --chunk-tokens)")
	chunkOverlap := fs.Int("chunk-overlap", 0, "with --chunk-tokens: tokens shared by consecutive chunks")
	chunkMode := fs.String("chunk-mode", "", "with --chunk-tokens: split (default) or late")
	var pgf pgFlags
	pgf.register(fs.FlagSet, false)
	rowsPerTask := fs.Int64("rows-per-task", workers.DefaultRowsPerTask, "target rows per task of a Parquet input")
	wait := fs.Bool("wait", false, "wait for the job and exit 0 only if it completed")
	timeout := fs.Duration("timeout", 0, "with --wait, give up after this long")
	if err := fs.parse(args); err != nil {
		return err
	}
	if err := fs.noArgs(); err != nil {
		return err
	}
	if len(inputs) == 0 || *output == "" {
		return fs.usageErrorf("--input and --output are required")
	}
	if fs.given("timeout") && !*wait {
		return fs.usageErrorf("--timeout applies only with --wait")
	}
	if err := checkPGFlags(fs, *output); err != nil {
		return err
	}
	id := *jobID
	if id == "" {
		var b [4]byte
		_, _ = rand.Read(b[:])
		id = time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
	}
	job := schemas.Job{Schema: schemas.JobV1, ID: id, Column: *column,
		Model: jobModel(*model, *hash),
		Options: schemas.Options{PromptName: *promptName, TruncateDim: *truncDim, MaxLength: *maxLen, Precision: *precision,
			ChunkTokens: *chunkTokens, ChunkOverlap: *chunkOverlap, ChunkMode: *chunkMode}}
	for _, in := range inputs {
		abs, err := filepath.Abs(in)
		if err != nil {
			return err
		}
		if err := checkSubmitInput(abs, *column); err != nil {
			return err
		}
		job.Inputs = append(job.Inputs, schemas.Input{Path: abs})
	}
	if pgsink.IsURL(*output) {
		if err := submitPostgres(ctx, &job, *output, *outColumn, pgf); err != nil {
			return err
		}
	} else {
		out, err := filepath.Abs(*output)
		if err != nil {
			return err
		}
		job.Output = schemas.Output{Dir: out, Column: *outColumn}
	}
	nc, js, err := nf.connect("embedpipe-submit")
	if err != nil {
		return err
	}
	defer nc.Close()
	st, err := workers.Submit(ctx, js, job, nf.layout(), *rowsPerTask)
	if err != nil {
		return err
	}
	fmt.Println(id)
	fmt.Fprintf(os.Stderr, "submitted job %s: %d tasks, %d rows\n", id, st.Tasks, st.TotalRows)
	if !*wait {
		return nil
	}
	wctx := ctx
	if *timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	kv, err := workers.OpenBucket(wctx, js)
	if err != nil {
		return err
	}
	stopWatch := watchJob(wctx, kv, id, os.Stderr, submitWatchEvery, submitIdleWarn)
	st, err = workers.Wait(wctx, kv, id)
	stopWatch()
	if err != nil && *timeout > 0 && errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("job %s did not end within --timeout %s (it stays queued; see embedpipe status %s)", id, *timeout, id)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "job %s %s: %d rows, %d tokens\n", id, st.State, st.Rows, st.Tokens)
	if st.Index != "" {
		fmt.Fprintf(os.Stderr, "job %s: %s\n", id, st.Index)
	}
	return nil
}

// submitPostgres sets job's output to the table that url and the flags
// name and checks it (server, pgvector, the shape of an existing table)
// with url, which may hold a password: the job record gets the URL without
// it, since every reader of the jobs bucket can see the record.
func submitPostgres(ctx context.Context, job *schemas.Job, url, outColumn string, pgf pgFlags) error {
	opts, err := pgf.options(url, job.Options.Precision, outColumn)
	if err != nil {
		return err
	}
	bare, hadPassword, err := pgsink.WithoutPassword(url)
	if err != nil {
		return err
	}
	job.Output = schemas.Output{Column: opts.EmbeddingColumn, Postgres: &schemas.PostgresOutput{URL: bare, Table: opts.Table,
		IDColumn: opts.IDColumn, Index: string(opts.Index), Distance: string(opts.Distance), IndexMemory: opts.IndexMemory}}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := workers.CheckPostgres(cctx, *job, url); err != nil {
		return fmt.Errorf("--output %s: %w", pgsink.Redact(url), err)
	}
	if hadPassword {
		fmt.Fprintln(os.Stderr, "submit: the password in --output checked the table; the job keeps no password, so workers need PGPASSWORD or ~/.pgpass")
	}
	return nil
}

// The cadence of submit --wait's progress lines and how long it waits for
// a first finished task before saying that no worker may be running;
// variables so that tests can shorten them.
var (
	submitWatchEvery = 5 * time.Second
	submitIdleWarn   = 30 * time.Second
)

// checkSubmitInput refuses, before anything is queued, an input a worker
// would fail on: missing or unreadable, of a format embedpipe does not
// read, or without the text column. Workers would otherwise retry such a
// task until it is dead-lettered.
func checkSubmitInput(path, column string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("--input %s: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("--input %s is a directory; give its files (one --input each)", path)
	}
	r, err := dataset.Open(path, dataset.ReadOptions{TextColumn: column})
	if err != nil {
		return fmt.Errorf("--input %s: %w", path, err)
	}
	defer r.Close()
	_, err = fileio.ColumnIndex(r.Schema(), column, path)
	return err
}

// watchJob prints the progress of job id to w every `every` while the job
// runs, and once, after idle with no task finished, that no worker may be
// taking its tasks. The returned function stops it.
func watchJob(ctx context.Context, kv jetstream.KeyValue, id string, w io.Writer, every, idle time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		t := time.NewTicker(every)
		defer t.Stop()
		lastRows, warned := int64(-1), false
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			st, _, err := workers.Progress(ctx, kv, id)
			if err != nil {
				continue
			}
			if st.Done+st.Failed == 0 && !warned && time.Since(start) >= idle {
				fmt.Fprintf(w, "job %s: no task has finished in %s; is a worker (embedpipe worker or serve) connected to this NATS server?\n",
					id, time.Since(start).Round(10*time.Millisecond))
				warned = true
			}
			if st.Rows != lastRows {
				fmt.Fprintf(w, "job %s: %d of %d tasks done, %d of %d rows\n", id, st.Done, st.Tasks, st.Rows, st.TotalRows)
				lastRows = st.Rows
			}
		}
	}()
	return func() { cancel(); <-done }
}
