package arch

import "errors"

// Sentinel errors of package arch. Errors returned by this package wrap one of
// them with %w and add the file, key, tensor or sequence they concern.
var (
	// ErrConfig reports a missing or invalid value in config.json.
	ErrConfig = errors.New("invalid model config")
	// ErrUnsupported reports a model_type or option this package does not
	// implement.
	ErrUnsupported = errors.New("unsupported model")
	// ErrWeights reports a missing or mis-shaped parameter tensor.
	ErrWeights = errors.New("invalid model weights")
	// ErrInput reports a batch the model cannot run: token ids out of the
	// vocabulary, sequences longer than the position table, bad offsets.
	ErrInput = errors.New("invalid encoder input")
)
