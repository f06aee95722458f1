package pipeline

import (
	"context"
	"errors"
	"fmt"
	"github.com/apache/arrow/go/v17/arrow"
	"github.com/embedpipe/embedpipe/io/fileio"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// stages runs reader → tokenizer workers → encoder workers → part writer
// and returns the number of chunks of the input.
func (fr *fileRun) stages(ctx context.Context, r fileio.Reader, done map[int]chunkStats, sink *orderedSink) (nChunks int, interrupted bool, err error) {
	// The run context is detached from ctx and cancelled only on errors,
	// so that chunks already encoded are still checkpointed after ctx is
	// done; encoding stops at once on either (encCtx), and the chunks it
	// leaves unfinished are dropped, to be read again on resume.
	runCtx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	encCtx, stopEnc := context.WithCancel(runCtx)
	defer stopEnc()
	defer context.AfterFunc(ctx, stopEnc)()
	workers := fr.cfg.Workers
	tokWorkers := tokenizerWorkers(workers)
	inflight := inflightChunks(workers)
	sem := make(chan struct{}, inflight)
	tokCh := make(chan *chunkJob, tokWorkers)
	encCh := make(chan batchJob, 2*workers)
	writeCh := make(chan *chunkJob, inflight)

	fail := func(err error) { cancel(err) }
	// dropped is set when an interruption left a chunk that was read
	// unfinished: the run is interrupted even if the reader had already
	// reached the end of the input.
	var dropped atomic.Bool
	var readerWG, tokWG, encWG, writeWG sync.WaitGroup

	readerWG.Add(1)
	go func() { // reader: owned by stages, stops at EOF, on ctx or on error
		defer readerWG.Done()
		defer close(tokCh)
		for {
			if ctx.Err() != nil {
				interrupted = true
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				interrupted = true
				return
			case <-runCtx.Done():
				return
			}
			c, err := r.Next(runCtx)
			if errors.Is(err, io.EOF) {
				<-sem
				return
			}
			if err != nil {
				<-sem
				fail(err)
				return
			}
			nChunks = c.Seq + 1
			if _, ok := done[c.Seq]; ok {
				c.Record.Release()
				<-sem
				continue
			}
			select {
			case tokCh <- &chunkJob{c: c}:
			case <-runCtx.Done():
				c.Record.Release()
				<-sem
				return
			}
		}
	}()

	for w := 0; w < tokWorkers; w++ {
		tokWG.Add(1)
		go func() { // tokenizer worker: stops when tokCh closes
			defer tokWG.Done()
			for job := range tokCh {
				if encCtx.Err() != nil {
					if runCtx.Err() == nil {
						dropped.Store(true)
					}
					job.c.Record.Release()
					<-sem
					continue
				}
				var batches []batchJob
				err := fr.safely(job, func() (err error) { batches, err = fr.prepare(job); return err })
				if err != nil {
					job.c.Record.Release()
					<-sem
					fail(err)
					continue
				}
				if len(batches) == 0 {
					writeCh <- job // never blocks: capacity covers all in flight
					continue
				}
				job.pending.Store(int32(len(batches)))
				for i, b := range batches {
					sent := false
					select {
					case encCh <- b:
						sent = true
					case <-encCtx.Done():
					}
					if rest := len(batches) - i - 1; !sent || encCtx.Err() != nil && rest > 0 {
						// The batches not sent count as done, so the
						// job still reaches the writer, which drops it.
						if !sent {
							rest++
						}
						job.abandoned.Store(true)
						if job.pending.Add(-int32(rest)) == 0 {
							writeCh <- job
						}
						break
					}
				}
			}
		}()
	}

	for w := 0; w < workers; w++ {
		encWG.Add(1)
		go func() { // encoder worker: stops when encCh closes
			defer encWG.Done()
			var ew encodeScratch
			for b := range encCh {
				// ctx is checked too: encCtx follows it from a goroutine
				// of its own, a moment later.
				if encCtx.Err() != nil || ctx.Err() != nil {
					b.job.abandoned.Store(true)
				} else if err := fr.safely(b.job, func() error { return fr.encode(encCtx, &ew, b) }); err != nil {
					if runCtx.Err() != nil || ctx.Err() == nil {
						fail(err)
						continue
					}
					b.job.abandoned.Store(true) // interrupted
				}
				if b.job.pending.Add(-1) == 0 {
					writeCh <- b.job
				}
			}
		}()
	}

	writeWG.Add(1)
	go func() { // part writer: stops when writeCh closes
		defer writeWG.Done()
		for job := range writeCh {
			var out arrow.Record
			if job.abandoned.Load() {
				dropped.Store(true)
			}
			if runCtx.Err() == nil && !job.abandoned.Load() {
				var err error
				if err = fr.safely(job, func() (err error) { out, err = fr.writeChunk(runCtx, job); return err }); err != nil {
					fail(err)
				}
			}
			job.c.Record.Release()
			if out == nil || sink == nil {
				if out != nil {
					out.Release()
				}
				<-sem
				continue
			}
			// The sink keeps chunks that finish out of order until their
			// turn; each keeps its semaphore slot until written, which
			// bounds that buffer.
			n, err := sink.add(runCtx, job.stats.Seq, job.stats.FirstRow, out)
			if err != nil {
				fail(err)
			}
			for ; n > 0; n-- {
				<-sem
			}
		}
		if sink != nil {
			for n := sink.drop(); n > 0; n-- {
				<-sem
			}
		}
	}()

	readerWG.Wait()
	tokWG.Wait()
	close(encCh)
	encWG.Wait()
	close(writeCh)
	writeWG.Wait()
	if err := context.Cause(runCtx); err != nil {
		return nChunks, interrupted || dropped.Load(), err
	}
	return nChunks, interrupted || dropped.Load(), nil
}

// safely runs a stage's step on job, turning a panic into an error that
// names the input and the chunk, so that a bug met by one damaged input
// fails that run instead of the whole process (serve runs many tasks and
// requests in one).
func (fr *fileRun) safely(job *chunkJob, step func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %w: %v at %s (chunk %d, from row %d); please report it", fr.in.Path, ErrInternal, p, panicSite(), job.c.Seq, job.c.FirstRow)
		}
	}()
	return step()
}

// panicSite names the function and line that panicked, called from the
// deferred recover: the first frame outside the runtime.
func panicSite() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf("%s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
		}
		if !more {
			return "an unknown place"
		}
	}
}
