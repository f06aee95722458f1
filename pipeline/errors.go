package pipeline

import (
	"errors"

	"github.com/embedpipe/embedpipe/encoder/embed"
)

// Sentinel errors of package pipeline, wrapped with %w by the errors Run
// returns; the io sentinels (fileio.ErrCorrupt, fileio.ErrMissingColumn, …)
// pass through unchanged.
var (
	// ErrConfig reports an invalid Config (bad precision, truncate-dim larger
	// than the model's dimension, a prompt and a prompt name together, …).
	ErrConfig = errors.New("invalid options")
	// ErrInternal reports a bug met while processing an input (a panic
	// in a stage, recovered so that it fails the run and not the process).
	ErrInternal = errors.New("internal error")
	// ErrInterrupted reports a run stopped by its context (SIGINT/SIGTERM in
	// the CLI) after the in-flight chunks were checkpointed; rerunning the
	// same command resumes.
	ErrInterrupted = errors.New("interrupted")
	// ErrRow reports a row that could not be embedded while OnError is
	// "fail"; the error names the file, row group and row.
	ErrRow = errors.New("row cannot be embedded")
	// ErrCheckpoint reports a checkpoint directory made by a run with other
	// options, model or input; rerun with Resume false to start over.
	ErrCheckpoint = errors.New("checkpoint does not match this run")
	// ErrOutput reports an output that would overwrite an input or, without
	// overwrite, a finished earlier output (see CheckOutputs).
	ErrOutput = errors.New("output refused")
	// ErrRanges reports an unreadable or mis-shaped calibration ranges file,
	// or ranges that do not fit the output; it is embed.ErrRanges, so
	// errors.Is works with either name.
	ErrRanges = embed.ErrRanges
)

// interruptedError carries the exit code the CLI uses for an interrupted run.
type interruptedError struct{ msg string }

func (e *interruptedError) Error() string { return e.msg }
func (e *interruptedError) Unwrap() error { return ErrInterrupted }

// ExitCode makes the CLI exit with 130, as a shell does after SIGINT.
func (e *interruptedError) ExitCode() int { return 130 }
