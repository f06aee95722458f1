package workers

import "errors"

// ErrPermanent marks a task error that no retry can fix (a corrupt input
// file, a missing column, an option this worker cannot honour). Such a task
// goes to the dead-letter stream at once instead of after MaxDeliver tries.
var ErrPermanent = errors.New("workers: permanent task error")

// ErrPathNotAllowed reports a path outside every --allow-path root, one that
// escapes a root with "..", or one whose symbolic links lead outside.
var ErrPathNotAllowed = errors.New("workers: path not allowed")

// ErrJobFailed reports a job that ended with failed tasks; the error text
// carries the reason recorded in the job's status.
var ErrJobFailed = errors.New("workers: job failed")

// ErrJobNotFound reports a job id the jobs bucket does not know.
var ErrJobNotFound = errors.New("workers: job not found")

// ErrOverloaded reports an embed request refused because the service's
// bounded queue is full.
var ErrOverloaded = errors.New("workers: service overloaded")

// ErrBadInput reports an input file that cannot be read as the format it
// claims, naming the file and the row.
var ErrBadInput = errors.New("workers: bad input")

// ErrJobCancelled reports a job stopped by Cancel.
var ErrJobCancelled = errors.New("workers: job cancelled")

// ErrClosed reports a request submitted to a Batcher after Close: the
// service is draining.
var ErrClosed = errors.New("workers: batcher closed")

// ErrBadOptions reports job options the engine cannot honour; Submit
// refuses such a job with the reason instead of failing every task.
var ErrBadOptions = errors.New("workers: unsupported job options")

// ErrWrongModel reports a task naming a model other than the one the
// worker embeds with. The task is handed back for a worker that has it.
var ErrWrongModel = errors.New("workers: task names another model")

// ErrModelMismatch reports a model whose content hash differs from the one
// the job pins: the task fails rather than being embedded with another
// model.
var ErrModelMismatch = errors.New("workers: model content hash differs from the job's")
