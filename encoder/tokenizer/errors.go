package tokenizer

import "errors"

// Sentinel errors of the package. Every error returned by Load and FromFile
// wraps one of them (with %w) together with the name of the offending file,
// so callers can test the class with errors.Is and still show the user where
// the problem lies.
var (
	// ErrNotFound is returned when a directory holds neither tokenizer.json
	// nor vocab.txt.
	ErrNotFound = errors.New("no tokenizer.json or vocab.txt")
	// ErrFormat is returned for a file that is not valid JSON or whose
	// fields have the wrong shape or inconsistent values.
	ErrFormat = errors.New("malformed tokenizer file")
	// ErrUnsupported is returned for a component type (normalizer,
	// pre-tokenizer, model, post-processor) that this package does not
	// implement; the message lists the supported types.
	ErrUnsupported = errors.New("unsupported component")
)
