package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/embedpipe/embedpipe/io/fileio"
	"github.com/embedpipe/embedpipe/io/parquetio"
	"github.com/embedpipe/embedpipe/metrics"
	"github.com/embedpipe/embedpipe/pipeline"
	"github.com/embedpipe/embedpipe/schemas"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	// ID names the worker in results and logs; default host-pid.
	ID string
	// Runner runs the tasks.
	Runner TaskRunner
	// Allow confines the inputs and outputs a task may name.
	Allow *AllowList
	// Layout must match the one submit used.
	Layout Layout
	// Concurrency is the number of tasks this worker holds at once: the
	// credits of its pulls. Default 1 (one task already uses every core
	// the encoder is given).
	Concurrency int
	// ModelHash, when set, makes the worker refuse (and hand back) tasks
	// pinned to another model content hash.
	ModelHash string
	// Models, when set, gives each task the model it names (see
	// Models.Acquire): loaded from the hub or an allowed directory, or the
	// default for a task that names none. The Runner must then be a
	// ModelRunner. A task whose model cannot be loaded here is refused with
	// the reason: handed back for another worker (ErrWrongModel), or failed
	// when no worker could embed it (a content hash that differs from the
	// model's, a model that does not load). Model is ignored.
	Models *Models
	// Model is the model the Runner embeds with when Models is nil: its
	// directory (or hub id) and content hash. When set, a task naming
	// another model — by content hash, hub id or a directory that is not
	// this one — is refused with the reason and handed back for a worker
	// that has it (dead-lettered after MaxDeliver tries).
	Model schemas.Model
	// Heartbeat is the interval of in-progress acks during a task;
	// default AckWait/3.
	Heartbeat time.Duration
	// FetchWait bounds one pull request; default 2 s.
	FetchWait time.Duration
	// Logger receives progress and errors; nil discards them. No secret
	// reaches it.
	Logger *slog.Logger
	// NoCreate makes the worker look the stream, consumer and bucket up
	// instead of creating them, so that it can run with the narrow
	// permissions listed in the package documentation.
	NoCreate bool
	// Metrics, when not nil, counts tasks by outcome and the rows and
	// tokens embedded, and exports the consumer's pending counts.
	Metrics *metrics.Metrics
}

// Worker pulls tasks from the shared durable consumer and runs them. At most
// Concurrency tasks are in flight: a pull asks for exactly as many messages
// as the worker has free credits, so a slow worker never hoards tasks that
// another could run.
type Worker struct {
	js  jetstream.JetStream
	cfg WorkerConfig
	log *slog.Logger
}

// NewWorker returns a worker on js. It does not start it: call Run.
func NewWorker(js jetstream.JetStream, cfg WorkerConfig) *Worker {
	cfg.Layout = cfg.Layout.withDefaults()
	if cfg.ID == "" {
		h, _ := os.Hostname()
		cfg.ID = h + "-" + strconv.Itoa(os.Getpid())
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = cfg.Layout.AckWait / 3
	}
	if cfg.FetchWait <= 0 {
		cfg.FetchWait = 2 * time.Second
	}
	if cfg.Allow == nil {
		cfg.Allow = &AllowList{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{js: js, cfg: cfg, log: log.With("worker", cfg.ID)}
}

// Run pulls and runs tasks until ctx is done. On return every task goroutine
// has stopped; tasks interrupted by ctx are handed back (nak) so that
// another worker takes them at once. Run returns nil when ctx ends it.
func (w *Worker) Run(ctx context.Context) error {
	if w.cfg.Runner == nil {
		return fmt.Errorf("%w: workers: WorkerConfig.Runner is required", pipeline.ErrConfig)
	}
	if w.js == nil {
		return fmt.Errorf("%w: workers: NewWorker needs a JetStream context", pipeline.ErrConfig)
	}
	if _, ok := w.cfg.Runner.(ModelRunner); w.cfg.Models != nil && !ok {
		return fmt.Errorf("%w: workers: WorkerConfig.Models needs a Runner that is a ModelRunner, not %T", pipeline.ErrConfig, w.cfg.Runner)
	}
	var cons jetstream.Consumer
	var kv jetstream.KeyValue
	for {
		var err error
		if w.cfg.NoCreate {
			cons, kv, err = lookupLayout(ctx, w.js)
		} else {
			cons, kv, err = EnsureLayout(ctx, w.js, w.cfg.Layout)
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		w.log.Warn("waiting for JetStream", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	w.cfg.Metrics.ConsumerPending(func() (int64, int64, error) {
		ictx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ci, err := cons.Info(ictx)
		if err != nil {
			return 0, 0, err
		}
		return int64(ci.NumPending), int64(ci.NumAckPending), nil
	})
	credits := make(chan struct{}, w.cfg.Concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	if !w.cfg.NoCreate {
		wg.Add(1)
		go func() { defer wg.Done(); _ = Reap(ctx, w.js, kv, w.log) }()
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		select {
		case credits <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		n := 1
		for n < w.cfg.Concurrency {
			select {
			case credits <- struct{}{}:
				n++
				continue
			default:
			}
			break
		}
		fctx, cancelFetch := context.WithTimeout(ctx, w.cfg.FetchWait)
		batch, err := cons.Fetch(n, jetstream.FetchContext(fctx))
		if err != nil {
			cancelFetch()
			for range n {
				<-credits
			}
			if ctx.Err() != nil {
				return nil
			}
			w.log.Debug("fetch failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		got := 0
		for msg := range batch.Messages() {
			got++
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-credits }()
				w.handle(ctx, kv, msg)
			}()
		}
		cancelFetch()
		for range n - got {
			<-credits
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			w.log.Debug("pull ended", "err", err)
		}
	}
	return nil
}

// checkModel reports why this worker must not embed a task naming model
// want, or nil when it may (want names no model, or this worker's).
func (w *Worker) checkModel(want schemas.Model) error {
	have := w.cfg.Model
	if have.ContentHash == "" && have.Dir == "" && have.Hub == "" {
		return nil
	}
	refuse := func(what string) error {
		return fmt.Errorf("%w: the job names %s; this worker embeds with %s (content hash %s): it is left for a worker with that model",
			ErrWrongModel, what, firstNonEmpty(have.Hub, have.Dir), have.ContentHash)
	}
	switch {
	case want.ContentHash != "":
		if want.ContentHash != have.ContentHash {
			return refuse("model content hash " + want.ContentHash)
		}
	case want.Hub != "":
		if want.Hub != have.Hub || want.Revision != "" && have.Revision != "" && want.Revision != have.Revision {
			return refuse("hub model " + want.Hub)
		}
	case want.Dir != "":
		if !sameDir(want.Dir, have.Dir) {
			return refuse("model directory " + want.Dir)
		}
	}
	return nil
}

// sameDir reports whether a and b name the same directory on this machine.
func sameDir(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// handle runs one task message to its end: ack, nak or termination.
func (w *Worker) handle(ctx context.Context, kv jetstream.KeyValue, msg jetstream.Msg) {
	deliveries := 1
	if md, err := msg.Metadata(); err == nil {
		deliveries = int(md.NumDelivered)
	}
	task, err := schemas.DecodeTask(msg.Data())
	if err != nil {
		reason := truncate(fmt.Sprintf("malformed task on %s: %v", msg.Subject(), err), 500)
		w.log.Error("terminating malformed task", "subject", msg.Subject(), "reason", reason)
		w.deadLetter(ctx, msg, DeadLetterSubjectPrefix+"malformed", reason, deliveries)
		_ = msg.TermWithReason(reason)
		return
	}
	log := w.log.With("job", task.JobID, "task", task.Index, "delivery", deliveries)
	if w.cfg.Models == nil {
		if err := w.checkModel(task.Model); err != nil {
			w.fail(ctx, kv, msg, task, deliveries, err, log)
			return
		}
	}
	if w.cfg.ModelHash != "" && task.Model.ContentHash != "" && task.Model.ContentHash != w.cfg.ModelHash {
		w.fail(ctx, kv, msg, task, deliveries, fmt.Errorf("task pinned to model %s, this worker has %s", task.Model.ContentHash, w.cfg.ModelHash), log)
		return
	}

	if st, _, err := getStatus(ctx, kv, task.JobID); err == nil && st.State == schemas.StateCancelled {
		w.cancelled(msg, log)
		return
	}
	// Heartbeats keep the task ours while it runs, and while this worker
	// finishes the job, so that a live worker never loses its task and a
	// dead one loses it after AckWait. Each beat also looks for a
	// cancellation of the job, which stops the task at its next batch.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var jobCancelled atomic.Bool
	hbCtx, stopHB := context.WithCancel(ctx)
	// The runner reports its counts; each beat stores them for status to
	// show the rows within the task, until the task's result supersedes them.
	prog := newTaskProgress(kv, task, w.cfg.ID, log)
	runCtx = withTaskCounts(runCtx, &prog.counts)
	defer prog.end(ctx)
	var hbDone sync.WaitGroup
	hbDone.Add(1)
	go func() {
		defer hbDone.Done()
		t := time.NewTicker(w.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-hbCtx.Done():
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					log.Debug("heartbeat failed", "err", err)
				}
				prog.publish(hbCtx)
				if st, _, err := getStatus(hbCtx, kv, task.JobID); err == nil && st.State == schemas.StateCancelled {
					jobCancelled.Store(true)
					cancelRun()
				}
			}
		}
	}()
	defer func() { stopHB(); hbDone.Wait() }()

	start := time.Now()
	log.Info("task started", "input", task.Input.Path, "row_groups", fmt.Sprintf("[%d,%d)", task.RowGroupLo, task.RowGroupHi))
	input, err := w.cfg.Allow.ReadPath(task.Input.Path)
	if err != nil {
		w.fail(ctx, kv, msg, task, deliveries, err, log)
		return
	}
	outDir := "" // a Postgres output has none
	if task.Output.Postgres == nil {
		if outDir, err = w.cfg.Allow.WriteDir(task.Output.Dir); err != nil {
			w.fail(ctx, kv, msg, task, deliveries, err, log)
			return
		}
	}
	runner := w.cfg.Runner
	if w.cfg.Models != nil {
		// After the heartbeats start: a hub download may take longer than
		// AckWait.
		lease, err := w.cfg.Models.Acquire(runCtx, task.Model)
		if jobCancelled.Load() {
			if err == nil {
				lease.Release()
			}
			w.cancelled(msg, log)
			return
		}
		if err != nil {
			w.fail(ctx, kv, msg, task, deliveries, err, log)
			return
		}
		defer lease.Release()
		runner = runner.(ModelRunner).WithModel(lease.Model)
		log = log.With("model", describe(lease.Used))
	}
	info, err := runner.RunTask(runCtx, task, input, outDir)
	if jobCancelled.Load() {
		w.cancelled(msg, log)
		return
	}
	if err != nil {
		w.fail(ctx, kv, msg, task, deliveries, err, log)
		return
	}
	res := schemas.Result{Schema: schemas.ResultV1, JobID: task.JobID, Index: task.Index, Part: info.Name,
		Input: task.Input.Path, RowGroupLo: task.RowGroupLo, RowGroupHi: task.RowGroupHi,
		Rows: info.Rows, Tokens: info.Tokens, Bytes: info.Bytes, SHA256: info.SHA256, Worker: w.cfg.ID,
		Deliveries: deliveries, Seconds: time.Since(start).Seconds(), FinishedAt: time.Now().UTC()}
	// The part is durable; record it, then finish the job if this was its
	// last task, and only then ack. A crash anywhere before the ack makes
	// the server redeliver the task, whose redo overwrites the same part.
	if err := retry(ctx, func() error { return putJSON(ctx, kv, taskKey(task.JobID, task.Index), res) }); err != nil {
		w.fail(ctx, kv, msg, task, deliveries, err, log)
		return
	}
	prog.end(ctx)
	if err := w.maybeFinish(ctx, kv, task, outDir); err != nil {
		log.Warn("job not finished yet", "err", err)
		_ = msg.NakWithDelay(w.cfg.Layout.AckWait / 2)
		return
	}
	// The part and its result are durable: let the ack through even when
	// ctx was cancelled meanwhile (SIGTERM), or the work would be redone.
	ackCtx, cancelAck := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancelAck()
	if err := msg.DoubleAck(ackCtx); err != nil {
		// The server will redeliver; the redo is idempotent.
		log.Warn("ack failed", "err", err)
		return
	}
	w.cfg.Metrics.Task(metrics.TaskDone)
	w.cfg.Metrics.Embedded(info.Rows, info.Tokens)
	log.Info("task done", "rows", info.Rows, "tokens", info.Tokens, "seconds", res.Seconds)
}

// cancelled ends a task of a cancelled job: it is terminated, not retried.
func (w *Worker) cancelled(msg jetstream.Msg, log *slog.Logger) {
	log.Info("task cancelled with its job")
	w.cfg.Metrics.Task(metrics.TaskCancelled)
	_ = msg.TermWithReason("job cancelled")
}

// fail hands a failed task back for another try, or, when the error is
// permanent or the task has used its deliveries, moves it to the
// dead-letter stream, records the failure and fails the job.
func (w *Worker) fail(ctx context.Context, kv jetstream.KeyValue, msg jetstream.Msg, task schemas.Task, deliveries int, err error, log *slog.Logger) {
	if ctx.Err() != nil {
		_ = msg.Nak()
		return
	}
	permanent := errors.Is(err, ErrPermanent) || errors.Is(err, ErrPathNotAllowed)
	if !permanent && deliveries < w.cfg.Layout.MaxDeliver {
		delay := time.Duration(deliveries) * 250 * time.Millisecond
		log.Warn("task failed, will retry", "err", err, "delay", delay)
		w.cfg.Metrics.Task(metrics.TaskRetried)
		_ = msg.NakWithDelay(delay)
		return
	}
	reason := truncate(err.Error(), 1000)
	log.Error("task dead-lettered", "err", reason)
	w.cfg.Metrics.Task(metrics.TaskFailed)
	w.deadLetter(ctx, msg, fmt.Sprintf("%s%s.%d", DeadLetterSubjectPrefix, task.JobID, task.Index), reason, deliveries)
	res := schemas.Result{Schema: schemas.ResultV1, JobID: task.JobID, Index: task.Index, Worker: w.cfg.ID,
		Deliveries: deliveries, Error: reason, FinishedAt: time.Now().UTC()}
	_ = retry(ctx, func() error { return putJSON(ctx, kv, taskKey(task.JobID, task.Index), res) })
	_, _ = updateStatus(ctx, kv, task.JobID, func(s *schemas.Status) bool {
		if s.State == schemas.StateFailed || s.State == schemas.StateCompleted || s.State == schemas.StateCancelled {
			return false
		}
		s.State = schemas.StateFailed
		s.Reason = fmt.Sprintf("task %d (%s): %s", task.Index, task.Input.Path, reason)
		s.FinishedAt = time.Now().UTC()
		return true
	})
	_ = msg.TermWithReason(truncate(reason, 200))
}

// deadLetter copies msg to subject on the dead-letter stream with the
// reason in the Embedpipe-Error header.
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg, subject, reason string, deliveries int) {
	m := nats.NewMsg(subject)
	m.Data = msg.Data()
	m.Header.Set(HeaderError, reason)
	m.Header.Set(HeaderDeliveries, strconv.Itoa(deliveries))
	m.Header.Set(HeaderSubject, msg.Subject())
	if md, err := msg.Metadata(); err == nil {
		m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("dlq.%d", md.Sequence.Stream))
	}
	if err := retry(ctx, func() error { _, err := w.js.PublishMsg(ctx, m); return err }); err != nil {
		w.log.Error("dead-letter publish failed", "subject", subject, "err", err)
	}
}

// retry runs f up to 20 times over about 10 seconds, riding out a server
// restart.
func retry(ctx context.Context, f func() error) error {
	var err error
	for i := 0; i < 20; i++ {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i+1) * 50 * time.Millisecond):
		}
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// maybeFinish writes manifest.json and _SUCCESS when every task of the job
// has a successful result. Exactly one worker finishes a job: it claims the
// job's final key with a create (compare-and-set on "absent"); a claim older
// than AckWait whose job is still unfinished belongs to a worker that died,
// and is taken over with a compare-and-set on its revision. An error means
// "try again later": the caller naks its task so the check is repeated.
func (w *Worker) maybeFinish(ctx context.Context, kv jetstream.KeyValue, task schemas.Task, outDir string) error {
	rs, err := Results(ctx, kv, task.JobID)
	if err != nil {
		return err
	}
	if len(rs) < task.Tasks {
		return nil
	}
	if st, _, err := getStatus(ctx, kv, task.JobID); err == nil && st.State == schemas.StateCancelled {
		return nil // a cancelled job gets no _SUCCESS
	}
	for _, r := range rs {
		if r.Error != "" {
			return nil // the job failed; fail already recorded it
		}
	}
	claim := []byte(w.cfg.ID)
	if _, err := kv.Create(ctx, finalKey(task.JobID), claim); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return fmt.Errorf("claiming job %s: %w", task.JobID, err)
		}
		st, _, err := getStatus(ctx, kv, task.JobID)
		if err != nil {
			return err
		}
		if st.State == schemas.StateCompleted || st.State == schemas.StateFailed {
			return nil
		}
		e, err := kv.Get(ctx, finalKey(task.JobID))
		if err != nil {
			return fmt.Errorf("reading claim of job %s: %w", task.JobID, err)
		}
		if time.Since(e.Created()) < w.cfg.Layout.AckWait {
			return fmt.Errorf("job %s is being finished by %s", task.JobID, e.Value())
		}
		if _, err := kv.Update(ctx, finalKey(task.JobID), claim, e.Revision()); err != nil {
			return fmt.Errorf("taking over job %s from %s: %w", task.JobID, e.Value(), err)
		}
		w.log.Warn("took over finishing a job from a silent worker", "job", task.JobID, "from", string(e.Value()))
	}
	return w.finish(ctx, kv, task, outDir, rs)
}

func (w *Worker) finish(ctx context.Context, kv jetstream.KeyValue, task schemas.Task, outDir string, rs []schemas.Result) error {
	e, err := kv.Get(ctx, jobKey(task.JobID))
	if err != nil {
		return fmt.Errorf("reading job %s: %w", task.JobID, err)
	}
	job, err := schemas.DecodeJob(e.Value())
	if err != nil {
		return fmt.Errorf("job %s: %w", task.JobID, err)
	}
	if job.Output.Postgres != nil {
		return w.finishPostgres(ctx, kv, job, rs)
	}
	m := schemas.Manifest{Schema: schemas.ManifestV1, JobID: job.ID, Column: job.Column,
		Output: job.Output.Column, CompletedAt: time.Now().UTC()}
	if m.Output == "" {
		m.Output = "embedding"
	}
	recorded := true
	for _, r := range rs {
		// Check each part against its result: a part must hold the rows
		// its worker recorded, and the checksum is taken of the file that
		// is actually there.
		p := filepath.Join(outDir, r.Part)
		sum, size, rows, err := checkPart(p)
		if err != nil {
			return err
		}
		if rows != r.Rows {
			return fmt.Errorf("part %s holds %d rows, its result says %d", p, rows, r.Rows)
		}
		// The model actually used is the one each part records.
		pm, ok, err := PartModel(p)
		if err != nil {
			return err
		}
		switch {
		case !ok:
			recorded = false
		case len(m.Parts) == 0:
			m.Model = pm
			md, err := partMetadataOf(p)
			if err != nil {
				return err
			}
			if prov, ok, err := schemas.ParseProvenance(md); err != nil {
				return fmt.Errorf("part %s: %w", p, err)
			} else if ok {
				m.Provenance = &prov
			}
		case pm.ContentHash != m.Model.ContentHash:
			return w.failJob(ctx, kv, job.ID, fmt.Sprintf("part %s was embedded with %s (content hash %s), part %s with %s (%s): one job's parts must share a model",
				m.Parts[0].Name, describe(m.Model), m.Model.ContentHash, r.Part, describe(pm), pm.ContentHash))
		}
		mp := schemas.ManifestPart{Name: r.Part, Input: r.Input, RowGroupLo: r.RowGroupLo, RowGroupHi: r.RowGroupHi,
			Rows: rows, Bytes: size, SHA256: sum}
		m.Parts = append(m.Parts, mp)
		m.Rows += rows
		m.Tokens += r.Tokens
	}
	if !recorded || len(m.Parts) == 0 {
		// Parts from a runner that records no model: the one this worker
		// embeds with (every task was refused by workers with another,
		// checkModel), else what the job named.
		m.Model = job.Model
		if w.cfg.Model.ContentHash != "" {
			m.Model = w.cfg.Model
		}
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	if err := fileio.WriteFileAtomic(filepath.Join(outDir, "manifest.json"), append(b, '\n')); err != nil {
		return err
	}
	if err := fileio.WriteFileAtomic(filepath.Join(outDir, "_SUCCESS"), nil); err != nil {
		return err
	}
	cleanTemps(outDir)
	_, err = updateStatus(ctx, kv, job.ID, func(s *schemas.Status) bool {
		if s.State == schemas.StateCompleted {
			return false
		}
		s.State = schemas.StateCompleted
		s.Done, s.Failed, s.Rows, s.Tokens = len(rs), 0, m.Rows, m.Tokens
		s.FinishedAt = m.CompletedAt
		return true
	})
	if err == nil {
		w.log.Info("job completed", "job", job.ID, "rows", m.Rows, "parts", len(m.Parts))
	}
	return err
}

// failJob records reason as the failure of job id, which no retry of its
// tasks can finish.
func (w *Worker) failJob(ctx context.Context, kv jetstream.KeyValue, id, reason string) error {
	w.log.Error("job failed", "job", id, "reason", reason)
	_, err := updateStatus(ctx, kv, id, func(s *schemas.Status) bool {
		if s.State == schemas.StateFailed || s.State == schemas.StateCompleted || s.State == schemas.StateCancelled {
			return false
		}
		s.State = schemas.StateFailed
		s.Reason = reason
		s.FinishedAt = time.Now().UTC()
		return true
	})
	return err
}

// checkPart returns the SHA-256, size and row count of the part at path.
func checkPart(path string) (sum string, size, rows int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, 0, fmt.Errorf("checking part: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return "", 0, 0, fmt.Errorf("checking part %s: %w", path, err)
	}
	rgs, err := parquetio.RowGroups(path)
	if err != nil {
		return "", 0, 0, fmt.Errorf("checking part %s: %w", path, err)
	}
	for _, rg := range rgs {
		rows += rg.NumRows
	}
	return hex.EncodeToString(h.Sum(nil)), size, rows, nil
}

// cleanTemps removes the temporary part files that workers killed mid-write
// left in dir. A live writer holds a lock on its temporary (see
// fileio.RemoveStaleTemps), so only dead writers' are removed, at any age.
func cleanTemps(dir string) {
	_, _ = fileio.RemoveStaleTempsIn(dir, func(name string) bool { return strings.HasPrefix(name, ".part-") })
}
